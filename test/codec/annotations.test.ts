import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePodAnnotations, parseProvides, parseRequires, describeProblem } from '../../proto/annotations.ts';
import { acceptsRequest, compatible, minVersion, versionSegment } from '../../proto/versions.ts';
import { isQbasisError } from '../../proto/errors.ts';

test('valid annotations give the pod declaration', () => {
  const r = parsePodAnnotations({
    'qbasis.io/inject': 'true',
    'qbasis.io/provides': 'shop.orders.v1.OrderService@1.4.0, shop.admin.v1.Admin@0.1.0',
    'qbasis.io/requires': 'shop.inventory.v1.InventoryService@^1.2,shop.pay.v1.Pay@>=1.2 <3',
    'qbasis.io/app-port': '50051',
    'qbasis.io/app-protocol': 'http',
    'qbasis.io/schema': 'orders-schema',
    'other.io/x': 'ignored',
  });
  assert.deepEqual(r, {
    ok: true,
    value: {
      inject: true,
      provides: [
        { api: 'shop.orders.v1.OrderService', version: '1.4.0' },
        { api: 'shop.admin.v1.Admin', version: '0.1.0' },
      ],
      requires: [
        { api: 'shop.inventory.v1.InventoryService', range: '^1.2' },
        { api: 'shop.pay.v1.Pay', range: '>=1.2 <3' },
      ],
      appPort: 50051,
      appProtocol: 'http',
      schema: 'orders-schema',
    },
  });
});

test('app-protocol http needs qbasis.io/schema, and the schema must name a ConfigMap', () => {
  const none = parsePodAnnotations({ 'qbasis.io/app-protocol': 'http' });
  assert.equal(none.ok, false);
  assert.match(none.ok ? '' : describeProblem(none.problems[0]!), /qbasis\.io\/schema .*qbasis\.io\/app-protocol "http" needs it: the ConfigMap holding the API's protobuf schema/);
  const bad = parsePodAnnotations({ 'qbasis.io/app-protocol': 'http', 'qbasis.io/schema': 'Orders_Schema' });
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : describeProblem(bad.problems[0]!), /invalid qbasis\.io\/schema value "Orders_Schema": the name of a ConfigMap/);
});

test('every invalid annotation is reported with its value and what is expected', () => {
  const r = parsePodAnnotations({
    'qbasis.io/inject': 'yes',
    'qbasis.io/provides': 'shop.orders.v1.OrderService@1.4',
    'qbasis.io/requires': 'shop.inventory.v1.InventoryService',
    'qbasis.io/app-port': '70000',
    'qbasis.io/app-protocol': 'soap',
  });
  assert.equal(r.ok, false);
  if (r.ok) return;
  const byName = new Map(r.problems.map((p) => [p.annotation, p]));
  assert.equal(byName.size, 5);
  assert.match(byName.get('qbasis.io/inject')!.expected, /"true" or "false"/);
  assert.match(byName.get('qbasis.io/provides')!.expected, /'1\.4'.*not a semantic version.*MAJOR\.MINOR\.PATCH/);
  assert.match(byName.get('qbasis.io/requires')!.expected, /not API@range/);
  assert.match(byName.get('qbasis.io/app-port')!.expected, /1 to 65535/);
  assert.match(byName.get('qbasis.io/app-protocol')!.expected, /"grpc" or "http"/);
  assert.match(describeProblem(byName.get('qbasis.io/app-port')!), /invalid qbasis\.io\/app-port value "70000"/);
});

test('bad lists throw QB_INVALID_ANNOTATION naming the value', () => {
  for (const [fn, value, why] of [
    [parseProvides, 'a.B@1.0.0,a.B@2.0.0', /listed twice/],
    [parseProvides, 'not a name@1.0.0', /not a fully-qualified gRPC service name/],
    [parseRequires, 'a.B@^^1', /not a semver range/],
    [parseRequires, '@^1', /not API@range/],
  ] as const) {
    assert.throws(() => fn(value), (err: unknown) => isQbasisError(err, 'QB_INVALID_ANNOTATION') && why.test(err.message), value);
  }
});

test('compatibility needs a shared codec, readiness, no ejection and a version in range', () => {
  const ep = { version: '1.4.0', codecs: [1], ready: true };
  assert.deepEqual(compatible(ep, { range: '^1.2', codecs: [1] }), { ok: true });
  assert.match((compatible(ep, { range: '^2', codecs: [1] }) as { reason: string }).reason, /outside \^2/);
  assert.match((compatible(ep, { range: '^1.2', codecs: [2] }) as { reason: string }).reason, /codec/);
  assert.match((compatible({ ...ep, ready: false }, { range: '^1.2', codecs: [1] }) as { reason: string }).reason, /not ready/);
  assert.match((compatible({ ...ep, ejected: true }, { range: '^1.2', codecs: [1] }) as { reason: string }).reason, /ejected/);
});

test('the inbound check uses the frame minimum and the full range when sent', () => {
  assert.deepEqual(minVersion('^1.2'), { major: 1, minor: 2 });
  assert.deepEqual(minVersion('>=1.2 <3'), { major: 1, minor: 2 });
  assert.deepEqual(versionSegment('2.0.1'), { major: 2, minor: 0 });
  assert.equal(acceptsRequest('1.4.0', { major: 1, minor: 2 }, '^1.2').ok, true);
  assert.equal(acceptsRequest('2.0.0', { major: 1, minor: 2 }, '^1.2').ok, false);
  assert.equal(acceptsRequest('2.0.0', { major: 1, minor: 2 }, '>=1.2 <3').ok, true);
  assert.equal(acceptsRequest('1.1.0', { major: 1, minor: 2 }, undefined).ok, false);
  assert.equal(acceptsRequest('1.3.0', { major: 1, minor: 2 }, undefined).ok, true);
  assert.throws(() => versionSegment('256.0.0'), (e: unknown) => isQbasisError(e, 'QB_FRAME_VERSION_RANGE'));
});
