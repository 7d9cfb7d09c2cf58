// The CA's pieces alone (no process, nothing bound): the root kept in --identity-dir, workload
// certificates, the CSR check on hostile input, the sidecar's hand-built CSR against two parsers,
// and reading a SPIFFE ID out of a certificate's names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { webcrypto, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CertificateAuthority } from '../../controller/identity/certificate-authority.ts';
import { csrPublicKey } from '../../controller/identity/certificate-request.ts';
import { loadOrCreateRoot } from '../../controller/identity/root-store.ts';
import { x509 } from '../../controller/webhook/certificates.ts';
import { isQbasisError } from '../../proto/errors.ts';
import { meshIdentityOf, parseSpiffeId, uriSans } from '../../proto/identity.ts';
import { newKeyAndCsr } from '../../sidecar/identity/csr.ts';
import { tempDir } from '../fixtures/local-controller.ts';

const ID = 'spiffe://cluster.local/ns/shop/sa/orders';

test('the root is made once in --identity-dir (0600 files in a 0700 directory) and reused after', async () => {
  const dir = path.join(tempDir('ca-root'), 'id');
  const first = await loadOrCreateRoot(dir, 'cluster.local');
  assert.equal(first.created, true);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  for (const f of ['ca.pem', 'ca-key.pem']) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
  const root = new X509Certificate(first.ca.rootPem);
  assert.equal(root.ca, true);
  assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const years = (Date.parse(root.validTo) - Date.now()) / (365.25 * 86_400_000);
  assert.ok(years > 9.9 && years < 10.1, `10 years (${years.toFixed(2)})`);
  const again = await loadOrCreateRoot(dir, 'cluster.local');
  assert.equal(again.created, false);
  assert.equal(again.ca.rootPem, first.ca.rootPem);
});

test('an unusable root stops the start with the reason instead of being replaced', async () => {
  const dir = path.join(tempDir('ca-bad'), 'id');
  await loadOrCreateRoot(dir, 'cluster.local');
  fs.chmodSync(path.join(dir, 'ca-key.pem'), 0o644);
  await assert.rejects(loadOrCreateRoot(dir, 'cluster.local'), /readable by other users.*chmod 600/);
  fs.chmodSync(path.join(dir, 'ca-key.pem'), 0o600);
  const other = await CertificateAuthority.create('cluster.local');
  fs.writeFileSync(path.join(dir, 'ca.pem'), other.ca.rootPem);
  await assert.rejects(loadOrCreateRoot(dir, 'cluster.local'), /key does not match/);
  fs.rmSync(path.join(dir, 'ca.pem'));
  await assert.rejects(loadOrCreateRoot(dir, 'cluster.local'), /ca\.pem is missing but .*ca-key\.pem is there/);
  const open = tempDir('ca-open');
  fs.chmodSync(open, 0o755);
  await assert.rejects(loadOrCreateRoot(open, 'cluster.local'), /accessible by other users.*chmod 700/);
});

test('during a rotation ca.pem holds two roots: the one ca-key.pem matches signs, both are the bundle, in either order', async () => {
  const dir = path.join(tempDir('ca-two'), 'id');
  const { ca: current } = await loadOrCreateRoot(dir, 'cluster.local');
  const next = await CertificateAuthority.create('cluster.local');
  for (const bundle of [current.rootPem + next.ca.rootPem, next.ca.rootPem + current.rootPem]) {
    fs.writeFileSync(path.join(dir, 'ca.pem'), bundle, { mode: 0o600 });
    const { ca } = await loadOrCreateRoot(dir, 'cluster.local');
    assert.equal(ca.rootPem.trim(), current.rootPem.trim(), 'the key still matches the current root');
    assert.equal(ca.trustBundlePem.match(/BEGIN CERTIFICATE/g)?.length, 2);
    assert.ok(ca.trustBundlePem.startsWith(current.rootPem.trim()), 'the signing root first');
  }
  fs.writeFileSync(path.join(dir, 'ca-key.pem'), next.keyPem, { mode: 0o600 });
  const { ca: switched } = await loadOrCreateRoot(dir, 'cluster.local');
  assert.equal(switched.rootPem.trim(), next.ca.rootPem.trim(), 'the next key signs with the next root');
  const leaf = new X509Certificate((await switched.signWorkload((await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign'])).publicKey as never, ID, 60_000)).cert);
  assert.ok(leaf.checkIssued(new X509Certificate(next.ca.rootPem)));
  const leafCa = await CertificateAuthority.create('cluster.local');
  fs.writeFileSync(path.join(dir, 'ca.pem'), next.ca.rootPem + (await leafCa.ca.issueServing(['localhost'], ID, 60_000)).cert, { mode: 0o600 });
  await assert.rejects(loadOrCreateRoot(dir, 'cluster.local'), /certificate 2 of 2 .* is not a CA certificate/);
});

test('a workload certificate names only its SPIFFE ID, for client and server auth, and never outlives the root', async () => {
  const { ca } = await CertificateAuthority.create('cluster.local');
  const key = await csrPublicKey(newKeyAndCsr().csr);
  const c = await ca.signWorkload(key, ID, 24 * 3600_000);
  const x = new X509Certificate(c.cert);
  assert.equal(x.subjectAltName, `URI:${ID}`);
  assert.equal(x.ca, false);
  assert.ok(x.checkIssued(new X509Certificate(ca.rootPem)));
  assert.ok(x.verify(new X509Certificate(ca.rootPem).publicKey));
  const life = Date.parse(x.validTo) - Date.now();
  assert.ok(life > 23.9 * 3600_000 && life <= 24 * 3600_000 + 1000, `24 h (${life} ms)`);
  const parsed = new x509.X509Certificate(c.cert);
  const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension)!;
  assert.deepEqual([...eku.usages].sort(), [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth].sort());
  assert.equal(parsed.getExtension(x509.SubjectAlternativeNameExtension)!.critical, true);

  // A root made ten years minus an hour ago has an hour left: a 24 h leaf stops with it.
  const old = await CertificateAuthority.create('cluster.local', new Date(Date.now() - (3650 * 86_400_000 - 3600_000)));
  const short = await old.ca.signWorkload(key, ID, 24 * 3600_000);
  assert.equal(short.notAfter.getTime(), old.ca.notAfter.getTime());
  assert.ok(short.notAfter.getTime() - Date.now() < 3600_000 + 1000);
});

test("the sidecar's hand-built CSR is accepted by @peculiar/x509 and by openssl req -verify", async () => {
  const { csr } = newKeyAndCsr();
  const parsed = new x509.Pkcs10CertificateRequest(new Uint8Array(csr));
  assert.equal(await parsed.verify(), true);
  assert.equal(parsed.subject, '');
  await csrPublicKey(csr);
  await csrPublicKey(Buffer.from(parsed.toString('pem')));
  const openssl = spawnSync('openssl', ['req', '-inform', 'DER', '-verify', '-noout'], { input: csr, encoding: 'utf8' });
  assert.equal(openssl.error, undefined, `openssl must be installed (npm test installs it as root: test/harness/host-packages.sh): ${openssl.error?.message}`);
  assert.equal(openssl.status, 0, openssl.stderr);
  assert.match(openssl.stderr + openssl.stdout, /verify OK/i);
});

async function refusal(raw: Buffer): Promise<string> {
  try {
    await csrPublicKey(raw);
  } catch (err) {
    assert.ok(isQbasisError(err, 'QB_BAD_CSR'), String(err));
    return err.message;
  }
  throw new Error('accepted');
}

test('a CSR that is garbage, too large, for another key type, or badly signed is refused with QB_BAD_CSR saying why', async () => {
  assert.match(await refusal(Buffer.alloc(0)), /it is empty/);
  assert.match(await refusal(Buffer.from('hello, CA')), /neither DER .* nor a PEM block/);
  assert.match(await refusal(Buffer.concat([Buffer.from([0x30]), Buffer.alloc(9000, 0xff)])), /9001 bytes, more than 8192/);
  assert.match(await refusal(Buffer.from([0x30, 0x82, 0xff, 0xff, 0x01])), /does not parse/);
  const tampered = newKeyAndCsr().csr;
  tampered[tampered.length - 40]! ^= 0x01;
  assert.match(await refusal(tampered), /signature/);
  // A request signed with one key but carrying another's public key (no proof of possession).
  const a = newKeyAndCsr().csr;
  const b = newKeyAndCsr().csr;
  const spliced = Buffer.from(a);
  const keyAt = a.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04])) + 4;
  b.subarray(b.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04])) + 4).copy(spliced, keyAt, 0, 64);
  assert.match(await refusal(spliced), /signature/);
  for (const [name, alg] of [['P-384', { name: 'ECDSA', namedCurve: 'P-384' }], ['RSA', { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }]] as const) {
    const keys = (await crypto.subtle.generateKey(alg, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const req = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: name === 'RSA' ? alg : { name: 'ECDSA', hash: 'SHA-384' } });
    assert.match(await refusal(Buffer.from(req.rawData)), name === 'RSA' ? /key is rsa/ : /key is ec secp384r1/);
  }
});

test('every single-bit change of a CSR is refused: the lenient parts of the parser (tags, lengths, trailing bytes, the signature DER) are closed by the canonical-DER check', async () => {
  for (let n = 0; n < 3; n++) {
    const good = newKeyAndCsr().csr;
    await csrPublicKey(good);
    const accepted: string[] = [];
    for (let i = 0; i < good.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const m = Buffer.from(good);
        m[i]! ^= 1 << bit;
        try {
          await csrPublicKey(m);
          accepted.push(`byte ${i} bit ${bit}`);
        } catch (err) {
          assert.ok(isQbasisError(err, 'QB_BAD_CSR'), String(err));
        }
      }
    }
    assert.deepEqual(accepted, [], 'no altered request is accepted');
  }
  // A valid request with bytes after it.
  assert.match(await refusal(Buffer.concat([newKeyAndCsr().csr, Buffer.from([0])])), /canonical DER|does not parse/);
});

test('a SPIFFE ID is read from a certificate only when it names exactly one, well-formed', () => {
  assert.deepEqual(uriSans(`URI:${ID}`), [ID]);
  assert.deepEqual(uriSans(`DNS:a.example, URI:${ID}, IP Address:127.0.0.1`), [ID]);
  // Node writes a name holding a comma as a JSON string (what X509Certificate.subjectAltName gives for it).
  assert.deepEqual(uriSans('URI:"spiffe://cluster.local/ns/a\\u002cb/sa/c", DNS:x'), ['spiffe://cluster.local/ns/a,b/sa/c']);
  assert.deepEqual(uriSans('URI:"spiffe://x/ns/a\\u002c URI:spiffe://cluster.local/ns/shop/sa/orders"'), ['spiffe://x/ns/a, URI:spiffe://cluster.local/ns/shop/sa/orders'], 'one name, not two');
  assert.equal(meshIdentityOf(`URI:${ID}`), ID);
  assert.equal(meshIdentityOf(`URI:${ID}, URI:spiffe://cluster.local/ns/shop/sa/admin`), undefined, 'two names: none');
  assert.equal(meshIdentityOf('URI:"spiffe://cluster.local/ns/a\\u002cb/sa/c"'), undefined, 'a comma is no Kubernetes name');
  assert.equal(meshIdentityOf('URI:spiffe://cluster.local/ns/*/sa/orders'), undefined, 'a wildcard is for allow lists, never for a certificate');
  assert.equal(meshIdentityOf('DNS:orders.shop.svc'), undefined);
  assert.equal(meshIdentityOf(undefined), undefined);
  assert.deepEqual(parseSpiffeId(ID), { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'orders' });
  assert.equal(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/orders/extra'), undefined);
  assert.equal(parseSpiffeId('spiffe://Cluster.local/ns/shop/sa/orders'), undefined);
});
