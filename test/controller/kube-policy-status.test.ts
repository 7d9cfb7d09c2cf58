// The Kubernetes side of BasisPolicy as pure functions: the status the controller writes (Accepted,
// ROUTES/MIRROR columns, the last valid spec), the intake restoring a last valid spec after a restart,
// and the served CRD schema saying the same bounds as the controller's own checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import YAML from 'yaml';
import { acceptedCondition, parseBasisPolicy, POLICY_LIMITS } from '../../controller/basis-policy.ts';
import { computePolicyStatus, LAST_VALID_MAX_BYTES, policyStatusPatch, samePolicyStatus } from '../../controller/kube/basis-policy-status.ts';
import { policyObject, type BasisPolicyObject } from '../../controller/kube/policy-informer.ts';
import { PolicyIntake } from '../../controller/policy-intake.ts';
import { PolicyStore } from '../../controller/policy-store.ts';
import { Status } from '../../proto/errors.ts';
import { CRD_DIR } from './kube-helpers.ts';

const API = 'shop.orders.v1.OrderService';
const T0 = new Date('2026-01-01T00:00:00.500Z');
const T1 = new Date('2026-01-01T00:10:00Z');

const VALID_SPEC = {
  api: API,
  routes: [
    { methods: ['Create'], split: [{ versions: '>=1.10.0', weight: 1 }] },
    { split: [{ versions: '<1.10.0', weight: 90 }, { versions: '>=1.10.0', weight: 10 }], mirror: { versions: '>=1.10.0', percent: 5 } },
  ],
};

function obj(generation: number, spec: unknown, status?: Record<string, unknown>): BasisPolicyObject {
  return {
    metadata: { namespace: 'shop', name: 'orders', generation, creationTimestamp: '2026-01-01T00:00:00Z', resourceVersion: String(generation) },
    spec,
    ...(status === undefined ? {} : { status }),
  };
}

function statusOf(o: BasisPolicyObject, generation = o.metadata.generation ?? 1) {
  const parsed = parseBasisPolicy(policyObject(o).raw);
  return computePolicyStatus(
    {
      condition: acceptedCondition({ parsed, generation, apiKnown: true }),
      generation,
      inForce: parsed.policy,
      accepted: parsed.policy === undefined ? undefined : { generation, raw: policyObject(o).raw },
    },
    undefined,
    T0,
  );
}

test('an accepted policy has Accepted=True at its generation, its route count, where it mirrors, and its spec as the last valid one', () => {
  const s = statusOf(obj(3, VALID_SPEC));
  assert.equal(s.observedGeneration, 3);
  assert.equal(s.conditions.length, 1);
  const c = s.conditions[0]!;
  assert.deepEqual([c.type, c.status, c.reason, c.observedGeneration, c.lastTransitionTime], ['Accepted', 'True', 'Accepted', 3, '2026-01-01T00:00:00Z']);
  assert.equal(s.routes, 2);
  assert.equal(s.mirrorTarget, '5% >=1.10.0');
  assert.deepEqual(s.lastValid, { generation: 3, spec: VALID_SPEC });
});

test('a policy never valid has no routes, no mirror and no last valid spec, and the patch removes any left over', () => {
  const s = statusOf(obj(1, { api: API, routes: [{ split: [{ versions: '>=1.x.0 <', weight: 1 }] }] }));
  assert.equal(s.conditions[0]!.reason, 'InvalidRange');
  assert.match(s.conditions[0]!.message, /spec\.routes\[0\]\.split\[0\]\.versions/);
  assert.equal(s.routes, undefined);
  assert.equal(s.mirrorTarget, undefined);
  assert.equal(s.lastValid, undefined);
  const patch = policyStatusPatch(s).status;
  assert.equal(patch['routes'], null);
  assert.equal(patch['mirrorTarget'], null);
  assert.equal(patch['lastValid'], null);
});

test('the Accepted lastTransitionTime moves only when its status flips, and the same state read back in another key order is no change', () => {
  const first = statusOf(obj(1, VALID_SPEC));
  const input = {
    condition: acceptedCondition({ parsed: parseBasisPolicy(policyObject(obj(1, VALID_SPEC)).raw), generation: 1, apiKnown: false }),
    generation: 1,
    inForce: parseBasisPolicy(policyObject(obj(1, VALID_SPEC)).raw).policy,
    accepted: { generation: 1, raw: { spec: VALID_SPEC } },
  };
  const noApi = computePolicyStatus(input, first, T1);
  assert.equal(noApi.conditions[0]!.reason, 'NoSuchAPI');
  assert.equal(noApi.conditions[0]!.lastTransitionTime, '2026-01-01T00:10:00Z', 'True → False is a transition');
  const again = computePolicyStatus(input, noApi, new Date('2026-01-01T01:00:00Z'));
  assert.equal(again.conditions[0]!.lastTransitionTime, noApi.conditions[0]!.lastTransitionTime);
  // as the API server returns it: JSON, keys in its own order
  const readBack = JSON.parse(JSON.stringify({ lastValid: { spec: { routes: VALID_SPEC.routes, api: API }, generation: 1 }, ...again }));
  assert.ok(samePolicyStatus(readBack, again));
  assert.ok(!samePolicyStatus(readBack, first));
  assert.ok(!samePolicyStatus(undefined, first));
});

test('a last valid spec too large to copy into status is left out; the status is still written', () => {
  const methods = Array.from({ length: 64 }, (_, i) => `M${i}${'x'.repeat(240)}`);
  const huge = { api: API, routes: Array.from({ length: 32 }, (_, r) => ({ methods: methods.map((m) => `${m}${r}`) })) };
  assert.ok(JSON.stringify(huge).length > LAST_VALID_MAX_BYTES);
  const s = statusOf(obj(1, huge));
  assert.equal(s.conditions[0]!.status, 'True');
  assert.equal(s.routes, 32);
  assert.equal(s.lastValid, undefined);
});

function intake(): { intake: PolicyIntake; store: PolicyStore } {
  const store = new PolicyStore();
  return { store, intake: new PolicyIntake({ store, logger: pino({ level: 'silent' }), apiKnown: () => true }) };
}

test('after a restart, an invalid policy puts the last valid spec from its status back in force, at that generation', () => {
  const { intake: i, store } = intake();
  const good = obj(1, VALID_SPEC);
  const bad = obj(2, { api: API, routes: [{ split: [{ versions: '<1', weight: 0 }] }] }, { lastValid: { generation: 1, spec: VALID_SPEC } });
  i.resync([policyObject(bad)]);
  const held = store.get('shop', 'orders');
  assert.equal(held?.generation, 1);
  assert.deepEqual(held?.policy, parseBasisPolicy(policyObject(good).raw).policy);
  assert.equal(i.condition('shop', 'orders')?.reason, 'Invalid');
  assert.equal(i.condition('shop', 'orders')?.observedGeneration, 2);
  assert.equal(i.accepted('shop', 'orders')?.generation, 1);
});

test('a last valid spec in status is input too: an invalid one, or one of another shape, puts nothing in force', () => {
  for (const lastValid of [{ generation: 1, spec: { api: API, timeout: 'soon' } }, { generation: 0, spec: VALID_SPEC }, { generation: 1, spec: 'x' }, 'x']) {
    const { intake: i, store } = intake();
    i.resync([policyObject(obj(2, { api: API, timeout: '0s' }, { lastValid }))]);
    assert.equal(store.get('shop', 'orders'), undefined, JSON.stringify(lastValid));
    assert.equal(i.accepted('shop', 'orders'), undefined);
  }
});

test('the last valid spec this process read wins over an older one in status', () => {
  const { intake: i, store } = intake();
  const v2 = { ...VALID_SPEC, timeout: '2s' };
  i.upsert(policyObject(obj(2, v2, { lastValid: { generation: 1, spec: VALID_SPEC } })));
  i.upsert(policyObject(obj(3, { api: API, timeout: 'soon' }, { lastValid: { generation: 1, spec: VALID_SPEC } })));
  assert.equal(store.get('shop', 'orders')?.generation, 2);
  assert.equal(store.get('shop', 'orders')?.policy.timeoutMs, 2000);
  assert.equal(i.accepted('shop', 'orders')?.generation, 2);
  // valid again: the new spec, whatever status says
  i.upsert(policyObject(obj(4, VALID_SPEC, { lastValid: { generation: 2, spec: v2 } })));
  assert.equal(store.get('shop', 'orders')?.generation, 4);
  assert.equal(store.get('shop', 'orders')?.policy.timeoutMs, undefined);
});

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  maxItems?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  required?: string[];
}

test("the served CRD schema has the controller's bounds (POLICY_LIMITS), its fields, and every retry code but OK", () => {
  const crd = YAML.parse(readFileSync(path.join(CRD_DIR, 'basispolicies.yaml'), 'utf8')) as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: Schema }; additionalPrinterColumns: Array<{ name: string; jsonPath: string; priority?: number }> }>; names: { shortNames: string[]; categories: string[] } };
  };
  const v = crd.spec.versions[0]!;
  const spec = v.schema.openAPIV3Schema.properties!['spec']!;
  const p = spec.properties!;
  assert.deepEqual(Object.keys(p).sort(), ['allow', 'api', 'retry', 'routes', 'timeout']);
  assert.deepEqual(spec.required, ['api']);
  assert.equal(p['api']!.maxLength, POLICY_LIMITS.nameLength);
  assert.equal(p['timeout']!.maxLength, POLICY_LIMITS.durationLength);
  const retry = p['retry']!.properties!;
  assert.deepEqual(Object.keys(retry).sort(), ['attempts', 'backoff', 'budget', 'on', 'perTryTimeout']);
  assert.equal(retry['attempts']!.maximum, POLICY_LIMITS.maxAttempts);
  assert.equal(retry['on']!.maxItems, POLICY_LIMITS.retryOn);
  assert.deepEqual([...retry['on']!.items!.enum!].sort(), Object.keys(Status).filter((c) => c !== 'OK').sort());
  assert.equal(retry['budget']!.properties!['minPerSecond']!.maximum, POLICY_LIMITS.maxMinPerSecond);
  assert.equal(retry['budget']!.properties!['percent']!.maximum, 100);
  assert.equal(p['routes']!.maxItems, POLICY_LIMITS.routes);
  const route = p['routes']!.items!.properties!;
  assert.deepEqual(Object.keys(route).sort(), ['methods', 'mirror', 'split']);
  assert.equal(route['methods']!.maxItems, POLICY_LIMITS.methods);
  assert.equal(route['methods']!.items!.maxLength, POLICY_LIMITS.nameLength);
  assert.equal(route['split']!.maxItems, POLICY_LIMITS.splitGroups);
  const group = route['split']!.items!.properties!;
  assert.equal(group['versions']!.maxLength, POLICY_LIMITS.rangeLength);
  assert.deepEqual([group['weight']!.minimum, group['weight']!.maximum], [0, POLICY_LIMITS.maxWeight]);
  assert.equal(route['mirror']!.properties!['versions']!.maxLength, POLICY_LIMITS.rangeLength);
  assert.equal(route['mirror']!.properties!['percent']!.maximum, 100);
  assert.equal(p['allow']!.maxItems, POLICY_LIMITS.allow);
  assert.equal(p['allow']!.items!.maxLength, POLICY_LIMITS.spiffeIdLength);
  assert.deepEqual(crd.spec.names.shortNames, ['bpol']);
  assert.deepEqual(crd.spec.names.categories, ['qbasis']);
  assert.deepEqual(v.additionalPrinterColumns.filter((c) => c.priority === undefined).map((c) => c.name.toUpperCase()), ['API', 'ROUTES', 'MIRROR', 'ACCEPTED', 'AGE']);
});
