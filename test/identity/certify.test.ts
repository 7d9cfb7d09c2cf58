// Certify against the real local controller (--identity-dir): what it signs, every refusal (a clear
// gRPC status, a QB_* code, one log line without the token), the per-pod rate, the pods file as the
// source of truth for tokens, and a restart that keeps the root and the tokens.
// Addresses: 127.0.100.x (controller .1; a sidecar with a wrong token .31).
import assert from 'node:assert/strict';
import { X509Certificate, webcrypto } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { x509 } from '../../controller/webhook/certificates.ts';
import { identityClientConstructor } from '../../proto/identity.ts';
import { newKeyAndCsr } from '../../sidecar/identity/csr.ts';
import { ECHO_API } from '../fixtures/echo-client.ts';
import { admin, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { certify, readToken, refusedWith, startIdentityController, tokenFile, type IdentityController } from '../fixtures/identity.ts';
import { replacePods, tempDir, type TestPod } from '../fixtures/local-controller.ts';
import { waitForValue, waitUntil } from '../fixtures/wait.ts';

const NET = '127.0.100';
const NS = 'shop';
let ctl: IdentityController;
let podsFile: string;
let idDir: string;
const pods: TestPod[] = [
  { name: 'orders-1', namespace: NS, ip: `${NET}.11`, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'plain', namespace: 'billing', ip: `${NET}.12` },
  { name: 'leaving', namespace: NS, ip: `${NET}.13`, serviceAccount: 'orders' },
  { name: 'greedy', namespace: NS, ip: `${NET}.14`, serviceAccount: 'greedy' },
  { name: 'ending', namespace: NS, ip: `${NET}.15`, serviceAccount: 'orders' },
];

before(async () => {
  const dir = tempDir('identity-certify');
  podsFile = path.join(dir, 'pods.yaml');
  idDir = path.join(dir, 'id');
  replacePods(podsFile, pods);
  ctl = await startIdentityController({ podsFile, host: `${NET}.1`, dir: idDir });
});

after(async () => {
  await stopAll();
  await ctl?.stop();
});

test('a pod token gets a certificate for its ServiceAccount, whatever subject and DNS names the CSR asks for; a CSR for another identity is refused', async () => {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csrFor = async (names: x509.JsonGeneralName[]): Promise<Buffer> => Buffer.from((await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=admin, O=system:masters', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension(names)],
  })).rawData);
  const token = await readToken(ctl, NS, 'orders-1');
  refusedWith(await certify(ctl, token, await csrFor([{ type: 'url', value: 'spiffe://cluster.local/ns/kube-system/sa/admin' }])), grpc.status.INVALID_ARGUMENT, 'QB_BAD_CSR',
    /the CSR asks for spiffe:\/\/cluster\.local\/ns\/kube-system\/sa\/admin, but the token is of spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders/);
  // A subject and a DNS name: neither is used.
  const o = await certify(ctl, token, await csrFor([{ type: 'dns', value: 'kubernetes.default' }]));
  assert.ok(o.ok, o.ok ? '' : o.details);
  assert.equal(o.res.identity, 'spiffe://cluster.local/ns/shop/sa/orders');
  const leaf = new X509Certificate(o.res.certificateChain[0]!);
  assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/shop/sa/orders');
  assert.ok(!leaf.subject.includes('admin'), leaf.subject);
  assert.ok(leaf.checkIssued(new X509Certificate(o.res.trustBundle)));
  assert.equal(o.res.trustBundle, ctl.bundle.toString());
  assert.equal(o.res.notAfterUnixMs, Date.parse(leaf.validTo));

  // No serviceAccountName: Kubernetes' `default`.
  const plain = await certify(ctl, await readToken(ctl, 'billing', 'plain'));
  assert.ok(plain.ok);
  assert.equal(plain.res.identity, 'spiffe://cluster.local/ns/billing/sa/default');
  for (const f of [tokenFile(idDir, NS, 'orders-1'), tokenFile(idDir, 'billing', 'plain')]) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
});

test('a wrong token, a garbage CSR, and no token are refused with UNAUTHENTICATED or INVALID_ARGUMENT naming what is wrong', async () => {
  refusedWith(await certify(ctl, 'f'.repeat(64)), grpc.status.UNAUTHENTICATED, 'QB_TOKEN_REFUSED', /not one this controller minted/);
  refusedWith(await certify(ctl, 'Bearer eyJhbGciOi'), grpc.status.UNAUTHENTICATED, 'QB_TOKEN_REFUSED', /not a qbasis local-mode token/);
  refusedWith(await certify(ctl, ''), grpc.status.UNAUTHENTICATED, 'QB_TOKEN_REFUSED', /no token/);
  const token = await readToken(ctl, NS, 'orders-1');
  refusedWith(await certify(ctl, token, Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n')), grpc.status.INVALID_ARGUMENT, 'QB_BAD_CSR', /does not parse/);
  refusedWith(await certify(ctl, token, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), grpc.status.INVALID_ARGUMENT, 'QB_BAD_CSR', /CSR is invalid/);
  // A bad token with a garbage CSR: authentication first, nothing is parsed for a stranger.
  refusedWith(await certify(ctl, '0'.repeat(64), Buffer.from('garbage')), grpc.status.UNAUTHENTICATED, 'QB_TOKEN_REFUSED', /not one this controller minted/);
});

test('the token of a pod removed from the pods file, or of a terminating pod, is refused with PERMISSION_DENIED', async () => {
  const leaving = await readToken(ctl, NS, 'leaving');
  const ending = await readToken(ctl, NS, 'ending');
  assert.ok((await certify(ctl, leaving)).ok);
  replacePods(podsFile, pods.filter((p) => p.name !== 'leaving').map((p) => (p.name === 'ending' ? { ...p, deleting: true } : p)));
  await waitUntil('the token file of the removed pod to go', () => !fs.existsSync(tokenFile(idDir, NS, 'leaving')));
  refusedWith(await certify(ctl, leaving), grpc.status.PERMISSION_DENIED, 'QB_POD_NOT_ELIGIBLE', /pod shop\/leaving, which is no longer in the pods file/);
  refusedWith(await certify(ctl, ending), grpc.status.PERMISSION_DENIED, 'QB_POD_NOT_ELIGIBLE', /pod shop\/ending is terminating/);
  // Back in the file: a new pod, a new token; the old one stays refused.
  replacePods(podsFile, pods);
  const again = await readToken(ctl, NS, 'leaving');
  assert.notEqual(again, leaving);
  assert.ok((await certify(ctl, again)).ok);
  assert.equal((await certify(ctl, leaving)).ok, false);
});

test('a pod that asks too often is refused with RESOURCE_EXHAUSTED; other pods are not affected', async () => {
  const greedy = await readToken(ctl, NS, 'greedy');
  const outcomes = [];
  for (let i = 0; i < 12; i++) outcomes.push(await certify(ctl, greedy));
  assert.equal(outcomes.filter((o) => o.ok).length, 10, 'a burst of 10');
  refusedWith(outcomes[11]!, grpc.status.RESOURCE_EXHAUSTED, 'QB_RATE_LIMITED', /pod shop\/greedy asked for certificates too often; try again in \d+ s/);
  assert.ok((await certify(ctl, await readToken(ctl, NS, 'orders-1'))).ok);
});

test('every refusal is counted by reason and logged once, and no log line holds a token, a key or a certificate', async () => {
  const metrics = await fetch(`${ctl.admin}/metrics`).then((r) => r.text());
  for (const reason of ['QB_TOKEN_REFUSED', 'QB_BAD_CSR', 'QB_POD_NOT_ELIGIBLE', 'QB_RATE_LIMITED']) {
    assert.match(metrics, new RegExp(`^qbasis_controller_certify_refused_total\\{reason="${reason}"\\} [1-9]`, 'm'), reason);
  }
  assert.match(metrics, /^qbasis_controller_certificates_issued_total [1-9]/m);
  assert.match(metrics, /^qbasis_controller_certify_duration_seconds_count [1-9]/m);
  const refusals = ctl.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Certify refused'));
  assert.ok(refusals.length >= 8, `${refusals.length} refusal lines`);
  assert.ok(refusals.every((l) => typeof l.code === 'string' && l.level === 40));
  const everything = JSON.stringify(ctl.logs) + ctl.stderr();
  const tokens = fs.readdirSync(path.join(idDir, 'tokens'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => fs.readFileSync(path.join(e.parentPath, e.name), 'utf8').trim());
  assert.ok(tokens.length >= 4);
  for (const t of tokens) assert.ok(!everything.includes(t), 'a token in the logs');
  assert.ok(!everything.includes('BEGIN'), 'a PEM body in the logs');
});

test('Certify is not served on the plain-text discovery port', async () => {
  const c = new (identityClientConstructor())(ctl.target, grpc.credentials.createInsecure());
  const err = await new Promise<grpc.ServiceError | null>((resolve) => c.Certify({ csr: newKeyAndCsr().csr, token: 'x' }, { deadline: Date.now() + 5000 }, (e) => resolve(e)));
  c.close();
  assert.equal(err?.code, grpc.status.UNIMPLEMENTED);
});

test('a sidecar whose token is refused is not ready and says why', async () => {
  const bad = path.join(tempDir('identity-badtoken'), 'token');
  fs.writeFileSync(bad, `${'a'.repeat(64)}\n`);
  const p = await startSidecar({ ip: `${NET}.31`, discovery: ctl.identityTarget, appPort: 50099, podName: 'impostor', waitReady: false, extra: ['--token-file', bad, '--trust-bundle', path.join(idDir, 'ca.pem')] });
  const r = await waitForValue('the sidecar to say why it is not ready', () => admin(`${NET}.31`, '/ready').catch(() => ({ status: 0, body: '' })), (x) => x.body.includes('QB_TOKEN_REFUSED'), { timeoutMs: 20_000 });
  assert.equal(r.status, 503);
  assert.match(r.body, /^not ready: no certificate yet \(Certify at .* failed: UNAUTHENTICATED QB_TOKEN_REFUSED: the token is not one this controller minted/);
  assert.ok(!p.out().includes('a'.repeat(64)), 'the sidecar never logs its token');
  await p.stop();
});

test('a restarted controller keeps its root and the tokens of the pods still in the file', async () => {
  const before = fs.readFileSync(path.join(idDir, 'ca.pem'), 'utf8');
  const token = await readToken(ctl, NS, 'orders-1');
  assert.equal(await ctl.stop(), 0);
  ctl = await startIdentityController({ podsFile, host: `${NET}.1`, dir: idDir });
  assert.equal(fs.readFileSync(path.join(idDir, 'ca.pem'), 'utf8'), before);
  assert.ok(ctl.logs.some((l) => l.msg === 'mesh root loaded'));
  assert.equal(await readToken(ctl, NS, 'orders-1'), token);
  const o = await certify(ctl, token);
  assert.ok(o.ok, o.ok ? '' : o.details);
  assert.ok(new X509Certificate(o.res.certificateChain[0]!).checkIssued(new X509Certificate(before)));
});
