// A real local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
// with one fake node, all on loopback, and the real node qbasis-node-0 (node.ts); each a detached
// process whose pid is recorded in the state dir.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, renameSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { apiRequest, type ApiCredentials } from './api-client.ts';
import { ensureTools, formatDuration } from './build.ts';
import { withFileLock } from './file-lock.ts';
import { ensureImages, type ProductImages } from './images.ts';
import { isOurs, startDetached, stopPid, isAlive } from './processes.ts';
import { kwokPortForwardCrd, kwokStagesYaml } from './kwok-stages.ts';
import { CLUSTER_TOOLS, KUBERNETES_VERSION, NODE_TOOLS, cacheRoot } from './versions.ts';
import {
  NODE_COMPONENTS, NODE_IP, REAL_NODE_NAME, SERVICE_CIDR, buildNodeImages, claimNode, containerdReady, createRealNode, drainRealNode, hostProblem,
  clusterDnsArgs, importImages, kubeProxyHealthy, kubeletArgs, prepareNetwork, readClaimDir, sweepNode, writeNodeConfigs, type NodeState,
} from './node.ts';
import { waitUntil } from '../fixtures/wait.ts';

const execFileP = promisify(execFile);

export const NODE_NAME = 'kwok-node-0';
/** Pod IPs come from here: loopback, so local processes can bind what the API shows. */
/**
 * The kwok node's pod range. Two test runs side by side (two worktrees) would hand out the same pod IPs and
 * collide on them: QBASIS_KWOK_POD_CIDR gives a run its own loopback /16.
 */
export const POD_CIDR = kwokPodCidr(process.env['QBASIS_KWOK_POD_CIDR']);

function kwokPodCidr(v: string | undefined): string {
  if (v === undefined || v === '') return '127.1.0.0/16';
  if (!/^127\.(?:[2-9]|[1-9]\d|1\d\d|2[0-4]\d|25[0-5])\.0\.0\/16$/.test(v)) {
    throw new Error(`QBASIS_KWOK_POD_CIDR=${v}: expected a loopback /16 such as 127.2.0.0/16 (127.1.0.0/16 is the default)`);
  }
  return v;
}
export { SERVICE_CIDR, REAL_NODE_NAME };
/** The `kubernetes` Service's cluster IP, the first of the range. */
const SERVICE_IP = '198.19.0.1';

export const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const;
export type Component = (typeof COMPONENTS)[number] | (typeof NODE_COMPONENTS)[number];

/** The components this cluster runs: the control plane and kwok, then the real node's if it has one. */
export function componentsOf(state: ClusterState): Component[] {
  return state.realNode === undefined ? [...COMPONENTS] : [...COMPONENTS, ...NODE_COMPONENTS];
}

export interface ClusterState {
  name: string;
  dir: string;
  toolsBin: string;
  apiUrl: string;
  kubeconfig: string;
  ports: { etcdClient: number; etcdPeer: number; apiserver: number };
  pids: Partial<Record<Component, number>>;
  startedAt: string;
  /** Set once the real node has claimed the host (node.ts); absent with --real-node=false. */
  realNode?: NodeState;
}

export interface ComponentStatus {
  component: Component;
  pid: number | undefined;
  alive: boolean;
}

type Log = (line: string) => void;
const stderrLog: Log = (l) => process.stderr.write(l + '\n');

/** `$QBASIS_CLUSTER_DIR`, else ~/.cache/qbasis/clusters/<name>. */
export function clusterDir(name = 'default'): string {
  const env = process.env['QBASIS_CLUSTER_DIR'];
  if (env !== undefined && env !== '') return resolve(env);
  return join(cacheRoot(), 'clusters', name);
}

export function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

function writeState(state: ClusterState): void {
  const tmp = join(state.dir, 'state.json.tmp');
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, join(state.dir, 'state.json'));
}

export function componentStatus(state: ClusterState): ComponentStatus[] {
  return componentsOf(state).map((c) => {
    const pid = state.pids[c];
    return { component: c, pid, alive: pid !== undefined && isOurs(pid, state.dir) };
  });
}

export function credentials(state: ClusterState): ApiCredentials {
  const pki = join(state.dir, 'pki');
  return {
    url: state.apiUrl,
    ca: readFileSync(join(pki, 'ca.crt'), 'utf8'),
    cert: readFileSync(join(pki, 'admin.crt'), 'utf8'),
    key: readFileSync(join(pki, 'admin.key'), 'utf8'),
  };
}

/** True when every component runs and the API server answers /readyz. */
export async function isHealthy(state: ClusterState): Promise<boolean> {
  if (!componentStatus(state).every((s) => s.alive)) return false;
  try {
    const r = await apiRequest(credentials(state), 'GET', '/readyz', undefined, 3_000);
    return r.status === 200;
  } catch {
    return false;
  }
}

export interface UpOptions {
  dir?: string;
  name?: string;
  log?: Log;
  /** Start qbasis-node-0 (root only, one per machine). Default true. */
  realNode?: boolean;
}

export interface UpResult {
  state: ClusterState;
  alreadyRunning: boolean;
}

export async function up(opts: UpOptions = {}): Promise<UpResult> {
  const log = opts.log ?? stderrLog;
  const name = opts.name ?? 'default';
  const dir = resolve(opts.dir ?? clusterDir(name));
  mkdirSync(dirname(dir), { recursive: true });
  // Two `up`s for the same dir (two terminals, two test files) must not both start a cluster.
  return withFileLock(`${dir}.lock`, () => upLocked(dir, name, log, opts.realNode ?? true), {
    onWait: (pid) => log(`qbasis: waiting for pid ${pid}, which is starting the cluster in ${dir}…`),
  });
}

async function upLocked(dir: string, name: string, log: Log, realNode: boolean): Promise<UpResult> {
  const existing = readState(dir);
  if (existing !== undefined) {
    if (await isHealthy(existing)) {
      if ((existing.realNode !== undefined) !== realNode) {
        throw new Error(`the cluster in ${dir} runs ${existing.realNode === undefined ? 'without' : 'with'} the real node; stop it first (qbasis cluster down) to change that`);
      }
      return { state: existing, alreadyRunning: true };
    }
    log(`qbasis: cluster state in ${dir} is stale or half-started; cleaning it up and starting fresh`);
    await down({ dir, log: () => {} });
  } else if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new Error(`${dir} exists and is not a qbasis cluster (no state.json); expected an empty or missing directory`);
  }

  if (realNode) {
    const problem = await hostProblem();
    if (problem !== undefined) throw new Error(problem);
  }
  const t0 = Date.now();
  const toolsBin = await ensureTools({ log, tools: realNode ? [...CLUSTER_TOOLS, ...NODE_TOOLS] : CLUSTER_TOOLS });
  const tool = (n: string): string => join(toolsBin, n);
  log(`qbasis: tools ready in ${toolsBin} (${formatDuration(Date.now() - t0)})`);
  // The product's image and the test apps' (images.ts): built once per content hash, loaded into the node.
  const images = realNode ? await ensureImages(log) : undefined;

  const t1 = Date.now();
  for (const d of ['pki', 'logs', 'etcd']) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  const pki = join(dir, 'pki');
  const hosts = ['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', SERVICE_IP];
  await execFileP(tool('k8s-tools'), ['pki', 'cluster', '--dir', pki, '--hosts', hosts.join(',')]);

  const [etcdClient, etcdPeer, apiserver, kubelet, kubeletHealthz, proxyHealthz, proxyMetrics, kwokServer] = await freePorts(8);
  const state: ClusterState = {
    name,
    dir,
    toolsBin,
    apiUrl: `https://127.0.0.1:${apiserver}`,
    kubeconfig: join(dir, 'kubeconfig'),
    ports: { etcdClient: etcdClient!, etcdPeer: etcdPeer!, apiserver: apiserver! },
    pids: {},
    startedAt: new Date().toISOString(),
  };
  writeState(state);
  const start = (c: Component, bin: string, args: string[], env?: NodeJS.ProcessEnv): void => {
    state.pids[c] = startDetached(bin, args, join(dir, 'logs', `${c}.log`), env);
    writeState(state);
  };

  try {
    start('etcd', tool('etcd'), [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
    ]);
    await waitOnComponent('etcd to answer /health', 60_000, state, 'etcd', async () => {
      const r = await fetch(`http://127.0.0.1:${etcdClient}/health`).catch(() => undefined);
      return r !== undefined && r.ok && ((await r.json()) as { health?: string }).health === 'true';
    });

    start('kube-apiserver', tool('kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiserver}`,
      // No Endpoints for the `kubernetes` Service: its address would be loopback, which Endpoints refuse.
      '--endpoint-reconciler-type=none',
      `--cert-dir=${join(pki, 'apiserver-generated')}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${join(pki, 'ca.crt')}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      // Node: the real node's kubelet (system:node:qbasis-node-0) gets exactly its own objects.
      '--authorization-mode=Node,RBAC',
      // The defaults already include both webhook plugins; listed so the intent is visible.
      '--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook,NodeRestriction',
      '--allow-privileged=true',
      '--profiling=false',
      '--event-ttl=1h',
      // logs, exec and port-forward on the real node's kubelet, which checks this certificate against the CA.
      `--kubelet-client-certificate=${join(pki, 'apiserver-kubelet-client.crt')}`,
      `--kubelet-client-key=${join(pki, 'apiserver-kubelet-client.key')}`,
      '--kubelet-preferred-address-types=InternalIP',
    ]);
    const creds = credentials(state);
    await waitOnComponent('kube-apiserver to answer /readyz', 120_000, state, 'kube-apiserver', async () => {
      const r = await apiRequest(creds, 'GET', '/readyz', undefined, 3_000).catch(() => undefined);
      return r?.status === 200;
    });

    writeKubeconfig(state.kubeconfig, state.apiUrl, pki, 'admin');
    writeKubeconfig(join(dir, 'kube-controller-manager.kubeconfig'), state.apiUrl, pki, 'kube-controller-manager');
    writeKubeconfig(join(dir, 'kube-scheduler.kubeconfig'), state.apiUrl, pki, 'kube-scheduler');

    start('kube-controller-manager', tool('kube-controller-manager'), [
      `--kubeconfig=${join(dir, 'kube-controller-manager.kubeconfig')}`,
      '--secure-port=0',
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${join(pki, 'sa.key')}`,
      `--root-ca-file=${join(pki, 'ca.crt')}`,
      `--cluster-signing-cert-file=${join(pki, 'ca.crt')}`,
      `--cluster-signing-key-file=${join(pki, 'ca.key')}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // kwok owns node addresses and pod IPs; no CIDR allocation, no cloud.
      '--allocate-node-cidrs=false',
      '--controllers=*,-node-ipam-controller',
      // Its default, /usr/libexec/kubernetes/kubelet-plugins/volume/exec, is made on start: keep it in the cluster dir.
      `--flex-volume-plugin-dir=${join(dir, 'flex-volume')}`,
      '--kube-api-qps=100',
      '--kube-api-burst=200',
    ]);
    start('kube-scheduler', tool('kube-scheduler'), [
      `--kubeconfig=${join(dir, 'kube-scheduler.kubeconfig')}`,
      '--secure-port=0',
      '--leader-elect=false',
    ]);

    const kwokConfig = join(dir, 'kwok.yaml');
    writeFileSync(kwokConfig, await kwokStagesYaml());
    await applyCrd(creds, await kwokPortForwardCrd());
    start('kwok', tool('kwok'), [
      `--kubeconfig=${state.kubeconfig}`,
      `--config=${kwokConfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-ip=127.0.0.1',
      `--node-name=${NODE_NAME}`,
      // Only a fallback: pods take IPs from the node's podCIDR. Never kwok's default 10.0.0.0/24.
      `--cidr=${POD_CIDR}`,
      '--node-lease-duration-seconds=40',
      // The fake node's "kubelet": port-forward to a kwok pod goes where its PortForward object points
      // (a test's process on loopback). The API server verifies no kubelet certificate; any serving one does.
      `--server-address=127.0.0.1:${kwokServer}`,
      `--node-port=${kwokServer}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      '--enable-crds=PortForward',
    ]);

    await createNode(creds);
    await waitOnComponent(`node ${NODE_NAME} to be Ready`, 60_000, state, 'kwok', async () => {
      const r = await apiRequest(creds, 'GET', `/api/v1/nodes/${NODE_NAME}`).catch(() => undefined);
      if (r?.status !== 200) return false;
      const node = JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } };
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    });
    // The controller manager is working once it has made the default ServiceAccount.
    await waitOnComponent('kube-controller-manager to create the default ServiceAccount', 60_000, state, 'kube-controller-manager', async () => {
      const r = await apiRequest(creds, 'GET', '/api/v1/namespaces/default/serviceaccounts/default').catch(() => undefined);
      return r?.status === 200;
    });
    if (realNode) {
      await startRealNode(state, start, creds, { kubelet: kubelet!, kubeletHealthz: kubeletHealthz!, proxyHealthz: proxyHealthz!, proxyMetrics: proxyMetrics! }, images!, log);
    }
    if (!componentStatus(state).every((s) => s.alive)) {
      const dead = componentStatus(state).filter((s) => !s.alive).map((s) => s.component);
      throw new Error(`${dead.join(', ')} exited during start-up; logs: ${join(dir, 'logs')}\n${logTail(state, dead[0]!)}`);
    }
  } catch (err) {
    await stopAll(state, () => {});
    throw err;
  }
  const nodes = state.realNode === undefined ? NODE_NAME : `${NODE_NAME} and ${REAL_NODE_NAME}`;
  log(`qbasis: cluster ${name} up in ${formatDuration(Date.now() - t1)} (Kubernetes ${KUBERNETES_VERSION}, API ${state.apiUrl}, nodes ${nodes})`);
  return { state, alreadyRunning: false };
}

type Starter = (c: Component, bin: string, args: string[], env?: NodeJS.ProcessEnv) => void;

async function startRealNode(state: ClusterState, start: Starter, creds: ApiCredentials, ports: NodeState['ports'], product: ProductImages, log: Log): Promise<void> {
  const t = Date.now();
  const tool = (n: string): string => join(state.toolsBin, n);
  await claimNode(state.dir, log);
  const images = buildNodeImages(state.toolsBin);
  // From here on, stopAll undoes the host changes.
  state.realNode = { ports, images: { pause: images.pause, tinyHttp: images.tinyHttp, qbasis: product.product.ref, testApps: product.testApps.ref } };
  writeState(state);
  await prepareNetwork(state.ports.apiserver);
  start('cluster-dns', process.execPath, clusterDnsArgs(state.dir));
  const pki = join(state.dir, 'pki');
  const p = writeNodeConfigs(state.dir, state.toolsBin, pki, state.realNode);
  writeKubeconfig(p.kubeletKubeconfig, state.apiUrl, pki, 'kubelet');
  writeKubeconfig(p.proxyKubeconfig, state.apiUrl, pki, 'kube-proxy');
  // containerd finds its shim on PATH.
  const env = { ...process.env, PATH: `${state.toolsBin}:/usr/local/sbin:/usr/sbin:/sbin:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
  start('containerd', tool('containerd'), ['--config', p.containerdConfig], env);
  await waitOnComponent('containerd to answer', 60_000, state, 'containerd', () => containerdReady(state.toolsBin));
  await importImages(state.toolsBin, [...images.archives, product.product.archive, product.testApps.archive]);
  await createRealNode(creds);
  start('kube-proxy', tool('kube-proxy'), [`--config=${p.proxyConfig}`], env);
  start('kubelet', tool('kubelet'), kubeletArgs(p), env);
  await waitOnComponent(`node ${REAL_NODE_NAME} to be Ready`, 120_000, state, 'kubelet', async () => {
    const r = await apiRequest(creds, 'GET', `/api/v1/nodes/${REAL_NODE_NAME}`).catch(() => undefined);
    if (r?.status !== 200) return false;
    const node = JSON.parse(r.body) as { status?: { conditions?: { type: string; status: string }[] } };
    return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  });
  await waitOnComponent('kube-proxy to be healthy', 60_000, state, 'kube-proxy', () => kubeProxyHealthy(ports.proxyHealthz));
  log(`qbasis: real node ${REAL_NODE_NAME} Ready in ${formatDuration(Date.now() - t)} (pods ${NODE_IP}/24 on the host's bridge)`);
}

export interface DownOptions {
  dir?: string;
  name?: string;
  log?: Log;
}

/** Stops every recorded process by pid (TERM, then KILL) and removes the state dir. Returns false if there was nothing. */
export async function down(opts: DownOptions = {}): Promise<boolean> {
  const log = opts.log ?? stderrLog;
  const dir = resolve(opts.dir ?? clusterDir(opts.name));
  const state = readState(dir);
  // A real node whose state.json never got written (killed mid-up) still holds the host.
  if (readClaimDir() === dir && state?.realNode === undefined) await sweepNode(log);
  if (state === undefined) {
    if (existsSync(join(dir, 'pki'))) rmSync(dir, { recursive: true, force: true });
    return false;
  }
  await stopAll(state, log);
  rmSync(dir, { recursive: true, force: true });
  return true;
}

async function stopAll(state: ClusterState, log: Log): Promise<void> {
  if (state.realNode !== undefined) {
    // While the API server runs, the kubelet tears its pods down itself (CNI DEL, unmounts).
    if (isOurs(state.pids['kubelet'] ?? -1, state.dir) && isOurs(state.pids['kube-apiserver'] ?? -1, state.dir)) {
      await drainRealNode(credentials(state), log).catch(() => undefined);
    }
    for (const c of ['kubelet', 'kube-proxy', 'cluster-dns'] as const) {
      const pid = state.pids[c];
      if (pid !== undefined && (await stopPid(pid, state.dir)) !== 'not-running') log(`qbasis: stopped ${c} (pid ${pid})`);
    }
    // containerd, its shims and every host change (node.ts); never when another cluster has since taken the node.
    const owner = readClaimDir();
    if (owner === undefined || owner === state.dir) await sweepNode(log);
  }
  // Reverse start order: etcd last, so the API server can shut down cleanly.
  for (const c of [...COMPONENTS].reverse()) {
    const pid = state.pids[c];
    if (pid === undefined) continue;
    const how = await stopPid(pid, state.dir);
    if (how !== 'not-running') log(`qbasis: stopped ${c} (pid ${pid}, ${how})`);
  }
}

async function applyCrd(creds: ApiCredentials, crd: unknown): Promise<void> {
  const name = (crd as { metadata: { name: string } }).metadata.name;
  const r = await apiRequest(creds, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  if (r.status !== 201 && r.status !== 409) throw new Error(`creating CRD ${name} failed: HTTP ${r.status} ${r.body}`);
  await waitUntil(`CRD ${name} established`, async () => {
    const got = await apiRequest(creds, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`).catch(() => undefined);
    const conds = got?.status === 200 ? (JSON.parse(got.body) as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions : undefined;
    return conds?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  }, { timeoutMs: 30_000, intervalMs: 100 });
}

async function createNode(creds: ApiCredentials): Promise<void> {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: NODE_NAME,
      annotations: { 'kwok.x-k8s.io/node': 'fake' },
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': NODE_NAME,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
      },
    },
    spec: { podCIDR: POD_CIDR, podCIDRs: [POD_CIDR] },
    status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: NODE_NAME }] },
  };
  const r = await apiRequest(creds, 'POST', '/api/v1/nodes', node);
  if (r.status !== 201 && r.status !== 409) throw new Error(`creating node ${NODE_NAME} failed: HTTP ${r.status} ${r.body}`);
}

function writeKubeconfig(path: string, server: string, pki: string, user: string): void {
  const b64 = (f: string): string => readFileSync(join(pki, f)).toString('base64');
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: qbasis',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64('ca.crt')}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    client-certificate-data: ${b64(`${user}.crt`)}`,
    `    client-key-data: ${b64(`${user}.key`)}`,
    'contexts:',
    '- name: qbasis',
    '  context:',
    '    cluster: qbasis',
    `    user: ${user}`,
    'current-context: qbasis',
    '',
  ].join('\n');
  writeFileSync(path, text, { mode: 0o600 });
}

/** `waitUntil`, failing at once if `component` exits, with the end of its log in the message. */
async function waitOnComponent(what: string, timeoutMs: number, state: ClusterState, component: Component, check: () => Promise<boolean>): Promise<void> {
  const log = join(state.dir, 'logs', `${component}.log`);
  await waitUntil(what, check, {
    timeoutMs,
    intervalMs: 250,
    abortIf: () => {
      const pid = state.pids[component];
      return pid !== undefined && !isAlive(pid) ? `${component} (pid ${pid}) exited` : undefined;
    },
    detail: () => `${component} log ${log} ends:\n${logTail(state, component)}`,
  });
}

function logTail(state: ClusterState, component: Component, lines = 25): string {
  try {
    return readFileSync(join(state.dir, 'logs', `${component}.log`), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Free loopback ports, held open together so the kernel hands out distinct ones. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, '127.0.0.1', () => res(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

/** The lines `qbasis cluster env` prints. */
export function envLines(state: ClusterState): string[] {
  const lines = [`export KUBECONFIG=${shellQuote(state.kubeconfig)}`, `export PATH=${shellQuote(state.toolsBin)}:"$PATH"`];
  // The product image in the real node's containerd, for `helm install --set image.repository=… image.tag=…`.
  const image = state.realNode?.images.qbasis;
  if (image !== undefined) lines.push(`export QBASIS_IMAGE_REPOSITORY=${shellQuote(image.split(':')[0]!)}`, `export QBASIS_IMAGE_TAG=${shellQuote(image.split(':')[1]!)}`);
  return lines;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

