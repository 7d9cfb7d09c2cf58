// The real node, qbasis-node-0: containerd + runc + the CNI bridge, kubelet and kube-proxy on this host.
// Its pods sit behind bridge qbasis0 on 198.18.0.0/24, Services on 198.19.0.0/16; nothing is masqueraded
// and nothing routes off the machine. The host-wide names (bridge, cgroup, nft table, /run dir) make it one
// per machine; stopNode undoes everything startNode did, and sweepNode clears what a killed run left.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { apiRequest, type ApiCredentials } from './api-client.ts';
import { nodeImages } from './oci-image.ts';
import { isOurs, stopPid } from './processes.ts';
import { toolDir } from './versions.ts';

export const REAL_NODE_NAME = 'qbasis-node-0';
/** The cluster's pod range; this node has the first /24, its bridge the first address. */
export const CLUSTER_POD_CIDR = '198.18.0.0/16';
export const NODE_POD_CIDR = '198.18.0.0/24';
export const NODE_IP = '198.18.0.1';
export const SERVICE_CIDR = '198.19.0.0/16';
export const BRIDGE = 'qbasis0';
/** Short paths for unix sockets (108 bytes), and the claim that makes the node one per machine. */
export const RUN_DIR = '/run/qbasis-node';
const CGROUP_PARENT = 'qbasis';
const NFT_GUARD = 'qbasis';
/** Only pods that tolerate this land here, so kwok's pods (tests, demos) never do. */
export const REAL_NODE_TAINT = { key: 'qbasis.io/real-node', value: 'true', effect: 'NoSchedule' } as const;
export const NODE_COMPONENTS = ['containerd', 'kube-proxy', 'kubelet', 'cluster-dns'] as const;
/** The `kubernetes` Service's ClusterIP (the first of SERVICE_CIDR): pods reach the API server there. */
export const API_SERVICE_IP = '198.19.0.1';
export type NodeComponent = (typeof NODE_COMPONENTS)[number];

// What the kubelet (kernel tunables) and the CNI bridge (ip_forward) change; restored by stopNode.
const SYSCTLS = ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes', 'net/ipv4/ip_forward'];
const CONTAINER_LOG_LINKS = '/var/log/containers';

export interface NodeState {
  ports: { kubelet: number; kubeletHealthz: number; proxyHealthz: number; proxyMetrics: number };
  /** qbasis: the product image (Dockerfile); testApps: it plus test/demo's apps (images.ts). */
  images: { pause: string; tinyHttp: string; qbasis?: string; testApps?: string };
}

/** What a pod spec needs to run on the real node: its taint tolerated and the node selected. */
export function onRealNode<T extends object>(spec: T): T & { nodeSelector: Record<string, string>; tolerations: object[] } {
  return { ...spec, nodeSelector: { 'qbasis.io/real-node': 'true' }, tolerations: [{ key: REAL_NODE_TAINT.key, operator: 'Exists', effect: REAL_NODE_TAINT.effect }] };
}

/** The cluster DNS process's arguments; the node dir on its command line lets sweepNode find it. */
export function clusterDnsArgs(clusterDir: string): string[] {
  return [join(import.meta.dirname, 'cluster-dns.ts'), '--listen', NODE_IP, '--node-dir', join(clusterDir, 'node')];
}

/** What the host looked like before: what to put back. Kept in RUN_DIR so a sweep finds it without the cluster dir. */
interface HostRecord {
  clusterDir: string;
  sysctls: Record<string, string>;
  createdLogLinksDir: boolean;
  /** Of HOST_DEFAULT_DIRS, those that did not exist before: `down` removes them. */
  createdDirs?: string[];
}

/**
 * Paths the kubelet and containerd's CNI use whatever their flags say (the device-plugin socket dir and
 * the volume-plugin dir under /var/lib/kubelet and /usr/libexec/kubernetes, libcni's result cache under
 * /var/lib/cni, and its cni.lock under /etc/cni/net.d although our config dir is elsewhere): made by `up`
 * when missing, so removed by `down` when `up` made them.
 */
const HOST_DEFAULT_DIRS = ['/var/lib/kubelet', '/var/lib/cni', '/usr/libexec/kubernetes', '/etc/cni'];

type Log = (line: string) => void;

async function run(cmd: string, args: string[], opts: { input?: string; allowFailure?: boolean; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      if (code !== 0 && opts.allowFailure !== true) reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${String(stderr).trim().slice(0, 2000)}`));
      else resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Why this host cannot run the real node, with what to do; undefined when it can. */
export async function hostProblem(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the real node needs root (kubelet, containerd, network namespaces); run as root or pass --real-node=false';
  if (!existsSync('/sys/fs/cgroup/memory') && !existsSync('/sys/fs/cgroup/cgroup.controllers')) return 'no cgroup hierarchy under /sys/fs/cgroup; expected cgroup v1 or v2 mounted';
  for (const [bin, pkg] of [['nft', 'nftables'], ['ip', 'iproute2'], ['mount', 'mount']] as const) {
    if ((await run('sh', ['-c', `command -v ${bin}`], { allowFailure: true })).code !== 0) return `'${bin}' is missing; install it: apt-get install -y ${pkg}`;
  }
  return undefined;
}

function readClaim(): HostRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(join(RUN_DIR, 'host.json'), 'utf8').slice(0, 64 * 1024)) as HostRecord;
    return typeof r.clusterDir === 'string' && typeof r.sysctls === 'object' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The cluster dir that holds the real node's claim on this host, if any. */
export function readClaimDir(): string | undefined {
  return readClaim()?.clusterDir;
}

/** Claims the host for this cluster's node; refuses while another live cluster holds it, sweeps a dead one. */
export async function claimNode(clusterDir: string, log: Log): Promise<void> {
  const claim = readClaim();
  if (claim !== undefined && claim.clusterDir !== clusterDir && nodeProcesses(claim.clusterDir).length > 0) {
    throw new Error(`the real node ${REAL_NODE_NAME} already runs for the cluster in ${claim.clusterDir} (one per machine: it owns bridge ${BRIDGE} and ${RUN_DIR}); stop that cluster, or pass --real-node=false`);
  }
  if (claim !== undefined || existsSync(RUN_DIR) || (await linkExists(BRIDGE))) {
    log(`qbasis: clearing what an earlier real node left (${claim?.clusterDir ?? 'unknown cluster'})`);
    await sweepNode(() => {});
  }
  mkdirSync(RUN_DIR, { recursive: true, mode: 0o700 });
  const sysctls: Record<string, string> = {};
  for (const s of SYSCTLS) sysctls[s] = readFileSync(`/proc/sys/${s}`, 'utf8').trim();
  const record: HostRecord = { clusterDir, sysctls, createdLogLinksDir: !existsSync(CONTAINER_LOG_LINKS), createdDirs: HOST_DEFAULT_DIRS.filter((d) => !existsSync(d)) };
  writeFileSync(join(RUN_DIR, 'host.json'), JSON.stringify(record, null, 2) + '\n');
}

/** Live processes whose command line names the cluster dir's node files or RUN_DIR (containerd, its shims, kubelet, kube-proxy). */
function nodeProcesses(clusterDir: string): number[] {
  const markers = [join(clusterDir, 'node'), RUN_DIR];
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    if (markers.some((m) => isOurs(pid, m))) pids.push(pid);
  }
  return pids;
}

async function linkExists(name: string): Promise<boolean> {
  return (await run('ip', ['link', 'show', name], { allowFailure: true })).code === 0;
}

/**
 * Bridge with the node's address, routes that keep 198.18/15 on it, a guard against anything else, the pods'
 * cgroup parent, and the way from pods to the API server (which listens on 127.0.0.1 only).
 */
export async function prepareNetwork(apiPort: number): Promise<void> {
  await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${NODE_IP}/24`, 'dev', BRIDGE]);
  await run('ip', ['link', 'set', BRIDGE, 'up']);
  // Other nodes' pod ranges: unreachable, never the default route. Services: onto the bridge, where
  // kube-proxy's DNAT turns them into pod IPs; an unserved one dies there, not off the machine.
  await run('ip', ['route', 'add', 'unreachable', CLUSTER_POD_CIDR]);
  await run('ip', ['route', 'add', SERVICE_CIDR, 'dev', BRIDGE, 'src', NODE_IP]);
  const guard = [
    `table ip ${NFT_GUARD} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    `    iifname "${BRIDGE}" oifname != "${BRIDGE}" drop`,
    `    oifname "${BRIDGE}" iifname != "${BRIDGE}" drop`,
    '  }',
    '  chain postrouting {',
    '    type filter hook postrouting priority 100; policy accept;',
    `    ip daddr 198.18.0.0/15 oifname != { "${BRIDGE}", "lo" } drop`,
    `    ip saddr 198.18.0.0/15 oifname != { "${BRIDGE}", "lo" } drop`,
    '  }',
    // In-cluster clients (the controller) dial the `kubernetes` Service, which has no endpoints here (the API
    // server's address is loopback): send it to 127.0.0.1 before kube-proxy (dstnat, -100) looks at it.
    '  chain apiserver {',
    '    type nat hook prerouting priority -150; policy accept;',
    `    iifname "${BRIDGE}" ip daddr ${API_SERVICE_IP} tcp dport 443 dnat to 127.0.0.1:${apiPort}`,
    '  }',
    '}',
    '',
  ].join('\n');
  await run('nft', ['-f', '-'], { input: guard });
  // A DNAT to loopback from the bridge needs route_localnet on it; the setting goes with the bridge.
  writeFileSync(`/proc/sys/net/ipv4/conf/${BRIDGE}/route_localnet`, '1');
  for (const h of cgroupHierarchies()) mkdirSync(join(h, CGROUP_PARENT), { recursive: true });
}

/** Every mounted cgroup hierarchy (v1 controllers, v1 named, the v2 unified one). */
function cgroupHierarchies(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(unescapeMount(line.split(' ')[4]!));
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface NodePaths {
  dir: string;
  containerdRoot: string;
  containerdState: string;
  socket: string;
  containerdConfig: string;
  cniConf: string;
  kubeletRoot: string;
  kubeletConfig: string;
  kubeletKubeconfig: string;
  proxyConfig: string;
  proxyKubeconfig: string;
  images: string;
}

export function nodePaths(clusterDir: string): NodePaths {
  const dir = join(clusterDir, 'node');
  return {
    dir,
    containerdRoot: join(dir, 'containerd'),
    containerdState: join(RUN_DIR, 'containerd'),
    socket: join(RUN_DIR, 'containerd.sock'),
    containerdConfig: join(dir, 'containerd.toml'),
    cniConf: join(dir, 'cni', 'net.d'),
    kubeletRoot: join(dir, 'kubelet'),
    kubeletConfig: join(dir, 'kubelet.yaml'),
    kubeletKubeconfig: join(dir, 'kubelet.kubeconfig'),
    proxyConfig: join(dir, 'kube-proxy.yaml'),
    proxyKubeconfig: join(dir, 'kube-proxy.kubeconfig'),
    images: join(dir, 'images'),
  };
}

export function writeNodeConfigs(clusterDir: string, toolsBin: string, pki: string, node: NodeState): NodePaths {
  const p = nodePaths(clusterDir);
  for (const d of [p.dir, p.cniConf, p.kubeletRoot, join(p.dir, 'cni', 'ipam'), join(p.dir, 'pod-logs')]) mkdirSync(d, { recursive: true, mode: 0o700 });
  const q = (s: string): string => JSON.stringify(s);
  writeFileSync(p.containerdConfig, [
    'version = 3',
    `root = ${q(p.containerdRoot)}`,
    `state = ${q(p.containerdState)}`,
    // Nothing we do not use: no NRI socket in /var/run/nri, no /opt/containerd, no other snapshotters.
    'disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
    '[grpc]',
    `  address = ${q(p.socket)}`,
    '[ttrpc]',
    `  address = ${q(`${p.socket}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    "[plugins.'io.containerd.shim.v1.manager']",
    `  socket_dir = ${q(join(RUN_DIR, 's'))}`,
    "[plugins.'io.containerd.cri.v1.images']",
    '  snapshotter = "overlayfs"',
    "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
    // registry.k8s.io/pause cannot be pulled here; ours is imported before the kubelet starts.
    `  sandbox = ${q(node.images.pause)}`,
    "[plugins.'io.containerd.cri.v1.runtime']",
    '  netns_mounts_under_state_dir = true',
    // This VM grants no CAP_SYS_RESOURCE: never ask for an OOM score below containerd's own (0).
    '  restrict_oom_score_adj = true',
    "[plugins.'io.containerd.cri.v1.runtime'.containerd]",
    '  default_runtime_name = "runc"',
    "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]",
    '  runtime_type = "io.containerd.runc.v2"',
    "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]",
    `  BinaryName = ${q(join(toolsBin, 'runc'))}`,
    `  Root = ${q(join(RUN_DIR, 'runc'))}`,
    '  SystemdCgroup = false',
    "[plugins.'io.containerd.cri.v1.runtime'.cni]",
    `  bin_dirs = [${q(toolDir(toolsBin, 'cni-plugins'))}]`,
    `  conf_dir = ${q(p.cniConf)}`,
    '  max_conf_num = 1',
    "[plugins.'io.containerd.grpc.v1.cri']",
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '',
  ].join('\n'));
  writeFileSync(join(p.cniConf, '10-qbasis.conflist'), JSON.stringify({
    cniVersion: '1.0.0',
    name: 'qbasis',
    plugins: [{
      type: 'bridge',
      bridge: BRIDGE,
      isGateway: true,
      // No default route in the pods: they reach pods and Services, nothing else.
      isDefaultGateway: false,
      ipMasq: false,
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: NODE_POD_CIDR, gateway: NODE_IP }]],
        routes: [{ dst: CLUSTER_POD_CIDR }, { dst: SERVICE_CIDR }],
        dataDir: join(p.dir, 'cni', 'ipam'),
      },
    }],
  }, null, 2) + '\n');
  // No DNS here: an empty resolv.conf, never the host's (its servers are off the machine).
  writeFileSync(join(p.dir, 'resolv.conf'), '# qbasis test bed: no DNS\n');
  writeFileSync(p.kubeletConfig, JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // This machine has cgroup v1 hierarchies; 1.37's kubelet still runs there when told to.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${CGROUP_PARENT}`,
    containerRuntimeEndpoint: `unix://${p.socket}`,
    address: NODE_IP,
    port: node.ports.kubelet,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: node.ports.kubeletHealthz,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: join(pki, 'ca.crt') } },
    authorization: { mode: 'Webhook' },
    clusterDomain: 'cluster.local',
    // cluster-dns.ts on the bridge address: Service names resolve in pods, nothing else does.
    clusterDNS: [NODE_IP],
    resolvConf: join(p.dir, 'resolv.conf'),
    podLogsDir: join(p.dir, 'pod-logs'),
    volumePluginDir: join(p.kubeletRoot, 'volume-plugins'),
    // Images come from `ctr import`, not a registry: never collect them, evict only when the disk is really full.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '2%', 'imagefs.available': '2%' },
    failSwapOn: false,
    // No KUBE-IPTABLES-HINT/KUBE-FIREWALL chains where iptables is installed (buildah pulls it in): kube-proxy
    // runs in nftables mode and needs none, and they would outlive the node.
    makeIPTablesUtilChains: false,
    serializeImagePulls: false,
    enableServer: true,
    maxPods: 110,
  }, null, 2) + '\n');
  writeFileSync(p.proxyConfig, JSON.stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'nftables',
    clientConnection: { kubeconfig: p.proxyKubeconfig },
    hostnameOverride: REAL_NODE_NAME,
    bindAddress: NODE_IP,
    healthzBindAddress: `127.0.0.1:${node.ports.proxyHealthz}`,
    metricsBindAddress: `127.0.0.1:${node.ports.proxyMetrics}`,
    nodePortAddresses: [`${NODE_IP}/32`],
    // Leave the host's conntrack settings alone.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s', udpTimeout: '0s', udpStreamTimeout: '0s' },
  }, null, 2) + '\n');
  return p;
}

export function kubeletArgs(p: NodePaths): string[] {
  return ['--oom-score-adj=0', `--config=${p.kubeletConfig}`, `--kubeconfig=${p.kubeletKubeconfig}`, `--root-dir=${p.kubeletRoot}`, `--cert-dir=${join(p.kubeletRoot, 'pki')}`, `--hostname-override=${REAL_NODE_NAME}`, `--node-ip=${NODE_IP}`, '--v=1'];
}

/** Builds (by content hash) and returns the node's images; the pause ref goes into containerd's config. */
export function buildNodeImages(toolsBin: string): NodeState['images'] & { archives: string[] } {
  const imgs = nodeImages(join(toolsBin, 'qbasis-tiny'), join(dirname(toolsBin), 'images'));
  return { pause: imgs.pause.ref, tinyHttp: imgs.tinyHttp.ref, archives: [imgs.pause.archive, imgs.tinyHttp.archive] };
}

export async function ctr(toolsBin: string, args: string[], opts: { allowFailure?: boolean; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(join(toolsBin, 'ctr'), ['--address', join(RUN_DIR, 'containerd.sock'), '--namespace', 'k8s.io', ...args], opts);
}

export async function importImages(toolsBin: string, archives: string[]): Promise<void> {
  for (const a of archives) await ctr(toolsBin, ['images', 'import', '--platform', 'linux/amd64', a], { timeoutMs: 120_000 });
}

/** The Node object before the kubelet registers: its podCIDR (the kubelet does not set one) and the taint. */
export async function createRealNode(creds: ApiCredentials): Promise<void> {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: REAL_NODE_NAME,
      labels: { 'kubernetes.io/hostname': REAL_NODE_NAME, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'qbasis.io/real-node': 'true' },
    },
    spec: { podCIDR: NODE_POD_CIDR, podCIDRs: [NODE_POD_CIDR], taints: [REAL_NODE_TAINT] },
  };
  const r = await apiRequest(creds, 'POST', '/api/v1/nodes', node);
  if (r.status !== 201 && r.status !== 409) throw new Error(`creating node ${REAL_NODE_NAME} failed: HTTP ${r.status} ${r.body.slice(0, 2000)}`);
}

/** Lets the kubelet tear its pods down (CNI DEL, unmounts) before it stops: cordon, delete, wait (bounded). */
export async function drainRealNode(creds: ApiCredentials, log: Log, timeoutMs = 30_000): Promise<void> {
  const sel = `spec.nodeName=${REAL_NODE_NAME}`;
  await apiRequest(creds, 'PATCH', `/api/v1/nodes/${REAL_NODE_NAME}`, { spec: { unschedulable: true } }, 3_000).catch(() => undefined);
  const list = async (): Promise<{ namespace: string; name: string }[]> => {
    const r = await apiRequest(creds, 'GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(sel)}&limit=500`, undefined, 3_000);
    if (r.status !== 200) return [];
    const items = (JSON.parse(r.body.slice(0, 16 << 20)) as { items?: { metadata: { namespace: string; name: string } }[] }).items ?? [];
    return items.map((i) => i.metadata);
  };
  const deadline = Date.now() + timeoutMs;
  let pods = await list().catch(() => []);
  if (pods.length === 0) return;
  log(`qbasis: stopping ${pods.length} pod(s) on ${REAL_NODE_NAME}`);
  for (const p of pods) {
    await apiRequest(creds, 'DELETE', `/api/v1/namespaces/${p.namespace}/pods/${p.name}`, { gracePeriodSeconds: 1 }, 3_000).catch(() => undefined);
  }
  while (Date.now() < deadline) {
    pods = await list().catch(() => []);
    if (pods.length === 0) return;
    await sleep(250);
  }
  log(`qbasis: ${pods.length} pod(s) still on ${REAL_NODE_NAME} after ${timeoutMs / 1000} s; sweeping them`);
}

/**
 * Stops what is left and undoes every host change: containers (through their cgroups), shims, mounts,
 * network namespaces, veths, the bridge and routes, nft tables, cgroups, sysctls, log links, RUN_DIR.
 * Machine-wide by the fixed names, so it also clears a node whose cluster dir is gone.
 */
export async function sweepNode(log: Log): Promise<void> {
  const claim = readClaim();
  const clusterDir = claim?.clusterDir;
  // Containers first, through the pods' cgroups (the kubelet and containerd may already be gone).
  for (let round = 0; round < 20; round++) {
    const pids = cgroupPids();
    if (pids.length === 0) break;
    for (const pid of pids) signal(pid, 'SIGKILL');
    await sleep(100);
  }
  // Shims and anything else started with our sockets or files on its command line.
  const markers = [RUN_DIR, ...(clusterDir === undefined ? [] : [join(clusterDir, 'node')])];
  for (const m of markers) {
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number)) {
      if (pid !== process.pid && isOurs(pid, m)) await stopPid(pid, m, 3_000).catch(() => undefined);
    }
  }
  // Mounts under our dirs (rootfs overlays, netns bind mounts, projected volumes), deepest first.
  const roots = [RUN_DIR, ...(clusterDir === undefined ? [] : [join(clusterDir, 'node')])];
  for (let round = 0; round < 5; round++) {
    const mounts = mountsUnder(roots);
    if (mounts.length === 0) break;
    for (const m of mounts) await run('umount', [m], { allowFailure: true }).then(async (r) => {
      if (r.code !== 0) await run('umount', ['-l', m], { allowFailure: true });
    });
  }
  // Veths left on the bridge (their pod netns may still be held), then the bridge; its routes go with it.
  const ports = await run('ip', ['-o', 'link', 'show', 'master', BRIDGE], { allowFailure: true });
  for (const line of ports.stdout.split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name !== undefined) await run('ip', ['link', 'del', name], { allowFailure: true });
  }
  await run('ip', ['link', 'del', BRIDGE], { allowFailure: true });
  await run('ip', ['route', 'del', 'unreachable', CLUSTER_POD_CIDR], { allowFailure: true });
  for (const t of [['ip', NFT_GUARD], ['ip', 'kube-proxy'], ['ip6', 'kube-proxy']]) await run('nft', ['delete', 'table', ...t], { allowFailure: true });
  removeCgroups();
  if (claim !== undefined) {
    for (const [k, v] of Object.entries(claim.sysctls)) {
      if (!SYSCTLS.includes(k) || !/^-?\d+$/.test(v)) continue;
      try {
        if (readFileSync(`/proc/sys/${k}`, 'utf8').trim() !== v) writeFileSync(`/proc/sys/${k}`, v);
      } catch {}
    }
    removeLogLinks(clusterDir!, claim.createdLogLinksDir);
    for (const d of claim.createdDirs ?? []) if (HOST_DEFAULT_DIRS.includes(d) && mountsUnder([d]).length === 0) rmSync(d, { recursive: true, force: true });
  }
  const left = mountsUnder([RUN_DIR]);
  if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}; remove them by hand before ${RUN_DIR}`);
  rmSync(RUN_DIR, { recursive: true, force: true });
  log('qbasis: real node cleared from the host');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {}
}

/** Visits every directory under the pods' cgroup parent in each hierarchy, children before parents, bounded in depth. */
function walkPodCgroups(visit: (dir: string) => void): void {
  const walk = (d: string, depth: number): void => {
    if (depth > 12) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(d, e.name), depth + 1);
    visit(d);
  };
  for (const h of cgroupHierarchies()) walk(join(h, CGROUP_PARENT), 0);
}

/** Pids in the pods' cgroups (any hierarchy), never our own. */
function cgroupPids(): number[] {
  const out = new Set<number>();
  walkPodCgroups((d) => {
    for (const f of ['cgroup.procs', 'tasks']) {
      try {
        for (const l of readFileSync(join(d, f), 'utf8').split('\n')) if (/^\d+$/.test(l) && Number(l) !== process.pid) out.add(Number(l));
      } catch {}
    }
  });
  return [...out];
}

function removeCgroups(): void {
  walkPodCgroups((d) => {
    try {
      rmdirSync(d);
    } catch {}
  });
}

export function mountsUnder(roots: string[]): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp === undefined) continue;
    const path = unescapeMount(mp);
    if (roots.some((r) => path === r || path.startsWith(r + '/'))) out.push(path);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** The kubelet's /var/log/containers links into our pod-logs dir (that path is fixed in the kubelet). */
function removeLogLinks(clusterDir: string, createdDir: boolean): void {
  const ours = join(clusterDir, 'node');
  try {
    for (const f of readdirSync(CONTAINER_LOG_LINKS)) {
      const p = join(CONTAINER_LOG_LINKS, f);
      try {
        if (readlinkSync(p).startsWith(ours + '/')) unlinkSync(p);
      } catch {}
    }
    if (createdDir && readdirSync(CONTAINER_LOG_LINKS).length === 0 && statSync(CONTAINER_LOG_LINKS).isDirectory()) rmdirSync(CONTAINER_LOG_LINKS);
  } catch {}
}

export async function kubeProxyHealthy(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await r.body?.cancel();
    return r.status === 200;
  } catch {
    return false;
  }
}

export async function containerdReady(toolsBin: string): Promise<boolean> {
  return (await ctr(toolsBin, ['version'], { allowFailure: true, timeoutMs: 5_000 })).code === 0;
}
