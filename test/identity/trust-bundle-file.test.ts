// The sidecar's trust bundle file, read again on each poll: a new bundle (two roots during a rotation)
// is announced; a bad one (garbage, not a CA, over the size bound, gone) keeps the last good bundle and
// is logged once with the reason. Binds nothing.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { CertificateAuthority } from '../../controller/identity/certificate-authority.ts';
import { MAX_BUNDLE_BYTES, readTrustBundle, TrustBundleFile, type TrustBundle } from '../../sidecar/identity/trust-bundle-file.ts';
import { tempDir } from '../fixtures/local-controller.ts';

function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

test('a changed bundle is announced; a bad one keeps the last good bundle and says why once', async () => {
  const file = path.join(tempDir('bundle-file'), 'ca.pem');
  const a = (await CertificateAuthority.create('cluster.local')).ca;
  const b = (await CertificateAuthority.create('cluster.local')).ca;
  fs.writeFileSync(file, a.rootPem);
  const first = readTrustBundle(file);
  assert.ok(typeof first !== 'string', String(first));
  const { log, lines } = capture();
  const w = new TrustBundleFile(file, first, log);
  const seen: TrustBundle[] = [];
  w.on('bundle', (x: TrustBundle) => seen.push(x));

  w.poll();
  assert.equal(seen.length, 0, 'an unchanged file is not announced');
  fs.writeFileSync(file, a.rootPem + b.rootPem);
  w.poll();
  assert.equal(seen.length, 1);
  assert.deepEqual(seen[0]!.roots.map((r) => r.fingerprint256), [a, b].map((c) => new X509Certificate(c.rootPem).fingerprint256));

  const bad: [string, string | Buffer, RegExp][] = [
    ['garbage', 'not a certificate', /holds no PEM certificate/],
    ['a leaf, not a CA', (await a.issueServing(['localhost'], 'spiffe://cluster.local/ns/x/sa/y', 60_000)).cert, /certificate 1 of 1 .* is not a CA certificate/],
    ['over the bound', Buffer.alloc(MAX_BUNDLE_BYTES + 1, 'A'), /at most 1048576 expected/],
  ];
  for (const [what, content, reason] of bad) {
    fs.writeFileSync(file, content);
    w.poll();
    w.poll();
    const warned = lines.filter((l) => l.level === 40);
    assert.equal(warned.length, bad.findIndex((x) => x[0] === what) + 1, `${what}: one warning, not one per poll`);
    assert.match(String(warned.at(-1)!.msg), reason, what);
    assert.match(String(warned.at(-1)!.msg), /the last good bundle stays in use/);
    assert.equal(w.current(), seen[0], `${what}: the last good bundle stays`);
  }
  fs.rmSync(file);
  w.poll();
  assert.match(String(lines.at(-1)!.msg), /cannot read it \(ENOENT\)/);
  fs.writeFileSync(file, b.rootPem);
  w.poll();
  assert.equal(seen.length, 2, 'a good bundle after bad ones is taken');
  assert.equal(seen[1]!.roots.length, 1);
});
