// The console in a real browser (Debian's chromium, driven by playwright-core; no browser download):
// a local rollout under load (the matrix and the chart change within 2 s of the pods-file change, the
// traffic moves from 1.4.0 to 1.5.0, no error in the browser's console, a screenshot under
// test/console/output/), the planner on the page and `qbasis plan remove` agreeing, hostile names
// staying text.
// Addresses: 127.0.114.x (controller .1; caller .2; hostile caller pod .3 (^3.0, no sidecar); 1.4.0 .10 .11;
// 1.5.0 .12; 2.0.0 .13 (pods file only)).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildConsolePage } from '../../controller/console/build-page.ts';
import { echoClient, ECHO_API, type EchoClient } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { QBASIS_BIN, REPO, replacePods, startController, tempDir, type RunningController, type TestPod } from '../fixtures/local-controller.ts';
import { unary } from '../fixtures/policy.ts';
import { waitUntil } from '../fixtures/wait.ts';

const NET = '127.0.114';
const OUTPUT = path.join(import.meta.dirname, 'output');
const CLIENT_POD = 'shop-client-7d9f8b6c5-x2x4z';
const HOSTILE = '<img src=x onerror=alert(1)>';
const HOSTILE_LABEL = '<script>alert(2)</script>';
const HOSTILE_VALUE = '<img src=x onerror=alert(3)>';

const provider = (name: string, ip: string, version: string): TestPod => ({ name, ip, provides: `${ECHO_API}@${version}`, labels: { app: 'echo' } });
const v1a = provider('echo-v1-a', `${NET}.10`, '1.4.0');
const v1b = provider('echo-v1-b', `${NET}.11`, '1.4.0');
const v1c = provider('echo-v1-c', `${NET}.12`, '1.5.0');
const v2 = provider('echo-v2-a', `${NET}.13`, '2.0.0');
const client = (range: string): TestPod => ({ name: CLIENT_POD, ip: `${NET}.2`, annotations: { 'qbasis.io/requires': `${ECHO_API}@${range}` }, labels: { app: 'shop-client' } });
const hostile: TestPod[] = [
  { name: HOSTILE, ip: `${NET}.3`, annotations: { 'qbasis.io/requires': `${ECHO_API}@^3.0` }, labels: { app: HOSTILE_LABEL } },
  { name: 'bad-annotation', ip: `${NET}.4`, annotations: { 'qbasis.io/requires': HOSTILE_VALUE } },
];

let podsFile: string;
let ctl: RunningController;
let base: string;
let browser: Browser;
let page: Page;
let echo: EchoClient;
const problems: string[] = [];
const dialogs: string[] = [];
let loading = true;
let load: Promise<void> | undefined;
let calls = 0;

const CHROMIUM = '/usr/bin/chromium';

before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (npm test installs it as root: test/harness/host-packages.sh)`);
  await buildConsolePage();
  fs.mkdirSync(OUTPUT, { recursive: true });
  podsFile = path.join(tempDir('console-browser'), 'pods.yaml');
  replacePods(podsFile, [v1a, v1b, client('^1.2'), ...hostile]);
  ctl = await startController({ podsFile, host: `${NET}.1`, args: ['--console', `${NET}.1:0`] });
  base = String(ctl.logs.find((l) => l.msg === 'console listening')?.url).replace(/\/$/, '');
  await Promise.all([v1a, v1b, v1c].map((p) => startEcho({ host: p.ip!, port: 50051, name: p.name, version: p.provides!.split('@')[1]! })));
  await Promise.all([
    ...[v1a, v1b, v1c].map((p) => startSidecar({ ip: p.ip!, discovery: ctl.target, appPort: 50051, provides: p.provides!, podName: p.name, extra: ['--namespace', 'default'] })),
    startSidecar({ ip: `${NET}.2`, discovery: ctl.target, appPort: 50051, requires: `${ECHO_API}@^1.2`, podName: CLIENT_POD, extra: ['--namespace', 'default'] }),
  ]);
  echo = echoClient(`${NET}.2:15001`);
  // ~25 calls/s through the caller's sidecar for the whole file
  load = (async () => {
    while (loading) {
      const r = await unary(echo, { text: 'console' });
      if (r.ok) calls++;
      await new Promise((res) => setTimeout(res, 40));
    }
  })();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(`${base}/`);
});

after(async () => {
  loading = false;
  await load;
  echo?.close();
  await browser?.close();
  await stopAll();
  await ctl?.stop();
});

const column = (version: string): string => `section[data-api="${ECHO_API}"] th.version[data-version="${version}"]`;
const nowRate = async (version: string): Promise<number> => {
  const t = await page.locator(`section[data-api="${ECHO_API}"] .chart-now .now[data-version="${version}"]`).textContent({ timeout: 1000 }).catch(() => null);
  return t === null ? -1 : Number(/ ([\d.]+) calls\/s/.exec(t)?.[1] ?? -1);
};

/** ms from now until `check` holds in the page (polled every 50 ms). */
async function msUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  await waitUntil(what, check, { timeoutMs, intervalMs: 50 });
  return performance.now() - t0;
}

test('a local rollout under load: the matrix and the chart change within 2 s of the pods-file change, traffic moves to 1.5.0, no browser error', async (t) => {
  await page.waitForSelector(column('1.4.0'));
  await waitUntil('the chart to show the 1.4.0 traffic', async () => (await nowRate('1.4.0')) > 0, { timeoutMs: 30_000, intervalMs: 250 });

  replacePods(podsFile, [v1a, v1b, v1c, client('^1.2'), ...hostile]);
  const added = await msUntil('a 1.5.0 column and a 1.5.0 line', async () =>
    (await page.locator(column('1.5.0')).count()) === 1 &&
    (await page.locator(`section[data-api="${ECHO_API}"] .plot[data-versions~="1.5.0"] .u-legend`).textContent())?.includes('1.5.0') === true, 10_000);
  t.diagnostic(`1.5.0 in the matrix and the chart ${Math.round(added)} ms after the pods file changed`);
  assert.ok(added < 2000, `the page showed 1.5.0 after ${Math.round(added)} ms`);

  replacePods(podsFile, [v1c, client('^1.2'), ...hostile]);
  const removed = await msUntil('1.4.0 to have no pod', async () => /0 ready · 0 not ready/.test((await page.locator(`${column('1.4.0')} .pods`).textContent()) ?? ''), 10_000);
  t.diagnostic(`1.4.0's pods gone from the matrix ${Math.round(removed)} ms after the pods file changed`);
  assert.ok(removed < 2000, `the page showed 1.4.0 without pods after ${Math.round(removed)} ms`);

  // The traffic follows: 1.5.0's line rises, 1.4.0's falls to 0 (5 s buckets, reports every 2 s).
  await waitUntil('the chart to show 1.5.0 up and 1.4.0 at 0', async () => (await nowRate('1.5.0')) > 0 && (await nowRate('1.4.0')) === 0, { timeoutMs: 30_000, intervalMs: 250 });
  const share = await page.locator(`section[data-api="${ECHO_API}"] tr[data-caller="default/shop-client"] td.cell[data-version="1.5.0"] .share`).textContent();
  assert.match(share ?? '', /^\d+ % of calls$/);
  assert.notEqual(share, '0 % of calls');
  await page.screenshot({ path: path.join(OUTPUT, 'rollout.png'), fullPage: true });
  t.diagnostic(`screenshot: ${path.join(OUTPUT, 'rollout.png')}; ${calls} calls made`);
  assert.deepEqual(problems, [], 'nothing in the browser console');
});

function plan(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [QBASIS_BIN, 'plan', 'remove', `${ECHO_API}@1.x`, '--console', base, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

test('the planner: removing 1.x lists the ^1.2 caller, on the page and in qbasis plan (exit 1); after it moves to ^2.0, none (exit 0)', async () => {
  await page.selectOption('select[name=api]', ECHO_API);
  await page.fill('input[name=range]', '1.x');
  await page.waitForSelector('.plan-result .verdict[data-safe="false"]');
  assert.equal(await page.locator('.plan-result .stranded-list li[data-caller="default/shop-client"]').count(), 1);
  assert.equal(await page.locator('.plan-result .calling-list li[data-caller="default/shop-client"]').count(), 1, 'and it still calls 1.x');
  const cli = await plan([]);
  assert.equal(cli.code, 1);
  assert.match(cli.out, /Strands 1 caller:\n {2}default\/shop-client \(requires \^1\.2\), 1 pod: /);

  replacePods(podsFile, [v1c, v2, client('^2.0'), ...hostile]);
  await page.waitForSelector('.plan-result .verdict[data-safe="true"]', { timeout: 5000 });
  assert.equal(await page.locator('.plan-result .stranded-list li').count(), 0);
  const safe = await plan([]);
  assert.equal(safe.code, 0, safe.out);
  assert.match(safe.out, /Strands no caller/);
  assert.match(safe.out, /Still called in the last 15 min by \d caller/, 'its sidecar (still ^1.2) keeps calling 1.5.0');
  assert.equal((await plan(['--fail-if-called'])).code, 1, '--fail-if-called: recent calls fail the gate too');
  assert.deepEqual(problems, []);
});

test('hostile names from pods, labels and annotations are shown as text, never run or rendered as markup', async () => {
  await page.getByText(HOSTILE_LABEL, { exact: false }).first().waitFor({ timeout: 5000 });
  assert.ok((await page.locator('#app').textContent())!.includes(HOSTILE), 'the pod name is on the page as text');
  assert.ok((await page.locator('#app').textContent())!.includes(HOSTILE_VALUE), 'the bad annotation value too');
  assert.equal(await page.locator('#app img').count(), 0);
  assert.equal(await page.locator('#app script').count(), 0);
  assert.deepEqual(dialogs, [], 'no alert() ran');
  assert.deepEqual(problems, []);
});

test('keyboard: Tab reaches the API links and every planner control; a state is never colour alone', async () => {
  await page.locator('body').focus();
  const reached = new Set<string>();
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    // runs in the page (a string, since this file has no DOM types)
    reached.add(await page.evaluate<string>(`(() => { const e = document.activeElement; if (!e) return ''; const n = e.getAttribute('name'); return e.tagName.toLowerCase() + (n === null ? '' : '[name=' + n + ']'); })()`));
  }
  for (const want of ['a', 'select[name=api]', 'input[name=range]', 'select[name=minutes]', 'button']) assert.ok(reached.has(want), `${want} is reachable by Tab: ${[...reached].join(', ')}`);
  const cells = await page.locator(`section[data-api="${ECHO_API}"] td.cell .state`).allTextContents();
  assert.ok(cells.length > 0 && cells.every((t) => /(✔ compatible|◐ in range, no ready pod|✖ incompatible)/.test(t)), `every cell says its state in words: ${cells.join(' | ')}`);
});
