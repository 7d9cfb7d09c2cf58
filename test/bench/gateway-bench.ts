// Protocol gateway benchmark (not a test): a 1 KiB JSON call through the gateway against the same call as
// gRPC through the same sidecars, in one run, rounds interleaved. Real processes: the local controller, the
// gRPC echo app and the legacy HTTP/JSON echo app, each behind its sidecar, and one caller sidecar in
// app-protocol http mode (it takes gRPC and JSON on the same port). The load is one h2c connection from this
// process with C streams in flight (closed loop), the same client code for both forms.
//   out:  JSON → caller sidecar (converts) → gRPC provider   vs   gRPC → the same caller sidecar → the same provider
//   in:   gRPC → caller sidecar → legacy provider's sidecar (converts) → legacy app   vs   the gRPC provider's sidecar in `grpc`
// Reported: CPU per call of the converting sidecar (from /proc, all threads) in both forms and the difference
// (goal ≤ +100 µs; also the median of the per-round differences), and the throughput ratio JSON / gRPC (goal ≥ 0.6).
// Writes test/bench/results/gateway.json. Run: npm run bench:gateway  (BENCH_CALLS per phase, default 4000; BENCH_C, default 16; BENCH_ROUNDS, default 9)
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { ECHO_API } from '../fixtures/echo-client.ts';
import { startEcho, startLegacyEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { REPO, startController, tempDir, writePods } from '../fixtures/local-controller.ts';
import { loadSchema } from '../../sidecar/gateway/schema.ts';
import { JsonCodec } from '../../sidecar/gateway/json-codec.ts';
import { SIDECAR_NODE_FLAGS } from '../../sidecar/runtime-flags.ts';

const NET = '127.0.125';
const GRPC_POD = `${NET}.11`;
const LEGACY_POD = `${NET}.12`;
const CALLER = `${NET}.21`;
const SCHEMA = path.join(REPO, 'test/fixtures/legacy/echo-http.proto');
const CALLS = Number(process.env['BENCH_CALLS'] ?? 4000);
const C = Number(process.env['BENCH_C'] ?? 16);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 9);
const PROFILE = process.env['BENCH_PROFILE'];
const TICK_US = 1e6 / 100; // USER_HZ

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** VmRSS and VmHWM (peak) of a process, MB. */
function rssMb(pid: number): { rss: number; peak: number } {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}

function loadAvg(): number {
  return Number(os.loadavg()[0]!.toFixed(2));
}

interface Form { path: string; contentType: string; body: Buffer }

/** C streams in flight on one h2c session until `calls` are answered; calls/s and failures. */
async function drive(session: http2.ClientHttp2Session, form: Form, calls: number): Promise<{ rate: number; failed: number }> {
  let started = 0;
  let failed = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let done = 0;
    const one = (): void => {
      if (started >= calls) return;
      started++;
      const st = session.request({ ':method': 'POST', ':path': form.path, 'content-type': form.contentType, te: 'trailers' });
      let status = 0;
      let grpcStatus: string | undefined;
      st.on('response', (h) => {
        status = Number(h[':status']);
        grpcStatus = h['grpc-status'] as string | undefined;
      });
      st.on('trailers', (t) => (grpcStatus = t['grpc-status'] as string | undefined));
      st.on('data', () => {});
      st.on('close', () => {
        if (status !== 200 || (form.contentType === 'application/grpc' && grpcStatus !== '0')) failed++;
        if (++done === calls) resolve();
        else one();
      });
      st.end(form.body);
    };
    for (let i = 0; i < C; i++) one();
  });
  return { rate: calls / ((performance.now() - t0) / 1000), failed };
}

async function main(): Promise<void> {
  const dir = tempDir('gateway-bench');
  const podsFile = path.join(dir, 'pods.yaml');
  writePods(podsFile, [
    { name: 'echo-grpc', ip: GRPC_POD, provides: `${ECHO_API}@1.4.0` },
    { name: 'echo-legacy', ip: LEGACY_POD, provides: `${ECHO_API}@2.0.0`, annotations: { 'qbasis.io/app-protocol': 'http', 'qbasis.io/schema': 'echo-schema' } },
  ]);
  const ctl = await startController({ podsFile, host: `${NET}.1` });
  try {
    await startEcho({ host: GRPC_POD, port: 50051, name: 'echo-grpc', version: '1.4.0' });
    await startLegacyEcho({ host: LEGACY_POD, port: 50051, name: 'echo-legacy', version: '2.0.0' });
    const http = ['--app-protocol', 'http', '--schema', SCHEMA];
    // BENCH_PROFILE=<dir>: --cpu-prof of the two converting sidecars (written when they stop, at the end).
    const profile = (role: string): { env?: NodeJS.ProcessEnv } => (PROFILE === undefined ? {} : { env: { QBASIS_SIDECAR_NODE_FLAGS: `${SIDECAR_NODE_FLAGS.join(' ')} --cpu-prof --cpu-prof-dir=${path.join(PROFILE, role)}` } });
    const [grpcSide, legacySide, caller] = await Promise.all([
      startSidecar({ ip: GRPC_POD, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0`, podName: 'echo-grpc' }),
      startSidecar({ ip: LEGACY_POD, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@2.0.0`, podName: 'echo-legacy', extra: http, ...profile('legacy-provider') }),
      startSidecar({ ip: CALLER, discovery: ctl.target, appPort: 1, requires: `${ECHO_API}@^1.2`, podName: 'caller', extra: http, ...profile('caller') }),
    ]) as [Proc, Proc, Proc];
    // A second caller for the inbound comparison: plain gRPC to the legacy provider (^2).
    const callerIn = await startSidecar({ ip: `${NET}.22`, discovery: ctl.target, appPort: 1, requires: `${ECHO_API}@^2`, podName: 'caller-in' });

    // The 1 KiB request: proto3 JSON of about 1 KiB, and the same message in protobuf.
    const schema = loadSchema(SCHEMA);
    const codec = new JsonCodec(schema.registry);
    const reqType = schema.message('qbasis.test.echo.v1.EchoRequest')!;
    const json = JSON.stringify({ text: 'the quick brown fox jumps over the lazy dog '.repeat(9).slice(0, 400), payload: Buffer.alloc(300, 7).toString('base64'), tag: 'bench-call', count: 1, seq: '1234567890123' });
    const bin = Buffer.from(codec.jsonToBinary(reqType, json));
    const grpcBody = Buffer.alloc(5 + bin.length);
    grpcBody.writeUInt32BE(bin.length, 1);
    bin.copy(grpcBody, 5);
    const UNARY = `/${ECHO_API}/Unary`;
    const forms = {
      grpc: { path: UNARY, contentType: 'application/grpc', body: grpcBody },
      json: { path: UNARY, contentType: 'application/json', body: Buffer.from(json) },
    };
    const outSession = http2.connect(`http://${CALLER}:15001`);
    const inSession = http2.connect(`http://${NET}.22:15001`);
    // Warm-up: JIT, connections, pools.
    await drive(outSession, forms.grpc, 1000);
    await drive(outSession, forms.json, 1000);
    await drive(inSession, forms.grpc, 1000);

    type Phase = 'grpc_out' | 'json_out' | 'grpc_in_legacy';
    const samples: Record<Phase, { rate: number; failed: number; cpuUs: Record<string, number> }[]> = { grpc_out: [], json_out: [], grpc_in_legacy: [] };
    const pids = { caller: caller.pid, grpc_provider: grpcSide.pid, legacy_provider: legacySide.pid, caller_in: callerIn.pid };
    const loads: number[] = [loadAvg()];
    for (let r = 0; r < ROUNDS; r++) {
      // Odd rounds run the phases in reverse: a trend in the machine's speed during a round (JIT, other load)
      // then favours each form equally often.
      const phases: Phase[] = ['grpc_out', 'json_out', 'grpc_in_legacy'];
      for (const phase of r % 2 === 0 ? phases : phases.reverse()) {
        const t0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuTicks(p)]));
        const res = await drive(phase === 'grpc_in_legacy' ? inSession : outSession, phase === 'json_out' ? forms.json : forms.grpc, CALLS);
        const cpuUs = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, ((cpuTicks(p) - t0[k]!) * TICK_US) / CALLS]));
        samples[phase].push({ ...res, cpuUs });
        process.stdout.write(`# round ${r + 1} ${phase}: ${Math.round(res.rate)} calls/s, ${res.failed} failed, CPU µs/call ${JSON.stringify(Object.fromEntries(Object.entries(cpuUs).map(([k, v]) => [k, Math.round(v)])))}\n`);
      }
      loads.push(loadAvg());
    }
    // Memory after the rounds: the converting sidecars beside the gRPC ones (the same code; http mode also loads
    // the schema, the codec and undici's pool).
    const memory = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, rssMb(p)]));
    outSession.close();
    inSession.close();
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const m = (p: Phase, f: (s: (typeof samples)[Phase][number]) => number): number => Number(median(samples[p].map(f)).toFixed(1));
    const outGrpc = m('grpc_out', (s) => s.cpuUs.caller!);
    const outJson = m('json_out', (s) => s.cpuUs.caller!);
    const inGrpc = m('grpc_out', (s) => s.cpuUs.grpc_provider!);
    const inLegacy = m('grpc_in_legacy', (s) => s.cpuUs.legacy_provider!);
    // Paired within a round (the phases of one round run back to back), so drift in the machine's load cancels.
    const paired = (a: Phase, ka: string, b: Phase, kb: string): number => Number(median(samples[a].map((s, i) => s.cpuUs[ka]! - samples[b][i]!.cpuUs[kb]!)).toFixed(1));
    const result = {
      measured_at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, load_avg_1m: loads },
      calls_per_phase: CALLS,
      concurrency: C,
      rounds: ROUNDS,
      request: { json_bytes: Buffer.byteLength(json), protobuf_bytes: bin.length },
      outbound: {
        caller_sidecar_cpu_us_per_call: { grpc: outGrpc, json: outJson, added: Number((outJson - outGrpc).toFixed(1)), added_paired_median: paired('json_out', 'caller', 'grpc_out', 'caller') },
        throughput_calls_per_s: { grpc: m('grpc_out', (s) => s.rate), json: m('json_out', (s) => s.rate) },
        throughput_ratio_json_to_grpc: Number((m('json_out', (s) => s.rate) / m('grpc_out', (s) => s.rate)).toFixed(3)),
      },
      inbound: {
        provider_sidecar_cpu_us_per_call: { grpc_app: inGrpc, legacy_http_app: inLegacy, added: Number((inLegacy - inGrpc).toFixed(1)), added_paired_median: paired('grpc_in_legacy', 'legacy_provider', 'grpc_out', 'grpc_provider') },
        throughput_calls_per_s: { grpc_app: m('grpc_out', (s) => s.rate), legacy_http_app: m('grpc_in_legacy', (s) => s.rate) },
      },
      rss_mb: memory,
      failed: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.reduce((a, s) => a + s.failed, 0)])),
      goals: { added_cpu_us_per_call_max: 100, throughput_ratio_min: 0.6 },
      samples,
    };
    const file = path.join(REPO, 'test/bench/results/gateway.json');
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    if (PROFILE !== undefined) await Promise.all([caller.stop(), legacySide.stop()]);
    process.stdout.write(`${JSON.stringify({ outbound: result.outbound, inbound: result.inbound, rss_mb: memory, failed: result.failed, load: loads }, null, 2)}\nwrote ${file}\n`);
  } finally {
    await stopAll();
    await ctl.stop();
  }
}

await main();
