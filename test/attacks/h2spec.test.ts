// HTTP/2 conformance of both sidecar listeners, measured with h2spec (built from its Go module through
// test/cluster/build.ts) against a plain node:http2 server in the same run: every case that fails on the
// outbound (:15001) or inbound (:15006) port must also fail on that plain server (the "floor"), i.e. the
// sidecar adds no HTTP/2 protocol failure of its own to what Node's HTTP/2 layer (nghttp2) does.
// h2spec sends plain requests (`GET /`, no gRPC content-type): both sidecar ports answer them 415 with a
// one-line body (sidecar/grpc-wire.ts respondNotGrpc); only the protocol behaviour is judged.
// Addresses: 127.0.70.x (controller .1, provider pod .11 whose sidecar both provides and requires the echo
// API, so its outbound and inbound ports both serve on 127.0.70.11); the floor on 127.0.71.1.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ensureTools } from '../cluster/build.ts';
import { ECHO_API, echoClient } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';

const NET = '127.0.70';
const POD = `${NET}.11`;
const FLOOR_HOST = '127.0.71.1';
/** h2spec's per-case wait (-o, seconds): generous, this machine is shared and busy. */
const CASE_TIMEOUT_S = 5;
/** A whole h2spec run is killed after this (about 145 cases, most take milliseconds). */
const RUN_TIMEOUT_MS = 400_000;
/** Single reruns of a case that failed on a sidecar port but passed on the floor. */
const RERUNS = 5;

let dir: string;
let h2spec: string;
let ctl: RunningController;
let sidecar: Proc;
let floor: http2.Http2Server;
let floorPort: number;
let floorFailed: Map<string, string> | undefined;
/** h2spec processes still running (killed in after() if a test timed out). */
const running = new Set<ChildProcess>();

before(async () => {
  h2spec = path.join(await ensureTools({ tools: ['h2spec'] }), 'h2spec');
  dir = tempDir('attacks-h2spec');
  const podsFile = path.join(dir, 'pods.yaml');
  writePods(podsFile, [{ name: 'echo', ip: POD, provides: `${ECHO_API}@1.0.0` }]);
  ctl = await startController({ podsFile, host: `${NET}.1` });
  await startEcho({ host: POD, port: 50051, name: 'echo', version: '1.0.0' });
  sidecar = await startSidecar({ ip: POD, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.0.0`, requires: `${ECHO_API}@^1.0` });
  floor = startFloor();
  await new Promise<void>((resolve, reject) => {
    floor.once('error', reject);
    floor.listen(0, FLOOR_HOST, resolve);
  });
  floorPort = (floor.address() as AddressInfo).port;
}, { timeout: 15 * 60_000 });

after(async () => {
  for (const c of running) c.kill('SIGKILL');
  floor?.close();
  await stopAll();
  await ctl?.stop();
});

/**
 * A minimal gRPC-like server: every stream gets 200, one empty gRPC message, then grpc-status 0 trailers.
 * It advertises the sidecar's default stream limit (--max-concurrent-streams 1000) so that h2spec runs
 * 5.1.2/1 against both instead of skipping it on the floor.
 */
function startFloor(): http2.Http2Server {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('session', (s) => s.on('error', () => {}));
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.alloc(5));
  });
  return server;
}

interface Report {
  /** case id (`generic/2/2`: h2spec's own numbering, usable as `h2spec generic/2/2`) → description */
  failed: Map<string, string>;
  total: number;
}

/** Runs h2spec (all cases, or the given ids) against host:port and reads its JUnit report. */
async function runH2spec(label: string, host: string, port: number, ids: string[] = [], caseTimeoutS = CASE_TIMEOUT_S): Promise<Report> {
  const junit = path.join(dir, `h2spec-${label}.xml`);
  fs.rmSync(junit, { force: true });
  const args = [...ids, '-h', host, '-p', String(port), '-o', String(caseTimeoutS), '-j', junit];
  const child = spawn(h2spec, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (c, s) => resolve({ code: c, signal: s })));
  fs.writeFileSync(path.join(dir, `h2spec-${label}.out`), out);
  if (signal !== null || !fs.existsSync(junit)) {
    throw new Error(`h2spec against ${label} ${host}:${port} ended ${signal ?? `with exit ${code}`} without a report (killed after ${RUN_TIMEOUT_MS} ms?); output:\n${out.slice(-3000)}`);
  }
  return parseJunit(fs.readFileSync(junit, 'latin1'));
}

/**
 * h2spec's JUnit: <testsuite package="http2/6.3"> holding the cases that ran, in order, as <testcase
 * classname="description">, a failed one with an <error> inside. In a full run the n-th testcase of a
 * suite is h2spec's case n (a partial run lists only the cases it ran, so its ids are not these).
 */
function parseJunit(xml: string): Report {
  const failed = new Map<string, string>();
  let total = 0;
  for (const suite of xml.split('<testsuite ').slice(1)) {
    const pkg = /^[^>]*\bpackage="([^"]+)"/.exec(suite)?.[1];
    assert.ok(pkg !== undefined, `h2spec JUnit testsuite without a package: ${suite.slice(0, 200)}`);
    let n = 0;
    for (const m of suite.matchAll(/<testcase\b[^>]*\bclassname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
      n++;
      total++;
      if (!/<(error|failure)\b/.test(m[3] ?? '')) continue;
      const desc = unescapeXml(m[1]!);
      failed.set(`${pkg}/${n}`, desc);
    }
  }
  return { failed, total };
}

function unescapeXml(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d)))
    .replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function list(m: Map<string, string>): string {
  return m.size === 0 ? '  (none)' : [...m].map(([id, d]) => `  ${id}  ${d}`).join('\n');
}

async function measureFloor(): Promise<Map<string, string>> {
  if (floorFailed === undefined) {
    const r = await runH2spec('floor', FLOOR_HOST, floorPort);
    assert.ok(r.total > 100, `h2spec ran only ${r.total} cases against the floor`);
    floorFailed = r.failed;
  }
  return floorFailed;
}

test('h2spec against a plain node:http2 server (the floor)', { timeout: RUN_TIMEOUT_MS + 60_000 }, async (t) => {
  const failed = await measureFloor();
  t.diagnostic(`floor ${FLOOR_HOST}:${floorPort} failed ${failed.size}:\n${list(failed)}`);
  console.log(`h2spec floor (plain node:http2) failed ${failed.size}:\n${list(failed)}`);
});

for (const [label, port] of [['outbound', 15001], ['inbound', 15006]] as const) {
  test(`h2spec against the sidecar's ${label} port :${port} fails no case the floor passes`, { timeout: 2 * RUN_TIMEOUT_MS + 60_000 }, async (t) => {
    const floorSet = await measureFloor();
    const r = await runH2spec(label, POD, port);
    assert.ok(r.total > 100, `h2spec ran only ${r.total} cases against ${label}`);
    console.log(`h2spec ${label} ${POD}:${port} failed ${r.failed.size}:\n${list(r.failed)}`);
    t.diagnostic(`${label} failed ${r.failed.size}:\n${list(r.failed)}`);
    // Some cases race nghttp2's handling of frames on a stream the server has already ended (the
    // floor's own 5.1/11 and 5.1/12 failures): h2spec's follow-up frame is judged by whether it is read
    // before or after the answer went out. A case the sidecar passes in any of a few single reruns is
    // timing, not behaviour; it is printed, not counted.
    const extra = new Map<string, string>();
    const timing: string[] = [];
    const unexpected = [...r.failed].filter(([id]) => !floorSet.has(id));
    for (const [id, desc] of unexpected) {
      let passedOn = 0;
      // Many at once is not timing: no reruns then.
      for (let i = 1; i <= RERUNS && passedOn === 0 && unexpected.length <= 10; i++) {
        const again = await runH2spec(`${label}-rerun`, POD, port, [id], 2 * CASE_TIMEOUT_S);
        if (again.total === 1 && again.failed.size === 0) passedOn = i;
      }
      if (passedOn > 0) timing.push(`${id} (passed on rerun ${passedOn})`);
      else extra.set(id, desc);
    }
    if (timing.length > 0) {
      console.log(`h2spec ${label}: failed once, then passed (timing): ${timing.join(', ')}`);
      t.diagnostic(`timing-dependent on ${label}: ${timing.join(', ')}`);
    }
    assert.equal(sidecar.proc.exitCode, null, 'the sidecar is still running');
    assert.deepEqual(
      [...extra].map(([id, d]) => `${id} ${d}`),
      [],
      `cases failing on ${label} :${port} but passing on the plain node:http2 floor (details: ${path.join(dir, `h2spec-${label}.out`)})`,
    );
  });
}

test('the sidecar still serves a real call through outbound and inbound after h2spec', { timeout: 60_000 }, async () => {
  const c = echoClient(`${POD}:15001`);
  try {
    const res = await new Promise<{ text: string }>((resolve, reject) =>
      c.Unary({ text: 'after h2spec' }, { deadline: Date.now() + 20_000 }, (err: Error | null, r: { text: string }) => (err ? reject(err) : resolve(r))),
    );
    assert.equal(res.text, 'after h2spec');
  } finally {
    c.close();
  }
});
