// `npm run demo:cluster`: the rolling upgrade on the real node, as a platform engineer would run it.
// `qbasis cluster up` (control plane, kwok, and qbasis-node-0 with kubelet + containerd; the images built from
// the Dockerfile) → `helm upgrade --install charts/qbasis` with that image (controller in-cluster, 2 replicas,
// leader election, webhook through its Service) → Deployments applied with kubectl, their pods injected and run
// as real containers: orders (2 × 1.4.0), orders-v2 (2.0.0) and a caller requiring ^1.2 that counts its calls
// (test/node/caller-app.ts). Under load it rolls orders to 1.5.0 and prints `kubectl get bsvc` before and after.
import process from 'node:process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { clusterDir, down, up } from '../cluster/cluster.ts';
import { harnessFor } from '../harness/use-cluster.ts';
import type { TestCluster } from '../harness/use-cluster.ts';
import { ORDER_API } from './order-app.ts';
import { CHART, RANGE, RELEASE, SYSTEM_NS, callerDeployment, callerDo, installChart, isReady, podsOf, providerDeployment } from '../node/mesh-apps.ts';

const APP_NS = 'shop';

const USAGE = `Usage: npm run demo:cluster -- [--duration <s>] [--rps <n>] [--keep-cluster] [--chart <dir>]
  --duration      seconds of load during the rollout (default 60)
  --rps           calls per second from the ${RANGE} caller (default 20)
  --keep-cluster  leave the cluster (and the release) running at the end
  --chart         chart directory (default charts/qbasis)
Needs root (the real node: kubelet, containerd, network namespaces).`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
  if (!(durationS >= 10 && durationS <= 3600) || !(rps >= 1 && rps <= 200)) {
    process.stderr.write(`demo:cluster: --duration must be 10..3600 s and --rps 1..200\n`);
    return 2;
  }
  const say = (s: string): void => void process.stdout.write(s + '\n');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbasis-cluster-demo-'));
  let startedCluster = false;
  let cluster: TestCluster | undefined;
  const dir = clusterDir('default');
  let exitCode = 1;
  try {
    say(`• qbasis cluster up (state in ${dir}; the first run builds Kubernetes, the node's tools and the images, 20-45 min)`);
    const started = await up({ dir, name: 'default', log: (l) => say(`  ${l}`) });
    startedCluster = !started.alreadyRunning;
    if (started.state.realNode === undefined) throw new Error(`the cluster in ${dir} runs without the real node; stop it (npx qbasis cluster down) and run the demo again`);
    const c = harnessFor(started.state);
    cluster = c;
    const image = started.state.realNode.images.testApps!;
    const kubectl = (args: string[], input?: string) => c.kubectl(args, input === undefined ? {} : { input });

    say(`• helm upgrade --install ${RELEASE} charts/qbasis -n ${SYSTEM_NS} (image ${started.state.realNode.images.qbasis}, pullPolicy Never, controller on qbasis-node-0)`);
    await installChart(c, started.state, workDir, (values.chart as string | undefined) ?? CHART);
    const ctl = await podsOf(c, SYSTEM_NS, 'app.kubernetes.io/component=controller');
    say(`  controller pods: ${ctl.map((p) => `${p.metadata.name} (${p.status.podIP})`).join(', ')}`);
    await c.kubectl(['create', 'namespace', APP_NS], { allowFailure: true });
    for (let i = 0; (await c.kubectl(['-n', APP_NS, 'get', 'serviceaccount', 'default'], { allowFailure: true })).code !== 0; i++) {
      if (i > 120) throw new Error(`namespace ${APP_NS} has no default ServiceAccount`);
      await sleep(250);
    }

    say(`• kubectl apply: orders (2 × ${ORDER_API}@1.4.0), orders-v2 (1 × 2.0.0), caller (requires ${RANGE}); the webhook injects each pod`);
    const manifests = (version: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      providerDeployment(APP_NS, 'orders', 2, version, image),
      providerDeployment(APP_NS, 'orders-v2', 1, '2.0.0', image),
      callerDeployment(APP_NS, image),
    ] });
    await kubectl(['apply', '-f', '-'], manifests('1.4.0'));
    for (const d of ['orders', 'orders-v2', 'caller']) await c.kubectl(['-n', APP_NS, 'rollout', 'status', `deployment/${d}`, '--timeout=5m'], { timeoutMs: 330_000 });
    const callerPod = (await podsOf(c, APP_NS, 'app=caller')).find(isReady)!;
    say(`  ${callerPod.metadata.name} on ${callerPod.spec.nodeName} (${callerPod.status.podIP}), init containers: ${callerPod.spec.initContainers?.map((x) => `${x.name} (restartPolicy ${x.restartPolicy})`).join(', ')}`);

    const bsvc = async (when: string): Promise<void> => {
      const r = await c.kubectl(['-n', APP_NS, 'get', 'bsvc'], { allowFailure: true });
      say(`\n$ kubectl -n ${APP_NS} get bsvc      # ${when}\n${(r.stdout || r.stderr).trimEnd()}\n`);
    };
    await sleep(2000); // the leader's status writes settle
    await bsvc('before the rollout');

    const t0 = Date.now();
    await callerDo(c, APP_NS, `/start?rps=${rps}`);
    const ticker = setInterval(() => {
      void callerDo(c, APP_NS, '/counts', 'GET').then((k) => {
        const v = Object.entries(k.byVersion).sort().map(([n, m]) => `${n}: ${m}`).join('  ');
        say(`  [${String(Math.round((Date.now() - t0) / 1000)).padStart(3)}s] calls ${k.calls}  failed ${k.failed}  misrouted ${k.misrouted}  │ ${v}`);
      }, () => {});
    }, 2000);
    await sleep(Math.min(10_000, (durationS * 1000) / 4));
    say('• kubectl apply: orders → 1.5.0 (a real Deployment rollout: new ReplicaSet, maxSurge 1, maxUnavailable 0; the kubelet stops the old pods)');
    await kubectl(['apply', '-f', '-'], manifests('1.5.0'));
    await c.kubectl(['-n', APP_NS, 'rollout', 'status', 'deployment/orders', '--timeout=5m'], { timeoutMs: 330_000 });
    for (let i = 0; i < 120 && (await podsOf(c, APP_NS, 'app=orders')).some((p) => !isReady(p)); i++) await sleep(500);
    const left = t0 + durationS * 1000 - Date.now();
    if (left > 0) await sleep(left);
    const k = await callerDo(c, APP_NS, '/stop');
    clearInterval(ticker);
    await bsvc('after the rollout');

    say(`calls ${k.calls}, failed ${k.failed}, misrouted ${k.misrouted} (served outside ${RANGE}); by version: ${Object.entries(k.byVersion).sort().map(([n, m]) => `${n}=${m}`).join(' ')}`);
    for (const [e, n] of Object.entries(k.errors)) say(`  error ×${n}: ${e}`);
    const good = k.calls > 0 && k.failed === 0 && k.misrouted === 0;
    say(good ? 'OK: every call landed on a compatible pod during the rollout.' : `FAILED: see above; kubectl -n ${APP_NS} logs <pod> -c qbasis-sidecar`);
    exitCode = good ? 0 : 1;
  } catch (err) {
    process.stderr.write(`demo:cluster: ${(err as Error).message}\n`);
    exitCode = 1;
  } finally {
    if (cluster !== undefined && values['keep-cluster'] !== true) {
      await cluster.kubectl(['delete', 'namespace', APP_NS, '--wait=false'], { allowFailure: true });
      await cluster.helm(['uninstall', RELEASE, '--namespace', SYSTEM_NS], { allowFailure: true });
      if (startedCluster) {
        say('• qbasis cluster down (this demo started it; --keep-cluster keeps it)');
        await down({ dir, log: () => {} });
      }
    }
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  return exitCode;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
