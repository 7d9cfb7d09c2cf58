// Certificates and the HTTPS admission endpoint on loopback: a real TLS handshake verified against the
// generated CA, a real AdmissionReview round trip, and a certificate swap while serving.
// Addresses: 127.0.0.1 with an ephemeral port (the server binds port 0).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { AdmissionServer } from '../../controller/webhook/admission-server.ts';
import { bundleProblem, createServingBundle } from '../../controller/webhook/certificates.ts';
import type { ServingBundle } from '../../controller/webhook/certificates.ts';
import { defaultInjectionConfig } from '../../controller/webhook/injection-config.ts';

const HOSTS = ['qbasis-webhook.qbasis-system.svc', 'qbasis-webhook.qbasis-system.svc.cluster.local', '127.0.0.1'];

function post(port: number, ca: string, path: string, body: string, servername = 'qbasis-webhook.qbasis-system.svc'): Promise<{ status: number; body: string; peerSerial: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', ca, servername, headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const sock = res.socket as import('node:tls').TLSSocket;
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), peerSerial: sock.getPeerCertificate?.().serialNumber ?? '' });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('webhook certificates', () => {
  it('a generated bundle is a CA and a serving certificate for exactly the asked hosts', async () => {
    const b = await createServingBundle(HOSTS, { caDays: 3650, certDays: 365 });
    assert.equal(bundleProblem(b, HOSTS), undefined);
    const ca = new X509Certificate(b.caCert);
    const leaf = new X509Certificate(b.cert);
    assert.equal(ca.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.verify(ca.publicKey));
    assert.ok(leaf.checkIssued(ca));
    assert.match(leaf.subjectAltName ?? '', /DNS:qbasis-webhook\.qbasis-system\.svc/);
    assert.match(leaf.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(bundleProblem(b, [...HOSTS, 'other.example']) ?? '', /does not name other\.example/);
  });

  it('reports a certificate past two thirds of its life, an expired one and a foreign key', async () => {
    const now = new Date();
    const b = await createServingBundle(HOSTS, { caDays: 3650, certDays: 3 });
    assert.equal(bundleProblem(b, HOSTS, now), undefined);
    assert.match(bundleProblem(b, HOSTS, new Date(now.getTime() + 2.5 * 86_400_000)) ?? '', /two thirds/);
    assert.match(bundleProblem(b, HOSTS, new Date(now.getTime() + 4 * 86_400_000)) ?? '', /not valid now/);
    const other = await createServingBundle(HOSTS, { caDays: 3650, certDays: 365 });
    assert.match(bundleProblem({ ...b, key: other.key }, HOSTS) ?? '', /key does not match/);
    assert.match(bundleProblem({ ...b, caCert: other.caCert }, HOSTS) ?? '', /not signed by the CA/);
  });
});

describe('admission HTTPS server', () => {
  let bundle: ServingBundle;
  let server: AdmissionServer;
  let port: number;

  before(async () => {
    bundle = await createServingBundle(HOSTS, { caDays: 3650, certDays: 365 });
    server = new AdmissionServer({ host: '127.0.0.1', port: 0, cert: bundle.cert, key: bundle.key, config: defaultInjectionConfig() });
    port = (await server.listen()).port;
  });
  after(async () => {
    await server.close();
  });

  it('answers an AdmissionReview over TLS verified against the generated CA', async () => {
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: '7f0b',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: 'shop',
        object: { metadata: { name: 'p', annotations: { 'qbasis.io/inject': 'true', 'qbasis.io/app-port': '8080' } }, spec: { containers: [{ name: 'app', image: 'a' }] } },
      },
    };
    const res = await post(port, bundle.caCert, '/mutate', JSON.stringify(review));
    assert.equal(res.status, 200);
    const out = JSON.parse(res.body);
    assert.equal(out.kind, 'AdmissionReview');
    assert.equal(out.response.uid, '7f0b');
    assert.equal(out.response.allowed, true);
    const patch = JSON.parse(Buffer.from(out.response.patch, 'base64').toString());
    assert.equal(patch[0].value[0].name, 'qbasis-sidecar');
  });

  it('refuses a TLS client that does not trust the CA, and bad bodies with 400', async () => {
    const stranger = await createServingBundle(HOSTS, { caDays: 1, certDays: 1 });
    await assert.rejects(post(port, stranger.caCert, '/mutate', '{}'), /self-signed|unable to verify|certificate/i);
    const bad = await post(port, bundle.caCert, '/mutate', 'not json');
    assert.equal(bad.status, 400);
    const wrong = await post(port, bundle.caCert, '/mutate', '{"kind":"Pod"}');
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /AdmissionReview/);
  });

  it('serves a new certificate after setCertificate without a restart', async () => {
    const next = await createServingBundle(HOSTS, { caDays: 3650, certDays: 365 });
    server.setCertificate(next.cert, next.key);
    const res = await post(port, next.caCert, '/mutate', JSON.stringify({ kind: 'AdmissionReview', request: { uid: 'x', kind: { kind: 'Secret' }, operation: 'CREATE', object: {} } }));
    assert.equal(res.status, 200);
    assert.equal(res.peerSerial.toLowerCase(), new X509Certificate(next.cert).serialNumber.toLowerCase());
    await assert.rejects(post(port, bundle.caCert, '/mutate', '{}'));
  });
});
