// BasisPolicy splits and method routes through real sidecars in local mode: the controller reads the
// policy from the pods file, streams it with the endpoints, and the caller's sidecar splits calls
// between version groups (always inside the caller's own range), sends methods by route, and gives an
// empty group's weight to the others.
// Addresses: 127.0.90.x (controller .1; old 1.4.0 .11; new 1.10.0 .12; v2 2.0.0 .13; caller .20).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ECHO_API, type EchoResponse } from '../fixtures/echo-client.ts';
import { admin } from '../fixtures/echo-mesh.ts';
import { writePods } from '../fixtures/local-controller.ts';
import { basisPolicy, binomialInterval, callMany, PolicyMesh, unary, waitPolicyInForce } from '../fixtures/policy.ts';

const NET = '127.0.90';
const mesh = new PolicyMesh(NET, [
  { name: 'old', ip: `${NET}.11`, version: '1.4.0' },
  { name: 'new', ip: `${NET}.12`, version: '1.10.0' },
  // Matches every ">=1.10.0" group, but the caller requires ^1.2: a policy must never send it a call.
  { name: 'v2', ip: `${NET}.13`, version: '2.0.0' },
]);
const { pods } = mesh;
const CALLER = mesh.caller;
const applyPolicy = (spec: Record<string, unknown>, podList = pods): Promise<void> => mesh.apply(spec, podList);

before(async () => {
  await mesh.start();
});

after(async () => {
  await mesh.stop();
});

function split(oldWeight: number, newWeight: number): Record<string, unknown> {
  return { routes: [{ split: [{ versions: '<1.10.0', weight: oldWeight }, { versions: '>=1.10.0', weight: newWeight }] }] };
}

test('a 90/10 split lands within the binomial interval of 10 % over 2,000 calls, and never outside the caller\'s range', async (t) => {
  await applyPolicy(split(90, 10));
  const n = 2000;
  const counts = await callMany(mesh.client, n);
  const toNew = counts.get('new@1.10.0') ?? 0;
  const [lo95, hi95] = binomialInterval(n, 0.1, 1.96);
  // The gate is 99.9 % (3.29 sd): a 95 % gate would fail one CI run in twenty by design.
  const [lo, hi] = binomialInterval(n, 0.1, 3.29);
  t.diagnostic(`${JSON.stringify(Object.fromEntries(counts))}; to new ${toNew} of ${n}; 95 % interval ${lo95.toFixed(0)}-${hi95.toFixed(0)} (${toNew >= lo95 && toNew <= hi95 ? 'inside' : 'outside'})`);
  assert.equal(counts.get('old@1.4.0')! + toNew, n, `every call answered by old or new: ${JSON.stringify(Object.fromEntries(counts))}`);
  assert.equal(counts.get('v2@2.0.0'), undefined, 'the 2.0.0 pod is outside the caller\'s ^1.2 and must never be called');
  assert.ok(toNew >= lo && toNew <= hi, `to new ${toNew}, expected ${lo.toFixed(0)}-${hi.toFixed(0)}`);
});

test('changing the split to 50/50 applies to new calls within a second of the file changing', async (t) => {
  const t0 = performance.now();
  await mesh.apply(split(50, 50));
  const tookMs = performance.now() - t0;
  t.diagnostic(`in force at the caller ${tookMs.toFixed(0)} ms after the write`);
  assert.ok(tookMs < 1000, `took ${tookMs.toFixed(0)} ms`);
  const n = 600;
  const counts = await callMany(mesh.client, n);
  const toNew = counts.get('new@1.10.0') ?? 0;
  const [lo, hi] = binomialInterval(n, 0.5, 3.29);
  t.diagnostic(JSON.stringify(Object.fromEntries(counts)));
  assert.ok(toNew >= lo && toNew <= hi, `to new ${toNew} of ${n}, expected ${lo.toFixed(0)}-${hi.toFixed(0)}`);
});

test('a version group with no ready endpoint gives its weight to the other; with none anywhere the call fails UNAVAILABLE naming API, range and policy', async () => {
  const newNotReady = pods.map((p) => (p.name === 'new' ? { ...p, ready: false } : p));
  await applyPolicy(split(10, 90), newNotReady);
  const counts = await callMany(mesh.client, 200);
  assert.deepEqual(Object.fromEntries(counts), { 'old@1.4.0': 200 }, 'the empty 90 % group gave its weight to the old group; nothing failed');

  await applyPolicy({ routes: [{ split: [{ versions: '>=1.10.0', weight: 1 }] }] }, newNotReady);
  const r = await unary(mesh.client, { text: 'x' });
  assert.ok(!r.ok);
  assert.equal(r.err.code, grpc.status.UNAVAILABLE);
  assert.match(r.err.details, new RegExp(`${ECHO_API.replaceAll('.', '\\.')}.*default/echo.*>=1\\.10\\.0.*\\^1\\.2`));
  assert.equal(r.err.metadata.get('qbasis-error-code')[0], 'QB_NO_POLICY_ENDPOINT');
});

test('a method route sends Unary only to >=1.10.0 and every other method only to the old version (strangler fig), never outside the caller\'s range', async () => {
  await applyPolicy({
    routes: [
      { methods: ['Unary'], split: [{ versions: '>=1.10.0', weight: 1 }] },
      { split: [{ versions: '<1.10.0', weight: 1 }] },
    ],
  });
  const unaryCounts = await callMany(mesh.client, 200);
  assert.deepEqual(Object.fromEntries(unaryCounts), { 'new@1.10.0': 200 });
  const streamServedBy = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const served = await new Promise<string[]>((resolve, reject) => {
      const got: string[] = [];
      const call = mesh.client.ServerStream({ text: 's', count: 2 }, { deadline: Date.now() + 10_000 });
      call.on('data', (m: EchoResponse) => got.push(m.served_by));
      call.on('error', reject);
      call.on('end', () => resolve(got));
    });
    for (const s of served) streamServedBy.set(s, (streamServedBy.get(s) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(streamServedBy), { 'old@1.4.0': 80 });
});

test('an invalid edit of the policy is refused and logged, and the last accepted spec stays in force', async () => {
  await applyPolicy(split(0, 1));
  const good = mesh.generation;
  const bad = ++mesh.generation;
  writePods(mesh.podsFile, pods, [basisPolicy('echo', bad, { api: ECHO_API, routes: [{ split: [{ versions: '>=1.x.0 <', weight: -1 }] }] })]);
  const line = await mesh.ctl.waitForLog((l) => l.code === 'QB_INVALID_POLICY' && l.generation === bad, 10_000, 'the refusal');
  assert.match(line.msg, /spec\.routes\[0\]\.split\[0\]\.versions/);
  assert.match(line.msg, /spec\.routes\[0\]\.split\[0\]\.weight/);
  await waitPolicyInForce(CALLER, ECHO_API, { name: 'default/echo', generation: good });
  const counts = await callMany(mesh.client, 100);
  assert.deepEqual(Object.fromEntries(counts), { 'new@1.10.0': 100 }, 'still routed by the last accepted spec');
});

test('removing the policy from the file restores plain balancing over every compatible version', async (t) => {
  writePods(mesh.podsFile, pods);
  await waitPolicyInForce(CALLER, ECHO_API, null);
  // Which of the two gets more is P2C's latency call; what the policy decided is gone: both are candidates again.
  const routes = JSON.parse((await admin(CALLER, '/routes')).body) as { requires: Record<string, { endpoints: { pod: string; compatible: boolean }[] }> };
  const compatible = routes.requires[ECHO_API]!.endpoints.filter((e) => e.compatible).map((e) => e.pod).sort();
  assert.deepEqual(compatible, ['new', 'old']);
  const counts = await callMany(mesh.client, 400, 16);
  t.diagnostic(JSON.stringify(Object.fromEntries(counts)));
  assert.equal((counts.get('old@1.4.0') ?? 0) + (counts.get('new@1.10.0') ?? 0), 400, JSON.stringify(Object.fromEntries(counts)));
  assert.equal(counts.get('v2@2.0.0'), undefined);
});
