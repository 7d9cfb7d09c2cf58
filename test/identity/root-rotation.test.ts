// Root rotation by the documented procedure (docs/root-rotation.md, local mode) under load with a 20 s
// certificate lifetime (a test setting): the next root made with openssl and added to ca.pem, every
// sidecar trusting both, the controller restarted to sign with the next root, every leaf renewed by
// it, the old root removed. 0 failed calls throughout; a provider started after the switch (a new-root
// leaf, a fresh connection) is called; at the end the provider's inbound refuses an old-root leaf
// and accepts a new-root one. Each shell step is the doc's command, run by `sh -c`.
// Addresses: 127.0.160.x (controller .1; providers .11, .12; caller .21).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { ECHO_API, echoClient, type EchoClient } from '../fixtures/echo-client.ts';
import { admin, startEcho } from '../fixtures/echo-mesh.ts';
import { startIdentityController, startMeshCaller, startMeshProvider, stopMesh, type IdentityController } from '../fixtures/identity.ts';
import { replacePods, tempDir, writePods, type TestPod } from '../fixtures/local-controller.ts';
import { unary } from '../fixtures/policy.ts';
import { waitUntil } from '../fixtures/wait.ts';
import { CertificateAuthority } from '../../controller/identity/certificate-authority.ts';
import { keyPem, newKeys } from '../../controller/webhook/certificates.ts';

const NET = '127.0.160';
const PROVIDER = `${NET}.11`;
const PROVIDER2 = `${NET}.12`;
const CALLER = `${NET}.21`;
const IDENTITY_PORT = 41612;
const LIFETIME_S = 20;
let ctl: IdentityController;
let client: EchoClient;
let podsFile: string;
let dir: string;

const pods = (secondReady: boolean): TestPod[] => [
  { name: 'orders', namespace: 'shop', ip: PROVIDER, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'orders-2', namespace: 'shop', ip: PROVIDER2, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders', ready: secondReady },
  { name: 'client', namespace: 'shop', ip: CALLER, serviceAccount: 'checkout' },
];

const startCtl = (): Promise<IdentityController> => startIdentityController({ podsFile, host: `${NET}.1`, dir, identityPort: IDENTITY_PORT, lifetimeS: LIFETIME_S });

/** A step of docs/root-rotation.md, with DIR the identity directory. */
function step(script: string): string {
  return execFileSync('sh', ['-ec', script], { encoding: 'utf8', env: { ...process.env, DIR: dir } });
}

interface IdentityView { issuer: string | null; trust_bundle: string[] | null }
async function identityOf(ip: string): Promise<IdentityView> {
  const r = await admin(ip, '/routes');
  return (JSON.parse(r.body) as { identity: IdentityView }).identity;
}

/** Whether the provider's inbound answers an HTTP/2 request over TLS with this client certificate (any answer: the handshake was accepted). */
function inboundAccepts(key: string, cert: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    let why = '';
    const session = http2.connect(`https://${PROVIDER}:15006`, { key, cert, ca, checkServerIdentity: () => undefined });
    let settled = false;
    const done = (v: boolean): void => {
      if (settled) return;
      settled = true;
      session.destroy();
      if (!v) console.log(`# inbound refused: ${why || 'closed before an answer'}`);
      resolve(v);
    };
    session.on('error', (err: Error) => {
      why ||= err.message;
      done(false);
    });
    session.on('close', () => done(false));
    // The server's verdict on the client certificate comes after the client's handshake ends: ask something.
    const req = session.request({ ':method': 'POST', ':path': '/qbasis.test.Echo/Unary', 'content-type': 'application/grpc' });
    req.on('response', (h) => {
      console.log(`# inbound answered ${String(h[':status'])}`);
      done(true);
    });
    req.on('error', (err: Error) => {
      why ||= err.message;
      done(false);
    });
    req.end();
  });
}

async function leafFrom(caCert: string, caKey: string): Promise<{ key: string; cert: string }> {
  const ca = CertificateAuthority.load({ cert: caCert, key: caKey });
  const keys = await newKeys();
  const issued = await ca.signWorkload(keys.publicKey, 'spiffe://cluster.local/ns/shop/sa/checkout', 60_000);
  return { key: keyPem(keys.privateKey), cert: issued.cert };
}

before(async () => {
  const base = tempDir('identity-rotation');
  podsFile = path.join(base, 'pods.yaml');
  dir = path.join(base, 'id');
  writePods(podsFile, pods(false));
  ctl = await startCtl();
  await startEcho({ host: PROVIDER, port: 50051, name: 'orders', version: '1.4.0' });
  await startEcho({ host: PROVIDER2, port: 50051, name: 'orders-2', version: '1.4.0' });
  await Promise.all([
    startMeshProvider(ctl, PROVIDER, 'orders'),
    startMeshCaller(ctl, CALLER, 'client'),
  ]);
  client = echoClient(`${CALLER}:15001`);
});

after(() => stopMesh(client, ctl));

test('a root rotation by the documented steps under load: 0 failed calls, new leaves from the new root, the old root refused at the end', { timeout: 240_000 }, async () => {
  assert.ok((await unary(client, { text: 'warm' })).ok);
  const oldRoot = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  const oldKey = fs.readFileSync(path.join(dir, 'ca-key.pem'), 'utf8');
  const oldFp = new X509Certificate(oldRoot).fingerprint256;
  let stop = false;
  let ok = 0;
  const servedBy = new Map<string, number>();
  const failed: string[] = [];
  const worker = async (): Promise<void> => {
    while (!stop) {
      const r = await unary(client, { text: 'load' });
      if (r.ok) {
        ok++;
        servedBy.set(r.value.served_by, (servedBy.get(r.value.served_by) ?? 0) + 1);
      } else failed.push(`${r.err.code} ${r.err.details}`);
    }
  };
  const workers = Array.from({ length: 4 }, worker);
  const sidecars = [PROVIDER, CALLER];
  try {
    // Step 1: the next root.
    step(`umask 077
openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$DIR/next-ca-key.pem"
openssl req -x509 -new -key "$DIR/next-ca-key.pem" -sha256 -days 3650 -subj "/O=qbasis/CN=qbasis mesh root (cluster.local) $(date +%Y-%m)" \\
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$DIR/next-ca.pem"`);
    const newRoot = fs.readFileSync(path.join(dir, 'next-ca.pem'), 'utf8');
    const newKey = fs.readFileSync(path.join(dir, 'next-ca-key.pem'), 'utf8');
    const newFp = step(`openssl x509 -in "$DIR/next-ca.pem" -noout -fingerprint -sha256 | cut -d= -f2`).trim();
    assert.equal(newFp, new X509Certificate(newRoot).fingerprint256);
    // Step 2: both roots in the bundle; step 3: every sidecar trusts both.
    step(`cat "$DIR/ca.pem" "$DIR/next-ca.pem" > "$DIR/ca.pem.new" && mv "$DIR/ca.pem.new" "$DIR/ca.pem"`);
    for (const ip of sidecars) await waitUntil(`${ip} trusts both roots`, async () => (await identityOf(ip)).trust_bundle?.length === 2, { timeoutMs: 15_000, intervalMs: 250 });
    // The inbound re-read the bundle: a leaf of the next root is accepted before anything is signed by it.
    const early = await leafFrom(newRoot, newKey);
    assert.ok(await inboundAccepts(early.key, early.cert, oldRoot + newRoot), 'a next-root leaf is accepted once the bundle holds the next root');
    // Step 4: the controller signs with the next root.
    step(`mv "$DIR/next-ca-key.pem" "$DIR/ca-key.pem"`);
    await ctl.stop();
    ctl = await startCtl();
    assert.ok(ctl.logs.some((l) => l.msg === 'mesh root loaded'), 'the controller loaded the next root');
    // Step 5: every leaf renewed by the next root (at most one certificate lifetime).
    for (const ip of sidecars) await waitUntil(`${ip} has a next-root leaf`, async () => (await identityOf(ip)).issuer === newFp, { timeoutMs: 3 * LIFETIME_S * 1000, intervalMs: 250 });
    // A provider started now has a next-root leaf from its first certificate; the caller dials it fresh.
    await startMeshProvider(ctl, PROVIDER2, 'orders-2');
    replacePods(podsFile, pods(true));
    await waitUntil('calls reach orders-2 (a new-root leaf on a new connection)', () => (servedBy.get('orders-2@1.4.0') ?? 0) > 20, { timeoutMs: 20_000, intervalMs: 250 })
      .catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}; the caller's routes: ${(await admin(CALLER, '/routes')).body}`);
      });
    // Step 6: the old root out of the bundle, the controller restarted so its answers name only the next root.
    step(`cp "$DIR/next-ca.pem" "$DIR/ca.pem.new" && mv "$DIR/ca.pem.new" "$DIR/ca.pem" && rm "$DIR/next-ca.pem"`);
    await ctl.stop();
    ctl = await startCtl();
    for (const ip of [...sidecars, PROVIDER2]) {
      await waitUntil(`${ip} trusts only the next root`, async () => {
        const v = await identityOf(ip);
        return v.trust_bundle?.length === 1 && v.trust_bundle[0] === newFp && v.issuer === newFp;
      }, { timeoutMs: 15_000, intervalMs: 250 });
    }
    // A few more seconds of calls after the removal (and another renewal on the way).
    const at = ok;
    await waitUntil('calls after the old root is gone', () => ok > at + 200, { timeoutMs: 20_000, intervalMs: 100 });
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  console.log(`# ${ok} calls, ${failed.length} failed; served by ${JSON.stringify(Object.fromEntries(servedBy))}; old root ${oldFp.slice(0, 11)}…`);
  assert.deepEqual(failed.slice(0, 5), [], `0 failed calls (${failed.length} of ${ok + failed.length})`);
  const bundle = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  const old = await leafFrom(oldRoot, oldKey);
  assert.equal(await inboundAccepts(old.key, old.cert, bundle), false, 'an old-root leaf is refused once the old root left the bundle');
  const fresh = await leafFrom(bundle, fs.readFileSync(path.join(dir, 'ca-key.pem'), 'utf8'));
  assert.ok(await inboundAccepts(fresh.key, fresh.cert, bundle), 'a next-root leaf is accepted');
});
