// npm run bench:controller — the controller in Kubernetes mode at scale, against the real control plane
// (a private one; BENCH_REUSE_CLUSTER=1 uses a running `qbasis cluster up` cluster): 5,000 pods over 500 APIs,
// bound to the kwok node (which makes them Running + Ready with IPs), 1,000 discovery streams.
// Measures: time to first full sync (process start → discovery serving every endpoint; and →
// every BasisService written), pod readiness change → update on every subscribed stream of that API
// (p50, p99, end to end through the API server, plus the controller's own push-latency histogram),
// controller RSS. Writes test/bench/results/controller.json. Not a test: numbers, not assertions.
// Discovery listens on 127.0.63.1 (octet 63 for this file).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { clusterDir, isHealthy, readState } from '../cluster/cluster.ts';
import { harnessFor, useCluster, type TestCluster } from '../harness/use-cluster.ts';
import { KubeClient, loadKubeConfig } from '../../controller/kube/kube-client.ts';
import { discoveryClientConstructor, type GeneratedDiscoveryClient, type Update__Output } from '../../proto/discovery.ts';
import { applyCrds, KWOK_NODE } from '../controller/kube-helpers.ts';
import { onJsonLines, QBASIS_BIN, REPO } from '../fixtures/local-controller.ts';

const PODS = Number(process.env.BENCH_PODS ?? 5000);
const APIS = Number(process.env.BENCH_APIS ?? 500);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 1000);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 200);
const HOST = '127.0.63.1';
/** Node flags for the controller process (e.g. --max-semi-space-size=4); default none, as the chart runs it. */
const CONTROLLER_NODE_OPTIONS = process.env.BENCH_CONTROLLER_NODE_OPTIONS ?? '';
const api = (i: number): string => `bench.svc${i}.v1.Service`;

function log(msg: string): void {
  process.stderr.write(`[bench:controller] ${msg}\n`);
}

async function getCluster(): Promise<{ cluster: TestCluster; reused: boolean }> {
  // A private cluster by default: 5,000 pods should not land in someone else's, nor vanish with it.
  if (process.env.BENCH_REUSE_CLUSTER === '1') {
    const state = readState(clusterDir());
    if (state !== undefined && (await isHealthy(state))) return { cluster: harnessFor(state), reused: true };
  }
  log('starting a private cluster (stopped when the bench exits)');
  return { cluster: await useCluster(), reused: false };
}

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { rss: round(kb('VmRSS') / 1024), hwm: round(kb('VmHWM') / 1024) };
}

interface Stream {
  api: string;
  /** pod → ready */
  eps: Map<string, boolean>;
  snapshot: boolean;
  waiters: Array<() => void>;
}

async function main(): Promise<void> {
  const { cluster, reused } = await getCluster();
  const client = new KubeClient(loadKubeConfig({ kubeconfig: cluster.kubeconfig }));
  await applyCrds(cluster);
  const ns = await cluster.namespace(undefined, 'bench'); // deleted at the end, below

  // 1. Pods, bound to the kwok node, which makes them Running + Ready with an IP.
  const t0 = Date.now();
  const names = Array.from({ length: PODS }, (_, i) => i);
  await pool(names, 32, async (i) => {
    const a = i % APIS;
    const body = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `p-${i}`, namespace: ns, annotations: { 'qbasis.io/provides': `${api(a)}@1.${i % 3}.0` } },
      spec: { nodeName: KWOK_NODE, terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image: 'bench/app:1' }] },
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await client.request('POST', `/api/v1/namespaces/${ns}/pods`, { body });
        return;
      } catch (err) {
        if (attempt > 5) throw err;
        await sleep(200 * (attempt + 1));
      }
    }
  });
  log(`created ${PODS} pods in ${Date.now() - t0} ms; waiting for kwok to make them Running`);
  for (;;) {
    let ready = 0;
    let cont: string | undefined;
    do {
      const page = await client.request<{ items: Array<{ status?: { podIP?: string; conditions?: Array<{ type: string; status: string }> } }>; metadata: { continue?: string } }>(
        'GET',
        `/api/v1/namespaces/${ns}/pods`,
        { query: { limit: 1000, continue: cont } },
      );
      for (const p of page.items) if (p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ready++;
      cont = page.metadata.continue || undefined;
    } while (cont !== undefined);
    if (ready === PODS) break;
    log(`${ready}/${PODS} Running + Ready`);
    await sleep(2000);
  }
  log(`all pods Running + Ready after ${Date.now() - t0} ms`);

  // 2. The controller, as users run it.
  const started = performance.now();
  const proc = spawn(
    process.execPath,
    [
      QBASIS_BIN,
      'controller',
      '--kubeconfig',
      cluster.kubeconfig,
      '--namespaces',
      ns,
      '--discovery-address',
      HOST,
      '--discovery-port',
      '0',
      '--admin-port',
      '0',
      '--lease-namespace',
      ns,
      '--identity',
      'bench',
      '--retry-period-ms',
      '500',
      '--reconcile-workers',
      '8',
    ],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: CONTROLLER_NODE_OPTIONS } },
  );
  let discoveryPort = 0;
  let adminPort = 0;
  let readyAt = 0;
  let syncedAt = 0;
  let listMs = NaN;
  let uptimeAtSync = NaN;
  onJsonLines(proc.stdout!, (line) => {
    const l = line as { msg?: string; port?: number; level?: number; listMs?: number; uptimeMs?: number };
    if (l.msg === 'discovery server listening') discoveryPort = l.port ?? 0;
    if (typeof l.msg === 'string' && l.msg.startsWith('admin server listening')) adminPort = l.port ?? 0;
    if (l.msg === 'pod cache synced') {
      syncedAt = performance.now();
      listMs = l.listMs ?? NaN;
      uptimeAtSync = l.uptimeMs ?? NaN;
    }
    if (l.msg === 'controller ready') readyAt = performance.now();
    if ((l.level ?? 0) >= 50) log(`controller: ${JSON.stringify(line)}`);
  });
  const stopController = async (): Promise<void> => {
    if (proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.on('exit', r));
    proc.kill('SIGTERM');
    await exited;
  };
  try {
    while (readyAt === 0) {
      if (proc.exitCode !== null) throw new Error(`controller exited ${proc.exitCode}`);
      await sleep(5);
    }
    const cacheSyncMs = syncedAt - started;
    const readyMs = readyAt - started;
    log(`controller: pod cache synced ${Math.round(cacheSyncMs)} ms, serving discovery ${Math.round(readyMs)} ms after spawn`);

    // BasisServices: poll until every API has one with 10/10 and Synced=True.
    const perApi = PODS / APIS;
    let bsvcMs = NaN;
    for (;;) {
      const list = await client.request<{ items: Array<{ status?: { ready?: string; conditions?: Array<{ type: string; status: string }> } }> }>(
        'GET',
        `/apis/qbasis.io/v1alpha1/namespaces/${ns}/basisservices`,
      );
      const done = list.items.filter((b) => b.status?.ready === `${perApi}/${perApi}` && b.status.conditions?.some((c) => c.type === 'Synced' && c.status === 'True')).length;
      if (done === APIS) {
        bsvcMs = performance.now() - started;
        break;
      }
      if (performance.now() - started > 600_000) throw new Error(`only ${done}/${APIS} BasisServices after 10 min`);
      await sleep(500); // polling 500 big objects faster would load the API server we measure
    }
    log(`all ${APIS} BasisServices written ${Math.round(bsvcMs)} ms after spawn`);

    // 3. Streams: STREAMS watches over the APIs, spread over 10 channels.
    const Ctor = discoveryClientConstructor();
    const channels: GeneratedDiscoveryClient[] = Array.from({ length: 10 }, (_, i) =>
      new Ctor(`${HOST}:${discoveryPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.channel_id': i } as grpc.ChannelOptions),
    );
    const streams: Stream[] = [];
    const byApi = new Map<string, Stream[]>();
    const calls: grpc.ClientReadableStream<Update__Output>[] = [];
    const tStreams = performance.now();
    for (let i = 0; i < STREAMS; i++) {
      const s: Stream = { api: api(i % APIS), eps: new Map(), snapshot: false, waiters: [] };
      streams.push(s);
      (byApi.get(s.api) ?? byApi.set(s.api, []).get(s.api)!).push(s);
      const call = channels[i % channels.length]!.watch({ api: s.api, namespace: ns, subscriberPod: `bench-${i}`, subscriberNamespace: ns, codecs: [1] });
      calls.push(call);
      call.on('data', (u: Update__Output) => {
        if (u.snapshot) {
          s.eps.clear();
          for (const e of u.snapshot.endpoints) s.eps.set(e.pod, e.ready);
          s.snapshot = true;
        } else if (u.diff) {
          for (const e of [...u.diff.added, ...u.diff.changed]) s.eps.set(e.pod, e.ready);
          for (const r of u.diff.removed) s.eps.delete(r.pod);
        } else if (u.noEndpoints) s.eps.clear();
        for (const w of s.waiters.splice(0)) w();
      });
      call.on('error', () => {});
    }
    while (streams.some((s) => !s.snapshot || s.eps.size !== perApi)) await sleep(10);
    const streamsSnapshotMs = performance.now() - tStreams;
    log(`${STREAMS} streams hold their full snapshot ${Math.round(streamsSnapshotMs)} ms after subscribing`);

    // 4. Readiness changes, one at a time: patch the pod's Ready condition, wait for every stream of its API.
    const latencies: number[] = [];
    const patchRtts: number[] = [];
    for (let k = 0; k < CHANGES; k++) {
      const i = (k * 7919) % PODS;
      const pod = `p-${i}`;
      const subs = byApi.get(api(i % APIS))!;
      const want = !(subs[0]!.eps.get(pod) ?? true);
      const t = performance.now();
      const arrived = Promise.all(
        subs.map(
          (s) =>
            new Promise<void>((resolve) => {
              const check = (): void => {
                if (s.eps.get(pod) === want) resolve();
                else s.waiters.push(check);
              };
              check();
            }),
        ),
      );
      const status = want ? 'True' : 'False';
      await client.request('PATCH', `/api/v1/namespaces/${ns}/pods/${pod}/status`, {
        body: { status: { conditions: [{ type: 'Ready', status }, { type: 'ContainersReady', status }] } },
        contentType: 'application/strategic-merge-patch+json',
      });
      patchRtts.push(performance.now() - t);
      await Promise.race([arrived, sleep(30_000).then(() => Promise.reject(new Error(`change ${k} (${pod}) not seen within 30 s`)))]);
      latencies.push(performance.now() - t);
      await sleep(20);
    }
    latencies.sort((a, b) => a - b);
    patchRtts.sort((a, b) => a - b);
    const mem = rssMb(proc.pid!);
    const metrics = await (await fetch(`http://${HOST}:${adminPort}/metrics`)).text();
    const hist = (q: number): number | undefined => {
      // p-quantile upper bound from the histogram buckets (seconds → ms)
      const buckets = [...metrics.matchAll(/^qbasis_controller_discovery_push_latency_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)].map((m) => ({ le: Number(m[1]), n: Number(m[2]) }));
      const total = buckets.at(-1)?.n ?? 0;
      if (total === 0) return undefined;
      const b = buckets.find((x) => x.n >= q * total);
      return b === undefined ? undefined : b.le * 1000;
    };
    const result = {
      when: new Date().toISOString(),
      machine: '2 cores shared with other engineers’ work; numbers vary',
      cluster: { reused, kubernetes: 'v1.37.2 (local control plane + kwok)' },
      workload: { pods: PODS, apis: APIS, podsPerApi: perApi, streams: STREAMS, readinessChanges: CHANGES },
      firstSync: {
        podCacheSyncedMs: round(cacheSyncMs),
        discoveryServingMs: round(readyMs),
        allBasisServicesWrittenMs: round(bsvcMs),
        podListMs: round(listMs),
        processUptimeAtSyncMs: round(uptimeAtSync),
        note: 'from spawning `qbasis controller` (Node start-up and module loading included) to: the informer holding all pods; discovery serving them; every BasisService showing n/n and Synced=True (polled every 500 ms). podListMs: the paged pod list itself; processUptimeAtSyncMs: the same moment on the controller clock',
      },
      streams: { allSnapshotsMs: round(streamsSnapshotMs) },
      readinessPush: {
        endToEndP50Ms: round(pct(latencies, 50)),
        endToEndP99Ms: round(pct(latencies, 99)),
        endToEndMaxMs: round(latencies.at(-1) ?? NaN),
        patchRoundTripP50Ms: round(pct(patchRtts, 50)),
        patchRoundTripP99Ms: round(pct(patchRtts, 99)),
        controllerP50UpperBoundMs: hist(0.5),
        controllerP99UpperBoundMs: hist(0.99),
        note: 'end to end: PATCH of the pod status sent → the change seen on every stream of that API (API server write + watch + controller + gRPC); controller: registry change → stream write, from its histogram buckets',
      },
      controllerMemory: { rssMb: mem.rss, peakRssMb: mem.hwm, nodeOptions: CONTROLLER_NODE_OPTIONS || '(none)' },
      goals: { fullSyncUnder5s: readyMs < 5000, pushP99Under100ms: pct(latencies, 99) < 100, rssUnder300MB: mem.hwm < 300 },
    };
    for (const c of calls) c.cancel();
    for (const ch of channels) ch.close();
    const out = path.join(REPO, 'test/bench/results', process.env.BENCH_RESULT_FILE ?? 'controller.json');
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    log(`wrote ${out}`);
  } finally {
    await stopController();
    await cluster.kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:controller failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
