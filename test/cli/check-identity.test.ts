// `qbasis check`'s mesh-identity line as a pure function of what it read (binds nothing): off, no root yet,
// a root near its expiry, a namespace with injected pods but without the bundle, and all well.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkIdentity, identitySecretOf } from '../../cli/check.ts';
import { CertificateAuthority } from '../../controller/identity/certificate-authority.ts';

const DAY = 86_400_000;

test("the mesh identity line: off, no root yet, a root near its end, a namespace without the bundle, and healthy", async () => {
  assert.equal(identitySecretOf({ spec: { template: { spec: { containers: [{ args: ['controller', '--identity-secret=q-identity-root'] }] } } } }), 'q-identity-root');
  assert.equal(identitySecretOf({ spec: { template: { spec: { containers: [{ args: ['controller'] }] } } } }), undefined);
  const now = Date.now();
  const off = checkIdentity('qs', undefined, undefined, [], now);
  assert.equal(off.ok, true);
  assert.match(off.detail, /off \(identity\.enabled=false\)/);

  const none = checkIdentity('qs', 'q-identity-root', undefined, [], now);
  assert.equal(none.ok, false);
  assert.match(none.detail, /Secret qs\/q-identity-root holds no root yet/);
  assert.match(none.fix!, /the leader writes it/);

  const { ca } = await CertificateAuthority.create('cluster.local');
  const late = checkIdentity('qs', 'q-identity-root', ca.rootPem, [], ca.notAfter.getTime() - 30 * DAY);
  assert.equal(late.ok, false);
  assert.match(late.detail, /expires .* \(29 days\)|expires .* \(30 days\)/);

  const missing = checkIdentity('qs', 'q-identity-root', ca.rootPem, [{ namespace: 'shop', caCrt: ca.rootPem }, { namespace: 'billing', caCrt: undefined }], now);
  assert.equal(missing.ok, false);
  assert.match(missing.detail, /1 of 2 namespaces with injected pods lack the trust bundle ConfigMap qbasis-root-ca with this root: billing \(missing\)/);

  const ok = checkIdentity('qs', 'q-identity-root', ca.rootPem, [{ namespace: 'shop', caCrt: ca.rootPem }], now);
  assert.equal(ok.ok, true, ok.detail);
  assert.match(ok.detail, /root in Secret qs\/q-identity-root valid until .* \(36\d\d days\); trust bundle in 1 namespace with injected pods/);
});
