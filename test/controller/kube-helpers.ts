// Shared by the kube-*.test.ts files: the CRDs applied once, the controller run as a real process
// in Kubernetes mode, and Pods on the kwok node (which makes them Running + Ready with a 127.1.x.x IP).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before } from 'node:test';
import { CLUSTER_START_TIMEOUT_MS, useCluster, type TestCluster } from '../harness/use-cluster.ts';
import { captureLogs, podManifest, QBASIS_BIN, REPO, type LogLine, type PodObject, type TestPod } from '../fixtures/local-controller.ts';
import type { WaitOptions } from '../fixtures/wait.ts';

export const CRD_DIR = path.join(REPO, 'charts/qbasis/files/crds');
export const KWOK_NODE = 'kwok-node-0';

export async function applyCrds(cluster: TestCluster): Promise<void> {
  await cluster.kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD_DIR]);
  await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/basisservices.qbasis.io', 'crd/basispolicies.qbasis.io']);
}

export interface KubeTestFile {
  /** The harness cluster (from the file's `before` on). */
  readonly cluster: TestCluster;
  /** A controller process, SIGKILLed after the file if still running. */
  controller(o: Omit<StartOptions, 'cluster'>): Promise<KubeController>;
}

/**
 * For a kube-*.test.ts file: registers the `before` that gets the cluster, applies the CRDs and hands
 * the cluster to `ready`, and the `after` that kills the file's controllers.
 */
export function kubeTestFile(ready: (cluster: TestCluster) => void = () => {}): KubeTestFile {
  let cluster: TestCluster | undefined;
  const running: KubeController[] = [];
  before(async () => {
    cluster = await useCluster();
    await applyCrds(cluster);
    ready(cluster);
  }, { timeout: CLUSTER_START_TIMEOUT_MS });
  after(async () => {
    for (const c of running) await c.stop('SIGKILL');
  });
  return {
    get cluster(): TestCluster {
      if (cluster === undefined) throw new Error('the cluster is there from before() on');
      return cluster;
    },
    async controller(o) {
      const c = await startKubeController({ cluster: this.cluster, ...o });
      running.push(c);
      return c;
    },
  };
}

export interface KubeController {
  proc: ChildProcess;
  identity: string;
  logs: LogLine[];
  discoveryTarget: string;
  adminUrl: string;
  stderr(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited(): boolean;
}

export interface StartOptions {
  cluster: TestCluster;
  /** Watched, and the Lease's namespace. */
  namespace: string;
  /** Watched too (beside `namespace`). */
  alsoWatch?: string[];
  /** Loopback address for discovery and admin (pick one per test file). */
  host: string;
  identity: string;
  leaseName?: string;
  args?: string[];
}

/** `node bin/qbasis.ts controller --kubeconfig … --namespaces <ns>`; resolves once 'controller ready' is logged. */
export async function startKubeController(o: StartOptions): Promise<KubeController> {
  const args = [
    QBASIS_BIN,
    'controller',
    '--kubeconfig',
    o.cluster.kubeconfig,
    '--namespaces',
    [o.namespace, ...(o.alsoWatch ?? [])].join(','),
    '--discovery-address',
    o.host,
    '--discovery-port',
    '0',
    '--admin-port',
    '0',
    '--identity',
    o.identity,
    '--lease-namespace',
    o.namespace,
    '--lease-name',
    o.leaseName ?? 'qbasis-controller',
    // short periods so handover is quick in tests (defaults are client-go's 15 s / 10 s / 2 s)
    '--lease-duration-ms',
    '4000',
    '--renew-deadline-ms',
    '3000',
    '--retry-period-ms',
    '500',
    '--resync-ms',
    '5000',
    '--log-level',
    'debug',
    ...(o.args ?? []),
  ];
  const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const { logs, stderr, waitForLog: waitFor } = captureLogs(proc, `${o.identity}: `);
  let done = false;
  const exited = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      done = true;
      resolve(code);
    }),
  );
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 60_000, what = 'log line'): Promise<LogLine> => waitFor(pred, timeoutMs, what);
  await Promise.race([
    waitForLog((l) => l.msg === 'controller ready', 120_000, 'controller ready'),
    exited.then((code) => {
      throw new Error(`controller ${o.identity} exited with ${code} before ready: ${stderr()}`);
    }),
  ]);
  const disc = logs.find((l) => l.msg === 'discovery server listening');
  const admin = logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('admin server listening'));
  return {
    proc,
    identity: o.identity,
    logs,
    discoveryTarget: `${o.host}:${String(disc?.port)}`,
    adminUrl: `http://${o.host}:${String(admin?.port)}`,
    stderr,
    waitForLog,
    exited: () => done,
    async stop(signal = 'SIGTERM') {
      if (!done) proc.kill(signal);
      return exited;
    },
  };
}

/** A pod to create through the API server, bound to the kwok node (which makes it Running + Ready with an IP). */
export function kwokPod(p: TestPod): PodObject {
  const m = podManifest({ image: 'qbasis.test/app:1', ...p });
  m.spec = {
    ...m.spec,
    nodeName: KWOK_NODE,
    terminationGracePeriodSeconds: 0,
    tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
  };
  return m;
}

export async function createPods(cluster: TestCluster, ns: string, pods: Omit<TestPod, 'namespace'>[]): Promise<void> {
  const list = { apiVersion: 'v1', kind: 'List', items: pods.map((p) => kwokPod({ ...p, namespace: ns })) };
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(list) });
}

/** Sets the pod's Ready condition through the status subresource (no kubelet here to undo it). */
export async function setPodReady(cluster: TestCluster, ns: string, name: string, ready: boolean): Promise<void> {
  const status = ready ? 'True' : 'False';
  const patch = { status: { conditions: [{ type: 'Ready', status }, { type: 'ContainersReady', status }] } };
  await cluster.kubectl(['-n', ns, 'patch', 'pod', name, '--subresource=status', '--type=strategic', '-p', JSON.stringify(patch)]);
}

export async function podIPs(cluster: TestCluster, ns: string): Promise<Map<string, string>> {
  const r = await cluster.kubectl(['-n', ns, 'get', 'pods', '-o', 'json']);
  const items = (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string }; status?: { podIP?: string } }> }).items;
  return new Map(items.filter((i) => i.status?.podIP).map((i) => [i.metadata.name, i.status!.podIP!]));
}

/** For polls of the API server: errors (a restart, a conflict) count as "not yet", tries every 250 ms. */
export const API_RETRY = { intervalMs: 250, retryErrors: true } as const satisfies WaitOptions;

export interface BsvcRow {
  name: string;
  api: string;
  versions: string;
  ready: string;
  synced: string;
}

/**
 * `kubectl get <args>` as a user sees it: the header's words, and each row cut at the columns the
 * header starts (kubectl aligns cells left under their header, so a cell may hold spaces).
 */
export async function getTable(cluster: TestCluster, args: string[]): Promise<{ header: string[]; rows: string[][]; text: string }> {
  const r = await cluster.kubectl(['get', ...args]);
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return { header: [], rows: [], text: r.stdout + r.stderr };
  const starts = [...lines[0]!.matchAll(/\S+/g)].map((m) => m.index);
  const header = starts.map((at, i) => lines[0]!.slice(at, starts[i + 1]).trim());
  const rows = lines.slice(1).map((l) => starts.map((at, i) => l.slice(at, starts[i + 1]).trim()));
  return { header, rows, text: r.stdout };
}

/** `kubectl get bsvc` as a user sees it, parsed by its header. */
export async function getBsvcTable(cluster: TestCluster, ns: string): Promise<{ header: string[]; rows: BsvcRow[]; text: string }> {
  const { header, rows, text } = await getTable(cluster, ['-n', ns, 'bsvc']);
  return { header, text, rows: rows.map(([name = '', api = '', versions = '', ready = '', synced = '']) => ({ name, api, versions, ready, synced })) };
}

export async function getJson<T>(cluster: TestCluster, args: string[]): Promise<T> {
  const r = await cluster.kubectl([...args, '-o', 'json']);
  return JSON.parse(r.stdout) as T;
}

export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}
