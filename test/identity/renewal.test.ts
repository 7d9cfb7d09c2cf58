// Certificate renewal under load: with a 20 s lifetime (a test setting; 24 h by default) both sidecars
// renew about every 10 s while calls run; across three renewals no call fails, the pooled connection
// between them is never dropped (same TCP connection throughout), and new handshakes get the new
// certificate.
// Addresses: 127.0.102.x (controller .1; provider .11; caller .21).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { ECHO_API, echoClient, type EchoClient } from '../fixtures/echo-client.ts';
import { logsByIp, startEcho } from '../fixtures/echo-mesh.ts';
import { certify, readToken, startIdentityController, startMeshCaller, startMeshProvider, stopMesh, type IdentityController } from '../fixtures/identity.ts';
import { tempDir, writePods, type TestPod } from '../fixtures/local-controller.ts';
import { unary } from '../fixtures/policy.ts';
import { waitUntil } from '../fixtures/wait.ts';

const NET = '127.0.102';
const PROVIDER = `${NET}.11`;
const CALLER = `${NET}.21`;
const LIFETIME_S = 20;
let ctl: IdentityController;
let client: EchoClient;

const pods: TestPod[] = [
  { name: 'orders', namespace: 'shop', ip: PROVIDER, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'client', namespace: 'shop', ip: CALLER, serviceAccount: 'checkout' },
];

before(async () => {
  const podsFile = path.join(tempDir('identity-renewal'), 'pods.yaml');
  writePods(podsFile, pods);
  ctl = await startIdentityController({ podsFile, host: `${NET}.1`, lifetimeS: LIFETIME_S });
  await startEcho({ host: PROVIDER, port: 50051, name: 'orders', version: '1.4.0' });
  await Promise.all([
    startMeshProvider(ctl, PROVIDER, 'orders'),
    startMeshCaller(ctl, CALLER, 'client'),
  ]);
  client = echoClient(`${CALLER}:15001`);
});

after(() => stopMesh(client, ctl));

/** Established TCP connections to the provider's inbound port (only the caller sidecar dials it), as "address:port" of the dialling end. */
function pooledConnections(): string[] {
  const out = execFileSync('ss', ['-Htn', 'state', 'established', 'dst', `${PROVIDER}:15006`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/)[2]!);
}

async function servedNotAfter(): Promise<number> {
  const mine = await certify(ctl, await readToken(ctl, 'shop', 'client'));
  assert.ok(mine.ok);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: PROVIDER, port: 15006, ca: ctl.bundle, key: mine.key, cert: mine.res.certificateChain.join(''), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => {
      const c: X509Certificate = s.getPeerX509Certificate()!;
      s.destroy();
      resolve(Date.parse(c.validTo));
    });
    s.on('error', reject);
  });
}

const renewals = (ip: string): number => logsByIp(ip).filter((l) => l.msg === 'certificate renewed').length;

test('three renewals under load: 0 failed calls, the pooled connection kept, new handshakes get the new certificate', { timeout: 120_000 }, async () => {
  assert.ok((await unary(client, { text: 'warm' })).ok);
  const connsBefore = pooledConnections();
  assert.equal(connsBefore.length, 1, `one pooled connection: ${connsBefore.join(', ')}`);
  const firstNotAfter = await servedNotAfter();
  let stop = false;
  let ok = 0;
  const failed: string[] = [];
  const worker = async (): Promise<void> => {
    while (!stop) {
      const r = await unary(client, { text: 'load' });
      if (r.ok) ok++;
      else failed.push(`${r.err.code} ${r.err.details}`);
    }
  };
  const workers = Array.from({ length: 4 }, worker);
  try {
    await waitUntil('three renewals on both sidecars', () => renewals(PROVIDER) >= 3 && renewals(CALLER) >= 3, { timeoutMs: 90_000, intervalMs: 250 });
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  console.log(`# ${ok} calls, ${failed.length} failed; renewals: provider ${renewals(PROVIDER)}, caller ${renewals(CALLER)}`);
  assert.deepEqual(failed.slice(0, 5), [], `0 failed calls (${failed.length} of ${ok + failed.length})`);
  assert.ok(ok > 100, `calls ran throughout (${ok})`);
  assert.deepEqual(pooledConnections(), connsBefore, 'the same connection carried every call: nothing was dropped at a swap');
  const lastNotAfter = await servedNotAfter();
  assert.ok(lastNotAfter - firstNotAfter >= 20_000, `new handshakes get the renewed certificate (${new Date(firstNotAfter).toISOString()} → ${new Date(lastNotAfter).toISOString()})`);
  // Renewal at half the remaining life, ±10 %: 9-11 s apart with a 20 s certificate.
  const at = logsByIp(PROVIDER).filter((l) => l.msg === 'certificate issued' || l.msg === 'certificate renewed').map((l) => Number(l.time));
  const gaps = at.slice(1).map((t, i) => t - at[i]!);
  for (const g of gaps) assert.ok(g > 8_000 && g < 12_500, `renewal gap ${g} ms`);
});
