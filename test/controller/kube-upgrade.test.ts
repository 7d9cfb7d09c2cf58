// Calls through real sidecars fed by the Kubernetes-mode controller follow a rolling upgrade of a
// Deployment from 1.x to 2.x annotations with 0 misrouted calls. The fake node runs no containers,
// so this file stands in for the kubelet: for every Running pod it starts the echo app and a sidecar
// (node bin/qbasis.ts sidecar) bound to the pod's 127.1.x.x IP, and stops them when the pod goes.
// Addresses: the controller listens on 127.0.64.1 (this file's octet: 64); pods use their kwok IPs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { CLUSTER_START_TIMEOUT_MS, useCluster, type TestCluster } from '../harness/use-cluster.ts';
import { ECHO_API, echoClient, type EchoResponse } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { KubeClient, loadKubeConfig } from '../../controller/kube/kube-client.ts';
import { satisfies } from '../../proto/versions.ts';
import { API_RETRY, applyCrds, createPods, getBsvcTable, startKubeController, type KubeController } from './kube-helpers.ts';
import { pollFor, waitUntil } from '../fixtures/wait.ts';

let cluster: TestCluster;
let controller: KubeController | undefined;

before(async () => {
  cluster = await useCluster();
  await applyCrds(cluster);
}, { timeout: CLUSTER_START_TIMEOUT_MS });

after(async () => {
  await controller?.stop('SIGKILL');
  await stopAll();
});

interface PodObj {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { podIP?: string; phase?: string };
}

/** Starts app + sidecar for each Running `app=echo` pod, stops them when the pod terminates. */
class StandInKubelet {
  readonly #client: KubeClient;
  readonly #ns: string;
  readonly #discovery: string;
  readonly #running = new Map<string, { ip: string; procs: Proc[]; stopping: boolean; stopped: boolean }>();
  #stopped = false;
  #loop: Promise<void> | undefined;
  errors: string[] = [];

  constructor(client: KubeClient, ns: string, discovery: string) {
    this.#client = client;
    this.#ns = ns;
    this.#discovery = discovery;
  }

  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        try {
          await this.#tick();
        } catch (err) {
          this.errors.push(String(err));
        }
        await sleep(150);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await Promise.all([...this.#running.values()].flatMap((r) => r.procs.map((p) => p.stop('SIGKILL'))));
  }

  servingPods(): string[] {
    return [...this.#running].filter(([, r]) => !r.stopping && r.procs.length === 2).map(([n]) => n);
  }

  async #tick(): Promise<void> {
    const list = await this.#client.request<{ items: PodObj[] }>('GET', `/api/v1/namespaces/${this.#ns}/pods`, { query: { labelSelector: 'app=echo' } });
    const live = new Set<string>();
    for (const p of list.items) {
      const name = p.metadata.name;
      const ip = p.status?.podIP;
      if (p.metadata.deletionTimestamp !== undefined || ip === undefined || p.status?.phase !== 'Running') continue;
      live.add(name);
      if (this.#running.has(name)) continue;
      // kwok hands a freed IP to the next pod at once; a real node cannot, since the old pod's network
      // namespace holds it until its containers are gone. Start this pod once the old one has stopped.
      if ([...this.#running.values()].some((r) => r.ip === ip && !r.stopped)) continue;
      const provides = p.metadata.annotations?.['qbasis.io/provides'] ?? '';
      const version = provides.split('@')[1] ?? '0.0.0';
      const entry = { ip, procs: [] as Proc[], stopping: false, stopped: false };
      this.#running.set(name, entry);
      void (async () => {
        try {
          entry.procs.push(await startEcho({ host: ip, port: 50051, name, version }));
          entry.procs.push(await startSidecar({ ip, discovery: this.#discovery, appPort: 50051, provides, podName: name, extra: ['--namespace', this.#ns] }));
        } catch (err) {
          this.errors.push(`${name}: ${String(err)}`);
        }
      })();
    }
    for (const [name, entry] of this.#running) {
      if (live.has(name) || entry.stopping) continue;
      // the pod is terminating or gone: drain as a kubelet would (sidecar SIGTERM finishes in-flight calls)
      entry.stopping = true;
      void (async () => {
        await sleep(1500);
        for (const p of [...entry.procs].reverse()) await p.stop('SIGTERM');
        entry.stopped = true;
      })();
    }
  }
}

interface CallerStats {
  range: string;
  ok: number;
  misrouted: number;
  unavailable: number;
  otherErrors: number;
  servedVersions: Map<string, number>;
  errorSamples: string[];
}

const newStats = (range: string): CallerStats => ({ range, ok: 0, misrouted: 0, unavailable: 0, otherErrors: 0, servedVersions: new Map(), errorSamples: [] });

/** Calls until `until()`, counting into `s` as it goes (so the test can watch it). */
async function callLoop(target: string, s: CallerStats, until: () => boolean): Promise<CallerStats> {
  const client = echoClient(target);
  const range = s.range;
  try {
    for (let i = 0; !until() && i < 20_000; i++) {
      await new Promise<void>((resolve) => {
        client.Unary({ text: `call-${i}`, payload: Buffer.alloc(16) }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: EchoResponse) => {
          if (err) {
            if (err.code === 14) s.unavailable++;
            else s.otherErrors++;
            // Keep the first few of each kind: UNAVAILABLE is expected while no version in range is live.
            const sameKind = s.errorSamples.filter((e) => e.startsWith(`${err.code} `)).length;
            if (sameKind < 3) s.errorSamples.push(`${err.code} ${err.details}`);
          } else {
            const version = res.served_by.split('@')[1] ?? '';
            s.servedVersions.set(version, (s.servedVersions.get(version) ?? 0) + 1);
            if (satisfies(version, range)) s.ok++;
            else s.misrouted++;
          }
          resolve();
        });
      });
      await sleep(40);
    }
  } finally {
    client.close();
  }
  return s;
}

test('calls through sidecars fed by the Kubernetes-mode controller follow a rolling upgrade from 1.x to 2.x with 0 misrouted calls', { timeout: 600_000 }, async (t) => {
  const ns = await cluster.namespace(t, 'kube-upgrade');
  controller = await startKubeController({ cluster, namespace: ns, host: '127.0.64.1', identity: 'upgrade-1' });
  const client = new KubeClient(loadKubeConfig({ kubeconfig: cluster.kubeconfig }));
  const kubelet = new StandInKubelet(client, ns, controller.discoveryTarget);
  t.after(() => kubelet.stop());
  kubelet.start();

  // Two callers: one accepts only 1.x, one only 2.x.
  await createPods(cluster, ns, [
    { name: 'caller-v1', annotations: { 'qbasis.io/requires': `${ECHO_API}@^1.2` } },
    { name: 'caller-v2', annotations: { 'qbasis.io/requires': `${ECHO_API}@^2.0` } },
  ]);
  const ips = await pollFor('caller IPs', async () => {
    const r = await client.request<{ items: PodObj[] }>('GET', `/api/v1/namespaces/${ns}/pods`);
    const m = new Map(r.items.filter((p) => p.status?.podIP).map((p) => [p.metadata.name, p.status!.podIP!]));
    return m.has('caller-v1') && m.has('caller-v2') ? m : undefined;
  }, { ...API_RETRY, timeoutMs: 60_000 });
  const callerSidecars = new Map<string, Proc>();
  for (const [name, range] of [['caller-v1', '^1.2'], ['caller-v2', '^2.0']] as const) {
    callerSidecars.set(range, await startSidecar({ ip: ips.get(name)!, discovery: controller.discoveryTarget, appPort: 50051, requires: `${ECHO_API}@${range}`, podName: name, extra: ['--namespace', ns] }));
  }

  const deployment = (version: string) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace: ns },
    spec: {
      replicas: 3,
      minReadySeconds: 3,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      selector: { matchLabels: { app: 'echo' } },
      template: {
        metadata: { labels: { app: 'echo' }, annotations: { 'qbasis.io/provides': `${ECHO_API}@${version}` } },
        spec: { terminationGracePeriodSeconds: 5, containers: [{ name: 'app', image: `qbasis.test/echo:${version}` }] },
      },
    },
  });
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment('1.4.0')) });
  await waitUntil('3 echo 1.4.0 pods serving', async () => kubelet.servingPods().length === 3, { ...API_RETRY, timeoutMs: 120_000 });
  await pollFor('bsvc shows 3/3 at 1.4.0', async () => {
    const row = (await getBsvcTable(cluster, ns)).rows.find((r) => r.api === ECHO_API);
    return row?.ready === '3/3' && row.versions === '1.4.0' ? true : undefined;
  }, { ...API_RETRY, timeoutMs: 60_000 });

  let done = false;
  const stats = [newStats('^1.2'), newStats('^2.0')] as const;
  const loops = Promise.all([callLoop(`${ips.get('caller-v1')}:15001`, stats[0], () => done), callLoop(`${ips.get('caller-v2')}:15001`, stats[1], () => done)]);
  await sleep(2000);
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(deployment('2.1.0')) });
  await cluster.kubectl(['-n', ns, 'rollout', 'status', 'deployment/echo', '--timeout=300s'], { timeoutMs: 320_000 });
  await pollFor('bsvc shows 3/3 at 2.1.0', async () => {
    const row = (await getBsvcTable(cluster, ns)).rows.find((r) => r.api === ECHO_API);
    return row?.ready === '3/3' && row.versions === '2.1.0' ? true : undefined;
  }, { ...API_RETRY, timeoutMs: 120_000 });
  // kwok reports a pod Ready at once, while the stand-in kubelet may still be starting its processes (on a
  // loaded machine, for many seconds): the rollout can end before 2.x listens. Wait for the processes, then
  // for the 2.x caller's first answer from 2.x, and call a little longer.
  await waitUntil('3 echo 2.1.0 pods serving', async () => kubelet.servingPods().length === 3, { ...API_RETRY, timeoutMs: 120_000 });
  await waitUntil('a 2.x answer for the ^2.0 caller', () => stats[1].ok > 0, { timeoutMs: 60_000, detail: () => JSON.stringify(stats[1].errorSamples) });
  await sleep(3000);
  done = true;
  const [v1, v2] = await loops;
  const describe = (s: CallerStats) =>
    `${s.range}: ok ${s.ok}, misrouted ${s.misrouted}, unavailable ${s.unavailable}, other errors ${s.otherErrors}, served ${JSON.stringify([...s.servedVersions])}, samples ${JSON.stringify(s.errorSamples)}; ` +
    `its sidecar's last log lines: ${JSON.stringify((callerSidecars.get(s.range)?.logs() ?? []).slice(-8).map(({ time, msg, api, err, version, endpoints }) => ({ time, msg, api, err, version, endpoints })))}`;
  t.diagnostic(describe(v1));
  t.diagnostic(describe(v2));
  assert.equal(v1.misrouted, 0, describe(v1));
  assert.equal(v2.misrouted, 0, describe(v2));
  assert.ok(v1.ok > 0 && [...v1.servedVersions.keys()].every((v) => v.startsWith('1.')), describe(v1));
  assert.ok(v2.ok > 0 && [...v2.servedVersions.keys()].every((v) => v.startsWith('2.')), describe(v2));
  // once only 2.x is left, the 1.x caller is told so (UNAVAILABLE), never sent to 2.x
  assert.ok(v1.unavailable > 0, describe(v1));
  assert.deepEqual(kubelet.errors, []);
  // A call the receiving sidecar refused (FAILED_PRECONDITION) never reached an app; anything else would.
  assert.equal(v1.otherErrors, 0, describe(v1));
  assert.equal(v2.otherErrors, 0, describe(v2));
});
