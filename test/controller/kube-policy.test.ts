// BasisPolicy in Kubernetes mode against the real control plane (test/harness): the controller as a
// process lists and watches BasisPolicies, writes their Accepted condition (InvalidRange, Invalid,
// Conflict, NoSuchAPI) and the ROUTES/MIRROR columns, keeps an invalid policy's last valid spec in
// force (also across a restart), names the applying policy in BasisService status, and streams the
// policy that applies to each subscriber (its namespace's, else the providers').
// The schema's own refusals are in kube-controller.test.ts. Addresses: 127.0.65.x.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestCluster } from '../harness/use-cluster.ts';
import { WatchReader } from '../fixtures/local-controller.ts';
import { pollFor, waitUntil } from '../fixtures/wait.ts';
import type { Policy__Output } from '../../proto/generated/qbasis/discovery/v1/Policy.ts';
import { API_RETRY, createPods, getJson, getTable, kubeTestFile, type KubeController } from './kube-helpers.ts';

const API = 'qbasis.test.policy.v1.Orders';
const BSVC = 'qbasis-test-policy-v1-orders';
let cluster: TestCluster;
const bed = kubeTestFile((c) => (cluster = c));

function controller(ns: string, identity: string, host: string, alsoWatch: string[] = []): Promise<KubeController> {
  return bed.controller({ namespace: ns, alsoWatch, host, identity });
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

interface PolicyObject {
  metadata: { name: string; generation: number; creationTimestamp: string };
  status?: { observedGeneration?: number; conditions?: Condition[]; routes?: number; mirrorTarget?: string; lastValid?: { generation: number; spec: Record<string, unknown> } };
}

function bpol(ns: string, name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'qbasis.io/v1alpha1', kind: 'BasisPolicy', metadata: { name, namespace: ns }, spec });
}

async function apply(manifest: string): Promise<void> {
  await cluster.kubectl(['apply', '-f', '-'], { input: manifest });
}

const provider = (name: string, version = '1.4.0') => ({ name, annotations: { 'qbasis.io/provides': `${API}@${version}` } });

/** The policy object once its Accepted condition satisfies `pred` (for the generation it has then). */
async function accepted(ns: string, name: string, what: string, pred: (c: Condition, o: PolicyObject) => boolean, timeoutMs = 60_000): Promise<{ obj: PolicyObject; cond: Condition }> {
  return pollFor(`${ns}/${name}: ${what}`, async () => {
    const obj = await getJson<PolicyObject>(cluster, ['-n', ns, 'get', 'bpol', name]);
    const cond = obj.status?.conditions?.find((c) => c.type === 'Accepted');
    return cond !== undefined && pred(cond, obj) ? { obj, cond } : undefined;
  }, { ...API_RETRY, timeoutMs });
}

const is = (status: string, reason: string) => (c: Condition, o: PolicyObject) => c.status === status && c.reason === reason && c.observedGeneration === o.metadata.generation;

/** The policy the stream's subscriber holds now: the last one any message carried (null: not told yet). */
function heldPolicy(reader: WatchReader): Policy__Output | null {
  let held: Policy__Output | null = null;
  for (const m of reader.messages) if (m.policy !== null) held = m.policy;
  return held;
}

async function streamPolicy(reader: WatchReader, what: string, pred: (p: Policy__Output) => boolean): Promise<Policy__Output> {
  return pollFor(what, () => {
    if (reader.error) throw new Error(`stream failed: ${reader.error.message}`);
    const p = heldPolicy(reader);
    return p !== null && pred(p) ? p : undefined;
  }, { ...API_RETRY, timeoutMs: 60_000 });
}

test('policies the schema admits but the controller refuses report Accepted=False with InvalidRange or Invalid naming the field, at their generation', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-refuse');
  await createPods(cluster, ns, [provider('orders-1')]);
  await controller(ns, 'refuse-1', '127.0.65.1');
  await apply(bpol(ns, 'bad-range', { api: API, routes: [{ split: [{ versions: '>=1.x.0 <', weight: 1 }] }] }));
  await apply(bpol(ns, 'zero-weights', { api: API, routes: [{ split: [{ versions: '<2.0.0', weight: 0 }, { versions: '>=2.0.0', weight: 0 }] }] }));
  await apply(bpol(ns, 'backoff', { api: API, retry: { attempts: 1, backoff: { base: '1s', max: '100ms' } } }));

  const range = await accepted(ns, 'bad-range', 'InvalidRange', is('False', 'InvalidRange'));
  assert.match(range.cond.message, /spec\.routes\[0\]\.split\[0\]\.versions: '>=1\.x\.0 <' is not a semver range/);
  assert.equal(range.obj.status?.observedGeneration, 1);
  const zero = await accepted(ns, 'zero-weights', 'Invalid', is('False', 'Invalid'));
  assert.match(zero.cond.message, /spec\.routes\[0\]\.split: gives every group weight 0/);
  const backoff = await accepted(ns, 'backoff', 'Invalid', is('False', 'Invalid'));
  assert.match(backoff.cond.message, /spec\.retry\.backoff\.base: base 1000ms is above max 100ms/);
  for (const o of [range.obj, zero.obj, backoff.obj]) {
    assert.equal(o.status?.routes, undefined, 'nothing in force: no route count');
    assert.equal(o.status?.lastValid, undefined, 'never valid: no last valid spec');
  }

  // Another bad edit: a new generation, a new message.
  await apply(bpol(ns, 'bad-range', { api: API, routes: [{ split: [{ versions: '>=3.0.0 <2.0.0', weight: 1 }] }] }));
  const again = await accepted(ns, 'bad-range', 'InvalidRange at generation 2', (c, o) => is('False', 'InvalidRange')(c, o) && o.metadata.generation === 2);
  assert.match(again.cond.message, /spec\.routes\[0\]\.split\[0\]\.versions: '>=3\.0\.0 <2\.0\.0' admits no version/);
  const table = await getTable(cluster, ['-n', ns, 'bpol']);
  for (const row of table.rows) assert.equal(row[table.header.indexOf('ACCEPTED')], 'False', table.text);
});

test('after a valid policy is edited to an invalid one, the last valid spec stays in force on the discovery stream, for a standby started after the edit too, until a valid edit', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-lastgood');
  await createPods(cluster, ns, [provider('orders-1')]);
  const a = await controller(ns, 'lastgood-a', '127.0.65.2');
  await a.waitForLog((l) => l.msg === 'became leader', 60_000, 'a leads');
  const readerA = new WatchReader(a.discoveryTarget, API, ns, ns);
  t.after(() => readerA.close());
  await apply(bpol(ns, 'orders', { api: API, timeout: '2s', routes: [{ split: [{ versions: '^1', weight: 1 }] }] }));
  const first = await streamPolicy(readerA, 'the policy on the stream', (p) => p.name === 'orders');
  assert.deepEqual([first.namespace, first.generation, first.timeoutMs], [ns, 1, 2000]);
  await accepted(ns, 'orders', 'Accepted', is('True', 'Accepted'));

  await apply(bpol(ns, 'orders', { api: API, timeout: '5s', routes: [{ split: [{ versions: '^1 <', weight: 1 }] }] }));
  const refused = await accepted(ns, 'orders', 'InvalidRange at generation 2', (c, o) => is('False', 'InvalidRange')(c, o) && o.metadata.generation === 2);
  assert.match(refused.cond.message, /the last accepted spec \(if any\) stays in force/);
  assert.equal(refused.obj.status?.lastValid?.generation, 1);
  assert.equal(refused.obj.status?.lastValid?.spec['timeout'], '2s');
  assert.equal(refused.obj.status?.routes, 1, 'the ROUTES of the spec in force');
  // A pod change after the refusal makes the stream speak again: the policy it holds is still generation 1.
  await createPods(cluster, ns, [provider('orders-2', '1.5.0')]);
  await pollFor('orders-2 on the stream', () => (readerA.messages.some((m) => m.diff?.added.some((e) => e.pod === 'orders-2')) ? true : undefined), { ...API_RETRY, timeoutMs: 60_000 });
  assert.deepEqual([heldPolicy(readerA)?.generation, heldPolicy(readerA)?.timeoutMs], [1, 2000]);

  // A fresh process that never saw generation 1 reads it back from status.lastValid; as a standby it writes nothing.
  const b = await controller(ns, 'lastgood-b', '127.0.65.3');
  const readerB = new WatchReader(b.discoveryTarget, API, ns, ns);
  t.after(() => readerB.close());
  const restored = await streamPolicy(readerB, 'the restored policy on a new stream', (p) => p.name === 'orders');
  assert.deepEqual([restored.generation, restored.timeoutMs], [1, 2000]);
  assert.equal(readerB.messages[0]?.policy?.generation, 1, 'in the first message: discovery waits for the policy cache');
  await b.waitForLog((l) => l.msg === 'lease holder changed' && l.holder === 'lastgood-a', 60_000, 'b sees a lead');
  assert.deepEqual(b.logs.filter((l) => l.msg === 'BasisPolicy status written'), [], 'a standby writes no status');

  assert.equal(await a.stop('SIGTERM'), 0);
  await b.waitForLog((l) => l.msg === 'became leader', 60_000, 'b takes over');
  await apply(bpol(ns, 'orders', { api: API, timeout: '3s', routes: [{ split: [{ versions: '^1', weight: 1 }] }] }));
  const fixed = await streamPolicy(readerB, 'generation 3 on the stream', (p) => p.generation === 3);
  assert.equal(fixed.timeoutMs, 3000);
  const ok = await accepted(ns, 'orders', 'Accepted at generation 3 by the new leader', (c, o) => is('True', 'Accepted')(c, o) && o.metadata.generation === 3);
  assert.equal(ok.obj.status?.lastValid?.generation, 3);
  assert.ok(b.logs.some((l) => l.msg === 'BasisPolicy status written' && l.key === `${ns}/orders`), 'b wrote it');
});

test('two policies for one API in one namespace: the newer reports Conflict naming the older, and is Accepted once the older is deleted', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-conflict');
  await createPods(cluster, ns, [provider('orders-1')]);
  await controller(ns, 'conflict-1', '127.0.65.4');
  // "zz-older" sorts after "aa-newer": only the creation time can make it the older one.
  await apply(bpol(ns, 'zz-older', { api: API, timeout: '1s' }));
  const older = await accepted(ns, 'zz-older', 'Accepted', is('True', 'Accepted'));
  // creationTimestamp has whole seconds: the next one must fall in a later second
  const olderSecond = Date.parse(older.obj.metadata.creationTimestamp);
  await waitUntil('a later second than the older policy', () => Date.now() >= olderSecond + 1100, { timeoutMs: 5000 });
  await apply(bpol(ns, 'aa-newer', { api: API, timeout: '2s' }));
  const newer = await accepted(ns, 'aa-newer', 'Conflict', is('False', 'Conflict'));
  assert.match(newer.cond.message, /^zz-older, an older BasisPolicy for qbasis\.test\.policy\.v1\.Orders in this namespace, applies instead/);
  const still = await accepted(ns, 'zz-older', 'still Accepted', is('True', 'Accepted'));
  assert.equal(still.cond.lastTransitionTime, older.cond.lastTransitionTime, 'the winner did not flip');
  const bsvc = await pollFor('the BasisService naming the older policy', async () => {
    const o = await getJson<{ status?: { policy?: string } }>(cluster, ['-n', ns, 'get', 'bsvc', BSVC]);
    return o.status?.policy;
  }, API_RETRY);
  assert.equal(bsvc, `${ns}/zz-older`);

  await cluster.kubectl(['-n', ns, 'delete', 'bpol', 'zz-older']);
  await accepted(ns, 'aa-newer', 'Accepted once the older is gone', is('True', 'Accepted'));
});

test('NoSuchAPI until a pod providing the API appears, Accepted while one does, NoSuchAPI again when the last goes', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-nosuch');
  await controller(ns, 'nosuch-1', '127.0.65.5');
  await apply(bpol(ns, 'orders', { api: API }));
  const none = await accepted(ns, 'orders', 'NoSuchAPI', is('False', 'NoSuchAPI'));
  assert.match(none.cond.message, /no pod in the mesh provides qbasis\.test\.policy\.v1\.Orders/);
  assert.equal(none.obj.status?.routes, 0, 'valid, so in force: its route count is written');
  await createPods(cluster, ns, [provider('orders-1')]);
  const ok = await accepted(ns, 'orders', 'Accepted', is('True', 'Accepted'));
  assert.match(ok.cond.message, /^applies to qbasis\.test\.policy\.v1\.Orders/);
  await cluster.kubectl(['-n', ns, 'delete', 'pod', 'orders-1', '--wait=false']);
  await accepted(ns, 'orders', 'NoSuchAPI again', is('False', 'NoSuchAPI'));
});

test('kubectl get bpol prints API, ROUTES, MIRROR, ACCEPTED and AGE with their values, and -o wide the reason', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-columns');
  await createPods(cluster, ns, [provider('orders-1', '1.10.0')]);
  await controller(ns, 'columns-1', '127.0.65.6');
  await apply(bpol(ns, 'orders', {
    api: API,
    routes: [
      { methods: ['Create'], split: [{ versions: '>=1.10.0', weight: 1 }] },
      { split: [{ versions: '<1.10.0', weight: 90 }, { versions: '>=1.10.0', weight: 10 }], mirror: { versions: '>=1.10.0', percent: 5 } },
    ],
  }));
  await apply(bpol(ns, 'broken', { api: API, routes: [{ split: [{ versions: 'one', weight: 1 }] }] }));
  await accepted(ns, 'orders', 'Accepted', is('True', 'Accepted'));
  await accepted(ns, 'broken', 'InvalidRange', is('False', 'InvalidRange'));
  const table = await getTable(cluster, ['-n', ns, 'bpol']);
  assert.deepEqual(table.header, ['NAME', 'API', 'ROUTES', 'MIRROR', 'ACCEPTED', 'AGE'], table.text);
  const row = (name: string) => Object.fromEntries(table.header.map((h, i) => [h, table.rows.find((r) => r[0] === name)?.[i]]));
  assert.deepEqual({ ...row('orders'), AGE: undefined }, { NAME: 'orders', API, ROUTES: '2', MIRROR: '5% >=1.10.0', ACCEPTED: 'True', AGE: undefined }, table.text);
  assert.match(row('orders')['AGE'] ?? '', /^\d+s$/);
  // nothing of it in force: kubectl leaves ROUTES and MIRROR blank
  assert.deepEqual({ ...row('broken'), AGE: undefined }, { NAME: 'broken', API, ROUTES: '', MIRROR: '', ACCEPTED: 'False', AGE: undefined }, table.text);
  const wide = await getTable(cluster, ['-n', ns, 'bpol', '-o', 'wide']);
  assert.equal(wide.rows.find((r) => r[0] === 'broken')?.[wide.header.indexOf('REASON')], 'InvalidRange', wide.text);
  // the category lists them with BasisServices
  assert.match((await cluster.kubectl(['-n', ns, 'get', 'qbasis'])).stdout, /basispolicy\.qbasis\.io\/orders/);
});

test('BasisService status names the policy that applies, and drops it when the policy is deleted', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-bsvc');
  await createPods(cluster, ns, [provider('orders-1')]);
  await controller(ns, 'bsvc-1', '127.0.65.7');
  await waitUntil('the BasisService', async () => (await cluster.kubectl(['-n', ns, 'get', 'bsvc', BSVC], { allowFailure: true })).code === 0, { ...API_RETRY, timeoutMs: 60_000 });
  const policyOf = async () => (await getJson<{ status?: { policy?: string } }>(cluster, ['-n', ns, 'get', 'bsvc', BSVC])).status?.policy;
  assert.equal(await policyOf(), undefined);
  await apply(bpol(ns, 'orders', { api: API, timeout: '1s' }));
  await waitUntil('status.policy written', async () => (await policyOf()) === `${ns}/orders`, { ...API_RETRY, timeoutMs: 60_000 });
  const wide = await getTable(cluster, ['-n', ns, 'bsvc', '-o', 'wide']);
  assert.equal(wide.rows[0]?.[wide.header.indexOf('POLICY')], `${ns}/orders`, wide.text);
  await cluster.kubectl(['-n', ns, 'delete', 'bpol', 'orders']);
  await waitUntil('status.policy removed', async () => (await policyOf()) === undefined, { ...API_RETRY, timeoutMs: 60_000 });
});

test("the discovery stream carries the caller's namespace's policy (consumer), else the providers' (producer)", async (t) => {
  const providers = await cluster.namespace(t, 'bpol-producer');
  const callers = await cluster.namespace(t, 'bpol-consumer');
  const bystanders = await cluster.namespace(t, 'bpol-other');
  await createPods(cluster, providers, [provider('orders-1')]);
  const c = await controller(providers, 'rules-1', '127.0.65.8', [callers, bystanders]);
  await apply(bpol(providers, 'producer', { api: API, timeout: '1s' }));
  await apply(bpol(callers, 'consumer', { api: API, timeout: '2s' }));
  const consumer = new WatchReader(c.discoveryTarget, API, '', callers);
  const other = new WatchReader(c.discoveryTarget, API, '', bystanders);
  t.after(() => {
    consumer.close();
    other.close();
  });
  const mine = await streamPolicy(consumer, "the consumer's policy", (p) => p.name !== '');
  assert.deepEqual([mine.namespace, mine.name, mine.timeoutMs], [callers, 'consumer', 2000]);
  const theirs = await streamPolicy(other, "the producer's policy", (p) => p.name !== '');
  assert.deepEqual([theirs.namespace, theirs.name, theirs.timeoutMs], [providers, 'producer', 1000]);
  assert.equal(other.messages.some((m) => m.policy?.name === 'consumer'), false, "another namespace's consumer policy never applies");
  // the providers' BasisService says which applies to callers there
  await waitUntil('bsvc names the producer policy', async () => {
    const o = await getJson<{ status?: { policy?: string } }>(cluster, ['-n', providers, 'get', 'bsvc', BSVC]);
    return o.status?.policy === `${providers}/producer`;
  }, { ...API_RETRY, timeoutMs: 60_000 });

  await cluster.kubectl(['-n', callers, 'delete', 'bpol', 'consumer']);
  const fallback = await streamPolicy(consumer, "the producer's policy once the consumer's is gone", (p) => p.name === 'producer');
  assert.equal(fallback.namespace, providers);
});

test('a sidecar\'s mirror report reaches the leader and shows in status.mirror (kubectl describe bpol), summed and with the mismatches', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-mirror');
  await createPods(cluster, ns, [provider('orders-1'), provider('orders-2', '1.10.0')]);
  const c = await controller(ns, 'mirror-1', '127.0.65.9');
  await c.waitForLog((l) => l.msg === 'became leader', 60_000, 'leads');
  await apply(bpol(ns, 'orders', { api: API, routes: [{ split: [{ versions: '<1.10.0', weight: 1 }], mirror: { versions: '>=1.10.0', percent: 100 } }] }));
  await accepted(ns, 'orders', 'Accepted', is('True', 'Accepted'));
  // What a caller's sidecar sends every 2 s (sidecar/mirror-reporter.ts), here from a plain gRPC client:
  // the sidecar side is tested in test/sidecar/policy-mirror.test.ts.
  const { discoveryClientConstructor } = await import('../../proto/discovery.ts');
  const grpc = await import('@grpc/grpc-js');
  const Ctor = discoveryClientConstructor();
  const client = new Ctor(c.discoveryTarget, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const sample = { method: 'Create', primaryVersion: '1.4.0', shadowVersion: '1.10.0', primaryStatus: 0, shadowStatus: 0, primaryFrame: '7101:1:30c0:50e8:7d70:104:0:c', shadowFrame: '7101:1:30c0:50e8:7d70:10a:0:d', result: 'payload_mismatch', atUnixMs: Date.now() };
  const send = (pod: string, matched: number, payloadMismatched: number): Promise<void> =>
    new Promise((resolve, reject) =>
      client.report({ pod, namespace: ns, runId: `${pod}-run`, mirror: [{ policyNamespace: ns, policyName: 'orders', api: API, method: 'Create', matched, statusMismatched: 0, payloadMismatched, shadowFailed: 0, dropped: 0, samples: [sample] }] },
        (err) => (err ? reject(err) : resolve())));
  await send('caller-a', 95, 5);
  await send('caller-b', 38, 2);
  const obj = await pollFor('status.mirror', async () => {
    const o = await getJson<{ status?: { mirror?: { compared: number; matched: number; mismatched: number; methods: { method: string; payloadMismatched: number }[]; samples: { kind: string; shadowVersion: string }[] } } }>(cluster, ['-n', ns, 'get', 'bpol', 'orders']);
    return o.status?.mirror?.compared === 140 ? o : undefined;
  }, { ...API_RETRY, timeoutMs: 60_000 });
  const m = obj.status!.mirror!;
  assert.deepEqual([m.matched, m.mismatched], [133, 7]);
  assert.deepEqual(m.methods.map((x) => [x.method, x.payloadMismatched]), [['Create', 7]]);
  assert.equal(m.samples[0]?.kind, 'payload');
  assert.equal(m.samples[0]?.shadowVersion, '1.10.0');
  const described = (await cluster.kubectl(['-n', ns, 'describe', 'bpol', 'orders'])).stdout;
  assert.match(described, /Mirror:[\s\S]*Compared:\s+140[\s\S]*Mismatched:\s+7/);
});

test('a mirror report sent to a standby replica is passed on to the leader, which puts it in status.mirror (only the leader writes)', async (t) => {
  const ns = await cluster.namespace(t, 'bpol-forward');
  await createPods(cluster, ns, [provider('orders-1'), provider('orders-2', '1.10.0')]);
  const leader = await controller(ns, 'forward-leader', '127.0.65.10');
  await leader.waitForLog((l) => l.msg === 'became leader', 60_000, 'leads');
  const standby = await controller(ns, 'forward-standby', '127.0.65.11');
  await apply(bpol(ns, 'orders', { api: API, routes: [{ split: [{ versions: '<1.10.0', weight: 1 }], mirror: { versions: '>=1.10.0', percent: 100 } }] }));
  await accepted(ns, 'orders', 'Accepted', is('True', 'Accepted'));
  const lease = await getJson<{ metadata: { annotations?: Record<string, string> } }>(cluster, ['-n', ns, 'get', 'lease', 'qbasis-controller']);
  assert.equal(lease.metadata.annotations?.['qbasis.io/report-address'], leader.discoveryTarget, 'the leader keeps its address on the Lease');
  const { discoveryClientConstructor } = await import('../../proto/discovery.ts');
  const grpc = await import('@grpc/grpc-js');
  const client = new (discoveryClientConstructor())(standby.discoveryTarget, grpc.credentials.createInsecure());
  t.after(() => client.close());
  await new Promise<void>((resolve, reject) =>
    client.report({ pod: 'caller-x', namespace: ns, runId: 'run-x', mirror: [{ policyNamespace: ns, policyName: 'orders', api: API, method: 'Create', matched: 19, statusMismatched: 1, payloadMismatched: 0, shadowFailed: 0, dropped: 0, samples: [] }] },
      (err) => (err ? reject(err) : resolve())));
  const obj = await pollFor('status.mirror from the forwarded report', async () => {
    const o = await getJson<{ status?: { mirror?: { compared: number; mismatched: number } } }>(cluster, ['-n', ns, 'get', 'bpol', 'orders']);
    return o.status?.mirror?.compared === 20 ? o : undefined;
  }, { ...API_RETRY, timeoutMs: 60_000 });
  assert.equal(obj.status!.mirror!.mismatched, 1);
});
