// `npm run demo:cluster`: the local demo's rolling upgrade on the real control plane.
// `qbasis cluster up` (etcd, kube-apiserver, controller-manager, scheduler, kwok fake node with 127.1.x.x pod
// IPs) → `helm install charts/qbasis` → Deployments created with kubectl, their pods injected by the chart's
// webhook. The fake node runs no containers, so this process stands in for the kubelet: for every Running pod
// it starts the app and the sidecar *the webhook injected* (its env, with the downward-API fields resolved)
// on the pod's IP, and stops them when the pod goes away. The controller (Kubernetes mode + webhook) is a
// local process too, reached by the API server through the chart's dev value webhook.url.
// Addresses: controller on 127.0.62.1 (discovery 15010, admin 18082, webhook 19445); pods on their 127.1.x.x.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { clusterDir, down, up } from '../cluster/cluster.ts';
import { harnessFor } from '../harness/use-cluster.ts';
import type { TestCluster } from '../harness/use-cluster.ts';
import { ORDER_API } from './order-app.ts';
import { newCounts, startLoad, waitFirstCall } from './load.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin/qbasis.ts');
const APP = path.join(import.meta.dirname, 'order-app.ts');
const CHART = path.join(REPO, 'charts/qbasis');
const HOST = '127.0.62.1';
const PORTS = { discovery: 15010, admin: 18082, webhook: 19445 };
const RELEASE = 'qbasis';
const SYSTEM_NS = 'qbasis-system';
const APP_NS = 'shop';
const RANGE = '^1.2';
const APP_PORT = 50051;

const USAGE = `Usage: npm run demo:cluster -- [--duration <s>] [--rps <n>] [--keep-cluster] [--chart <dir>]
  --duration      seconds of load during the rollout (default 60)
  --rps           calls per second from the ${RANGE} client (default 20)
  --keep-cluster  leave the cluster (and the release) running at the end
  --chart         chart directory (default charts/qbasis)`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PodView {
  name: string;
  ip: string;
  phase: string;
  deleting: boolean;
  sidecarEnv: Record<string, string> | undefined;
  version: string | undefined;
}

interface StandIn {
  pod: PodView;
  app?: ChildProcess;
  sidecar?: ChildProcess;
  stopping?: Promise<void>;
}

function deployment(name: string, replicas: number, annotations: Record<string, string>, labels: Record<string, string>): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: APP_NS },
    spec: {
      replicas,
      // The stand-ins need a moment after kwok reports a pod Ready: hold each step of the rollout.
      minReadySeconds: 8,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name, ...labels }, annotations: { 'qbasis.io/inject': 'true', 'qbasis.io/app-port': String(APP_PORT), ...annotations } },
        spec: { terminationGracePeriodSeconds: 5, containers: [{ name: 'app', image: `shop/${name}:demo`, ports: [{ containerPort: APP_PORT }] }] },
      },
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options: { duration: { type: 'string' }, rps: { type: 'string' }, 'keep-cluster': { type: 'boolean' }, chart: { type: 'string' }, help: { type: 'boolean' } } }).values;
  } catch (err) {
    process.stderr.write(`demo:cluster: ${(err as Error).message.split('\n')[0]}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const durationS = Number(values.duration ?? '60');
  const rps = Number(values.rps ?? '20');
  if (!(durationS >= 10 && durationS <= 3600) || !(rps >= 1 && rps <= 500)) {
    process.stderr.write(`demo:cluster: --duration must be 10..3600 s and --rps 1..500\n`);
    return 2;
  }
  const say = (s: string): void => void process.stdout.write(s + '\n');
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbasis-cluster-demo-'));
  const children = new Set<ChildProcess>();
  const spawnLogged = (name: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess => {
    const out = fs.openSync(path.join(logDir, `${name}.log`), 'a');
    const child = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  };
  const stopChild = async (c: ChildProcess | undefined, graceMs: number): Promise<void> => {
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  const onExit = (): void => {
    for (const c of children) c.kill('SIGKILL');
  };
  process.on('exit', onExit);

  let startedCluster = false;
  let cluster: TestCluster | undefined;
  const dir = clusterDir('default');
  let exitCode = 1;
  const standIns = new Map<string, StandIn>();
  let syncing = true;
  try {
    say(`• qbasis cluster up (state in ${dir}; the first run builds Kubernetes from source, 15-40 min)`);
    const started = await up({ dir, name: 'default', log: (l) => say(`  ${l}`) });
    startedCluster = !started.alreadyRunning;
    cluster = harnessFor(started.state);
    const c = cluster;
    const kubectl = (args: string[], input?: string) => c.kubectl(args, input === undefined ? {} : { input });

    for (const ns of [SYSTEM_NS, APP_NS]) {
      await c.kubectl(['create', 'namespace', ns], { allowFailure: true });
    }
    await kubectl(['label', '--overwrite', 'namespace', APP_NS, 'qbasis-demo=enabled']);
    say(`• helm install ${RELEASE} charts/qbasis (webhook.url → the local controller at ${HOST}:${PORTS.webhook})`);
    const helm = await c.helm(
      ['upgrade', '--install', RELEASE, (values.chart as string | undefined) ?? CHART, '--namespace', SYSTEM_NS, '--set', `webhook.url=https://${HOST}:${PORTS.webhook}/mutate`,
        '--set', 'webhook.namespaceSelector.matchLabels.qbasis-demo=enabled', '--set', 'image.tag=demo', '--set', 'webhook.failurePolicy=Fail',
        // The stand-in kubelet mounts no volumes (no projected token, no trust bundle), so the demo runs without mesh identity.
        '--set', 'identity.enabled=false', '--wait', '--timeout', '3m'],
      { timeoutMs: 240_000 },
    );
    say(helm.stdout.split('\n').filter((l) => /^(NAME|STATUS|REVISION):/.test(l)).map((l) => `  ${l}`).join('\n'));

    const cm = await kubectl(['-n', SYSTEM_NS, 'get', 'configmap', `${RELEASE}-injection`, '-o', 'jsonpath={.data.config\\.json}']);
    const injectionConfig = path.join(logDir, 'injection.json');
    fs.writeFileSync(injectionConfig, cm.stdout);
    const controller = spawnLogged(
      'controller',
      [BIN, 'controller', '--kubeconfig', c.kubeconfig, '--namespaces', APP_NS, '--discovery-address', HOST, '--discovery-port', String(PORTS.discovery),
        '--admin-port', String(PORTS.admin), '--lease-name', `${RELEASE}-controller`, '--lease-namespace', SYSTEM_NS, '--identity', 'demo-controller',
        '--webhook-port', String(PORTS.webhook), '--webhook-address', HOST, '--webhook-namespace', SYSTEM_NS, '--webhook-secret', `${RELEASE}-webhook-tls`,
        '--webhook-service', `${RELEASE}-webhook`, '--webhook-config-name', `${RELEASE}-sidecar-injector`, '--webhook-san', HOST,
        '--injection-config', injectionConfig, '--sidecar-discovery', `${HOST}:${PORTS.discovery}`],
      { ...process.env, KUBECONFIG: c.kubeconfig },
    );
    for (let i = 0; ; i++) {
      const ready = await fetch(`http://${HOST}:${PORTS.admin}/ready`).then((r) => r.status === 200, () => false);
      const ca = (await kubectl(['get', 'mutatingwebhookconfiguration', `${RELEASE}-sidecar-injector`, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout;
      if (ready && ca !== '') break;
      if (controller.exitCode !== null || i > 300) throw new Error(`the controller did not become ready (log: ${logDir}/controller.log)`);
      await sleep(200);
    }
    say(`• controller ready (Kubernetes mode, leader, webhook caBundle set); logs in ${logDir}`);

    // The kubelet stand-in: reconcile local processes with the pods the API server shows.
    const readPods = async (): Promise<PodView[]> => {
      const list = JSON.parse((await kubectl(['-n', APP_NS, 'get', 'pods', '-o', 'json'])).stdout) as {
        items: { metadata: { name: string; deletionTimestamp?: string; annotations?: Record<string, string> }; spec: { initContainers?: { name: string; env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }[] }; status: { phase?: string; podIP?: string } }[];
      };
      return list.items.map((p) => {
        const ip = p.status.podIP ?? '';
        const sc = p.spec.initContainers?.find((x) => x.name === 'qbasis-sidecar');
        const fields: Record<string, string> = { 'status.podIP': ip, 'metadata.name': p.metadata.name, 'metadata.namespace': APP_NS };
        const env = sc ? Object.fromEntries((sc.env ?? []).map((e) => [e.name, e.value ?? fields[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? ''])) : undefined;
        const provides = p.metadata.annotations?.['qbasis.io/provides'];
        return { name: p.metadata.name, ip, phase: p.status.phase ?? '', deleting: p.metadata.deletionTimestamp !== undefined, sidecarEnv: env, version: provides?.split('@')[1] };
      });
    };
    const startStandIn = (s: StandIn): void => {
      const { pod } = s;
      if (pod.version !== undefined) s.app = spawnLogged(`${pod.name}-app`, [APP, '--host', pod.ip, '--port', String(APP_PORT), '--pod', pod.name, '--version', pod.version]);
      else s.app = spawnLogged(`${pod.name}-app`, ['-e', `require('node:net').createServer((s) => s.destroy()).listen(${APP_PORT}, '${pod.ip}')`]);
      const env = { ...process.env, ...pod.sidecarEnv, QBASIS_GRACE_PERIOD: '5' };
      s.sidecar = spawnLogged(`${pod.name}-sidecar`, [BIN, 'sidecar'], env);
    };
    const stopStandIn = (s: StandIn): Promise<void> => {
      // The kubelet SIGTERMs the app first and the native sidecar after it; a well-behaved app keeps serving
      // in-flight calls meanwhile. The stand-in app (order-app.ts) exits at once on SIGTERM, so the sidecar
      // drains first (new calls refused, so callers retry elsewhere) and the app goes after it.
      s.stopping ??= (async () => {
        await sleep(1500); // the controller's removal reaches the callers' sidecars first
        await stopChild(s.sidecar, 10_000);
        await stopChild(s.app, 5000);
      })();
      return s.stopping;
    };
    const events = fs.createWriteStream(path.join(logDir, 'kubelet-stand-in.log'));
    const note = (msg: string): void => void events.write(`${new Date().toISOString()} ${msg}\n`);
    const lastPhase = new Map<string, string>();
    const syncLoop = (async () => {
      while (syncing) {
        try {
          const pods = await readPods();
          for (const p of pods) {
            const key = `${p.phase} ${p.ip} ${p.deleting ? 'deleting' : ''}`;
            if (lastPhase.get(p.name) !== key) note(`pod ${p.name}: ${key}`);
            lastPhase.set(p.name, key);
          }
          const seen = new Set<string>();
          for (const p of pods) {
            seen.add(p.name);
            const s = standIns.get(p.name);
            if (p.deleting && s !== undefined) void stopStandIn(s);
            else if (s === undefined && !p.deleting && p.phase === 'Running' && p.ip !== '' && p.sidecarEnv !== undefined) {
              const n: StandIn = { pod: p };
              standIns.set(p.name, n);
              note(`start stand-in ${p.name} on ${p.ip}`);
              startStandIn(n);
            }
          }
          for (const [name, s] of standIns) if (!seen.has(name)) void stopStandIn(s).then(() => standIns.delete(name));
        } catch (err) {
          note(`sync failed: ${(err as Error).message}`); // the API server answers again next round
        }
        await sleep(500);
      }
    })();

    const bsvc = async (when: string): Promise<void> => {
      const r = await c.kubectl(['-n', APP_NS, 'get', 'bsvc'], { allowFailure: true });
      say(`\n$ kubectl -n ${APP_NS} get bsvc      # ${when}\n${(r.stdout || r.stderr).trimEnd()}\n`);
    };

    say(`• kubectl apply: orders (2 × ${ORDER_API}@1.4.0), orders-v2 (1 × 2.0.0), shop-client (requires ${RANGE}); the webhook injects each pod`);
    const manifests = (version: string) => ({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        deployment('orders', 2, { 'qbasis.io/provides': `${ORDER_API}@${version}` }, {}),
        deployment('orders-v2', 1, { 'qbasis.io/provides': `${ORDER_API}@2.0.0` }, {}),
        deployment('shop-client', 1, { 'qbasis.io/requires': `${ORDER_API}@${RANGE}` }, {}),
      ],
    });
    await kubectl(['apply', '-f', '-'], JSON.stringify(manifests('1.4.0')));
    const client = await (async () => {
      for (let i = 0; i < 600; i++) {
        const sc = [...standIns.values()].find((s) => s.pod.name.startsWith('shop-client-'));
        const all = [...standIns.values()].filter((s) => s.pod.version !== undefined).length >= 3;
        if (sc && all) return sc;
        await sleep(200);
      }
      throw new Error('pods did not come up (kubectl -n shop get pods)');
    })();
    const injected = JSON.parse((await kubectl(['-n', APP_NS, 'get', 'pod', client.pod.name, '-o', 'json'])).stdout) as { spec: { initContainers?: { name: string; restartPolicy?: string }[] } };
    say(`  ${client.pod.name} init containers: ${injected.spec.initContainers?.map((x) => `${x.name} (restartPolicy ${x.restartPolicy})`).join(', ')}`);

    const target = `${client.pod.ip}:15001`;
    await waitFirstCall(target, { timeoutMs: 120_000, detail: () => `logs in ${logDir}` });
    await sleep(2000); // let the controller's status writes settle
    await bsvc('before the rollout');

    // Bounded load through the client's sidecar while `kubectl apply` rolls orders to 1.5.0.
    const counts = newCounts();
    const t0 = Date.now();
    const load = startLoad(target, rps, RANGE, counts, { tickMs: 20 });
    const ticker = setInterval(() => {
      const v = [...counts.byVersion].sort().map(([k, n]) => `${k}: ${n}`).join('  ');
      say(`  [${String(Math.round((Date.now() - t0) / 1000)).padStart(3)}s] calls ${counts.calls}  failed ${counts.failed}  misrouted ${counts.misrouted}  │ ${v}`);
    }, 2000);
    await sleep(Math.min(10_000, (durationS * 1000) / 4));
    say('• kubectl apply: orders → 1.5.0 (a real Deployment rollout: new ReplicaSet, maxSurge 1, maxUnavailable 0)');
    await kubectl(['apply', '-f', '-'], JSON.stringify(manifests('1.5.0')));
    await c.kubectl(['-n', APP_NS, 'rollout', 'status', 'deployment/orders', '--timeout=5m'], { timeoutMs: 330_000 });
    // rollout status returns when the new pods are available; the last old pod may still be terminating.
    for (let i = 0; i < 120; i++) {
      const pods = await readPods().catch(() => [] as PodView[]);
      if (!pods.some((p) => p.deleting || p.version === '1.4.0')) break;
      await sleep(500);
    }
    await sleep(2000);
    const left = t0 + durationS * 1000 - Date.now();
    if (left > 0) await sleep(left);
    await load.stop();
    clearInterval(ticker);
    await bsvc('after the rollout');

    say(`calls ${counts.calls}, failed ${counts.failed}, misrouted ${counts.misrouted} (served outside ${RANGE}); by version: ${[...counts.byVersion].sort().map(([k, n]) => `${k}=${n}`).join(' ')}`);
    for (const [e, n] of counts.errors) say(`  error ×${n}: ${e}`);
    const good = counts.calls > 0 && counts.failed === 0 && counts.misrouted === 0;
    say(good ? 'OK: every call landed on a compatible pod during the rollout.' : `FAILED: see above and the logs in ${logDir}`);
    exitCode = good ? 0 : 1;
    syncing = false;
    await syncLoop;
  } catch (err) {
    process.stderr.write(`demo:cluster: ${(err as Error).message}\n`);
    exitCode = 1;
  } finally {
    syncing = false;
    await Promise.all([...standIns.values()].map((s) => Promise.all([stopChild(s.app, 3000), stopChild(s.sidecar, 3000)])));
    for (const ch of [...children]) await stopChild(ch, 5000);
    if (cluster !== undefined && values['keep-cluster'] !== true) {
      await cluster.kubectl(['delete', 'namespace', APP_NS, '--wait=false'], { allowFailure: true });
      await cluster.helm(['uninstall', RELEASE, '--namespace', SYSTEM_NS], { allowFailure: true });
      if (startedCluster) {
        say('• qbasis cluster down (this demo started it; --keep-cluster keeps it)');
        await down({ dir, log: () => {} });
      }
    }
    process.off('exit', onExit);
  }
  return exitCode;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
