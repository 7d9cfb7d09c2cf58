// Attacks on mesh identity (local mode, mutual TLS on): callers without a mesh certificate, with a
// self-signed one, with one from another CA, with one chained to the mesh root but naming no SPIFFE ID;
// a pod answering at an address discovery gives to another identity; garbage on the sidecar's TLS port
// and on the controller's Certify port. None of these calls reaches an app, and nothing crashes.
// Addresses: 127.0.104.x (controller .1; orders-1 .11 and orders-2 .12 genuine providers; .13 is
// orders-3 in discovery but runs a sidecar with the token of pod "intruder"; caller .21; attacker .99).
import assert from 'node:assert/strict';
import { randomBytes, webcrypto } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../../controller/identity/certificate-authority.ts';
import { csrPublicKey } from '../../controller/identity/certificate-request.ts';
import { x509 } from '../../controller/webhook/certificates.ts';
import { newKeyAndCsr } from '../../sidecar/identity/csr.ts';
import { ECHO_API, echoClient, type EchoClient, type StatsResponse } from '../fixtures/echo-client.ts';
import { admin, logsByIp, startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { waitForValue } from '../fixtures/wait.ts';
import { certify, identityFlags, readToken, startIdentityController, type IdentityController } from '../fixtures/identity.ts';
import { tempDir, writePods, type TestPod } from '../fixtures/local-controller.ts';
import { callMany, unary } from '../fixtures/policy.ts';
import { goodFrame, metric, rawCall, type Answer } from './raw-h2.ts';

const NET = '127.0.104';
const NS = 'shop';
const ORDERS_1 = `${NET}.11`;
const ORDERS_2 = `${NET}.12`;
const IMPOSTOR = `${NET}.13`;
const CALLER = `${NET}.21`;
const ATTACKER = `${NET}.99`;
const CALLER_ID = 'spiffe://cluster.local/ns/shop/sa/checkout';
let ctl: IdentityController;
let podsFile: string;
let client: EchoClient;
const apps: Record<string, EchoClient> = {};
const sidecars: Proc[] = [];

const pods: TestPod[] = [
  { name: 'orders-1', namespace: NS, ip: ORDERS_1, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'orders-2', namespace: NS, ip: ORDERS_2, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'orders-3', namespace: NS, ip: IMPOSTOR, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'intruder', namespace: NS, ip: `${NET}.19`, serviceAccount: 'intruder' },
  { name: 'client', namespace: NS, ip: CALLER, serviceAccount: 'checkout' },
  { name: 'fuzzer', namespace: NS, ip: `${NET}.29`, serviceAccount: 'fuzzer' },
];

before(async () => {
  podsFile = path.join(tempDir('attack-identity'), 'pods.yaml');
  writePods(podsFile, pods);
  ctl = await startIdentityController({ podsFile, host: `${NET}.1` });
  await Promise.all([ORDERS_1, ORDERS_2, IMPOSTOR].map((ip, i) => startEcho({ host: ip, port: 50051, name: i === 2 ? 'impostor' : `orders-${i + 1}`, version: '1.4.0' })));
  const provider = (ip: string, pod: string, token: string): Promise<Proc> =>
    startSidecar({ ip, discovery: ctl.identityTarget, appPort: 50051, provides: `${ECHO_API}@1.4.0`, podName: pod, extra: identityFlags(ctl, NS, token) });
  sidecars.push(...await Promise.all([
    provider(ORDERS_1, 'orders-1', 'orders-1'),
    provider(ORDERS_2, 'orders-2', 'orders-2'),
    // A pod that got the address discovery gives to orders-3, with a valid mesh certificate of its own.
    provider(IMPOSTOR, 'orders-3', 'intruder'),
    startSidecar({ ip: CALLER, discovery: ctl.identityTarget, appPort: 50099, requires: `${ECHO_API}@^1.2`, podName: 'client', extra: identityFlags(ctl, NS, 'client') }),
  ]));
  client = echoClient(`${CALLER}:15001`);
  for (const ip of [ORDERS_1, ORDERS_2, IMPOSTOR]) apps[ip] = echoClient(`${ip}:50051`);
});

after(async () => {
  client?.close();
  for (const c of Object.values(apps)) c.close();
  await stopAll();
  await ctl?.stop();
});

async function appCalls(ip: string): Promise<number> {
  const r = await new Promise<StatsResponse>((resolve, reject) => apps[ip]!.Stats({}, (e: Error | null, s: StatsResponse) => (e ? reject(e) : resolve(s))));
  return Number(r.calls);
}

/** An HTTP/2 session to ORDERS_1's inbound port over TLS from the attacker's address, with the given client credentials. */
function tlsSession(creds: { key?: string; cert?: string; ca?: Buffer }): http2.ClientHttp2Session {
  const s = http2.connect(`https://${ORDERS_1}:15006`, {
    createConnection: () => tls.connect({ socket: net.connect({ host: ORDERS_1, port: 15006, localAddress: ATTACKER }), ca: creds.ca ?? ctl.bundle, ...(creds.key ? { key: creds.key, cert: creds.cert } : {}), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }),
  });
  s.on('error', () => {});
  return s;
}

async function callOver(s: http2.ClientHttp2Session): Promise<Answer> {
  const a = await Promise.race([rawCall(s, [goodFrame()], { range: '^1.2' }), new Promise<Answer>((r) => setTimeout(() => r({ status: -2, message: 'no answer in 10 s', code: undefined, data: Buffer.alloc(0), rstCode: undefined }), 10_000))]);
  s.destroy();
  return a;
}

/** A key and a certificate for `uri` signed by `ca` (PEM). */
async function certFrom(ca: CertificateAuthority, uri: string): Promise<{ key: string; cert: string }> {
  const k = newKeyAndCsr();
  const c = await ca.signWorkload(await csrPublicKey(k.csr), uri, 3600_000);
  return { key: k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: c.cert };
}

test('a plain-text client, a client without a certificate, a self-signed one and one from another CA are refused at the handshake; the app never sees them', async () => {
  await unary(client, { text: 'warm' });
  const before = await appCalls(ORDERS_1);
  const failuresBefore = await metric(ORDERS_1, 'qbasis_sidecar_inbound_tls_handshake_failures_total');
  const plain = http2.connect(`http://${ORDERS_1}:15006`, { createConnection: () => net.connect({ host: ORDERS_1, port: 15006, localAddress: ATTACKER }) });
  plain.on('error', () => {});
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const selfSigned = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=me', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: CALLER_ID }])],
  });
  const selfKey = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const other = await CertificateAuthority.create('cluster.local');
  const answers = await Promise.all([
    callOver(plain),
    callOver(tlsSession({})),
    callOver(tlsSession({ key: `-----BEGIN PRIVATE KEY-----\n${selfKey}\n-----END PRIVATE KEY-----\n`, cert: selfSigned.toString('pem') })),
    callOver(tlsSession(await certFrom(other.ca, CALLER_ID))),
  ]);
  for (const [i, a] of answers.entries()) assert.ok(a.status < 0, `attempt ${i}: no gRPC answer at all (got ${a.status} ${a.message})`);
  assert.equal(await appCalls(ORDERS_1), before, 'the app saw none of them');
  assert.ok(await metric(ORDERS_1, 'qbasis_sidecar_inbound_tls_handshake_failures_total') >= failuresBefore + 3, 'failed handshakes are counted');
  assert.ok((await unary(client, { text: 'after' })).ok, 'good calls still pass');
});

test('a mesh client that negotiates no h2 (no ALPN) is closed at once', async () => {
  const mine = await certify(ctl, await readToken(ctl, NS, 'client'));
  assert.ok(mine.ok);
  const before = await metric(ORDERS_1, 'qbasis_sidecar_inbound_tls_handshake_failures_total');
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const s = tls.connect({ socket: net.connect({ host: ORDERS_1, port: 15006, localAddress: ATTACKER }), ca: ctl.bundle, key: mine.key, cert: mine.res.certificateChain.join(''), checkServerIdentity: () => undefined });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.resume();
  });
  assert.ok(performance.now() - t0 < 3000, `closed in ${Math.round(performance.now() - t0)} ms, not after Node's 10 s`);
  assert.ok(await metric(ORDERS_1, 'qbasis_sidecar_inbound_tls_handshake_failures_total') > before);
});

test('a certificate chained to the mesh root that names no SPIFFE ID is refused with UNAUTHENTICATED; the app never sees it', async () => {
  const root = CertificateAuthority.load({ cert: fs.readFileSync(path.join(ctl.dir, 'ca.pem'), 'utf8'), key: fs.readFileSync(path.join(ctl.dir, 'ca-key.pem'), 'utf8') });
  const before = await appCalls(ORDERS_1);
  const a = await callOver(tlsSession(await certFrom(root, 'https://not-a-workload.example')));
  assert.equal(a.status, grpc.status.UNAUTHENTICATED, a.message);
  assert.equal(a.code, 'QB_NO_MESH_IDENTITY');
  assert.match(a.message, /names no SPIFFE ID/);
  assert.equal(await appCalls(ORDERS_1), before);
});

test('a valid mesh certificate of the wrong identity for an endpoint is refused by the caller: calls go to the genuine pods and the impostor app sees none', async () => {
  const counts = await callMany(client, 300, 8);
  assert.deepEqual([...counts.keys()].filter((k) => k.startsWith('!')), [], `no failed calls: ${JSON.stringify([...counts])}`);
  assert.equal((counts.get('orders-1@1.4.0') ?? 0) + (counts.get('orders-2@1.4.0') ?? 0), 300);
  assert.equal(await appCalls(IMPOSTOR), 0, 'the impostor app never saw a call');
  assert.ok(await metric(CALLER, 'qbasis_sidecar_peer_identity_mismatches_total') >= 1, 'the refused peer is counted');
  const line = logsByIp(CALLER).find((l) => l.code === 'QB_PEER_IDENTITY');
  assert.ok(line, 'and logged');
  assert.equal(line.expected, 'spiffe://cluster.local/ns/shop/sa/orders');
  assert.equal(line.named, 'spiffe://cluster.local/ns/shop/sa/intruder');
});

test('with only the impostor left, the call fails with UNAVAILABLE QB_PEER_IDENTITY naming both identities', async () => {
  // The genuine pods leave (their endpoints with them): discovery now names only orders-3.
  writePods(podsFile, pods.filter((p) => p.name !== 'orders-1' && p.name !== 'orders-2'));
  await waitForValue('the caller to know only orders-3', async () => JSON.parse((await admin(CALLER, '/routes')).body) as { requires: Record<string, { endpoints: { pod: string }[] }> },
    (r) => r.requires[ECHO_API]!.endpoints.map((e) => e.pod).join() === 'orders-3', { retryErrors: true });
  await Promise.all([sidecars[0]!.stop(), sidecars[1]!.stop()]);
  const r = await unary(client, { text: 'x' });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.err.code, grpc.status.UNAVAILABLE, r.err.details);
  assert.deepEqual(r.err.metadata.get('qbasis-error-code'), ['QB_PEER_IDENTITY']);
  assert.match(r.err.details, /expected exactly spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders/);
  assert.equal(await appCalls(IMPOSTOR), 0);
});

/** Connections that send `bytes` and hang up; resolves when all closed. */
async function garbage(host: string, port: number, payloads: Buffer[]): Promise<void> {
  await Promise.all(payloads.map((b) => new Promise<void>((resolve) => {
    const s = net.connect({ host, port, localAddress: ATTACKER }, () => s.end(b));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.setTimeout(5000, () => s.destroy());
    s.resume();
  })));
}

function noise(n: number): Buffer[] {
  const hello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  return Array.from({ length: n }, (_, i) => {
    const r = randomBytes(1 + Math.floor(Math.random() * 4096));
    return i % 3 === 0 ? Buffer.concat([hello, r]) : i % 3 === 1 ? Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), r]) : r;
  });
}

test('garbage on the TLS ports (the sidecar inbound and the controller identity port) crashes nothing', async () => {
  const [host, port] = [ctl.identityTarget.split(':')[0]!, Number(ctl.identityTarget.split(':')[1])];
  for (let round = 0; round < 3; round++) await Promise.all([garbage(IMPOSTOR, 15006, noise(100)), garbage(host, port, noise(100))]);
  assert.equal(ctl.proc.exitCode, null, 'the controller runs');
  assert.equal(sidecars[2]!.proc.exitCode, null, 'the sidecar runs');
  assert.ok((await certify(ctl, await readToken(ctl, NS, 'client'))).ok, 'Certify still answers');
});

test('garbage on the Certify RPC (random messages, tokens and CSRs) is refused with a status every time and crashes nothing', async () => {
  const target = ctl.identityTarget;
  // Raw gRPC messages that are not CertifyRequests.
  const s = http2.connect(`https://${target}`, { ca: ctl.bundle, checkServerIdentity: () => undefined });
  s.on('error', () => {});
  const raw = await Promise.all(Array.from({ length: 50 }, () => new Promise<number>((resolve) => {
    const body = randomBytes(Math.floor(Math.random() * 2000));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length, 1);
    const req = s.request({ ':method': 'POST', ':path': '/qbasis.identity.v1.Identity/Certify', 'content-type': 'application/grpc', te: 'trailers' });
    let status = -1;
    req.on('response', (h) => { if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']); });
    req.on('trailers', (t) => { status = Number(t['grpc-status']); });
    req.on('error', () => {});
    req.on('close', () => resolve(status));
    req.resume();
    req.end(Buffer.concat([head, body]));
  })));
  s.close();
  assert.ok(raw.every((st) => st > 0), `every raw garbage call got a non-OK status: ${[...new Set(raw)].join(',')}`);
  // Well-formed requests with hostile fields.
  const fuzzToken = await readToken(ctl, NS, 'fuzzer');
  const good = newKeyAndCsr().csr;
  const cases: Array<[string, Buffer]> = [
    ...Array.from({ length: 20 }, () => [randomBytes(32).toString('latin1'), randomBytes(300)] as [string, Buffer]),
    ['x'.repeat(20_000), good],
    ['\u0000\uffff'.repeat(10), good],
    ...Array.from({ length: 20 }, () => {
      const m = Buffer.from(good);
      m[Math.floor(Math.random() * m.length)]! ^= 1 << Math.floor(Math.random() * 8);
      return [fuzzToken, m] as [string, Buffer];
    }),
  ];
  for (const [token, csr] of cases) {
    const o = await certify(ctl, token, csr);
    assert.equal(o.ok, false, 'refused');
    if (!o.ok) assert.match(o.details, /^QB_(TOKEN_REFUSED|BAD_CSR|RATE_LIMITED): /, o.details);
  }
  assert.equal(ctl.proc.exitCode, null);
  assert.ok((await certify(ctl, await readToken(ctl, NS, 'client'))).ok, 'Certify still issues');
});
