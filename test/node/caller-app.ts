// The caller app of the real-pod tests, run in a pod from the test-apps image: it calls OrderService through
// its own sidecar (localhost:15001, as any app would) and counts every reply by version; a reply outside
// --range is misrouted. The test drives it over HTTP on the pod's IP:
//   POST /start?rps=N  wait for a first routed call, then start counted load (counts reset)
//   GET  /counts       the counts so far          POST /stop   stop, wait for calls in flight, the final counts
//   GET  /sidecar-at-start   what the sidecar's /ready answered when this app started
import http from 'node:http';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { newCounts, startLoad, waitFirstCall, type Counts } from '../demo/load.ts';

const { values } = parseArgs({ options: { target: { type: 'string' }, range: { type: 'string' }, port: { type: 'string' } } });
const target = values.target ?? '127.0.0.1:15001';
const range = values.range ?? '*';
const port = Number(values.port ?? '8081');

let counts: Counts = newCounts();
// What the sidecar's /ready said when this app began: Kubernetes starts the app after the native sidecar's startupProbe.
const sidecarAtStart = fetch('http://127.0.0.1:15020/ready', { signal: AbortSignal.timeout(2_000) }).then(async (r) => `${r.status} ${(await r.text()).trim()}`, (err: unknown) => `unreachable: ${(err as Error).message}`);
let load: { stop: () => Promise<void> } | undefined;

const view = (c: Counts): unknown => ({ calls: c.calls, ok: c.ok, failed: c.failed, misrouted: c.misrouted, byVersion: Object.fromEntries(c.byVersion), errors: Object.fromEntries(c.errors), running: load !== undefined });

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://caller');
  const reply = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body) + '\n');
  };
  void (async () => {
    if (req.method === 'GET' && url.pathname === '/counts') return reply(200, view(counts));
    if (req.method === 'GET' && url.pathname === '/sidecar-at-start') return reply(200, { ready: await sidecarAtStart });
    if (req.method === 'POST' && url.pathname === '/start') {
      const rps = Number(url.searchParams.get('rps') ?? '20');
      if (load !== undefined) await load.stop();
      await waitFirstCall(target, { timeoutMs: 60_000 });
      counts = newCounts();
      load = startLoad(target, rps, range, counts, { tickMs: 20 });
      return reply(200, view(counts));
    }
    if (req.method === 'POST' && url.pathname === '/stop') {
      await load?.stop();
      load = undefined;
      return reply(200, view(counts));
    }
    reply(404, { error: `no ${req.method} ${url.pathname}` });
  })().catch((err: unknown) => reply(500, { error: (err as Error).message }));
});
server.listen(port, '0.0.0.0', () => process.stdout.write(`caller: counts on :${port}, calls to ${target} requiring ${range}\n`));
process.on('SIGTERM', () => process.exit(0));
