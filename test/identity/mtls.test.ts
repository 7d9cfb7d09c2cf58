// Mesh identity end to end, local mode: the controller as CA (--identity-dir), sidecars that get
// their certificate with their pod's token, and calls both ways over mutual TLS.
// Addresses: 127.0.101.x (controller .1; pod "alpha" .11 provides 1.4.0 and calls ^2; pod "beta" .12
// provides 2.0.0 and calls ^1.2).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { ECHO_API, ECHO_PROTO, echoClient, type EchoClient } from '../fixtures/echo-client.ts';
import { admin, startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { callBothWays, certify, identityFlags, readToken, startIdentityController, type IdentityController } from '../fixtures/identity.ts';
import { tempDir, writePods, type TestPod } from '../fixtures/local-controller.ts';
import { ensureTools } from '../cluster/build.ts';

const NET = '127.0.101';
const ALPHA = `${NET}.11`;
const BETA = `${NET}.12`;
const APP_PORT = 50051;
const NS = 'shop';
let ctl: IdentityController;
const clients: EchoClient[] = [];
let sidecars: Proc[] = [];

const pods: TestPod[] = [
  { name: 'alpha', namespace: NS, ip: ALPHA, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'beta', namespace: NS, ip: BETA, provides: `${ECHO_API}@2.0.0`, serviceAccount: 'billing' },
];

before(async () => {
  const podsFile = path.join(tempDir('identity-mtls'), 'pods.yaml');
  writePods(podsFile, pods);
  ctl = await startIdentityController({ podsFile, host: `${NET}.1` });
  await Promise.all([
    startEcho({ host: ALPHA, port: APP_PORT, name: 'alpha', version: '1.4.0' }),
    startEcho({ host: BETA, port: APP_PORT, name: 'beta', version: '2.0.0' }),
  ]);
  sidecars = await Promise.all([
    startSidecar({ ip: ALPHA, discovery: ctl.identityTarget, appPort: APP_PORT, provides: `${ECHO_API}@1.4.0`, requires: `${ECHO_API}@^2.0`, podName: 'alpha', extra: identityFlags(ctl, NS, 'alpha') }),
    startSidecar({ ip: BETA, discovery: ctl.identityTarget, appPort: APP_PORT, provides: `${ECHO_API}@2.0.0`, requires: `${ECHO_API}@^1.2`, podName: 'beta', extra: identityFlags(ctl, NS, 'beta') }),
  ]);
});

after(async () => {
  for (const c of clients) c.close();
  await stopAll();
  await ctl?.stop();
});

function routesIdentity(body: string): { mtls: boolean; id: string | null; not_after: string | null } {
  return (JSON.parse(body) as { identity: { mtls: boolean; id: string | null; not_after: string | null } }).identity;
}

test("a sidecar gets a certificate whose URI SAN is its ServiceAccount's SPIFFE ID, and serves it on its inbound port", async () => {
  const r = routesIdentity((await admin(ALPHA, '/routes')).body);
  assert.equal(r.mtls, true);
  assert.equal(r.id, 'spiffe://cluster.local/ns/shop/sa/orders');
  assert.ok(Date.parse(r.not_after!) > Date.now() + 23 * 3600_000, `a 24 h certificate (not after ${r.not_after})`);
  const metrics = (await admin(ALPHA, '/metrics')).body;
  const m = /^qbasis_sidecar_certificate_expiry_timestamp_seconds (\S+)$/m.exec(metrics);
  assert.ok(m, 'the expiry gauge is exported');
  assert.equal(Math.round(Number(m[1])), Math.round(Date.parse(r.not_after!) / 1000));

  // What a peer sees on 15006: the handshake needs a mesh client certificate; the server's names alpha's identity.
  const mine = await certify(ctl, await readToken(ctl, NS, 'beta'));
  assert.ok(mine.ok);
  const peerCert = await new Promise<X509Certificate>((resolve, reject) => {
    const s = tls.connect({ host: ALPHA, port: 15006, ca: ctl.bundle, key: mine.key, cert: mine.res.certificateChain.join(''), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => {
      const c = s.getPeerX509Certificate()!;
      assert.equal(s.alpnProtocol, 'h2');
      assert.equal(s.getProtocol(), 'TLSv1.3');
      s.destroy();
      resolve(c);
    });
    s.on('error', reject);
  });
  assert.equal(peerCert.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/orders');
  assert.ok(peerCert.checkIssued(new X509Certificate(ctl.bundle)), 'issued by the mesh root');
});

test('two sidecars call each other over mutual TLS', async () => {
  const fromAlpha = echoClient(`${ALPHA}:15001`);
  const fromBeta = echoClient(`${BETA}:15001`);
  clients.push(fromAlpha, fromBeta);
  await callBothWays({ client: fromAlpha, servedBy: 'alpha@1.4.0' }, { client: fromBeta, servedBy: 'beta@2.0.0' }, 20);
  const routes = JSON.parse((await admin(ALPHA, '/routes')).body) as { requires: Record<string, { endpoints: { pod: string; identity: string; connection: string }[] }> };
  const ep = routes.requires[ECHO_API]!.endpoints.find((e) => e.pod === 'beta')!;
  assert.equal(ep.identity, 'spiffe://cluster.local/ns/shop/sa/billing', 'discovery gave the endpoint its identity');
  assert.equal(ep.connection, 'ready');
  for (const p of sidecars) assert.equal(p.err(), '', 'nothing on stderr (no TLS warnings)');
  for (const p of sidecars) assert.deepEqual(p.logs().filter((l) => Number(l.level) >= 40).map((l) => l.msg), [], 'no warnings logged');
});

test('with identity on, the sidecar and controller /metrics pass promtool check metrics', { timeout: 600_000 }, async () => {
  const promlint = path.join(await ensureTools({ tools: ['promlint'] }), 'promlint');
  const texts = { sidecar: (await admin(ALPHA, '/metrics')).body, controller: await fetch(`${ctl.admin}/metrics`).then((r) => r.text()) };
  assert.match(texts.sidecar, /^qbasis_sidecar_certificate_requests_total\{result="ok"\} 1$/m);
  assert.match(texts.sidecar, /^qbasis_sidecar_peer_identity_mismatches_total 0$/m);
  assert.match(texts.controller, /^qbasis_controller_identity_root_expiry_timestamp_seconds \d/m);
  for (const [what, text] of Object.entries(texts)) {
    const r = spawnSync(promlint, [], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  }
});

test('a grpc-go client with 64 calls at once through two mTLS sidecars gets every answer with its gRPC headers (20,000 calls)', { timeout: 600_000 }, async () => {
  // Node emits a client stream's 'response' a tick after the read that carried it; under TLS and load
  // the DATA of that read can come first. A relay that read the body at once wrote the message before
  // the headers, and grpc-go refused the bare :status 200 ("malformed header: missing HTTP content-type").
  const bin = await ensureTools({ tools: ['ghz'] });
  const payload = Buffer.alloc(1024, 7).toString('base64');
  const { stdout } = await promisify(execFile)(path.join(bin, 'ghz'), [
    '--insecure', '--proto', ECHO_PROTO, '--call', `${ECHO_API}.Unary`, '-d', JSON.stringify({ payload }), '-O', 'json', '-n', '20000', '-c', '64', `${BETA}:15001`,
  ], { maxBuffer: 64 << 20, timeout: 300_000 });
  const r = JSON.parse(stdout) as { count: number; statusCodeDistribution?: Record<string, number>; errorDistribution?: Record<string, number> | null };
  assert.equal(r.count, 20_000);
  assert.deepEqual(r.statusCodeDistribution, { OK: 20_000 }, `errors: ${JSON.stringify(r.errorDistribution)}`);
});
