// The console in Kubernetes mode on the real control plane: the controller runs as a process (like the
// kube-*.test.ts files) with its pods on the kwok node, and a pod standing for its replica there (the
// chart's labels). kwok's PortForward object sends that pod's port 15014 to the process's console, so
// `qbasis console` goes the whole way a user's does: client-node's PortForward → the API server's
// pods/portforward → the node's kubelet API (kwok) → the console. Checked through that forward: the same
// snapshot and page as the console itself, the page in chromium (with both replica pods listed, and one
// going not ready), `qbasis plan remove` (answer and exit code), a foreign Host refused, a standby saying so, and the errors for no replica, none ready and no
// console behind the port.
// Addresses: 127.0.150.x (leader controller .1, standby .2; qbasis console listens on .5).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { after, test } from 'node:test';
import { chromium } from 'playwright-core';
import { buildConsolePage } from '../../controller/console/build-page.ts';
import type { MeshSnapshot } from '../../controller/console/mesh-snapshot.ts';
import type { TestCluster } from '../harness/use-cluster.ts';
import { QBASIS_BIN, REPO } from '../fixtures/local-controller.ts';
import { pollFor } from '../fixtures/wait.ts';
import { createPods, kubeTestFile, setPodReady, type KubeController } from '../controller/kube-helpers.ts';

const NET = '127.0.150';
const API = 'shop.orders.v1.OrderService';
const LEADER = 'qbasis-controller-5d4f7c9b8-k2x7q';
const STANDBY = 'qbasis-controller-5d4f7c9b8-p9w3z';
const CHROMIUM = '/usr/bin/chromium';
const REPLICA_LABELS = { 'app.kubernetes.io/name': 'qbasis', 'app.kubernetes.io/instance': 'qbasis', 'app.kubernetes.io/component': 'controller' };
// what the chart passes as --replica-selector
const REPLICA_SELECTOR = 'app.kubernetes.io/name=qbasis,app.kubernetes.io/instance=qbasis,app.kubernetes.io/component=controller';

let cluster: TestCluster;
const bed = kubeTestFile((c) => (cluster = c));

function consoleUrl(c: KubeController): string {
  return String(c.logs.find((l) => l.msg === 'console listening')?.url);
}

/** kwok's PortForward: the pod's port 15014 goes to this console process. */
async function forwardPodTo(ns: string, pod: string, target: string): Promise<void> {
  const u = new URL(target);
  const obj = { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'PortForward', metadata: { name: pod, namespace: ns }, spec: { forwards: [{ ports: [15014], target: { address: u.hostname, port: Number(u.port) } }] } };
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(obj) });
}

interface Run {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

const runs: ChildProcess[] = [];
after(() => {
  for (const p of runs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

function qbasis(args: string[]): Run {
  const proc = spawn(process.execPath, [QBASIS_BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: cluster.kubeconfig } });
  runs.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, out: () => out, err: () => err, exit };
}

async function finished(args: string[], t?: { diagnostic(m: string): void }): Promise<{ code: number | null; out: string; err: string }> {
  const t0 = performance.now();
  const r = qbasis(args);
  const code = await r.exit;
  t?.diagnostic(`qbasis ${args.slice(0, 2).join(' ')}: exit ${code} after ${Math.round(performance.now() - t0)} ms`);
  return { code, out: r.out(), err: r.err() };
}

/** `qbasis console` until it prints its URL (or exits). */
async function openConsole(args: string[]): Promise<{ run: Run; url: string }> {
  const run = qbasis(['console', '--address', `${NET}.5`, '--port', '0', ...args]);
  let exited = false;
  void run.exit.then(() => (exited = true));
  const url = await pollFor('qbasis console to print its URL', () => {
    if (exited) throw new Error(`qbasis console exited: ${run.err()}`);
    return /^(http:\/\/\S+)$/m.exec(run.out())?.[1];
  }, { timeoutMs: 60_000, intervalMs: 100 });
  return { run, url };
}

/** A raw request through the forward, so the Host header can be anything. */
function raw(url: string, host: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => s.end(`GET /api/v1/mesh HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.setTimeout(15_000, () => s.destroy(new Error(`no end of the answer through the forward within 15 s; got ${JSON.stringify(out.slice(0, 200))}`)));
    s.setEncoding('utf8').on('data', (d: string) => (out += d)).on('end', () => resolve(out)).on('error', reject);
  });
}

async function mesh(base: string): Promise<MeshSnapshot> {
  const r = await fetch(`${base.replace(/\/$/, '')}/api/v1/mesh`, { signal: AbortSignal.timeout(15_000) });
  assert.equal(r.status, 200);
  return (await r.json()) as MeshSnapshot;
}

/** What a snapshot says of the mesh, without what moves with the clock. */
function meshFacts(m: MeshSnapshot): unknown {
  return m.apis.map((a) => ({ api: a.api, versions: a.versions, callers: a.callers.map((c) => ({ ...c, lastMinute: 0, cells: c.cells.map((x) => ({ version: x.version, compatible: x.compatible })) })), policies: a.policies }));
}

test('qbasis console port-forwards through the API server to the leader replica: the same snapshot and page, the page live in chromium, plan remove, foreign Host refused, a standby says so', async (t) => {
  await buildConsolePage();
  const ns = await cluster.namespace(t, 'console-kube');
  const leader = await bed.controller({ namespace: ns, host: `${NET}.1`, identity: LEADER, args: ['--console', `${NET}.1:0`, '--replica-selector', REPLICA_SELECTOR] });
  await createPods(cluster, ns, [
    { name: LEADER, labels: REPLICA_LABELS },
    { name: STANDBY, labels: REPLICA_LABELS },
    { name: 'orders-v1-6c8d9f7b5-a1b2c', provides: `${API}@1.4.0`, labels: { app: 'orders' } },
    { name: 'orders-v2-7f9b8c6d4-d3e4f', provides: `${API}@2.0.0`, labels: { app: 'orders' } },
    { name: 'checkout-7d9f8b6c5-x2x4z', annotations: { 'qbasis.io/requires': `${API}@^1.2` }, labels: { app: 'checkout' } },
  ]);
  await forwardPodTo(ns, LEADER, consoleUrl(leader));
  const direct = await pollFor('the console to show both versions and the caller', async () => {
    const m = await mesh(consoleUrl(leader));
    const a = m.apis.find((x) => x.api === API);
    const replicasReady = m.health.replica?.replicas?.length === 2 && m.health.replica.replicas.every((r) => r.state === 'ready');
    return a?.versions.length === 2 && a.versions.every((v) => v.ready === 1) && a.callers.length === 1 && m.health.replica?.isLeader === true && replicasReady ? m : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
  assert.equal(direct.mode, 'kubernetes');
  const replicas = [{ name: LEADER, state: 'ready' }, { name: STANDBY, state: 'ready' }];
  assert.deepEqual(direct.health.replica, { identity: LEADER, leader: LEADER, isLeader: true, traffic: 'all', replicas }, 'the health block lists both replica pods, by name');
  const bsvc = await pollFor('the leader\'s health to count its BasisService, Synced', async () => {
    const b = (await mesh(consoleUrl(leader))).health.basisServices;
    return b?.total === 1 ? b : undefined;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  assert.deepEqual(bsvc, { writer: true, total: 1, notSynced: [], notSyncedTotal: 0 });

  const { run, url } = await openConsole(['--namespace', ns]);
  assert.match(run.out(), new RegExp(`controller replica ${ns}/${LEADER} \\(the leader\\)`));
  const through = await mesh(url);
  assert.deepEqual(meshFacts(through), meshFacts(direct), 'the snapshot through the port-forward is the console\'s');
  assert.deepEqual(through.health.replica, direct.health.replica);
  const [pageDirect, pageThrough] = await Promise.all([fetch(consoleUrl(leader)), fetch(url)]);
  assert.equal(pageThrough.status, 200);
  assert.equal(pageThrough.headers.get('content-security-policy'), pageDirect.headers.get('content-security-policy'));
  assert.equal(await pageThrough.text(), await pageDirect.text(), 'the same page');

  t.diagnostic('the snapshot and the page through the forward are the console\'s');
  const own = await raw(url, new URL(url).host);
  assert.match(own, /^HTTP\/1\.1 200 /, 'a client that half-closes after its request still gets the answer');
  const foreign = await raw(url, `rebind.example:${new URL(url).port}`);
  assert.match(foreign, /^HTTP\/1\.1 421 /, 'a DNS-rebinding Host is refused through the forward too');
  assert.doesNotMatch(foreign, /"apis"/);

  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (npm test installs it as root: test/harness/host-packages.sh)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(url);
    await page.waitForSelector(`section[data-api="${API}"] th.version[data-version="2.0.0"]`, { timeout: 30_000 });
    await page.waitForSelector('.status.live', { timeout: 30_000 });
    assert.match((await page.locator(`dd[data-leader="${LEADER}"]`).textContent()) ?? '', /the leader/);
    assert.match((await page.locator(`li[data-replica-pod="${LEADER}"]`).textContent()) ?? '', /✔ .*ready — the leader — this replica/);
    assert.match((await page.locator(`li[data-replica-pod="${STANDBY}"]`).textContent()) ?? '', /✔ .*ready$/);
    // a replica that stops being ready shows so on the open page (the list is read every 5 s)
    await setPodReady(cluster, ns, STANDBY, false);
    await page.waitForSelector(`li[data-replica-pod="${STANDBY}"][data-state="not ready"]`, { timeout: 20_000 });
    assert.match((await page.locator(`li[data-replica-pod="${STANDBY}"]`).textContent()) ?? '', /◐ .*not ready/);
    assert.match((await page.locator('dd', { has: page.locator('ul.replicas') }).textContent()) ?? '', /^1 of 2 ready/);
    await setPodReady(cluster, ns, STANDBY, true);
    assert.equal(await page.locator('.replica-note').count(), 0, 'the leader has no partial-traffic note');
    assert.deepEqual(problems, [], 'nothing in the browser console');
  } finally {
    await browser.close();
  }

  t.diagnostic('the page is live in chromium through the forward');
  // plan remove through the same kind of port-forward, and the same answer as from the console's URL
  const strands = await finished(['plan', 'remove', `${API}@1.x`, '--namespace', ns]);
  assert.equal(strands.code, 1, strands.err);
  assert.match(strands.out, /checkout/);
  const same = await finished(['plan', 'remove', `${API}@1.x`, '--console', consoleUrl(leader)]);
  assert.equal(same.out, strands.out);
  const safe = await finished(['plan', 'remove', `${API}@2.x`, '--namespace', ns]);
  assert.equal(safe.code, 0, safe.err + safe.out);

  run.proc.kill('SIGINT');
  assert.equal(await run.exit, 0, 'Ctrl-C ends it cleanly');

  // A standby: the page and the command say its traffic is only its own sidecars'.
  const standby = await bed.controller({ namespace: ns, host: `${NET}.2`, identity: STANDBY, args: ['--console', `${NET}.2:0`] });
  await forwardPodTo(ns, STANDBY, consoleUrl(standby));
  const s = await openConsole(['--namespace', ns, '--pod', STANDBY]);
  assert.match(s.run.out(), new RegExp(`${STANDBY} \\(a standby; the leader is ${LEADER}: its traffic figures count only the sidecars connected to it\\)`));
  const sm = await pollFor('the standby to see the leader', async () => {
    const m = await mesh(s.url);
    return m.health.replica?.leader === LEADER ? m : undefined;
  }, { timeoutMs: 30_000, intervalMs: 250 });
  assert.deepEqual(sm.health.replica, { identity: STANDBY, leader: LEADER, isLeader: false, traffic: 'this-replica' });
  assert.equal(sm.health.basisServices?.writer, false, 'a standby says it does not write BasisServices');
  assert.deepEqual(meshFacts(sm), meshFacts(direct), 'every replica shows the mesh from its own cache');
  s.run.proc.kill('SIGTERM');
  assert.equal(await s.run.exit, 0);
});

test('qbasis console and plan remove say what is wrong: no replica, none ready, no console behind the port', async (t) => {
  const empty = await cluster.namespace(t, 'console-none');
  const none = await finished(['console', '--namespace', empty, '--port', '0', '--address', `${NET}.5`], t);
  assert.equal(none.code, 1);
  assert.match(none.err, new RegExp(`^qbasis console: no controller replica found in namespace ${empty} \\(no pod labelled app\\.kubernetes\\.io/component=controller,app\\.kubernetes\\.io/instance=qbasis\\): is the qbasis chart installed there\\? pass --namespace and --release`));
  const plan = await finished(['plan', 'remove', `${API}@1.x`, '--namespace', empty], t);
  assert.equal(plan.code, 1);
  assert.match(plan.err, /^qbasis plan remove: no controller replica found in namespace/);

  const ns = await cluster.namespace(t, 'console-down');
  await createPods(cluster, ns, [{ name: LEADER, labels: REPLICA_LABELS }]);
  await pollFor('the replica pod to be Ready', async () => {
    const r = await cluster.kubectl(['-n', ns, 'get', 'pod', LEADER, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    return r.stdout === 'True' ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
  // nothing listens where the pod's port goes: the console is off
  await forwardPodTo(ns, LEADER, `http://${NET}.9:1`);
  const off = await finished(['console', '--namespace', ns, '--port', '0', '--address', `${NET}.5`, '--timeout-ms', '10000'], t);
  assert.equal(off.code, 1);
  assert.match(off.err, new RegExp(`qbasis console: the console of ${ns}/${LEADER} \\(port 15014 in the pod\\) did not answer through the port-forward .*is it on\\? The chart's controller\\.console\\.enabled`));

  await setPodReady(cluster, ns, LEADER, false);
  const notReady = await finished(['console', '--namespace', ns, '--port', '0', '--address', `${NET}.5`], t);
  assert.equal(notReady.code, 1);
  assert.match(notReady.err, new RegExp(`^qbasis console: no ready controller replica in namespace ${ns}: ${LEADER} \\(Running, not Ready\\)`));
  const missing = await finished(['console', '--namespace', ns, '--pod', 'nope', '--port', '0', '--address', `${NET}.5`], t);
  assert.equal(missing.code, 1);
  assert.match(missing.err, new RegExp(`^qbasis console: no pod 'nope' in namespace ${ns}`));
});
