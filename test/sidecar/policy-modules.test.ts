// The pieces a BasisPolicy goes through, each alone: its wire form (what the controller sends is what
// the sidecar routes by), the version-group pick, the retry budget, the controller's store and the
// summing of mirror reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseBasisPolicy } from '../../controller/basis-policy.ts';
import { MirrorResults, MIRROR_LIMITS } from '../../controller/mirror-results.ts';
import { PolicyStore, type StoredPolicy } from '../../controller/policy-store.ts';
import { discoveryPackage } from '../../proto/discovery.ts';
import { policyFromWire, policyToWire, type AppliedPolicy } from '../../proto/policy.ts';
import { Peer } from '../../sidecar/peer.ts';
import { pickGroup, planRoutes, routeFor, type GroupPlan } from '../../sidecar/outbound/route-plan.ts';
import { RetryBudget } from '../../sidecar/retry-budget.ts';
import type { SidecarReport__Output } from '../../proto/generated/qbasis/discovery/v1/SidecarReport.ts';

const API = 'shop.orders.v1.OrderService';

function policy(spec: Record<string, unknown>): AppliedPolicy {
  const parsed = parseBasisPolicy({ spec: { api: API, ...spec } });
  assert.ok(parsed.policy, JSON.stringify(parsed.problems));
  return { namespace: 'shop', name: 'orders', generation: 3, policy: parsed.policy };
}

const CODES = ['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'ABORTED', 'INTERNAL'];
const specs = fc.record({
  timeout: fc.option(fc.integer({ min: 1, max: 60_000 }).map((n) => `${n}ms`), { nil: undefined }),
  retry: fc.option(
    fc.record({
      attempts: fc.integer({ min: 1, max: 5 }),
      on: fc.uniqueArray(fc.constantFrom(...CODES), { minLength: 1, maxLength: 5 }),
      perTryTimeout: fc.option(fc.integer({ min: 1, max: 5000 }).map((n) => `${n}ms`), { nil: undefined }),
      budget: fc.record({ percent: fc.integer({ min: 0, max: 100 }), minPerSecond: fc.integer({ min: 0, max: 1000 }) }),
    }),
    { nil: undefined },
  ),
  routes: fc.array(
    fc.record({
      methods: fc.option(fc.uniqueArray(fc.constantFrom('Create', 'Cancel', 'Get', 'List'), { minLength: 1 }), { nil: undefined }),
      split: fc.option(fc.array(fc.record({ versions: fc.constantFrom('<1.10.0', '>=1.10.0', '~1.4.0', '^1.2'), weight: fc.integer({ min: 1, max: 100 }) }), { minLength: 1, maxLength: 4 }), { nil: undefined }),
      mirror: fc.option(fc.record({ versions: fc.constantFrom('>=1.10.0', '~1.6.0'), percent: fc.integer({ min: 0, max: 100 }) }), { nil: undefined }),
    }),
    { maxLength: 5 },
  // Only the last route may match every method (an earlier one would hide the rest: refused).
  // and each method is in one route: route i's methods are named for it.
  ).map((routes) => routes.map((r, i) => (r.methods === undefined && i === routes.length - 1 ? r : { ...r, methods: (r.methods ?? ['Get']).map((m) => `${m}${i}`) }))),
  allow: fc.option(fc.uniqueArray(fc.constantFrom('spiffe://cluster.local/ns/shop/sa/checkout', 'spiffe://cluster.local/ns/billing/sa/*'), { maxLength: 2 }), { nil: undefined }),
});

function strip<T>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

test('a policy survives the discovery wire unchanged: what the controller accepted is what the sidecar routes by', () => {
  fc.assert(
    fc.property(specs, (s) => {
      const p = policy(strip(s));
      const back = policyFromWire(API, roundTrip(policyToWire(p)));
      assert.deepEqual(back, p);
    }),
    { numRuns: 300 },
  );
});

/** Through real protobuf bytes, as the stream carries it: an Update encoded and decoded by the Watch method's own codec. */
function roundTrip(w: ReturnType<typeof policyToWire>): Parameters<typeof policyFromWire>[1] {
  const watch = discoveryPackage().qbasis.discovery.v1.Discovery.service.Watch;
  const bytes = (watch.responseSerialize as (v: unknown) => Buffer)({ api: API, version: 1, policy: w });
  return ((watch.responseDeserialize as (b: Buffer) => unknown)(bytes) as { policy: Parameters<typeof policyFromWire>[1] }).policy;
}

test('no policy on the wire (empty name) and a null policy both mean none applies', () => {
  assert.equal(policyFromWire(API, roundTrip(policyToWire(undefined))), undefined);
  assert.equal(policyFromWire(API, null), undefined);
});

function group(versions: string, weight: number, peers: number): GroupPlan {
  return { versions, weight, peers: Array.from({ length: peers }, (_, i) => new Peer(`127.0.95.${i + 1}`, 15006, 0)) };
}

test('a version group is picked by weight; an empty group gives its weight to the others; all empty: none', () => {
  const a = group('<1.10.0', 90, 1);
  const b = group('>=1.10.0', 10, 1);
  let toB = 0;
  for (let i = 0; i < 1000; i++) if (pickGroup([a, b], i / 1000) === b) toB++;
  assert.equal(toB, 100, 'evenly spread draws land 10 % on the 10-weight group');
  const emptyA = group('<1.10.0', 90, 0);
  for (let i = 0; i < 100; i++) assert.equal(pickGroup([emptyA, b], i / 100), b);
  const zeroB = group('>=1.10.0', 0, 1);
  assert.equal(pickGroup([emptyA, zeroB], 0.5), zeroB, 'a weight-0 group still takes calls when it is the only one with endpoints');
  assert.equal(pickGroup([emptyA, group('>=1.10.0', 10, 0)], 0.5), undefined);
  assert.equal(pickGroup([a, b], 0.999999), b);
});

test('route plans sort only compatible peers into version groups, and the first route that names the method wins', () => {
  const peers = [
    { peer: new Peer('127.0.95.1', 15006, 0), version: '1.4.0' },
    { peer: new Peer('127.0.95.2', 15006, 0), version: '1.10.0' },
  ];
  const p = policy({ routes: [{ methods: ['Create'], split: [{ versions: '>=1.10.0', weight: 1 }] }, { split: [{ versions: '<1.10.0', weight: 1 }], mirror: { versions: '>=1.10.0', percent: 5 } }] });
  const plans = planRoutes(p, peers);
  assert.equal(routeFor(plans, 'Create')?.index, 0);
  assert.equal(routeFor(plans, 'Get')?.index, 1);
  assert.deepEqual(routeFor(plans, 'Create')!.groups!.map((g) => g.peers.map((x) => x.address)), [['127.0.95.2']]);
  assert.deepEqual(routeFor(plans, 'Get')!.mirror!.peers.map((x) => x.address), ['127.0.95.2']);
  assert.equal(routeFor(planRoutes(policy({ routes: [{ methods: ['Create'] }] }), peers), 'Get'), undefined, 'no route matches: no policy routing');
});

test('the retry budget allows percent of the calls plus minPerSecond over a sliding 10 s, and refills as the window moves', () => {
  const b = new RetryBudget(20, 1, 0);
  for (let i = 0; i < 100; i++) b.call(i);
  let allowed = 0;
  while (b.tryRetry(500)) allowed++;
  assert.equal(allowed, 30, '20 % of 100 calls + 1/s over 10 s');
  assert.equal(b.tryRetry(9_000), false, 'still inside the window');
  assert.equal(b.tryRetry(11_000), true, 'the calls and retries of the first second have left the window');
  const none = new RetryBudget(0, 0, 0);
  none.call(0);
  assert.equal(none.tryRetry(0), false);
});

function stored(name: string, namespace: string, created: string, generation = 1): StoredPolicy {
  return { ...policy({ routes: [] }), name, namespace, creationTimestamp: created, generation };
}

test('the policy store answers by precedence and bumps the API\'s version on every change, never on a repeat', () => {
  const s = new PolicyStore();
  const seen: number[] = [];
  s.on('change', (c: { version: number }) => seen.push(c.version));
  s.upsert(stored('producer', 'shop', '2026-01-01T00:00:00Z'));
  s.upsert(stored('producer', 'shop', '2026-01-01T00:00:00Z'));
  assert.deepEqual(seen, [1], 'the same spec again is not a change');
  s.upsert(stored('consumer', 'web', '2026-02-01T00:00:00Z'));
  assert.equal(s.forCaller(API, 'web', ['shop'])?.name, 'consumer', 'the caller\'s namespace first');
  assert.equal(s.forCaller(API, 'other', ['shop'])?.name, 'producer', 'else the providers\'');
  assert.equal(s.forCaller(API, 'other', ['elsewhere']), undefined);
  s.upsert(stored('late', 'shop', '2026-03-01T00:00:00Z'));
  assert.deepEqual(s.conflicts().map((c) => [c.name, c.winner]), [['late', 'producer']]);
  s.delete('shop', 'producer');
  assert.equal(s.forCaller(API, 'other', ['shop'])?.name, 'late');
  assert.equal(s.version(API), 4);
});

function report(pod: string, runId: string, matched: number, payloadMismatched: number, samples = 0): SidecarReport__Output {
  return {
    pod, namespace: 'shop', runId, forwarded: false,
    mirror: [{
      policyNamespace: 'shop', policyName: 'orders', api: API, method: 'Create', matched, statusMismatched: 0, payloadMismatched, shadowFailed: 0, dropped: 0,
      samples: Array.from({ length: samples }, (_, i) => ({ method: 'Create', primaryVersion: '1.4.0', shadowVersion: '1.10.0', primaryStatus: 0, shadowStatus: 0, primaryFrame: '7101::1', shadowFrame: '7101::2', result: 'payload_mismatch', atUnixMs: 1_000 + i })),
    }],
    calls: [],
    runAgeMs: 1000,
  };
}

test('mirror reports are summed per policy; a repeat replaces, a restart keeps what the old run counted, a hostile report is refused whole', () => {
  const r = new MirrorResults();
  assert.equal(r.report(report('a', 'run1', 90, 10, 2)), undefined);
  assert.equal(r.report(report('a', 'run1', 95, 10, 2)), undefined, 'cumulative: the later report replaces');
  assert.equal(r.report(report('b', 'run1', 50, 0)), undefined);
  assert.deepEqual({ ...r.forPolicy('shop/orders'), methods: undefined, samples: undefined }, { compared: 155, matched: 145, mismatched: 10, shadowFailed: 0, dropped: 0, methods: undefined, samples: undefined });
  r.report(report('a', 'run2', 5, 1));
  assert.equal(r.forPolicy('shop/orders')?.compared, 161, 'a restarted sidecar\'s old counts stay');
  assert.equal(r.forPolicy('shop/orders')?.samples.length, 2);
  assert.match(r.report({ ...report('c', 'x', 1, 0), mirror: Array.from({ length: MIRROR_LIMITS.entries + 1 }, () => report('c', 'x', 1, 0).mirror[0]!) }) ?? '', /at most 256/);
  assert.match(r.report({ ...report('c', 'x', 1, 0), mirror: [{ ...report('c', 'x', 1, 0).mirror[0]!, matched: -1 }] }) ?? '', /not a count/);
  assert.match(r.report(report('c', '', 1, 0)) ?? '', /run_id/);
  assert.equal(r.forPolicy('shop/orders')?.compared, 161, 'refused reports changed nothing');
  assert.equal(r.forPolicy('shop/other'), undefined);
});
