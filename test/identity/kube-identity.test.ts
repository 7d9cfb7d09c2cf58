// Mesh identity in Kubernetes mode against the real API server: the controller (a real process,
// `--identity-secret`) keeps its root in a Secret, checks sidecars' tokens with TokenReview, and keeps
// the qbasis-root-ca ConfigMap in namespaces with injected pods. Tokens are real bound tokens from
// TokenRequest (`kubectl create token … --bound-object-kind Pod`); the pods sit on the kwok node and
// their sidecars and apps run here as local processes on the pods' IPs, with those tokens.
// Addresses: controllers on 127.0.130.1 and .2; pods on their kwok IPs.
import assert from 'node:assert/strict';
import { createSign, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { x509 } from '../../controller/webhook/certificates.ts';
import { webcrypto } from 'node:crypto';
import { ECHO_API, echoClient, type EchoClient } from '../fixtures/echo-client.ts';
import { admin, startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { callBothWays, certify, refusedWith } from '../fixtures/identity.ts';
import { tempDir } from '../fixtures/local-controller.ts';
import { pollFor } from '../fixtures/wait.ts';
import { API_RETRY, createPods, getJson, getTable, kubeTestFile, podIPs, type KubeController } from '../controller/kube-helpers.ts';

const kube = kubeTestFile();
const SECRET = 'qbasis-identity-root';
const IDENTITY_LISTENING = 'identity server listening (TLS: Certify and Discovery)';
const MESH = { 'qbasis.io/injected': 'v1' };
let ctlNs: string;
let appNs: string;
let leader: KubeController;
let target: string;
let root: string;
const dir = tempDir('kube-identity');
const clients: EchoClient[] = [];

async function startController(host: string, name: string): Promise<{ ctl: KubeController; target: string }> {
  const ctl = await kube.controller({ namespace: ctlNs, alsoWatch: [appNs], host, identity: name, args: ['--identity-secret', SECRET, '--identity-port', '0'] });
  const line = await ctl.waitForLog((l) => l.msg === IDENTITY_LISTENING, 60_000, IDENTITY_LISTENING);
  return { ctl, target: `${host}:${String(line.port)}` };
}

async function secretRoot(): Promise<string> {
  const s = await getJson<{ data?: Record<string, string> }>(kube.cluster, ['-n', ctlNs, 'get', 'secret', SECRET]);
  return Buffer.from(s.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
}

/** The controller's own TLS certificate on `target`, verified against `bundle`. */
function servedCertificate(at: string, bundle: string): Promise<X509Certificate> {
  const [host, port] = [at.slice(0, at.lastIndexOf(':')), Number(at.slice(at.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ca: bundle, ALPNProtocols: ['h2'], servername: 'qbasis-controller', checkServerIdentity: () => undefined }, () => {
      resolve(s.getPeerX509Certificate()!);
      s.destroy();
    });
    s.on('error', reject);
  });
}

async function podUid(ns: string, name: string): Promise<string> {
  return (await getJson<{ metadata: { uid: string } }>(kube.cluster, ['-n', ns, 'get', 'pod', name])).metadata.uid;
}

async function boundToken(ns: string, sa: string, pod: string, audience = 'qbasis.io'): Promise<string> {
  const uid = await podUid(ns, pod);
  return (await kube.cluster.kubectl(['-n', ns, 'create', 'token', sa, '--audience', audience, '--bound-object-kind', 'Pod', '--bound-object-name', pod, '--bound-object-uid', uid])).stdout.trim();
}

/**
 * The same token as TokenRequest gave, with its times moved an hour into the past and signed again with
 * the cluster's service-account key: a genuine token of that issuer that has expired.
 */
function expired(token: string): string {
  const [h, p] = token.split('.');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  Object.assign(claims, { iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
  const body = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const sig = createSign('RSA-SHA256').update(body).sign(fs.readFileSync(path.join(kube.cluster.stateDir, 'pki', 'sa.key')));
  return `${body}.${sig.toString('base64url')}`;
}

after(async () => {
  for (const c of clients) c.close();
  await stopAll();
  for (const ns of [ctlNs, appNs]) if (ns !== undefined) await kube.cluster.kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found'], { allowFailure: true });
});

test('two replicas started at once agree on one root: the leader writes it into the Secret, the other waits and loads it', { timeout: 180_000 }, async () => {
  // Here, not in a before(): kubeTestFile's before() (the cluster) has run by the first test.
  ctlNs = await kube.cluster.namespace(undefined, 'idk-ctl');
  appNs = await kube.cluster.namespace(undefined, 'idk-shop');
  const [a, b] = await Promise.all([startController('127.0.130.1', 'idk-a'), startController('127.0.130.2', 'idk-b')]);
  root = await secretRoot();
  assert.match(root, /^-----BEGIN CERTIFICATE-----/);
  const rootCert = new X509Certificate(root);
  assert.ok(rootCert.ca, 'a CA certificate');
  assert.ok(Date.parse(rootCert.validTo) > Date.now() + 9.9 * 365 * 86_400_000, `ten years (valid to ${rootCert.validTo})`);
  assert.equal((rootCert.publicKey.asymmetricKeyDetails as { namedCurve?: string }).namedCurve, 'prime256v1');
  const made = [a, b].filter((r) => r.ctl.logs.some((l) => l.msg === 'mesh root created'));
  assert.equal(made.length, 1, 'exactly one replica made the root');
  for (const r of [a, b]) {
    assert.ok(r.ctl.logs.some((l) => l.msg === 'mesh root created' || l.msg === 'mesh root loaded'), r.ctl.identity);
    const served = await servedCertificate(r.target, root);
    assert.ok(served.checkIssued(rootCert), `${r.ctl.identity} serves a certificate from the Secret's root`);
    assert.match(served.subjectAltName ?? '', new RegExp(`URI:spiffe://cluster\\.local/ns/${ctlNs}/sa/qbasis-controller`));
  }
  // Keep the leader (the one that made the root, or holds the Lease) for the tests below.
  const keep = made[0]!;
  const other = keep === a ? b : a;
  await other.ctl.stop();
  leader = keep.ctl;
  target = keep.target;
});

test("a sidecar with its pod's bound token gets a certificate naming its ServiceAccount's SPIFFE ID; the bundle ConfigMap appears in the pods' namespace; two sidecars call each other over mutual TLS", { timeout: 180_000 }, async () => {
  assert.ok(leader, 'the first test started the controller');
  const c = kube.cluster;
  await c.kubectl(['-n', appNs, 'create', 'serviceaccount', 'orders']);
  await c.kubectl(['-n', appNs, 'create', 'serviceaccount', 'billing']);
  await createPods(c, appNs, [
    { name: 'alpha', serviceAccount: 'orders', provides: `${ECHO_API}@1.4.0`, annotations: MESH },
    { name: 'beta', serviceAccount: 'billing', provides: `${ECHO_API}@2.0.0`, annotations: MESH },
  ]);
  const bundle = await pollFor('the qbasis-root-ca ConfigMap in the pods\' namespace', async () => {
    const r = await c.kubectl(['-n', appNs, 'get', 'configmap', 'qbasis-root-ca', '-o', 'json'], { allowFailure: true });
    return r.code === 0 ? (JSON.parse(r.stdout) as { data?: Record<string, string> }).data?.['ca.crt'] : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200 });
  assert.equal(bundle, root, 'the ConfigMap holds the Secret\'s root');
  assert.ok(!bundle.includes('PRIVATE KEY'));
  const bundleFile = path.join(dir, 'ca.crt');
  fs.writeFileSync(bundleFile, bundle);

  const ips = await pollFor('pod IPs', async () => {
    const m = await podIPs(c, appNs);
    return m.has('alpha') && m.has('beta') ? m : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 });
  const [alphaIp, betaIp] = [ips.get('alpha')!, ips.get('beta')!];
  for (const [pod, sa] of [['alpha', 'orders'], ['beta', 'billing']] as const) fs.writeFileSync(path.join(dir, pod), await boundToken(appNs, sa, pod), { mode: 0o600 });
  await Promise.all([
    startEcho({ host: alphaIp, port: 50051, name: 'alpha', version: '1.4.0' }),
    startEcho({ host: betaIp, port: 50051, name: 'beta', version: '2.0.0' }),
  ]);
  const idFlags = (pod: string): string[] => ['--token-file', path.join(dir, pod), '--trust-bundle', bundleFile, '--namespace', appNs];
  await Promise.all([
    startSidecar({ ip: alphaIp, discovery: target, appPort: 50051, provides: `${ECHO_API}@1.4.0`, requires: `${ECHO_API}@^2.0`, podName: 'alpha', extra: idFlags('alpha') }),
    startSidecar({ ip: betaIp, discovery: target, appPort: 50051, provides: `${ECHO_API}@2.0.0`, requires: `${ECHO_API}@^1.2`, podName: 'beta', extra: idFlags('beta') }),
  ]);
  const routes = JSON.parse((await admin(alphaIp, '/routes')).body) as { identity: { mtls: boolean; id: string; not_after: string } };
  assert.equal(routes.identity.mtls, true);
  assert.equal(routes.identity.id, `spiffe://cluster.local/ns/${appNs}/sa/orders`);
  assert.ok(Date.parse(routes.identity.not_after) > Date.now() + 23 * 3600_000, `a 24 h certificate (not after ${routes.identity.not_after})`);

  const fromAlpha = echoClient(`${alphaIp}:15001`);
  const fromBeta = echoClient(`${betaIp}:15001`);
  clients.push(fromAlpha, fromBeta);
  await callBothWays({ client: fromAlpha, servedBy: 'alpha@1.4.0' }, { client: fromBeta, servedBy: 'beta@2.0.0' }, 10);
  const beta = JSON.parse((await admin(alphaIp, '/routes')).body) as { requires: Record<string, { endpoints: { pod: string; identity: string; connection: string }[] }> };
  const ep = beta.requires[ECHO_API]!.endpoints.find((e) => e.pod === 'beta')!;
  assert.equal(ep.identity, `spiffe://cluster.local/ns/${appNs}/sa/billing`);
  assert.equal(ep.connection, 'ready');

  // What a user sees: kubectl get bsvc -o wide names the identities the endpoints' certificates must carry.
  const want = `spiffe://cluster.local/ns/${appNs}/sa/billing,spiffe://cluster.local/ns/${appNs}/sa/orders`;
  const wide = await pollFor('the IDENTITIES column', async () => {
    const t = await getTable(c, ['bsvc', '-n', appNs, '-o', 'wide']);
    return t.rows[0]?.[t.header.indexOf('IDENTITIES')] === want ? t : undefined;
  }, { ...API_RETRY, timeoutMs: 30_000 });
  assert.ok(wide.header.includes('IDENTITIES'), wide.text);
});

test('Certify refuses, each with a clear gRPC error and a log line without the token: another audience, an expired token, the token of a deleted pod, a CSR for another identity', { timeout: 180_000 }, async () => {
  assert.ok(leader, 'the first test started the controller');
  const c = kube.cluster;
  const ctl = { identityTarget: target, bundle: Buffer.from(root) };
  await c.kubectl(['-n', appNs, 'create', 'serviceaccount', 'tester']);
  await createPods(c, appNs, [{ name: 'probe', serviceAccount: 'tester', annotations: MESH }, { name: 'gone', serviceAccount: 'tester', annotations: MESH }]);
  const good = await boundToken(appNs, 'tester', 'probe');
  const ok = await pollFor('a certificate for the probe pod', async () => {
    const o = await certify(ctl, good);
    return o.ok ? o : undefined; // the informer may not have seen the pod yet
  }, { timeoutMs: 15_000, intervalMs: 250 });
  assert.equal(ok.res.identity, `spiffe://cluster.local/ns/${appNs}/sa/tester`);
  assert.equal(new X509Certificate(ok.res.certificateChain[0]!).subjectAltName, `URI:spiffe://cluster.local/ns/${appNs}/sa/tester`);

  const tokens: string[] = [good];
  const other = await boundToken(appNs, 'tester', 'probe', 'someone-else');
  tokens.push(other);
  refusedWith(await certify(ctl, other), grpc.status.UNAUTHENTICATED, 'QB_TOKEN_REFUSED', /did not authenticate the token.*audience qbasis\.io/);

  const old = expired(good);
  tokens.push(old);
  refusedWith(await certify(ctl, old), grpc.status.UNAUTHENTICATED, 'QB_TOKEN_REFUSED', /expired/);

  const goneToken = await boundToken(appNs, 'tester', 'gone');
  tokens.push(goneToken);
  await c.kubectl(['-n', appNs, 'delete', 'pod', 'gone', '--wait=true']);
  const gone = await certify(ctl, goneToken);
  assert.equal(gone.ok, false, "a deleted pod's token");
  if (!gone.ok) {
    assert.ok([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED].includes(gone.code), gone.details);
    assert.match(gone.details, /service account token has been invalidated|not in the controller's pod cache/);
  }

  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const greedy = await x509.Pkcs10CertificateRequestGenerator.create({
    keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://cluster.local/ns/${appNs}/sa/orders` }])],
  });
  refusedWith(await certify(ctl, good, Buffer.from(greedy.rawData)), grpc.status.INVALID_ARGUMENT, 'QB_BAD_CSR',
    new RegExp(`asks for spiffe://cluster\\.local/ns/${appNs}/sa/orders, but the token is of spiffe://cluster\\.local/ns/${appNs}/sa/tester`));

  const refusals = await pollFor('four refusal log lines', () => {
    const l = leader.logs.filter((x) => typeof x.msg === 'string' && x.msg.startsWith('Certify refused'));
    return l.length >= 4 ? l : undefined;
  }, { timeoutMs: 5_000 });
  assert.ok(refusals.every((l) => Number(l.level) === 40), 'warn lines');
  const text = JSON.stringify(leader.logs) + leader.stderr();
  for (const t of tokens) assert.ok(!text.includes(t.split('.')[2]!), 'no token (nor its signature) in the log');
  const metrics = await fetch(`${leader.adminUrl}/metrics`).then((r) => r.text());
  assert.match(metrics, /^qbasis_controller_certify_refused_total\{reason="QB_TOKEN_REFUSED"\} [2-9]/m);
  assert.match(metrics, /^qbasis_controller_certify_refused_total\{reason="QB_BAD_CSR"\} 1$/m);
});

test("a root Secret that cannot be used is not replaced: the controller says why and stays not ready; the user's absent Secret is waited for, not made, and used once it is there", { timeout: 180_000 }, async () => {
  assert.ok(leader, 'the first test made the namespaces');
  const c = kube.cluster;
  const args = (name: string): string[] => ['--identity-secret', name, '--identity-secret-mode', 'load', '--identity-port', '0', '--lease-name', `idk-${name}`];
  // Half a root: a certificate without its key.
  await c.kubectl(['-n', ctlNs, 'create', 'secret', 'generic', 'half-root', `--from-literal=tls.crt=${root}`]);
  const bad = await kube.controller({ namespace: ctlNs, host: '127.0.130.3', identity: 'idk-bad', args: args('half-root') });
  await bad.waitForLog((l) => /Secret .*\/half-root cannot be used as the mesh root: it has tls\.crt but no tls\.key\. It is not replaced/.test(String(l.msg)), 30_000, 'the refusal');
  const notReady = await fetch(`${bad.adminUrl}/ready`);
  assert.equal(notReady.status, 503);
  assert.match(await notReady.text(), /mesh identity \(root in Secret .*\/half-root/);
  const s = await getJson<{ data: Record<string, string> }>(c, ['-n', ctlNs, 'get', 'secret', 'half-root']);
  assert.deepEqual(Object.keys(s.data), ['tls.crt'], 'left as it was');
  // The user's Secret is absent: waited for, not made (load mode).
  const waiting = await kube.controller({ namespace: ctlNs, host: '127.0.130.4', identity: 'idk-wait', args: args('users-root') });
  await waiting.waitForLog((l) => /waiting for Secret .*\/users-root to hold the mesh root .*; it is absent/.test(String(l.msg)), 30_000, 'the wait');
  assert.equal((await c.kubectl(['-n', ctlNs, 'get', 'secret', 'users-root'], { allowFailure: true })).code, 1, 'not created in load mode');
  // Fixed by the user: the same root, with its key, from the leader's Secret.
  const full = await getJson<{ data: Record<string, string> }>(c, ['-n', ctlNs, 'get', 'secret', SECRET]);
  await c.kubectl(['-n', ctlNs, 'create', 'secret', 'generic', 'users-root', `--from-literal=tls.crt=${root}`, `--from-literal=tls.key=${Buffer.from(full.data['tls.key']!, 'base64').toString('utf8')}`]);
  await waiting.waitForLog((l) => l.msg === IDENTITY_LISTENING, 30_000, IDENTITY_LISTENING);
  assert.equal((await fetch(`${waiting.adminUrl}/ready`)).status, 200);
  await Promise.all([bad.stop(), waiting.stop()]);
});
