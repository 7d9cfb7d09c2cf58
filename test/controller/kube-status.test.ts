// BasisService status rules as pure functions: names, conditions, reasons, transition times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiIdCollisions } from '../../controller/api-id-collisions.ts';
import {
  basisServiceLabels,
  basisServiceName,
  computeStatus,
  statusEqual,
  type StatusEndpoint,
  type StatusInput,
} from '../../controller/kube/basis-service-status.ts';
import { apiId } from '../../proto/basis/index.ts';

const API = 'shop.orders.v1.OrderService';

function ep(pod: string, version: string, ready = true): StatusEndpoint {
  return { pod, ip: `127.1.0.${pod.length}`, port: 15006, version, codecs: [1], ready };
}

function input(over: Partial<StatusInput>): StatusInput {
  return { api: API, endpoints: [], callers: [], collidesWith: [], synced: true, generation: 1, ...over };
}

function cond(status: ReturnType<typeof computeStatus>, type: string) {
  const c = status.conditions.find((x) => x.type === type);
  assert.ok(c, `condition ${type} present`);
  return c;
}

const T0 = new Date('2026-01-01T00:00:00.123Z');
const T1 = new Date('2026-01-01T00:05:00Z');

test('object names are DNS-safe, stable, and at most 63 characters', () => {
  assert.equal(basisServiceName(API), 'shop-orders-v1-orderservice');
  assert.equal(basisServiceName('a_b.C__d'), 'a-b-c-d');
  const long = 'com.example.' + 'verylongpackagename.'.repeat(5) + 'Service';
  const name = basisServiceName(long);
  assert.ok(name.length <= 63, name);
  assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  assert.equal(basisServiceName(long), name);
  assert.notEqual(basisServiceName(long + 'X'), name, 'different long APIs get different names');
});

test('labels carry the API id always and the API when it is a valid label value', () => {
  const l = basisServiceLabels(API);
  assert.equal(l['app.kubernetes.io/managed-by'], 'qbasis');
  assert.equal(l['qbasis.io/api'], API);
  assert.equal(l['qbasis.io/api-id'], apiId(API).toString(16).padStart(8, '0'));
  assert.equal(basisServiceLabels('_x.Y')['qbasis.io/api'], undefined);
});

test('endpoints, versions highest first, and the n/m ready column', () => {
  const s = computeStatus(input({ endpoints: [ep('b', '1.4.0'), ep('a', '2.0.0', false), ep('c', '1.10.0')] }), undefined, T0);
  assert.deepEqual(
    s.endpoints.map((e) => e.pod),
    ['a', 'b', 'c'],
  );
  assert.deepEqual(s.versions, ['2.0.0', '1.10.0', '1.4.0']);
  assert.equal(s.versionSummary, '2.0.0,1.10.0,1.4.0');
  assert.equal(s.ready, '2/3');
  assert.equal(s.readyEndpoints, 2);
  assert.equal(s.totalEndpoints, 3);
  assert.equal(cond(s, 'Ready').status, 'True');
  assert.equal(cond(s, 'Synced').status, 'True');
  assert.equal(cond(s, 'Ready').lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(cond(s, 'Ready').observedGeneration, 1);
});

test('the Identities column lists the endpoints\' distinct SPIFFE IDs, sorted, and counts the rest past its limit', () => {
  const id = (sa: string): string => `spiffe://cluster.local/ns/shop/sa/${sa}`;
  const s = computeStatus(input({ endpoints: [{ ...ep('b', '1.4.0'), identity: id('orders') }, { ...ep('a', '1.4.0'), identity: id('billing') }, { ...ep('c', '1.4.0'), identity: id('orders') }] }), undefined, T0);
  assert.equal(s.identities, `${id('billing')},${id('orders')}`);
  assert.equal(s.endpoints[0]!.identity, id('billing'));
  assert.equal(computeStatus(input({ endpoints: [ep('a', '1.4.0')] }), undefined, T0).identities, undefined, 'none known: no column text');
  const many = Array.from({ length: 40 }, (_, i) => ({ ...ep(`p${i}`, '1.4.0'), identity: id(`sa-${String(i).padStart(2, '0')}`) }));
  const text = computeStatus(input({ endpoints: many }), undefined, T0).identities!;
  assert.ok(text.length < 600, text);
  assert.match(text, /,\+\d+ more$/);
  assert.ok(!statusEqual(s, computeStatus(input({ endpoints: [{ ...ep('a', '1.4.0'), identity: id('x') }] }), undefined, T0)));
});

test('Ready is False with a reason when no endpoint is ready', () => {
  const s = computeStatus(input({ endpoints: [ep('a', '1.0.0', false)] }), undefined, T0);
  assert.equal(cond(s, 'Ready').status, 'False');
  assert.equal(cond(s, 'Ready').reason, 'NoReadyEndpoints');
  assert.equal(s.ready, '0/1');
  const empty = computeStatus(input({}), undefined, T0);
  assert.equal(cond(empty, 'Ready').reason, 'NoEndpoints');
});

test('Compatible is False when two majors are live and a caller range matches only one', () => {
  const s = computeStatus(
    input({ endpoints: [ep('p1', '1.4.0'), ep('p2', '2.0.0')], callers: [{ pod: 'web-1', range: '^1.2' }] }),
    undefined,
    T0,
  );
  const c = cond(s, 'Compatible');
  assert.equal(c.status, 'False');
  assert.equal(c.reason, 'MajorVersionSplit');
  assert.match(c.message, /web-1/);
  assert.match(c.message, /\^1\.2/);
  assert.match(c.message, /2\.0\.0/);
});

test('Compatible is False naming the caller when no live version is in its range', () => {
  const s = computeStatus(input({ endpoints: [ep('p2', '2.0.0')], callers: [{ pod: 'web-1', range: '^1.2' }] }), undefined, T0);
  assert.equal(cond(s, 'Compatible').reason, 'NoVersionForCaller');
  assert.match(cond(s, 'Compatible').message, /web-1.*\^1\.2.*2\.0\.0/);
});

test('Compatible is True when every caller range covers every live major', () => {
  const s = computeStatus(
    input({ endpoints: [ep('p1', '1.4.0'), ep('p2', '2.1.0')], callers: [{ pod: 'web', range: '>=1.2 <3' }] }),
    undefined,
    T0,
  );
  assert.equal(cond(s, 'Compatible').status, 'True');
  assert.equal(cond(s, 'Compatible').reason, 'AllCallersServed');
  const none = computeStatus(input({ endpoints: [ep('p1', '1.4.0')] }), undefined, T0);
  assert.equal(cond(none, 'Compatible').reason, 'NoKnownCallers');
});

test('API id collisions between known APIs make Compatible False with both names', () => {
  // Found by search: these two valid names share an FNV-1a id.
  const a = 'shop.s1332789.Svc';
  const b = 'shop.s1529192.Svc';
  assert.equal(apiId(a), apiId(b));
  const coll = new ApiIdCollisions();
  for (const api of [a, b, API]) assert.equal(coll.add(api), true);
  assert.equal(coll.add(a), false, 'known already');
  assert.deepEqual(coll.collidesWith(a), [b]);
  assert.deepEqual(coll.collidesWith(b), [a]);
  assert.deepEqual(coll.collidesWith(API), []);
  assert.equal(coll.remove(b), true);
  assert.deepEqual(coll.collidesWith(a), [], 'gone with the other API');
  assert.equal(coll.remove(b), false);
  const s = computeStatus(input({ api: a, endpoints: [ep('p', '1.0.0')], collidesWith: [b] }), undefined, T0);
  assert.equal(cond(s, 'Compatible').reason, 'ApiIdCollision');
  assert.match(cond(s, 'Compatible').message, new RegExp(b.replace(/\./g, '\\.')));
});

test('lastTransitionTime changes only when a condition status changes', () => {
  const first = computeStatus(input({ endpoints: [ep('a', '1.0.0')] }), undefined, T0);
  const same = computeStatus(input({ endpoints: [ep('a', '1.0.0'), ep('b', '1.0.1')] }), first, T1);
  assert.equal(cond(same, 'Ready').lastTransitionTime, cond(first, 'Ready').lastTransitionTime);
  assert.equal(cond(same, 'Ready').message, '2 of 2 endpoints ready');
  const flipped = computeStatus(input({ endpoints: [ep('a', '1.0.0', false)] }), same, T1);
  assert.equal(cond(flipped, 'Ready').lastTransitionTime, '2026-01-01T00:05:00Z');
  assert.equal(cond(flipped, 'Synced').lastTransitionTime, cond(first, 'Synced').lastTransitionTime);
});

test('statusEqual sees no change for the same state recomputed later, and sees real changes', () => {
  const a = computeStatus(input({ endpoints: [ep('a', '1.0.0')] }), undefined, T0);
  const b = computeStatus(input({ endpoints: [ep('a', '1.0.0')] }), a, T1);
  assert.ok(statusEqual(a, b));
  const c = computeStatus(input({ endpoints: [ep('a', '1.0.0', false)] }), a, T1);
  assert.ok(!statusEqual(a, c));
  assert.ok(!statusEqual(undefined, a));
});

test('Synced is Unknown while the cache is relisting', () => {
  const s = computeStatus(input({ synced: false }), undefined, T0);
  assert.equal(cond(s, 'Synced').status, 'Unknown');
  assert.equal(cond(s, 'Synced').reason, 'CacheNotSynced');
});

test('status.policy names the BasisPolicy that applies, and a policy appearing or going is a change', () => {
  const none = computeStatus(input({ endpoints: [ep('a', '1.0.0')] }), undefined, T0);
  assert.equal(none.policy, undefined);
  const named = computeStatus(input({ endpoints: [ep('a', '1.0.0')], policy: 'shop/orders' }), none, T1);
  assert.equal(named.policy, 'shop/orders');
  assert.ok(!statusEqual(none, named));
  assert.ok(!statusEqual(named, computeStatus(input({ endpoints: [ep('a', '1.0.0')] }), named, T1)));
  assert.ok(statusEqual(named, computeStatus(input({ endpoints: [ep('a', '1.0.0')], policy: 'shop/orders' }), named, T1)));
});
