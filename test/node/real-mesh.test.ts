// The product as users meet it, on the real node qbasis-node-0: `helm install` of charts/qbasis with the image
// built here from the Dockerfile, the controller in-cluster (2 replicas, leader election, its webhook reached by
// the API server through the Service and kube-proxy), and Deployments whose pods get the sidecar the webhook
// injects, running as real containers. The apps are test/demo's order app and test/node/caller-app.ts (which
// counts every call by the version that served it) from the test-apps image. One cluster for the file, serial.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { down, up, type ClusterState } from '../cluster/cluster.ts';
import { onRealNode } from '../cluster/node.ts';
import { harnessFor, CLUSTER_START_TIMEOUT_MS, type TestCluster } from '../harness/use-cluster.ts';
import { waitForValue, waitUntil } from '../fixtures/wait.ts';
import { ORDER_API } from '../demo/order-app.ts';

const root = process.getuid?.() === 0;
const skip = root ? false : 'the real node needs root';
const CHART = join(import.meta.dirname, '..', '..', 'charts', 'qbasis');
const SYSTEM_NS = 'qbasis-system';
const NS = 'shop';
const APP_PORT = 50051;
const CALLER_PORT = 8081;
const RANGE = '^1.2';

let tmp = '';
let state: ClusterState;
let c: TestCluster;
let testApps = '';

interface Counts { calls: number; ok: number; failed: number; misrouted: number; byVersion: Record<string, number>; errors: Record<string, number> }
interface PodJson {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: { nodeName?: string; initContainers?: { name: string; restartPolicy?: string; image: string; startupProbe?: { httpGet?: { path: string } } }[]; containers: { name: string }[] };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string; lastTransitionTime?: string }[];
    initContainerStatuses?: { name: string; ready: boolean; started?: boolean; state: { running?: { startedAt: string } } }[];
    containerStatuses?: { name: string; ready: boolean; state: { running?: { startedAt: string }; terminated?: { exitCode: number; reason?: string } } }[];
  };
}

const kubectl = async (args: string[], input?: string): Promise<string> => (await c.kubectl(args, input === undefined ? {} : { input })).stdout;
const getJson = async <T>(args: string[]): Promise<T> => JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
const pods = async (selector: string): Promise<PodJson[]> => (await getJson<{ items: PodJson[] }>(['-n', NS, 'get', 'pods', '-l', selector])).items;

/** A Deployment of the test-apps image on the real node, injected; `app` is the app container's command after node. */
function deployment(name: string, replicas: number, annotations: Record<string, string>, app: string[], extra: { labels?: Record<string, string>; command?: string[] } = {}): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...extra.labels }, annotations: { 'qbasis.io/inject': 'true', ...annotations } },
        spec: onRealNode({
          terminationGracePeriodSeconds: 15,
          containers: [{
            name: 'app',
            image: testApps,
            imagePullPolicy: 'Never',
            command: extra.command ?? ['/nodejs/bin/node'],
            args: app,
            env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
          }],
        }),
      },
    },
  };
}

const orderApp = (version: string): string[] => ['test/demo/order-app.ts', '--host', '127.0.0.1', '--port', String(APP_PORT), '--pod', '$(POD_NAME)', '--version', version];
const provider = (name: string, replicas: number, version: string, extra: { command?: string[] } = {}): object =>
  deployment(name, replicas, { 'qbasis.io/provides': `${ORDER_API}@${version}`, 'qbasis.io/app-port': String(APP_PORT) }, orderApp(version), extra);
const caller = (): object =>
  deployment('caller', 1, { 'qbasis.io/requires': `${ORDER_API}@${RANGE}`, 'qbasis.io/app-port': String(CALLER_PORT) }, ['test/node/caller-app.ts', '--range', RANGE, '--port', String(CALLER_PORT)]);

async function apply(...objects: object[]): Promise<void> {
  await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
}

async function callerIP(): Promise<string> {
  return waitForValue('the caller pod to be Ready with an IP', async () => {
    const p = (await pods('app=caller')).find((x) => x.metadata.deletionTimestamp === undefined && x.status.conditions?.some((k) => k.type === 'Ready' && k.status === 'True'));
    return p?.status.podIP;
  }, (ip) => ip !== undefined, { timeoutMs: 120_000, intervalMs: 500 }) as Promise<string>;
}

async function callerDo(path: string, method = 'POST'): Promise<Counts> {
  const r = await fetch(`http://${await callerIP()}:${CALLER_PORT}${path}`, { method, signal: AbortSignal.timeout(90_000) });
  const body = await r.text();
  assert.equal(r.status, 200, `caller ${path}: ${body}`);
  return JSON.parse(body) as Counts;
}

/** Waits until the Deployment's pods are all Ready and no old pod is left. */
async function settled(name: string, replicas: number): Promise<PodJson[]> {
  await kubectl(['-n', NS, 'rollout', 'status', `deployment/${name}`, '--timeout=180s']);
  return waitForValue(`deployment ${name} to have exactly ${replicas} Ready pods`, () => pods(`app=${name}`), (ps) =>
    ps.length === replicas && ps.every((p) => p.metadata.deletionTimestamp === undefined && p.status.conditions?.some((k) => k.type === 'Ready' && k.status === 'True')),
  { timeoutMs: 120_000, intervalMs: 500 });
}

const describeCounts = (k: Counts): string => `calls ${k.calls}, failed ${k.failed}, misrouted ${k.misrouted}, by version ${JSON.stringify(k.byVersion)}, errors ${JSON.stringify(k.errors)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  if (!root) return;
  tmp = mkdtempSync(join(tmpdir(), 'qbasis-real-mesh-'));
  const { state: s } = await up({ dir: join(tmp, 'cluster'), name: 'real-mesh', log: () => {} });
  state = s;
  c = harnessFor(state);
  testApps = state.realNode!.images.testApps!;
  const [repository, tag] = state.realNode!.images.qbasis!.split(':');
  const values = join(tmp, 'values.yaml');
  // The controller on the real node: its taint tolerated, the node selected (the chart's own values).
  writeFileSync(values, JSON.stringify({
    image: { repository, tag, pullPolicy: 'Never' },
    sidecar: { image: { pullPolicy: 'Never' } },
    controller: { nodeSelector: { 'qbasis.io/real-node': 'true' }, tolerations: [{ key: 'qbasis.io/real-node', operator: 'Exists', effect: 'NoSchedule' }] },
    webhook: { failurePolicy: 'Fail' },
  }));
  await c.helm(['install', 'qbasis', CHART, '--namespace', SYSTEM_NS, '--create-namespace', '-f', values, '--wait', '--timeout', '5m'], { timeoutMs: 330_000 });
  await kubectl(['create', 'namespace', NS]);
  await waitUntil('the default ServiceAccount in the app namespace', async () => (await c.kubectl(['-n', NS, 'get', 'serviceaccount', 'default'], { allowFailure: true })).code === 0, { timeoutMs: 60_000, intervalMs: 250 });
  // The webhook writes its caBundle once a replica leads; pods created before that would not be injected.
  await waitUntil('the webhook caBundle', async () => (await kubectl(['get', 'mutatingwebhookconfiguration', 'qbasis-sidecar-injector', '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).length > 100, { timeoutMs: 120_000, intervalMs: 500 });
}, { timeout: CLUSTER_START_TIMEOUT_MS });

after(async () => {
  if (!root) return;
  if (state !== undefined) await down({ dir: state.dir, log: () => {} });
  rmSync(tmp, { recursive: true, force: true });
});

test('helm install runs the controller in-cluster from the image built here: 2 Ready replicas on qbasis-node-0, one holding the Lease', { skip, timeout: 120_000 }, async () => {
  const ctl = (await getJson<{ items: PodJson[] }>(['-n', SYSTEM_NS, 'get', 'pods', '-l', 'app.kubernetes.io/component=controller'])).items;
  assert.equal(ctl.length, 2);
  for (const p of ctl) {
    assert.equal(p.spec.nodeName, 'qbasis-node-0');
    assert.match(p.status.podIP ?? '', /^198\.18\.0\.\d+$/);
    assert.ok(p.status.conditions?.some((k) => k.type === 'Ready' && k.status === 'True'), `${p.metadata.name} Ready`);
  }
  const holder = await waitForValue('a leader in the Lease', async () => (await kubectl(['-n', SYSTEM_NS, 'get', 'lease', 'qbasis-controller', '-o', 'jsonpath={.spec.holderIdentity}'])).trim(), (h) => h !== '', { timeoutMs: 60_000, intervalMs: 500 });
  assert.ok(ctl.some((p) => holder.includes(p.metadata.name)), `holder ${holder} is one of ${ctl.map((p) => p.metadata.name).join(', ')}`);
});

test('an injected Deployment gets a native sidecar that is ready before the app starts, and the pod is Ready only while the sidecar is', { skip, timeout: 300_000 }, async () => {
  // Providers first: orders-v2's app listens only after 6 s, so its sidecar (which checks the app port) is not ready until then.
  await apply(
    provider('orders', 2, '1.4.0'),
    provider('orders-v2', 1, '2.0.0', { command: ['/bin/sh', '-c', 'sleep 6; exec /nodejs/bin/node "$@"', 'app'] }),
    caller(),
  );
  const seen: { sidecarReady: boolean; podReady: boolean; appRunning: boolean }[] = [];
  await waitUntil('orders-v2 to become Ready', async () => {
    const p = (await pods('app=orders-v2'))[0];
    if (p === undefined) return false;
    const sc = p.status.initContainerStatuses?.find((s) => s.name === 'qbasis-sidecar');
    const app = p.status.containerStatuses?.find((s) => s.name === 'app');
    const podReady = p.status.conditions?.some((k) => k.type === 'Ready' && k.status === 'True') ?? false;
    seen.push({ sidecarReady: sc?.ready ?? false, podReady, appRunning: app?.state.running !== undefined });
    return podReady;
  }, { timeoutMs: 120_000, intervalMs: 300 });
  assert.ok(seen.some((s) => s.appRunning && !s.sidecarReady && !s.podReady), `the app ran while the sidecar (waiting for the app port) was not ready, and the pod was not Ready then: ${JSON.stringify(seen.slice(-40))}`);
  assert.ok(seen.every((s) => !s.podReady || s.sidecarReady), 'the pod was never Ready without its sidecar');

  const [callerPod] = await settled('caller', 1);
  const spec = callerPod!.spec;
  assert.deepEqual(spec.initContainers?.map((x) => [x.name, x.restartPolicy]), [['qbasis-sidecar', 'Always']], 'one native sidecar (an init container that keeps running)');
  assert.equal(spec.initContainers![0]!.image, state.realNode!.images.qbasis);
  assert.deepEqual(spec.containers.map((x) => x.name), ['app']);
  const st = callerPod!.status;
  const sidecarStart = Date.parse(st.initContainerStatuses![0]!.state.running!.startedAt);
  const appStart = Date.parse(st.containerStatuses!.find((x) => x.name === 'app')!.state.running!.startedAt);
  assert.ok(sidecarStart <= appStart, `sidecar started ${new Date(sidecarStart).toISOString()}, app ${new Date(appStart).toISOString()}`);
  const atStart = (await fetch(`http://${st.podIP}:${CALLER_PORT}/sidecar-at-start`).then((r) => r.json())) as { ready: string };
  assert.equal(atStart.ready, '200 ready', "the sidecar's /ready when the caller app began");
});

test('calls between real pods: the caller requiring ^1.2 reaches only 1.4.0 among 1.4.0 and 2.0.0 pods, 0 failed, 0 misrouted', { skip, timeout: 300_000 }, async () => {
  await settled('orders', 2);
  await settled('orders-v2', 1);
  await callerDo('/start?rps=20');
  await sleep(8_000);
  const k = await callerDo('/stop');
  assert.ok(k.calls >= 100, describeCounts(k));
  assert.equal(k.failed, 0, describeCounts(k));
  assert.equal(k.misrouted, 0, describeCounts(k));
  assert.deepEqual(Object.keys(k.byVersion), ['1.4.0'], describeCounts(k));
});

test('rolling orders to 1.5.0 under load: a new ReplicaSet replaces both pods, 0 failed, 0 misrouted', { skip, timeout: 400_000 }, async () => {
  await callerDo('/start?rps=20');
  await sleep(2_000);
  await apply(provider('orders', 2, '1.5.0'));
  await settled('orders', 2);
  await sleep(3_000);
  const k = await callerDo('/stop');
  assert.equal(k.failed, 0, describeCounts(k));
  assert.equal(k.misrouted, 0, describeCounts(k));
  assert.ok((k.byVersion['1.4.0'] ?? 0) > 0 && (k.byVersion['1.5.0'] ?? 0) > 0, describeCounts(k));
  const after = await callerDo('/start?rps=20').then(() => sleep(3_000)).then(() => callerDo('/stop'));
  assert.deepEqual(Object.keys(after.byVersion), ['1.5.0'], describeCounts(after));
});

test('scale-down and pod deletion under load: the kubelet stops the pods, their sidecars drain, 0 failed', { skip, timeout: 300_000 }, async () => {
  await kubectl(['-n', NS, 'scale', 'deployment/orders', '--replicas=3']);
  await settled('orders', 3);
  await callerDo('/start?rps=20');
  await sleep(2_000);
  await kubectl(['-n', NS, 'scale', 'deployment/orders', '--replicas=2']);
  await settled('orders', 2);
  const victim = (await pods('app=orders'))[0]!.metadata.name;
  await kubectl(['-n', NS, 'delete', 'pod', victim, '--wait=true', '--timeout=60s']);
  await settled('orders', 2);
  await sleep(2_000);
  const k = await callerDo('/stop');
  assert.ok(k.calls >= 50, describeCounts(k));
  assert.equal(k.failed, 0, describeCounts(k));
  assert.equal(k.misrouted, 0, describeCounts(k));
});
