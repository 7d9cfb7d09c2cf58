// The console's pure pieces alone: workloads from pods, caller rows, traffic from cumulative reports
// (deltas, restarts, spreading, caps, refusals), the planner, the Host rule and the address flag.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BucketRing, CallTraffic, spread, TRAFFIC_LIMITS } from '../../controller/console/call-traffic.ts';
import { CallerPods } from '../../controller/console/caller-pods.ts';
import { hostAllowed, parseConsoleAddress } from '../../controller/console/console-server.ts';
import type { ApiView } from '../../controller/console/mesh-snapshot.ts';
import { parseRemoval, planLines, planRemoval } from '../../controller/console/planner.ts';
import { workloadName, workloadOf } from '../../controller/console/workload.ts';
import type { PodInfo } from '../../controller/pod-source.ts';
import { satisfies } from '../../proto/versions.ts';
import type { SidecarReport__Output } from '../../proto/generated/qbasis/discovery/v1/SidecarReport.ts';

const API = 'shop.orders.v1.OrderService';

test('workloads: the app labels first, else the pod name without the suffixes Kubernetes generates', () => {
  assert.equal(workloadName('checkout-7d9f8b6c5-x2x4z'), 'checkout', 'Deployment: -<pod-template-hash>-<5>');
  assert.equal(workloadName('node-agent-x2x4z'), 'node-agent', 'DaemonSet/Job: -<5>');
  assert.equal(workloadName('db-2'), 'db', 'StatefulSet: -<ordinal>');
  assert.equal(workloadName('orders-alpha'), 'orders-alpha', 'vowels: a hand-written name, kept');
  assert.equal(workloadName('shop-client'), 'shop-client');
  assert.equal(workloadName('x2x4z'), 'x2x4z', 'never cut to nothing');
  assert.deepEqual(workloadOf({ namespace: 'shop', name: 'a-7d9f8b6c5-x2x4z', labels: { app: 'web', 'app.kubernetes.io/name': 'storefront' } }), { namespace: 'shop', name: 'storefront' });
  assert.deepEqual(workloadOf({ namespace: 'shop', name: 'a-7d9f8b6c5-x2x4z', labels: { app: 'web' } }), { namespace: 'shop', name: 'web' });
  assert.deepEqual(workloadOf({ namespace: 'shop', name: 'a-7d9f8b6c5-x2x4z', labels: { app: '' } }), { namespace: 'shop', name: 'a' });
});

function pod(name: string, requires: string | undefined, o: Partial<PodInfo> = {}): PodInfo {
  return { namespace: 'shop', name, uid: name, serviceAccount: 'default', ready: true, deleting: false, labels: { app: 'client' }, annotations: requires === undefined ? {} : { 'qbasis.io/requires': requires }, ...o };
}

test('caller pods: rows per (workload, range); a caller rolling its own range is two rows; invalid, terminating and unannotated pods are no callers', () => {
  const c = new CallerPods();
  const changes: string[][] = [];
  c.on('change', (apis: string[]) => changes.push(apis));
  c.resync([pod('client-1', `${API}@^1.2`), pod('client-2', `${API}@^1.2`, { ready: false }), pod('plain', undefined), pod('broken', 'not an annotation'), pod('going', `${API}@^1.2`, { deleting: true })]);
  assert.deepEqual(c.groups(API), [{ workload: { namespace: 'shop', name: 'client' }, range: '^1.2', pods: ['client-1', 'client-2'], ready: 1 }]);
  c.upsert(pod('client-2', `${API}@^2.0`));
  assert.deepEqual(c.groups(API).map((g) => [g.range, g.pods]), [['^1.2', ['client-1']], ['^2.0', ['client-2']]]);
  const n = changes.length;
  c.upsert(pod('client-2', `${API}@^2.0`));
  assert.equal(changes.length, n, 'the same pod again is no change');
  c.delete({ namespace: 'shop', name: 'client-1' });
  c.delete({ namespace: 'shop', name: 'client-2' });
  assert.deepEqual(c.groups(API), []);
  assert.deepEqual(c.apis(), []);
  assert.deepEqual(c.workloadOf('shop', 'client-7d9f8b6c5-x2x4z'), { namespace: 'shop', name: 'client' }, 'an unknown reporter: from its name');
});

test('bucket rings and spreading: calls made over an interval land in the buckets it covers', () => {
  const r = new BucketRing(4);
  r.add(10, 3);
  r.add(14, 5); // same slot, newer bucket: replaces
  assert.equal(r.at(10), 0);
  assert.equal(r.at(14), 5);
  assert.equal(r.sum(14, 4), 5);
  const got = new Map<number, number>();
  spread(100, 4000, 14_000, 5000, (b, n) => got.set(b, (got.get(b) ?? 0) + n));
  assert.deepEqual([...got], [[0, 10], [1, 50], [2, 40]]);
});

function report(pod: string, runId: string, calls: { version: string; calls: number; range?: string; api?: string }[], runAgeMs = 1000): SidecarReport__Output {
  return { pod, namespace: 'shop', runId, runAgeMs, forwarded: false, mirror: [], calls: calls.map((c) => ({ api: c.api ?? API, version: c.version, range: c.range ?? '^1.2', calls: c.calls, failed: 0 })) };
}

test('call traffic: increases of cumulative reports, per version over 15 min and per caller over a minute; a restart counts again from 0', () => {
  let now = 1_000_000_000_000;
  const t = new CallTraffic({ workloadOf: (ns, p) => ({ namespace: ns, name: p.replace(/-\d$/, '') }), now: () => now });
  assert.equal(t.report(report('client-1', 'a', [{ version: '1.4.0', calls: 100 }])), undefined);
  now += 10_000;
  t.report(report('client-1', 'a', [{ version: '1.4.0', calls: 300 }, { version: '1.5.0', calls: 50 }]));
  t.report(report('client-2', 'b', [{ version: '1.5.0', calls: 10 }]));
  now += 5000;
  const v = t.forApi(API)!;
  const total = (ver: string): number => v.series.find((s) => s.version === ver)!.rates.reduce((a, b) => a + b, 0) * (TRAFFIC_LIMITS.bucketMs / 1000);
  assert.ok(Math.abs(total('1.4.0') - 300) < 0.01, `1.4.0 calls in the series: ${total('1.4.0')}`);
  assert.ok(Math.abs(total('1.5.0') - 60) < 0.01, `1.5.0: ${total('1.5.0')}`);
  const callers = new Map(v.callers.map((c) => [`${c.workload.name} ${c.version}`, c.lastMinute]));
  assert.deepEqual(Object.fromEntries(callers), { 'client 1.4.0': 300, 'client 1.5.0': 60 }, 'two pods of one workload add up');
  t.report(report('client-1', 'a2', [{ version: '1.5.0', calls: 7 }]));
  assert.equal(t.forApi(API)!.callers.find((c) => c.version === '1.5.0')!.lastMinute, 67, 'a new run: its whole count is new');
  assert.equal(t.reporters(), 2);
  now += 16 * 60_000;
  assert.deepEqual(t.gc(), [API], 'nothing for 15 minutes: gone');
  assert.equal(t.forApi(API), undefined);
});

test('call traffic: a run first seen when it is old (this controller restarted) only sets the baseline; its later increases count', () => {
  let now = 1_000_000_000_000;
  const t = new CallTraffic({ workloadOf: (ns, p) => ({ namespace: ns, name: p }), now: () => now });
  t.report(report('old', 'r', [{ version: '1.4.0', calls: 1_000_000 }], 3_600_000));
  assert.equal(t.forApi(API), undefined, 'an hour of calls is not put in one bucket');
  now += 2000;
  t.report(report('old', 'r', [{ version: '1.4.0', calls: 1_000_040 }], 3_602_000));
  assert.equal(t.forApi(API)!.callers[0]!.lastMinute, 40);
  t.report(report('young', 'y', [{ version: '1.4.0', calls: 30 }], 3000));
  assert.equal(t.forApi(API)!.callers.find((c) => c.workload.name === 'young')!.lastMinute, 30, 'a run 3 s old: its calls are placed over its 3 s');
});

test('call traffic: a hostile report is refused whole, with what was wrong', () => {
  const t = new CallTraffic({ workloadOf: (ns, p) => ({ namespace: ns, name: p }) });
  assert.match(t.report(report('p', 'r', [{ version: '1.0.0', calls: 1, api: '<img src=x>' }]))!, /api is not a gRPC service name/);
  assert.match(t.report(report('p', 'r', [{ version: 'latest', calls: 1 }]))!, /not a semantic version/);
  assert.match(t.report(report('p', 'r', [{ version: '1.0.0', calls: 1, range: '^^1' }]))!, /not a semver range/);
  assert.match(t.report(report('p', 'r', [{ version: '1.0.0', calls: -1 }]))!, /not counts/);
  assert.match(t.report(report('p', 'r', Array.from({ length: TRAFFIC_LIMITS.entriesPerReport + 1 }, () => ({ version: '1.0.0', calls: 1 }))))!, /at most 1024/);
  assert.match(t.report({ ...report('p', '', []), runId: '' })!, /run_id/);
  assert.equal(t.apis().length, 0, 'nothing of them was kept');
});

function view(callers: { name: string; range: string; calls?: Record<string, number> }[], versions: Record<string, [number, number]>): ApiView {
  const cols = Object.entries(versions).map(([version, [ready, notReady]]) => ({ version, ready, notReady }));
  return {
    api: API, apiId: '0', revision: 1, versions: cols, policies: [],
    traffic: { startMs: 0, bucketMs: 5000, buckets: 0, series: [] },
    callers: callers.map((c) => ({
      workload: { namespace: 'shop', name: c.name }, range: c.range, pods: ['p'], podsReady: 1, declared: true, policy: null, lastMinute: 0,
      served: cols.some((v) => v.ready > 0 && satisfies(v.version, c.range)),
      cells: cols.map((v) => ({ version: v.version, compatible: satisfies(v.version, c.range), ...(c.calls?.[v.version] === undefined ? {} : { calls: { lastMinute: c.calls[v.version]!, lastCallAt: 1_000_000 } }) })),
    })),
  };
}

test('the planner: removing 1.x strands a ^1.2 caller, not a ^2.0 one; unserved callers are not blamed on the removal; recent callers are listed', () => {
  const versions = { '1.4.0': [2, 0], '1.5.0': [1, 1], '2.0.0': [2, 0] } as Record<string, [number, number]>;
  const before = planRemoval(view([{ name: 'checkout', range: '^1.2', calls: { '1.5.0': 120 } }, { name: 'legacy', range: '^0.9' }], versions), API, '1.x', { now: 1_000_000 + 60_000, withinMinutes: 5 });
  assert.equal(before.safe, false);
  assert.deepEqual(before.stranded.map((c) => c.workload.name), ['checkout']);
  assert.match(before.stranded[0]!.reason, /left after the removal: 2\.0\.0 \(2 ready\), none in \^1\.2/);
  assert.deepEqual(before.unserved.map((c) => c.workload.name), ['legacy']);
  assert.deepEqual(before.stillCalling.map((c) => [c.workload.name, c.versions.map((x) => x.version)]), [['checkout', ['1.5.0']]]);
  assert.deepEqual(before.removed.map((v) => v.version), ['1.4.0', '1.5.0']);
  const after = planRemoval(view([{ name: 'checkout', range: '^2.0' }], versions), API, '1.x', { now: 0, withinMinutes: 5 });
  assert.equal(after.safe, true);
  assert.deepEqual(after.stranded, []);
  assert.ok(planLines(after, 0).some((l) => /Strands no caller/.test(l)));
  const old = planRemoval(view([{ name: 'checkout', range: '^1.2', calls: { '1.5.0': 1 } }], versions), API, '1.x', { now: 1_000_000 + 6 * 60_000, withinMinutes: 5 });
  assert.deepEqual(old.stillCalling, [], 'a call 6 minutes ago is not within 5');
  assert.equal(planRemoval(undefined, API, '1.x', { now: 0, withinMinutes: 5 }).known, false);
  assert.deepEqual(parseRemoval(`${API}@1.x`), { api: API, range: '1.x' });
  assert.match(parseRemoval(`${API}`) as string, /expected API@RANGE/);
  assert.match(parseRemoval(`${API}@^^1`) as string, /not a semver range/);
  assert.match(parseRemoval('<b>@1.x') as string, /the API/);
});

test('the Host rule: the bound address; on a loopback bind localhost and loopback literals on any port (a port-forward); IP literals on a wildcard bind; listed extras; no other name', () => {
  const bound = { host: '127.0.110.1', port: 15014 };
  assert.equal(hostAllowed('127.0.110.1:15014', bound, []), true);
  assert.equal(hostAllowed('evil.example:15014', bound, []), false);
  assert.equal(hostAllowed('127.0.110.1:80', bound, []), true, 'a port-forward\'s local port is not the bound one');
  assert.equal(hostAllowed('127.0.150.5:8014', bound, []), true, 'any loopback literal: qbasis console binds where it is told');
  assert.equal(hostAllowed('[::1]:8014', bound, []), true);
  assert.equal(hostAllowed('10.1.2.3:15014', bound, []), false, 'not loopback: not this console');
  assert.equal(hostAllowed('rebind.example:8014', bound, []), false);
  assert.equal(hostAllowed('localhost.rebind.example:15014', bound, []), false);
  assert.equal(hostAllowed(undefined, bound, []), false);
  assert.equal(hostAllowed('localhost:15014', bound, []), true);
  assert.equal(hostAllowed('127.0.110.1', bound, []), false, 'no port: not what a browser sends to this console');
  assert.equal(hostAllowed('localhost:15014', { host: '127.0.0.1', port: 15014 }, []), true);
  assert.equal(hostAllowed('[::1]:15014', { host: '::1', port: 15014 }, []), true);
  assert.equal(hostAllowed('10.1.2.3:15014', { host: '0.0.0.0', port: 15014 }, []), true);
  assert.equal(hostAllowed('rebind.example:15014', { host: '0.0.0.0', port: 15014 }, []), false);
  assert.equal(hostAllowed('localhost:8014', bound, ['localhost:8014']), true);
  assert.deepEqual(parseConsoleAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.match(parseConsoleAddress('localhost:15014') as string, /IP address/);
  assert.match(parseConsoleAddress('127.0.0.1') as string, /HOST:PORT/);
});
