// The console as served by a real local controller (`--console`): the snapshot, the event stream
// (snapshot first, a pods-file change within 2 s, bounded streams), the security headers, Host
// refusal, read-only methods, `qbasis plan remove` against it (answer and exit codes), and / without the
// page built.
// Addresses: 127.0.113.x (controller .1; a console alone .5).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { MeshSnapshot } from '../../controller/console/mesh-snapshot.ts';
import { CONTENT_SECURITY_POLICY } from '../../controller/console/console-server.ts';
import { buildConsolePage } from '../../controller/console/build-page.ts';
import { QBASIS_BIN, REPO, replacePods, startController, tempDir, type RunningController, type TestPod } from '../fixtures/local-controller.ts';
import { waitForValue } from '../fixtures/wait.ts';

const NET = '127.0.113';
const API = 'shop.orders.v1.OrderService';
let podsFile: string;
let ctl: RunningController;
let base: string;

const providers = (versions: string[]): TestPod[] => versions.map((v, i) => ({ name: `orders-${v.replaceAll('.', '-')}-${i}`, namespace: 'shop', ip: `${NET}.${10 + i}`, provides: `${API}@${v}`, labels: { app: 'orders' } }));
const caller = (range: string): TestPod => ({ name: 'checkout-7d9f8b6c5-x2x4z', namespace: 'shop', ip: `${NET}.2`, annotations: { 'qbasis.io/requires': `${API}@${range}` }, labels: { app: 'checkout' } });

before(async () => {
  await buildConsolePage();
  podsFile = path.join(tempDir('console-server'), 'pods.yaml');
  replacePods(podsFile, [...providers(['1.4.0', '2.0.0']), caller('^1.2'), { name: 'bad', namespace: 'shop', ip: `${NET}.3`, annotations: { 'qbasis.io/requires': '<img src=x onerror=alert(1)>' } }]);
  ctl = await startController({ podsFile, host: `${NET}.1`, args: ['--console', `${NET}.1:0`, '--console-max-clients', '2'] });
  const line = ctl.logs.find((l) => l.msg === 'console listening');
  base = String(line?.url).replace(/\/$/, '');
});

after(async () => {
  await ctl?.stop();
});

async function mesh(): Promise<MeshSnapshot> {
  return (await (await fetch(`${base}/api/v1/mesh`)).json()) as MeshSnapshot;
}

/** A raw HTTP/1.1 request, so the Host header can be anything or absent. */
function raw(request: string): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => s.end(request));
    let out = '';
    s.setEncoding('utf8').on('data', (d: string) => (out += d)).on('end', () => resolve(out)).on('error', reject);
  });
}

test('the snapshot: providers per version with pod counts, callers per workload with their range and cells, rejected pods in health; strict headers', async () => {
  const r = await fetch(`${base}/api/v1/mesh`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('access-control-allow-origin'), null, 'no CORS: other origins cannot read it');
  const m = (await r.json()) as MeshSnapshot;
  assert.equal(m.kind, 'qbasis.io/console-mesh/v1');
  const a = m.apis.find((x) => x.api === API)!;
  assert.deepEqual(a.versions, [{ version: '1.4.0', ready: 1, notReady: 0 }, { version: '2.0.0', ready: 1, notReady: 0 }]);
  assert.equal(a.apiId, '30c050e8');
  const row = a.callers.find((c) => c.workload.name === 'checkout')!;
  assert.deepEqual([row.workload.namespace, row.range, row.pods, row.served, row.declared], ['shop', '^1.2', ['checkout-7d9f8b6c5-x2x4z'], true, true]);
  assert.deepEqual(row.cells.map((c) => [c.version, c.compatible]), [['1.4.0', true], ['2.0.0', false]]);
  assert.equal(m.health.rejectedTotal, 1);
  assert.equal(m.health.rejectedPods[0]!.problems[0]!.value, '<img src=x onerror=alert(1)>');
  assert.equal(m.health.podSource.synced, true);
  assert.ok(!JSON.stringify(m).includes('BEGIN'), 'no certificate or key material');
});

test('the page and its assets: HTML that loads only same-origin script and style, ETags, 404 and 405 with reasons', async () => {
  const r = await fetch(`${base}/`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
  assert.match(r.headers.get('content-type')!, /^text\/html/);
  const html = await r.text();
  assert.match(html, /<script type="module" src="\/console\.js\?v=[^"]+"><\/script>/);
  assert.doesNotMatch(html, /<script>|<style>|\sstyle="|\son[a-z]+="/, 'no inline script, style or handler');
  const js = await fetch(`${base}/console.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type')!, /^text\/javascript/);
  const etag = js.headers.get('etag')!;
  assert.equal((await fetch(`${base}/console.js`, { headers: { 'if-none-match': etag } })).status, 304);
  const nf = await fetch(`${base}/etc/passwd`);
  assert.equal(nf.status, 404);
  assert.match(await nf.text(), /no such page/);
  const post = await fetch(`${base}/api/v1/mesh`, { method: 'POST', body: '{}' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  assert.match(await post.text(), /read-only/);
});

test('a foreign or missing Host header is refused with 421 and a body that says why (DNS rebinding)', async () => {
  const foreign = await raw('GET /api/v1/mesh HTTP/1.1\r\nHost: rebind.example:80\r\nConnection: close\r\n\r\n');
  assert.match(foreign, /^HTTP\/1\.1 421 /);
  assert.match(foreign, /the Host header 'rebind\.example:80'; expected this console's own address, 127\.0\.113\.1:\d+/);
  assert.doesNotMatch(foreign, /"apis"/, 'no mesh data in the refusal');
  const none = await raw('GET / HTTP/1.0\r\n\r\n');
  assert.match(none, /^HTTP\/1\.1 421 /);
  assert.match(none, /is missing/);
  const own = await raw(`GET /api/v1/mesh HTTP/1.1\r\nHost: ${new URL(base).host}\r\nConnection: close\r\n\r\n`);
  assert.match(own, /^HTTP\/1\.1 200 /);
  assert.ok(ctl.logs.some((l) => l.msg === 'console request refused: foreign Host header'));
});

/** Reads Server-Sent Events from the console: `next(pred)` resolves with the first matching event. */
// `reconnect` retries a refused stream (503) for up to 5 s as EventSource would: the server frees the slot of a
// stream the previous test closed only once it sees the socket close.
function events(o: { reconnect?: boolean } = {}): { next: (pred: (e: { event: string; data: unknown }) => boolean, timeoutMs?: number) => Promise<{ event: string; data: unknown; at: number }>; close: () => void; status: Promise<number> } {
  const ac = new AbortController();
  const seen: { event: string; data: unknown; at: number }[] = [];
  let wake: () => void = () => {};
  let status: (n: number) => void = () => {};
  let refused: number | undefined;
  const statusP = new Promise<number>((r) => (status = r));
  void (async () => {
    const until = performance.now() + 5000;
    let r = await fetch(`${base}/api/v1/events`, { signal: ac.signal });
    while (o.reconnect === true && r.status === 503 && performance.now() < until) {
      await r.body?.cancel();
      await new Promise((t) => setTimeout(t, 100));
      r = await fetch(`${base}/api/v1/events`, { signal: ac.signal });
    }
    status(r.status);
    if (r.status !== 200 || r.body === null) {
      refused = r.status;
      wake();
      return;
    }
    let buf = '';
    const dec = new TextDecoder();
    for await (const chunk of r.body) {
      buf += dec.decode(chunk as Uint8Array, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (ev !== undefined && data !== undefined) seen.push({ event: ev, data: JSON.parse(data), at: performance.now() });
        wake();
      }
    }
  })().catch(() => {});
  let read = 0;
  return {
    status: statusP,
    close: () => ac.abort(),
    async next(pred, timeoutMs = 10_000) {
      const end = performance.now() + timeoutMs;
      for (;;) {
        while (read < seen.length) {
          const e = seen[read++]!;
          if (pred(e)) return e;
        }
        if (refused !== undefined) throw new Error(`the event stream was refused with ${refused}`);
        const left = end - performance.now();
        if (left <= 0) throw new Error(`no matching event within ${timeoutMs} ms; got ${seen.map((e) => e.event).join(', ')}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
    },
  };
}

test('the event stream: a snapshot first, a pods-file change as an `api` event within 2 s, and at most --console-max-clients streams', async () => {
  const a = events({ reconnect: true });
  const b = events({ reconnect: true });
  try {
    const first = await a.next(() => true);
    assert.equal(first.event, 'snapshot');
    assert.equal((first.data as MeshSnapshot).kind, 'qbasis.io/console-mesh/v1');
    await b.next((e) => e.event === 'snapshot');
    const c = events();
    assert.equal(await c.status, 503, 'a third stream is refused');
    c.close();
    const t0 = performance.now();
    replacePods(podsFile, [...providers(['1.4.0', '1.5.0', '2.0.0']), caller('^1.2')]);
    const e = await a.next((x) => x.event === 'api' && (x.data as { versions: { version: string }[] }).versions.some((v) => v.version === '1.5.0'));
    assert.ok(e.at - t0 < 2000, `the new version reached the stream ${Math.round(e.at - t0)} ms after the file changed`);
  } finally {
    a.close();
    b.close();
  }
});

test('the event stream coalesces: ten pods-file changes in about a second reach a page as a few events, the last one the final state', async () => {
  const a = events({ reconnect: true });
  try {
    await a.next((e) => e.event === 'snapshot');
    const versions = ['1.6.0', '1.7.0', '1.8.0', '1.9.0', '1.10.0', '1.11.0', '1.12.0', '1.13.0', '1.14.0', '1.15.0'];
    for (const v of versions) {
      replacePods(podsFile, [...providers(['1.4.0', v]), caller('^1.2')]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const got: string[][] = [];
    for (;;) {
      const e = await a.next((x) => x.event === 'api');
      const vs = (e.data as { versions: { version: string; ready: number }[] }).versions.filter((v) => v.ready > 0).map((v) => v.version);
      got.push(vs);
      if (vs.includes('1.15.0') && !vs.includes('1.14.0')) break;
    }
    assert.ok(got.length < versions.length, `${got.length} api events for ${versions.length} changes: ${JSON.stringify(got)}`);
    assert.deepEqual(got.at(-1), ['1.4.0', '1.15.0']);
  } finally {
    a.close();
  }
});

function plan(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [QBASIS_BIN, 'plan', 'remove', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('qbasis plan remove: 1.x strands the ^1.2 caller (exit 1); once it requires ^2.0 nothing (exit 0); usage errors exit 2', async () => {
  replacePods(podsFile, [...providers(['1.4.0', '2.0.0']), caller('^1.2')]);
  await waitForValue('the ^1.2 caller in the snapshot', mesh, (m) => m.apis[0]?.callers.some((c) => c.range === '^1.2') === true && m.apis[0]?.versions.length === 2);
  const stranded = await plan([`${API}@1.x`, '--console', base]);
  assert.equal(stranded.code, 1, stranded.err);
  assert.match(stranded.out, /Strands 1 caller:\n {2}shop\/checkout \(requires \^1\.2\), 1 pod: left after the removal: 2\.0\.0 \(1 ready\), none in \^1\.2/);
  const json = await plan([`${API}@1.x`, '--console', base, '--json']);
  const p = JSON.parse(json.out) as { safe: boolean; stranded: { workload: { name: string } }[] };
  assert.deepEqual([json.code, p.safe, p.stranded.map((c) => c.workload.name)], [1, false, ['checkout']]);

  replacePods(podsFile, [...providers(['1.4.0', '2.0.0']), caller('^2.0')]);
  await waitForValue('the caller to move to ^2.0', mesh, (m) => m.apis[0]?.callers.every((c) => c.range === '^2.0') === true);
  const safe = await plan([`${API}@1.x`, '--console', base]);
  assert.equal(safe.code, 0, safe.out + safe.err);
  assert.match(safe.out, /Strands no caller/);

  const bad = await plan(['not-an-api@1.x', '--console', base]);
  assert.equal(bad.code, 2);
  assert.equal(bad.err.trim().split('\n').length, 1);
  assert.match(bad.err, /^qbasis plan remove: QB_USAGE: 'not-an-api@1\.x' is invalid: the API/);
  // without --console it goes to a cluster: here there is none to reach, which is a runtime failure, said in one line
  const noCluster = await plan([`${API}@1.x`, '--kubeconfig', '/nonexistent/kubeconfig']);
  assert.equal(noCluster.code, 1, noCluster.err);
  assert.match(noCluster.err, /^qbasis plan remove: cannot load the kubeconfig '\/nonexistent\/kubeconfig': ENOENT.*; pass --kubeconfig, or --console URL for a local controller\n$/);
  const down = await plan([`${API}@1.x`, '--console', 'http://127.0.113.250:9']);
  assert.equal(down.code, 1);
  assert.match(down.err, /cannot read http:\/\/127\.0\.113\.250:9\/api\/v1\/mesh/);
});

test('without the page built, / answers 503 saying how to build it (the JSON endpoints do not need it)', async () => {
  const { EventEmitter } = await import('node:events');
  const { pino } = await import('pino');
  const { ConsoleServer } = await import('../../controller/console/console-server.ts');
  const view = new EventEmitter() as unknown as ConstructorParameters<typeof ConsoleServer>[0]['view'];
  const s = new ConsoleServer({ view, address: { host: `${NET}.5`, port: 0 }, logger: pino({ level: 'silent' }), distDir: path.join(tempDir('console-nodist'), 'none') });
  await s.start();
  try {
    const r = await fetch(s.url());
    assert.equal(r.status, 503);
    assert.match(await r.text(), /the console's page is not built .*: run 'npm run build:console'/);
  } finally {
    await s.stop();
  }
});

test('controller: a bad --console is one line and exit 2', () => {
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'controller', '--pods-file', podsFile, '--console', 'localhost:15014'], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /^qbasis controller: QB_INVALID_FLAG: --console 'localhost:15014' is invalid: expected HOST:PORT with an IP address/);
});
