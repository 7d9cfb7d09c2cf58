// The real node qbasis-node-0 in `qbasis cluster up`: a pod from an image built here runs in a network namespace
// on 198.18.0.0/24, answers the host on its pod IP and on its Service IP (198.19.0.0/16) through kube-proxy,
// and `qbasis cluster down` leaves the host exactly as it found it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readState, type ClusterState } from './cluster.ts';
import { ensureTools } from './build.ts';
import { hostInventory, type HostInventory } from './host-inventory.ts';
import { CLUSTER_TOOLS, NODE_TOOLS } from './versions.ts';
import { CLUSTER_START_TIMEOUT_MS } from '../harness/use-cluster.ts';
import { waitForValue } from '../fixtures/wait.ts';

const execFileP = promisify(execFile);
const QBASIS = join(import.meta.dirname, '..', '..', 'bin', 'qbasis.ts');
const root = process.getuid?.() === 0;
const skip = root ? false : 'the real node needs root';

let dir = '';
let env: NodeJS.ProcessEnv = {};
let state: ClusterState;
let before_: HostInventory;
let downDone = false;

const qbasis = (args: string[]): Promise<{ stdout: string; stderr: string }> =>
  execFileP(process.execPath, [QBASIS, ...args], { env, maxBuffer: 16 << 20, timeout: 10 * 60_000 });
const kubectl = async (args: string[], input?: string): Promise<string> => {
  const p = execFileP(join(state.toolsBin, 'kubectl'), args, { env: { ...process.env, KUBECONFIG: state.kubeconfig }, maxBuffer: 16 << 20, timeout: 120_000 });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
};

before(async () => {
  if (!root) return;
  await ensureTools({ tools: [...CLUSTER_TOOLS, ...NODE_TOOLS] });
  const tmp = mkdtempSync(join(tmpdir(), 'qbasis-real-node-'));
  dir = join(tmp, 'cluster');
  env = { ...process.env, QBASIS_CLUSTER_DIR: dir };
  before_ = await hostInventory();
  await qbasis(['cluster', 'up']);
  state = readState(dir)!;
}, { timeout: CLUSTER_START_TIMEOUT_MS });

after(async () => {
  if (!root) return;
  if (!downDone) await qbasis(['cluster', 'down']).catch(() => undefined);
  rmSync(join(dir, '..'), { recursive: true, force: true });
});

test('qbasis-node-0 is a Ready kubelet node beside the kwok node, tainted so only pods that ask for it land there', { skip, timeout: 60_000 }, async () => {
  const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])) as { items: { metadata: { name: string }; spec: { podCIDR?: string; taints?: { key: string }[] }; status: { conditions: { type: string; status: string }[]; nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } } }[] };
  const real = nodes.items.find((n) => n.metadata.name === 'qbasis-node-0');
  assert.ok(real !== undefined, `nodes: ${nodes.items.map((n) => n.metadata.name).join(', ')}`);
  assert.ok(nodes.items.some((n) => n.metadata.name === 'kwok-node-0'));
  assert.ok(real.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'));
  assert.equal(real.spec.podCIDR, '198.18.0.0/24');
  assert.equal(real.status.nodeInfo.kubeletVersion, 'v1.37.2');
  assert.match(real.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\/v?2\./);
  assert.ok(real.spec.taints?.some((t) => t.key === 'qbasis.io/real-node'));
});

test('a pod from an image built here runs on qbasis-node-0 with a 198.18 IP and answers the host on its pod IP and its Service IP', { skip, timeout: 180_000 }, async () => {
  const image = state.realNode!.images.tinyHttp;
  await kubectl(['create', 'namespace', 'real-pod']);
  await kubectl(['apply', '-n', 'real-pod', '-f', '-'], JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: 'tiny', labels: { app: 'tiny' } },
        spec: {
          nodeSelector: { 'qbasis.io/real-node': 'true' },
          tolerations: [{ key: 'qbasis.io/real-node', operator: 'Exists', effect: 'NoSchedule' }],
          containers: [{ name: 'tiny', image, imagePullPolicy: 'Never', ports: [{ containerPort: 8080 }], securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } } }],
        },
      },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'tiny' }, spec: { selector: { app: 'tiny' }, ports: [{ port: 80, targetPort: 8080 }] } },
    ],
  }));
  await kubectl(['wait', '-n', 'real-pod', '--for=condition=Ready', 'pod/tiny', '--timeout=90s']);
  const pod = JSON.parse(await kubectl(['get', '-n', 'real-pod', 'pod', 'tiny', '-o', 'json'])) as { spec: { nodeName: string }; status: { podIP: string } };
  assert.equal(pod.spec.nodeName, 'qbasis-node-0');
  assert.match(pod.status.podIP, /^198\.18\.0\.\d{1,3}$/);
  const get = async (url: string): Promise<string | undefined> => {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      return (await r.text()).slice(0, 1000);
    } catch {
      return undefined;
    }
  };
  const direct = await waitForValue(`http://${pod.status.podIP}:8080/`, () => get(`http://${pod.status.podIP}:8080/`), (v) => v !== undefined, { timeoutMs: 30_000, intervalMs: 250 });
  assert.equal(direct, `qbasis-tiny tiny ${pod.status.podIP}:8080\n`);
  const clusterIP = (await kubectl(['get', '-n', 'real-pod', 'svc', 'tiny', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  assert.match(clusterIP, /^198\.19\.\d{1,3}\.\d{1,3}$/);
  // kube-proxy programs the Service once it sees the EndpointSlice; until then the bridge drops it.
  const viaService = await waitForValue(`http://${clusterIP}/`, () => get(`http://${clusterIP}/`), (v) => v !== undefined, { timeoutMs: 30_000, intervalMs: 250 });
  assert.equal(viaService, direct, 'the Service IP reaches the same pod');
  assert.match(await kubectl(['logs', '-n', 'real-pod', 'tiny']), /serving on :8080/, 'the API server reaches the kubelet for logs');
});

test('qbasis cluster down removes every process, mount, link, route, nft rule, cgroup, file and sysctl change the real node made', { skip, timeout: 180_000 }, async () => {
  const during = await hostInventory();
  assert.ok(during.links.includes('qbasis0'), 'the bridge exists while the node runs');
  assert.ok(during.processes.length >= 3, `node processes while it runs: ${during.processes.join('\n')}`);
  await qbasis(['cluster', 'down']);
  downDone = true;
  const afterDown = await hostInventory();
  assert.deepEqual(afterDown, before_);
});
