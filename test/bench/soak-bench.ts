// Soak (issue 11): mixed good and hostile traffic against a small local mesh for a long time (default
// 10 minutes), ending with 0 failed good calls, no process gone, and every sidecar's RSS within 20 % of
// where it started. Writes test/bench/results/soak.json and prints a table; exits 1 when a goal is missed.
//   npm run bench:soak                       # 600 s
//   npm run bench:soak -- --duration 60      # a short run (the JSON says so: durationS, shortRun)
//   flags (each also as env): --duration SOAK_DURATION_S (600), --warmup SOAK_WARMUP_S (20),
//     --settle SOAK_SETTLE_S (5), --rps SOAK_RPS (200 good unary calls/s), --hostile-rps SOAK_HOSTILE_RPS
//     (30 ops/s for random bytes, bad frames, unknown methods), --reset-rps SOAK_RESET_RPS (300 streams
//     opened and reset per second), --idle SOAK_IDLE (300 idle connections), --slot SOAK_SLOT_S (5 s per
//     hostile kind in the rotation), --kinds SOAK_KINDS (comma list, default all), --out SOAK_OUT.
// Real processes: the local controller, two provider pods (echo app + sidecar, `--provides` the echo API
// @1.4.0) and one caller pod's sidecar (`--requires` the echo API @^1.2), started by the same fixtures
// the tests use. Good traffic goes through the caller's outbound :15001 (unary at --rps, plus two
// server-streaming calls a second); hostile traffic, in rotation (one kind per --slot), goes to the
// providers' inbound :15006, the caller's outbound :15001 and every admin :15020, from source addresses
// 127.0.74.90-99 (other "pods"); idle connections are held all through the soak, each replaced after a random 20-180 s.
// RSS is read from /proc/PID/status (VmRSS) every second: start = after the warm-up of good traffic
// alone, end = after the hostile traffic stopped and --settle seconds of good traffic alone.
// Addresses: 127.0.74.x only (controller .1, providers .11 and .12, caller .21, attackers .90-.99).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type * as grpc from '@grpc/grpc-js';
import { apiId, encodeFrame, methodId, writeHeader, type BasisHeader } from '../../proto/basis/index.ts';
import { ECHO_API, echoClient, type EchoResponse } from '../fixtures/echo-client.ts';
import { admin, startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { REPO, startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';

// ---------------------------------------------------------------- configuration

const KINDS = ['random-bytes', 'bad-frames', 'unknown-methods', 'rapid-reset', 'shutdown', 'idle'] as const;
type Kind = (typeof KINDS)[number];
/** The hostile kinds that take turns; `idle` is held in the background all through the soak. */
const ROTATION: readonly Kind[] = ['random-bytes', 'bad-frames', 'unknown-methods', 'rapid-reset', 'shutdown'];
const GOAL_DURATION_S = 600;

function usage(): string {
  return [
    'Usage: node test/bench/soak-bench.ts [--duration S] [--warmup S] [--settle S] [--rps N] [--hostile-rps N]',
    '         [--reset-rps N] [--idle N] [--slot S] [--kinds k1,k2] [--out FILE]',
    `kinds: ${KINDS.join(', ')}`,
  ].join('\n');
}

function config(): {
  durationS: number; warmupS: number; settleS: number; rps: number; hostileRps: number; resetRps: number; idle: number; slotS: number; kinds: Kind[]; out: string;
} {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      options: {
        duration: { type: 'string' }, warmup: { type: 'string' }, settle: { type: 'string' }, rps: { type: 'string' }, 'hostile-rps': { type: 'string' },
        'reset-rps': { type: 'string' }, idle: { type: 'string' }, slot: { type: 'string' }, kinds: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean' },
      },
      strict: true, allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`soak-bench: ${(err as Error).message.split('\n')[0]}\n${usage()}\n`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stdout.write(usage() + '\n');
    process.exit(0);
  }
  const num = (flag: string, env: string, def: number, min: number, max: number): number => {
    const raw = (values[flag] as string | undefined) ?? process.env[env];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      process.stderr.write(`soak-bench: invalid --${flag} (${env}) '${raw}': expected a number from ${min} to ${max}\n`);
      process.exit(2);
    }
    return n;
  };
  const kindsRaw = (values.kinds as string | undefined) ?? process.env.SOAK_KINDS;
  const kinds = kindsRaw === undefined || kindsRaw === '' ? [...KINDS] : kindsRaw.split(',').map((k) => k.trim()).filter((k) => k !== '');
  for (const k of kinds) {
    if (!(KINDS as readonly string[]).includes(k)) {
      process.stderr.write(`soak-bench: unknown kind '${k}' in --kinds: expected some of ${KINDS.join(', ')}\n`);
      process.exit(2);
    }
  }
  return {
    durationS: num('duration', 'SOAK_DURATION_S', GOAL_DURATION_S, 1, 3600),
    warmupS: num('warmup', 'SOAK_WARMUP_S', 20, 1, 600),
    settleS: num('settle', 'SOAK_SETTLE_S', 5, 0, 120),
    rps: num('rps', 'SOAK_RPS', 200, 1, 2000),
    hostileRps: num('hostile-rps', 'SOAK_HOSTILE_RPS', 30, 0, 500),
    resetRps: num('reset-rps', 'SOAK_RESET_RPS', 300, 0, 2000),
    idle: Math.round(num('idle', 'SOAK_IDLE', 300, 0, 2000)),
    slotS: num('slot', 'SOAK_SLOT_S', 5, 1, 600),
    kinds: kinds as Kind[],
    out: (values.out as string | undefined) ?? process.env.SOAK_OUT ?? path.join(REPO, 'test/bench/results/soak.json'),
  };
}

const CFG = config();
const NET = '127.0.74';
const CTL_HOST = `${NET}.1`;
const APP_PORT = 50051;
/** Source addresses of the hostile traffic (other "pods"): .90-.98; .99 sends POST /shutdown. */
const ATTACKERS = Array.from({ length: 9 }, (_, i) => `${NET}.${90 + i}`);
const SHUTDOWN_SOURCE = `${NET}.99`;
const GOOD_DEADLINE_MS = 10_000;
const MAX_GOOD_INFLIGHT = 1000;
const HOLD_MS = 10_000;
const MAX_HELD_PER_TARGET = 8;
const HOSTILE_TIMEOUT_MS = 5_000;
const MAX_HOSTILE_INFLIGHT = 300;
/** Each idle connection is closed by us after a random 20-180 s (the sidecar's own idle timeout may come first) and replaced. */
const IDLE_LIFETIME_MS = [20_000, 180_000] as const;
const MIB = 1024 * 1024;

const STATUS = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const statusName = (code: number | string): string => STATUS[Number(code)] ?? String(code);

// ---------------------------------------------------------------- shared state

type Phase = 'warmup' | 'soak' | 'settle';
const state = { phase: 'warmup' as Phase, active: 'none' as string, soakStart: 0, stopping: false, cleanup: false, abort: undefined as string | undefined };
const sinceSoakS = (): number => Number(((performance.now() - state.soakStart) / 1000).toFixed(1));
const inc = (m: Record<string, number>, k: string, n = 1): void => {
  m[k] = (m[k] ?? 0) + n;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const errCode = (e: unknown): string => String((e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? e);
let attackerIdx = 0;
const attacker = (): string => ATTACKERS[attackerIdx++ % ATTACKERS.length]!;

/** Everything hostile that is open (sockets, sessions, streams), destroyed when the soak ends. */
const open = new Set<{ destroy(): void }>();

// ---------------------------------------------------------------- the mesh

interface Target { name: string; host: string; port: number; kind: 'outbound' | 'inbound' | 'admin'; sidecar: string }

interface Sidecar { name: string; ip: string; proc: Proc }

// ---------------------------------------------------------------- good traffic

interface CallStats { made: number; ok: number; failed: number; byStatus: Record<string, number> }
const newStats = (): CallStats => ({ made: 0, ok: 0, failed: 0, byStatus: {} });

class GoodTraffic {
  readonly unary = newStats();
  readonly serverStream = newStats();
  readonly failedByPhase: Record<string, number> = {};
  readonly failedByActiveKind: Record<string, number> = {};
  readonly failures: { atS: number; phase: Phase; active: string; call: string; status: string; message: string }[] = [];
  readonly latencyMs: Record<Phase, number[]> = { warmup: [], soak: [], settle: [] };
  skippedAtCap = 0;
  inflight = 0;
  #client: ReturnType<typeof echoClient>;
  #timer: NodeJS.Timeout | undefined;
  #issued = 0;
  #streamsIssued = 0;
  #t0 = 0;

  constructor(target: string) {
    // Its own connection: hostile traffic on other connections must not share it.
    this.#client = echoClient(target, { 'grpc.use_local_subchannel_pool': 1 });
  }

  start(rps: number): void {
    this.#t0 = performance.now();
    this.#timer = setInterval(() => {
      const elapsed = performance.now() - this.#t0;
      const due = Math.min(Math.floor((elapsed * rps) / 1000) - this.#issued, Math.ceil(rps / 10));
      for (let i = 0; i < due; i++) {
        this.#issued++;
        if (this.inflight >= MAX_GOOD_INFLIGHT) {
          this.skippedAtCap++;
          continue;
        }
        this.#unary();
      }
      const streamsDue = Math.floor(elapsed / 500) - this.#streamsIssued;
      for (let i = 0; i < Math.min(streamsDue, 4); i++) {
        this.#streamsIssued++;
        if (this.inflight < MAX_GOOD_INFLIGHT) this.#serverStream();
      }
      this.#streamsIssued = Math.max(this.#streamsIssued, Math.floor(elapsed / 500));
    }, 10);
  }

  /** Stops issuing; resolves when every call in flight has ended (each has a deadline). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const deadline = Date.now() + GOOD_DEADLINE_MS + 5000;
    while (this.inflight > 0 && Date.now() < deadline) await sleep(50);
    this.#client.close();
  }

  #fail(call: string, stats: CallStats, status: string, message: string): void {
    stats.failed++;
    inc(stats.byStatus, status);
    inc(this.failedByPhase, state.phase);
    inc(this.failedByActiveKind, state.phase === 'soak' ? state.active : state.phase);
    if (this.failures.length < 50) this.failures.push({ atS: sinceSoakS(), phase: state.phase, active: state.active, call, status, message: message.slice(0, 300) });
  }

  #unary(): void {
    const payload = crypto.randomBytes(64 + Math.floor(Math.random() * 960));
    const phase = state.phase;
    const t = performance.now();
    this.unary.made++;
    this.inflight++;
    this.#client.Unary({ payload, text: 'good' }, { deadline: Date.now() + GOOD_DEADLINE_MS }, (err: grpc.ServiceError | null, res: EchoResponse) => {
      this.inflight--;
      if (err) return this.#fail('Unary', this.unary, statusName(err.code), err.details ?? err.message);
      if (!Buffer.from(res.payload).equals(payload) || res.text !== 'good') return this.#fail('Unary', this.unary, 'BAD_ECHO', `answer does not echo the request (served by ${res.served_by})`);
      this.unary.ok++;
      inc(this.unary.byStatus, 'OK');
      this.latencyMs[phase].push(performance.now() - t);
    });
  }

  #serverStream(): void {
    const count = 5;
    const tag = `s${this.serverStream.made}`;
    this.serverStream.made++;
    this.inflight++;
    const call = this.#client.ServerStream({ text: tag, count, payload: Buffer.alloc(100, 1) }, { deadline: Date.now() + GOOD_DEADLINE_MS });
    const got: number[] = [];
    let done = false;
    const finish = (status: string, message: string): void => {
      if (done) return;
      done = true;
      this.inflight--;
      if (status !== 'OK') return this.#fail('ServerStream', this.serverStream, status, message);
      if (got.length !== count || got.some((g, i) => g !== i)) return this.#fail('ServerStream', this.serverStream, 'BAD_STREAM', `got messages ${JSON.stringify(got)}; expected indices 0..${count - 1}`);
      this.serverStream.ok++;
      inc(this.serverStream.byStatus, 'OK');
    };
    call.on('data', (r: EchoResponse) => got.push(r.index));
    call.on('error', (e: grpc.ServiceError) => finish(statusName(e.code), e.details ?? e.message));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === 0) setImmediate(() => finish('OK', ''));
    });
  }
}

// ---------------------------------------------------------------- hostile traffic

interface KindStats { ops: number; skipped: number; byTarget: Record<string, Record<string, number>> }
const hostile: Record<string, KindStats> = {};
const kindStats = (k: string): KindStats => (hostile[k] ??= { ops: 0, skipped: 0, byTarget: {} });
const record = (k: string, t: Target, outcome: string): void => inc((kindStats(k).byTarget[t.name] ??= {}), outcome);
const inflightOps = new Set<Promise<unknown>>();
const held = new Map<string, number>();

function track<T>(p: Promise<T>): Promise<T> {
  inflightOps.add(p);
  void p.finally(() => inflightOps.delete(p));
  return p;
}

/** HTTP/2 client sessions per (target, purpose), from an attacker address, re-made when the server closes one. */
class Sessions {
  readonly #m = new Map<string, { s: http2.ClientHttp2Session }>();
  readonly #made = new Map<string, number>();

  get(t: Target, purpose: string): http2.ClientHttp2Session | undefined {
    const key = `${t.name}/${purpose}`;
    const e = this.#m.get(key);
    if (e !== undefined && !e.s.closed && !e.s.destroyed) return e.s;
    if (performance.now() - (this.#made.get(key) ?? -Infinity) < 100) return undefined; // at most 10 new sessions a second per key
    this.#made.set(key, performance.now());
    const localAddress = attacker();
    const s = http2.connect(`http://${t.host}:${t.port}`, {
      createConnection: () => net.connect({ host: t.host, port: t.port, localAddress }),
      settings: { enablePush: false },
    });
    const entry = { s };
    this.#m.set(key, entry);
    open.add(s);
    s.on('error', (err) => record(purpose, t, `session-error:${errCode(err)}`));
    s.on('goaway', (code) => record(purpose, t, `goaway:${code}`));
    s.on('close', () => {
      open.delete(s);
      if (this.#m.get(key) === entry) this.#m.delete(key);
    });
    record(purpose, t, 'session-opened');
    return s;
  }
}
const sessions = new Sessions();

/** One raw HTTP/2 stream; resolves with what came back: status:<grpc status>[/<qbasis code>], rst:<code>, http:<status>, held, timeout… */
function h2Stream(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Buffer[], o: { end: boolean; holdMs?: number }): Promise<string> {
  return new Promise((resolve) => {
    let req: http2.ClientHttp2Stream;
    try {
      req = s.request(headers, { endStream: false });
    } catch (err) {
      resolve(`request-error:${errCode(err)}`);
      return;
    }
    open.add(req);
    let grpcStatus: string | undefined;
    let qbCode: string | undefined;
    let httpStatus: string | undefined;
    let settled = false;
    const done = (outcome: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      open.delete(req);
      if (!req.closed && !req.destroyed) req.close(http2.constants.NGHTTP2_CANCEL);
      resolve(outcome);
    };
    const meta = (h: http2.IncomingHttpHeaders): void => {
      if (h[':status'] !== undefined) httpStatus = String(h[':status']);
      if (h['grpc-status'] !== undefined) grpcStatus = statusName(String(h['grpc-status']));
      if (h['qbasis-error-code'] !== undefined) qbCode = String(h['qbasis-error-code']);
    };
    req.on('response', meta);
    req.on('trailers', meta);
    req.on('data', () => {});
    req.on('error', () => {});
    req.on('close', () => {
      if (grpcStatus !== undefined) done(`status:${grpcStatus}${qbCode ? `/${qbCode}` : ''}`);
      else if (req.rstCode !== undefined && req.rstCode !== 0) done(`rst:${req.rstCode}`);
      else if (httpStatus !== undefined) done(`http:${httpStatus}`);
      else done('closed-without-answer');
    });
    const timer = setTimeout(() => done(o.holdMs !== undefined ? 'held-then-reset' : 'timeout'), o.holdMs ?? HOSTILE_TIMEOUT_MS);
    try {
      for (const b of body) req.write(b);
      if (o.end) req.end();
    } catch (err) {
      done(`write-error:${errCode(err)}`);
    }
  });
}

/** A raw TCP connection from an attacker address: writes `chunks`, then ends after `holdMs` (or when the server closes). */
function rawTcp(t: Target, chunks: Buffer[], holdMs: number, localAddress = attacker()): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: t.host, port: t.port, localAddress });
    open.add(sock);
    let got = 0;
    let byUs = false;
    let err: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    sock.on('data', (d: Buffer) => (got += d.length));
    sock.on('error', (e) => (err ??= errCode(e)));
    sock.setTimeout(holdMs + 3000, () => {
      byUs = true;
      sock.destroy();
    });
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
      timer = setTimeout(() => {
        byUs = true;
        sock.end();
        setTimeout(() => sock.destroy(), 1000).unref();
      }, holdMs);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      open.delete(sock);
      if (err !== undefined && !byUs) resolve(`error:${err}`);
      else if (!byUs) resolve(got > 0 ? 'server-answered-and-closed' : 'server-closed');
      else resolve(got > 0 ? 'answered' : 'ignored');
    });
  });
}

/** One HTTP/1 request from `localAddress`; resolves http:<status> or error:<code>. */
function http1(t: Target, method: string, urlPath: string, localAddress: string, headers: http.OutgoingHttpHeaders = {}): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request({ host: t.host, port: t.port, path: urlPath, method, localAddress, headers: { connection: 'close', ...headers }, timeout: HOSTILE_TIMEOUT_MS, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(`http:${res.statusCode}`));
      res.on('error', () => resolve(`http:${res.statusCode}`));
    });
    open.add(req);
    req.on('error', (e) => resolve(`error:${errCode(e)}`));
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('close', () => open.delete(req));
    req.end();
  });
}

// EchoRequest{text: "ok"} in protobuf.
const OK_PAYLOAD = Buffer.from([0x12, 0x02, 0x6f, 0x6b]);
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const reqHeader = (over: Partial<BasisHeader> = {}): BasisHeader => ({
  codec: 1, kind: 'request', gzip: false, encoding: 'protobuf', apiId: apiId(ECHO_API), methodId: methodId('Unary'), major: 1, minor: 2, length: OK_PAYLOAD.length, ...over,
});
const goodFrame = (over: Partial<BasisHeader> = {}): Buffer => encodeFrame(reqHeader(over), OK_PAYLOAD);
/** A bare header declaring `length` payload bytes (none follow). */
const headerOnly = (length: number): Buffer => {
  const b = Buffer.alloc(16);
  writeHeader(reqHeader({ length }), b, 0);
  return b;
};
const patched = (buf: Buffer, offset: number, seg: number): Buffer => {
  buf.writeUInt16BE(seg, offset);
  return buf;
};
const grpcPrefix = (flag: number, size: number): Buffer => {
  const b = Buffer.alloc(5);
  b[0] = flag;
  b.writeUInt32BE(size, 1);
  return b;
};

interface BadCase { name: string; body: () => Buffer[]; hold?: boolean }
/** Basis frames to a provider's inbound :15006 (path /EchoService/Unary, range ^1.2). */
const INBOUND_CASES: BadCase[] = [
  { name: 'wrong-magic', body: () => [patched(goodFrame(), 0, 0x7201)] },
  { name: 'unknown-codec', body: () => [patched(goodFrame(), 0, 0x7109)] },
  { name: 'reserved-bits', body: () => [patched(goodFrame(), 2, 0x0020)] },
  { name: 'over-long', body: () => [headerOnly(4 * MIB + 1)] },
  { name: 'bytes-after-frame', body: () => [Buffer.concat([goodFrame(), crypto.randomBytes(7)])] },
  { name: 'truncated-payload', body: () => [goodFrame().subarray(0, 18)] },
  { name: 'truncated-header', body: () => [goodFrame().subarray(0, 7)] },
  { name: 'response-kind', body: () => [goodFrame({ kind: 'response' })] },
  { name: 'declares-4MiB-then-nothing', body: () => [headerOnly(4 * MIB)], hold: true },
  { name: 'declares-4MiB-sends-256KiB', body: () => [headerOnly(4 * MIB), crypto.randomBytes(256 * 1024)], hold: true },
];
/** gRPC messages (5-byte prefix) to the caller's outbound :15001 (path /EchoService/Unary). */
const OUTBOUND_CASES: BadCase[] = [
  { name: 'bad-grpc-flag', body: () => [grpcPrefix(0x02, OK_PAYLOAD.length), OK_PAYLOAD] },
  { name: 'basis-frame-as-grpc', body: () => [goodFrame()] },
  { name: 'over-long', body: () => [grpcPrefix(0, 4 * MIB + 1)] },
  { name: 'truncated-message', body: () => [grpcPrefix(0, 100), crypto.randomBytes(10)] },
  { name: 'truncated-prefix', body: () => [Buffer.from([0, 0, 0])] },
  // Field 1 (bytes) declaring 127 bytes with 62 left, so the app can never decode it (random bytes alone
  // sometimes decode into an EchoRequest with a fail_code or a delay).
  { name: 'garbage-protobuf', body: () => { const p = Buffer.concat([Buffer.from([0x0a, 0x7f]), crypto.randomBytes(62)]); return [grpcPrefix(0, p.length), p]; } },
  { name: 'declares-4MiB-then-nothing', body: () => [grpcPrefix(0, 4 * MIB)], hold: true },
  { name: 'declares-4MiB-sends-256KiB', body: () => [grpcPrefix(0, 4 * MIB), crypto.randomBytes(256 * 1024)], hold: true },
];
/** Malformed HTTP/1 to an admin :15020 (raw TCP). */
const ADMIN_CASES: { name: string; body: () => Buffer[]; holdMs: number }[] = [
  { name: 'oversized-header', body: () => [Buffer.from(`GET /metrics HTTP/1.1\r\nHost: x\r\nX-Junk: ${'a'.repeat(64 * 1024)}\r\n\r\n`)], holdMs: 500 },
  { name: 'bad-chunked', body: () => [Buffer.from('POST /live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')], holdMs: 500 },
  { name: 'truncated-request', body: () => [Buffer.from('GET /metr')], holdMs: 2000 },
  { name: 'bad-method', body: () => [Buffer.from('BREW /ready HTTP/1.1\r\nHost: x\r\n\r\n')], holdMs: 500 },
  { name: 'h2-preface-to-http1', body: () => [H2_PREFACE, crypto.randomBytes(64)], holdMs: 500 },
];
const caseIdx = new Map<string, number>();
function nextCase<T extends { name: string }>(key: string, cases: T[], ok: (c: T) => boolean): T {
  for (let tries = 0; tries < cases.length; tries++) {
    const i = caseIdx.get(key) ?? 0;
    caseIdx.set(key, i + 1);
    const c = cases[i % cases.length]!;
    if (ok(c)) return c;
  }
  return cases.find(ok) ?? cases[0]!;
}

/** `deadline: false`: no grpc-timeout (an attacker holding a stream open sends none). */
const grpcHeaders = (p: string, inbound: boolean, deadline = true): http2.OutgoingHttpHeaders => ({
  ':method': 'POST', ':path': p, 'content-type': 'application/grpc', te: 'trailers', ...(deadline ? { 'grpc-timeout': '5S' } : {}), ...(inbound ? { 'qbasis-range': '^1.2' } : {}),
});

function randomBytesOp(t: Target): Promise<void> {
  const size = 1 + Math.floor(Math.random() * 16 * 1024);
  const variant = Math.random() < 0.5 ? 'random' : t.kind === 'admin' ? 'http1-line+random' : 'h2-preface+random';
  const prefix = variant === 'random' ? [] : variant === 'h2-preface+random' ? [H2_PREFACE] : [Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n')];
  const body = crypto.randomBytes(size);
  const chunks = [...prefix, ...(size > 2 ? [body.subarray(0, size >> 1), body.subarray(size >> 1)] : [body])];
  return rawTcp(t, chunks, 200 + Math.random() * 300).then((o) => record('random-bytes', t, `${variant}:${o}`));
}

async function badFramesOp(t: Target): Promise<void> {
  if (t.kind === 'admin') {
    const c = nextCase(t.name, ADMIN_CASES, () => true);
    record('bad-frames', t, `${c.name}:${await rawTcp(t, c.body(), c.holdMs)}`);
    return;
  }
  const s = sessions.get(t, 'bad-frames');
  if (s === undefined) return record('bad-frames', t, 'no-session');
  const cases = t.kind === 'inbound' ? INBOUND_CASES : OUTBOUND_CASES;
  const canHold = (held.get(t.name) ?? 0) < MAX_HELD_PER_TARGET;
  const c = nextCase(t.name, cases, (x) => canHold || x.hold !== true);
  if (c.hold) held.set(t.name, (held.get(t.name) ?? 0) + 1);
  try {
    const o = await h2Stream(s, grpcHeaders(`/${ECHO_API}/Unary`, t.kind === 'inbound', c.hold !== true), c.body(), c.hold ? { end: false, holdMs: HOLD_MS } : { end: true });
    record('bad-frames', t, `${c.name}:${o}`);
  } finally {
    if (c.hold) held.set(t.name, held.get(t.name)! - 1);
  }
}

async function unknownMethodOp(t: Target): Promise<void> {
  const name = `Made${crypto.randomBytes(6).toString('hex')}`; // a new name every call
  if (t.kind === 'admin') {
    record('unknown-methods', t, await http1(t, pick(['GET', 'POST', 'PUT', 'DELETE']), `/${name}`, attacker()));
    return;
  }
  const s = sessions.get(t, 'unknown-methods');
  if (s === undefined) return record('unknown-methods', t, 'no-session');
  const body = t.kind === 'inbound' ? [goodFrame({ methodId: methodId(name) })] : [grpcPrefix(0, OK_PAYLOAD.length), OK_PAYLOAD];
  record('unknown-methods', t, await h2Stream(s, grpcHeaders(`/${ECHO_API}/${name}`, t.kind === 'inbound'), body, { end: true }));
}

/** Opens `n` streams on one session and resets each at once (HEADERS then RST_STREAM CANCEL). */
function rapidResetBurst(t: Target, n: number): void {
  const s = sessions.get(t, 'rapid-reset');
  if (s === undefined) {
    record('rapid-reset', t, 'no-session');
    return;
  }
  for (let i = 0; i < n; i++) {
    try {
      const req = s.request(grpcHeaders(`/${ECHO_API}/Unary`, t.kind === 'inbound'), { endStream: false });
      req.on('error', () => {});
      req.close(http2.constants.NGHTTP2_CANCEL);
      kindStats('rapid-reset').ops++;
      record('rapid-reset', t, 'reset-sent');
    } catch (err) {
      record('rapid-reset', t, `request-error:${errCode(err)}`);
      return;
    }
  }
}

let shutdownVariant = 0;
async function shutdownOp(t: Target): Promise<void> {
  // From another "pod": source address 127.0.74.99; some attempts also claim to be local in headers.
  const v = shutdownVariant++ % 3;
  const headers: http.OutgoingHttpHeaders = v === 1 ? { 'x-forwarded-for': '127.0.0.1' } : v === 2 ? { host: `127.0.0.1:${t.port}` } : {};
  const label = ['plain', 'x-forwarded-for-127.0.0.1', 'host-127.0.0.1'][v]!;
  record('shutdown', t, `${label}:${await http1(t, 'POST', '/shutdown', SHUTDOWN_SOURCE, headers)}`);
}

/** Runs `op` against the targets round-robin at `rate` per second until `untilMs` (performance.now()). */
async function runAtRate(kind: string, rate: number, targets: Target[], untilMs: number, op: (t: Target) => Promise<void>): Promise<void> {
  if (rate <= 0 || targets.length === 0) {
    await sleep(Math.max(0, untilMs - performance.now()));
    return;
  }
  const st = kindStats(kind);
  const t0 = performance.now();
  let issued = 0;
  let ti = 0;
  while (!state.stopping && performance.now() < untilMs) {
    const due = Math.min(Math.floor(((performance.now() - t0) * rate) / 1000) - issued, 50);
    for (let i = 0; i < due; i++) {
      issued++;
      if (inflightOps.size >= MAX_HOSTILE_INFLIGHT) {
        st.skipped++;
        continue;
      }
      st.ops++;
      const t = targets[ti++ % targets.length]!;
      void track(op(t).catch((err: unknown) => record(kind, t, `bench-error:${errCode(err)}`)));
    }
    await sleep(20);
  }
}

async function runRapidReset(targets: Target[], untilMs: number): Promise<void> {
  if (CFG.resetRps <= 0 || targets.length === 0) {
    await sleep(Math.max(0, untilMs - performance.now()));
    return;
  }
  const t0 = performance.now();
  let issued = 0;
  while (!state.stopping && performance.now() < untilMs) {
    const due = Math.min(Math.floor(((performance.now() - t0) * CFG.resetRps) / 1000) - issued, 200);
    if (due > 0) {
      issued += due;
      const per = Math.ceil(due / targets.length);
      for (const t of targets) rapidResetBurst(t, per);
    }
    await sleep(20);
  }
}

// ---------------------------------------------------------------- idle connections

class IdlePool {
  readonly stats = { opened: 0, openFailed: {} as Record<string, number>, closedByServer: {} as Record<string, number>, serverCloseLifetimesMs: [] as number[], replacedByUs: 0, maxHeld: 0 };
  readonly #conns = new Set<{ target: string; openedAt: number; closeAt: number; close(): void }>();
  #next = 0;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;

  readonly targets: Target[];
  readonly n: number;

  constructor(targets: Target[], n: number) {
    this.targets = targets;
    this.n = n;
  }

  start(): void {
    if (this.n === 0) return;
    this.#topUp();
    this.#timers.push(setInterval(() => {
      const now = performance.now();
      for (const c of [...this.#conns]) {
        if (now < c.closeAt) continue;
        this.stats.replacedByUs++;
        c.close();
      }
      this.#topUp();
    }, 1000));
  }

  held(): number {
    return this.#conns.size;
  }

  closeAll(): void {
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    for (const c of [...this.#conns]) c.close();
  }

  /** At most 50 new connections per call, so a refill never floods the accept queues. */
  #topUp(): void {
    for (let i = 0; i < 50 && this.#conns.size < this.n && !this.#closed; i++) this.#open();
  }

  #open(): void {
    const i = this.#next++;
    const t = this.targets[i % this.targets.length]!;
    const h2 = t.kind !== 'admin' && Math.floor(i / this.targets.length) % 2 === 1;
    const type = h2 ? 'h2' : 'tcp';
    const localAddress = attacker();
    const now = performance.now();
    const entry = { target: `${t.name}/${type}`, openedAt: now, closeAt: now + IDLE_LIFETIME_MS[0] + Math.random() * (IDLE_LIFETIME_MS[1] - IDLE_LIFETIME_MS[0]), close: () => {} };
    let byUs = false;
    let connected = false;
    const onClose = (reason: string): void => {
      if (!this.#conns.delete(entry)) return;
      if (byUs) return;
      if (!connected) inc(this.stats.openFailed, `${entry.target}:${reason}`);
      else {
        inc(this.stats.closedByServer, `${entry.target}${reason ? `:${reason}` : ''}`);
        if (this.stats.serverCloseLifetimesMs.length < 10_000) this.stats.serverCloseLifetimesMs.push(performance.now() - entry.openedAt);
      }
    };
    this.#conns.add(entry);
    this.stats.maxHeld = Math.max(this.stats.maxHeld, this.#conns.size);
    if (!h2) {
      const sock = net.connect({ host: t.host, port: t.port, localAddress });
      open.add(sock);
      let err = '';
      sock.on('connect', () => {
        connected = true;
        this.stats.opened++;
      });
      sock.on('data', () => {}); // whatever the server says (an HTTP/2 server's SETTINGS), it never hears back
      sock.on('error', (e) => (err ||= errCode(e)));
      sock.on('close', () => {
        open.delete(sock);
        onClose(err);
      });
      entry.close = () => {
        byUs = true;
        this.#conns.delete(entry);
        sock.destroy();
      };
    } else {
      const s = http2.connect(`http://${t.host}:${t.port}`, { createConnection: () => net.connect({ host: t.host, port: t.port, localAddress }) });
      open.add(s);
      let goaway = '';
      let err = '';
      s.on('connect', () => {
        connected = true;
        this.stats.opened++;
      });
      s.on('goaway', (code) => (goaway = `goaway:${code}`));
      s.on('error', (e) => (err ||= errCode(e)));
      s.on('close', () => {
        open.delete(s);
        onClose(goaway || err);
      });
      entry.close = () => {
        byUs = true;
        this.#conns.delete(entry);
        s.destroy();
      };
    }
  }
}

// ---------------------------------------------------------------- RSS and metrics

interface RssTrack { startMb: number | null; endUnderAttackMb: number | null; endMb: number | null; peakMb: number; vmHwmMb: number | null }

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number((Number(m[1]) / 1024).toFixed(1)) : null;
  } catch {
    return null;
  }
}

function alive(p: Proc): boolean {
  return p.proc.exitCode === null && p.proc.signalCode === null;
}

async function metricsSummary(ip: string): Promise<{ bytes: number; series: number; refused: Record<string, number> } | { error: string }> {
  try {
    const r = await admin(ip, '/metrics');
    if (r.status !== 200) return { error: `http ${r.status}` };
    const lines = r.body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const refused: Record<string, number> = {};
    for (const l of lines) {
      const m = /^qbasis_sidecar_frames_refused_total\{direction="(\w+)",reason="(\w+)"\} (\d+)/.exec(l);
      if (m) refused[`${m[1]}/${m[2]}`] = Number(m[3]);
    }
    return { bytes: Buffer.byteLength(r.body), series: lines.length, refused };
  } catch (err) {
    return { error: errCode(err) };
  }
}

const pct = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(2));
};

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const hardLimitMs = (CFG.warmupS + CFG.durationS + CFG.settleS + 180) * 1000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`soak-bench: still running ${hardLimitMs / 1000} s after the start; killing everything it started\n`);
    void stopAll().finally(() => process.exit(3));
  }, hardLimitMs);
  watchdog.unref();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (state.abort !== undefined) {
      void stopAll().finally(() => process.exit(130));
      return;
    }
    state.abort = sig;
    process.stderr.write(`soak-bench: ${sig}: ending the soak early (again to kill at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const dir = tempDir('soak-bench');
  const podsFile = path.join(dir, 'pods.yaml');
  const providers = [{ name: 'provider-a', ip: `${NET}.11` }, { name: 'provider-b', ip: `${NET}.12` }];
  const callerIp = `${NET}.21`;
  writePods(podsFile, providers.map((p) => ({ name: `echo-${p.name}`, ip: p.ip, provides: `${ECHO_API}@1.4.0` })));
  const logLevel = process.env.SOAK_SIDECAR_LOG_LEVEL ?? 'warn';
  let ctl: RunningController | undefined;
  const sidecars: Sidecar[] = [];
  const apps: { name: string; proc: Proc }[] = [];
  try {
    process.stderr.write(`starting the mesh on ${NET}.x…\n`);
    ctl = await startController({ podsFile, host: CTL_HOST });
    for (const p of providers) {
      apps.push({ name: `echo-${p.name}`, proc: await startEcho({ host: p.ip, port: APP_PORT, name: `echo-${p.name}`, version: '1.4.0' }) });
      sidecars.push({ name: p.name, ip: p.ip, proc: await startSidecar({ ip: p.ip, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@1.4.0`, podName: `echo-${p.name}`, extra: ['--log-level', logLevel] }) });
    }
    sidecars.push({ name: 'caller', ip: callerIp, proc: await startSidecar({ ip: callerIp, discovery: ctl.target, appPort: APP_PORT, requires: `${ECHO_API}@^1.2`, podName: 'caller', extra: ['--log-level', logLevel] }) });

    const targets: Target[] = [
      { name: 'caller:15001', host: callerIp, port: 15001, kind: 'outbound', sidecar: 'caller' },
      ...providers.map((p): Target => ({ name: `${p.name}:15006`, host: p.ip, port: 15006, kind: 'inbound', sidecar: p.name })),
      ...sidecars.map((s): Target => ({ name: `${s.name}:15020`, host: s.ip, port: 15020, kind: 'admin', sidecar: s.name })),
    ];
    const h2Targets = targets.filter((t) => t.kind !== 'admin');
    const adminTargets = targets.filter((t) => t.kind === 'admin');

    // Processes: record every exit, with when and in which phase.
    const everything = [{ name: 'controller', proc: undefined as Proc | undefined, child: ctl.proc }, ...apps.map((a) => ({ name: a.name, proc: a.proc, child: a.proc.proc })), ...sidecars.map((s) => ({ name: `sidecar-${s.name}`, proc: s.proc, child: s.proc.proc }))];
    const exits: Record<string, { code: number | null; signal: string | null; atS: number; phase: Phase; active: string }> = {};
    for (const e of everything) {
      e.child.once('exit', (code, signal) => {
        if (state.cleanup) return; // stopped by the bench itself, after the results
        exits[e.name] = { code, signal, atS: sinceSoakS(), phase: state.phase, active: state.active };
        process.stderr.write(`!! ${e.name} (pid ${e.child.pid}) exited: code ${code} signal ${signal} at ${sinceSoakS()} s (${state.phase}, ${state.active})\n`);
      });
    }

    // RSS every second, per sidecar (and the apps, for context).
    const rss: Record<string, RssTrack> = Object.fromEntries(sidecars.map((s) => [s.name, { startMb: null, endUnderAttackMb: null, endMb: null, peakMb: 0, vmHwmMb: null }]));
    const timeline: { t: number; phase: Phase; active: string; rssMb: Record<string, number | null>; idleHeld: number }[] = [];
    let idle: IdlePool | undefined;
    let sampleN = 0;
    const sampler = setInterval(() => {
      const row: Record<string, number | null> = {};
      for (const s of sidecars) {
        const mb = alive(s.proc) ? procStatus(s.proc.pid, 'VmRSS') : null;
        row[s.name] = mb;
        if (mb !== null && state.phase !== 'warmup') rss[s.name]!.peakMb = Math.max(rss[s.name]!.peakMb, mb);
      }
      if (sampleN++ % 5 === 0) timeline.push({ t: sinceSoakS(), phase: state.phase, active: state.active, rssMb: row, idleHeld: idle?.held() ?? 0 });
      // End the soak early when the good traffic can no longer be served at all.
      const callerGone = !alive(sidecars.find((s) => s.name === 'caller')!.proc);
      const providersGone = sidecars.filter((s) => s.name !== 'caller').every((s) => !alive(s.proc));
      if (state.phase === 'soak' && state.abort === undefined && (callerGone || providersGone)) state.abort = callerGone ? 'caller sidecar gone' : 'both provider sidecars gone';
    }, 1000);

    const loadStart = os.loadavg().map((x) => Number(x.toFixed(2)));
    const eld = monitorEventLoopDelay({ resolution: 10 });
    eld.enable();

    // Warm-up: good traffic alone.
    const good = new GoodTraffic(`${callerIp}:15001`);
    state.soakStart = performance.now() + CFG.warmupS * 1000;
    good.start(CFG.rps);
    process.stderr.write(`warm-up: ${CFG.warmupS} s of good traffic at ${CFG.rps} rps…\n`);
    const warmEnd = performance.now() + CFG.warmupS * 1000;
    while (performance.now() < warmEnd && state.abort === undefined) await sleep(100);
    const metricsStart: Record<string, unknown> = {};
    for (const s of sidecars) {
      rss[s.name]!.startMb = alive(s.proc) ? procStatus(s.proc.pid, 'VmRSS') : null;
      metricsStart[s.name] = await metricsSummary(s.ip);
    }

    // Soak: hostile traffic in rotation, idle connections held, good traffic all along.
    state.phase = 'soak';
    state.soakStart = performance.now();
    const soakEnd = state.soakStart + CFG.durationS * 1000;
    const rotation = ROTATION.filter((k) => CFG.kinds.includes(k));
    process.stderr.write(`soak: ${CFG.durationS} s; rotation ${rotation.join(' → ') || '(none)'} (${CFG.slotS} s each)${CFG.kinds.includes('idle') ? `; ${CFG.idle} idle connections held` : ''}…\n`);
    if (CFG.kinds.includes('idle')) {
      idle = new IdlePool(targets, CFG.idle);
      idle.start();
    }
    const progress = setInterval(() => {
      const r = sidecars.map((s) => `${s.name} ${procStatus(s.proc.pid, 'VmRSS') ?? '-'} MB`).join(', ');
      process.stderr.write(`  ${sinceSoakS()} s [${state.active}] good ${good.unary.made + good.serverStream.made} calls, ${good.unary.failed + good.serverStream.failed} failed; idle ${idle?.held() ?? 0}; RSS ${r}\n`);
    }, 10_000);
    let slot = 0;
    while (performance.now() < soakEnd && state.abort === undefined) {
      if (rotation.length === 0) {
        await sleep(200);
        continue;
      }
      const kind = rotation[slot++ % rotation.length]!;
      state.active = kind;
      const until = Math.min(soakEnd, performance.now() + CFG.slotS * 1000);
      const stopEarly = setInterval(() => {
        if (state.abort !== undefined) state.stopping = true;
      }, 100);
      if (kind === 'random-bytes') await runAtRate(kind, CFG.hostileRps, targets, until, randomBytesOp);
      else if (kind === 'bad-frames') await runAtRate(kind, CFG.hostileRps, targets, until, badFramesOp);
      else if (kind === 'unknown-methods') await runAtRate(kind, CFG.hostileRps, targets, until, unknownMethodOp);
      else if (kind === 'rapid-reset') await runRapidReset(h2Targets, until);
      else if (kind === 'shutdown') await runAtRate(kind, adminTargets.length, adminTargets, until, shutdownOp); // one attempt per admin port a second
      clearInterval(stopEarly);
      state.stopping = false;
    }
    const soakS = Number(((performance.now() - state.soakStart) / 1000).toFixed(1));
    clearInterval(progress);
    for (const s of sidecars) rss[s.name]!.endUnderAttackMb = alive(s.proc) ? procStatus(s.proc.pid, 'VmRSS') : null;

    // Stop the hostile traffic: wait briefly for what is in flight, then close everything.
    state.stopping = true;
    state.active = 'none';
    const idleStats = idle?.stats;
    const idleHeldAtEnd = idle?.held() ?? 0;
    idle?.closeAll();
    await Promise.race([Promise.allSettled([...inflightOps]), sleep(3000)]);
    for (const o of [...open]) o.destroy();
    open.clear();

    // Settle: good traffic alone again, then the end sample.
    state.phase = 'settle';
    process.stderr.write(`settle: ${CFG.settleS} s of good traffic alone…\n`);
    await sleep(CFG.settleS * 1000);
    const metricsEnd: Record<string, unknown> = {};
    for (const s of sidecars) {
      const t = rss[s.name]!;
      t.endMb = alive(s.proc) ? procStatus(s.proc.pid, 'VmRSS') : null;
      t.vmHwmMb = alive(s.proc) ? procStatus(s.proc.pid, 'VmHWM') : null;
      metricsEnd[s.name] = alive(s.proc) ? await metricsSummary(s.ip) : { error: 'process gone' };
    }
    await good.stop();
    clearInterval(sampler);
    eld.disable();
    const stillRunning = Object.fromEntries(everything.map((e) => [e.name, e.child.exitCode === null && e.child.signalCode === null]));

    // ---- results
    const shortRun = CFG.durationS < GOAL_DURATION_S || soakS < GOAL_DURATION_S - 1;
    const goodFailed = good.unary.failed + good.serverStream.failed;
    // Refusals this bench saw answered with a qbasis-error-code, per sidecar, next to what its /metrics counted.
    const sidecarOf = new Map(targets.map((t) => [t.name, t.sidecar]));
    const answered: Record<string, number> = {};
    for (const k of Object.values(hostile)) for (const [tn, o] of Object.entries(k.byTarget)) for (const [outcome, n] of Object.entries(o)) if (outcome.includes('/QB_')) inc(answered, sidecarOf.get(tn) ?? tn, n);
    const refusedSum = (m: unknown): number | null => (m !== null && typeof m === 'object' && 'refused' in m ? Object.values((m as { refused: Record<string, number> }).refused).reduce((a, b) => a + b, 0) : null);
    const sidecarResults = Object.fromEntries(sidecars.map((s) => {
      const t = rss[s.name]!;
      const ratio = t.startMb !== null && t.endMb !== null ? Number((t.endMb / t.startMb).toFixed(3)) : null;
      const c0 = refusedSum(metricsStart[s.name]);
      const c1 = refusedSum(metricsEnd[s.name]);
      return [s.name, {
        pid: s.proc.pid, ip: s.ip, rssMb: { start: t.startMb, endUnderAttack: t.endUnderAttackMb, end: t.endMb, peakDuringSoak: t.peakMb, vmHwm: t.vmHwmMb }, endOverStart: ratio,
        refusals: { answeredWithQbasisCode: answered[s.name] ?? 0, countedInMetrics: c0 !== null && c1 !== null ? c1 - c0 : null },
        metrics: { start: metricsStart[s.name], end: metricsEnd[s.name] },
      }];
    }));
    const crashed = Object.keys(exits).length > 0 || Object.values(stillRunning).some((r) => !r);
    const rssOk = sidecars.every((s) => {
      const r = sidecarResults[s.name]!.endOverStart;
      return r !== null && r <= 1.2;
    });
    const goals = {
      '0 failed good calls': goodFailed === 0 && good.unary.made > 0,
      'no process crashed or exited': !crashed,
      'RSS end <= 1.2 x start (each sidecar)': rssOk,
    };
    const shutdownAccepted = Object.fromEntries(Object.entries(hostile.shutdown?.byTarget ?? {}).map(([t, o]) => [t, Object.entries(o).filter(([k]) => k.endsWith(':http:202')).reduce((a, [, n]) => a + n, 0)]));
    const lifetimes = idleStats?.serverCloseLifetimesMs ?? [];
    const result = {
      generatedAt: new Date().toISOString(),
      durationS: soakS,
      plannedDurationS: CFG.durationS,
      shortRun,
      ...(shortRun ? { note: `a short run (${soakS} s of soak); the goal is measured over ${GOAL_DURATION_S} s` } : {}),
      endedEarly: state.abort ?? null,
      conditions: {
        cpus: os.cpus().length, node: process.version, loadavgAtStart: loadStart, loadavgAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
        warmupS: CFG.warmupS, settleS: CFG.settleS, goodUnaryRps: CFG.rps, goodServerStreamsPerS: 2, goodDeadlineMs: GOOD_DEADLINE_MS,
        hostile: { kinds: CFG.kinds, rotation, slotS: CFG.slotS, opsPerSWhileActive: CFG.hostileRps, resetsPerSWhileActive: CFG.resetRps, shutdownAttemptsPerSWhileActive: adminTargets.length, idleConnections: CFG.kinds.includes('idle') ? CFG.idle : 0, idleLifetimeS: IDLE_LIFETIME_MS.map((x) => x / 1000), holdMs: HOLD_MS, maxHeldPerTarget: MAX_HELD_PER_TARGET },
        sidecarLogLevel: logLevel,
        addresses: { controller: CTL_HOST, providers: Object.fromEntries(providers.map((p) => [p.name, p.ip])), caller: callerIp, attackers: `${ATTACKERS[0]}-${ATTACKERS.at(-1)}`, shutdownSource: SHUTDOWN_SOURCE },
        benchEventLoopDelayP99Ms: Number((eld.percentile(99) / 1e6).toFixed(1)),
      },
      good: {
        made: good.unary.made + good.serverStream.made,
        failed: goodFailed,
        unary: good.unary,
        serverStream: good.serverStream,
        skippedAtInflightCap: good.skippedAtCap,
        failedByPhase: good.failedByPhase,
        failedWhileActive: good.failedByActiveKind,
        firstFailures: good.failures,
        latencyMs: Object.fromEntries((['warmup', 'soak', 'settle'] as const).map((p) => [p, { p50: pct(good.latencyMs[p], 50), p99: pct(good.latencyMs[p], 99), n: good.latencyMs[p].length }])),
      },
      hostile: {
        ...Object.fromEntries(Object.entries(hostile).map(([k, v]) => [k, { ops: v.ops, skippedAtInflightCap: v.skipped, byTarget: v.byTarget }])),
        idle: idleStats === undefined ? null : {
          opened: idleStats.opened, maxHeld: idleStats.maxHeld, heldAtEnd: idleHeldAtEnd, replacedByUs: idleStats.replacedByUs, openFailed: idleStats.openFailed, closedByServer: idleStats.closedByServer,
          serverCloseLifetimeMs: { p50: pct(lifetimes, 50), p90: pct(lifetimes, 90), n: lifetimes.length },
        },
        shutdownAccepted,
      },
      sidecars: sidecarResults,
      processes: Object.fromEntries(everything.map((e) => [e.name, { pid: e.child.pid, runningAtEnd: stillRunning[e.name], exit: exits[e.name] ?? null, ...(exits[e.name] && e.proc ? { stderrTail: e.proc.err().slice(-1500), stdoutTail: e.proc.out().slice(-1500) } : {}) }])),
      rssTimeline: timeline,
      goals,
      pass: Object.values(goals).every(Boolean),
    };
    fs.mkdirSync(path.dirname(CFG.out), { recursive: true });
    fs.writeFileSync(CFG.out, JSON.stringify(result, null, 2) + '\n');

    // ---- table
    const cell = (v: unknown, w: number): string => String(v ?? '-').padStart(w);
    const top = (o: Record<string, number>, n = 4): string => Object.entries(o).filter(([k]) => k !== 'session-opened').sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, c]) => `${k} ${c}`).join(', ');
    const seriesOf = (m: unknown): string => (m !== null && typeof m === 'object' && 'series' in m ? String((m as { series: number }).series) : '-');
    const merged = (k: KindStats): Record<string, number> => {
      const m: Record<string, number> = {};
      for (const o of Object.values(k.byTarget)) for (const [x, n] of Object.entries(o)) inc(m, x, n);
      return m;
    };
    const lines = [
      `soak ${soakS} s${shortRun ? ` (SHORT RUN; the goal is ${GOAL_DURATION_S} s)` : ''} after ${CFG.warmupS} s warm-up; good ${CFG.rps} rps unary + 2/s server-stream; load ${loadStart.join(' ')}${state.abort ? `; ended early: ${state.abort}` : ''}`,
      '',
      '| good calls    |    made |  failed | failures by status |',
      '|---------------|---------|---------|--------------------|',
      `| unary         | ${cell(good.unary.made, 7)} | ${cell(good.unary.failed, 7)} | ${top(Object.fromEntries(Object.entries(good.unary.byStatus).filter(([k]) => k !== 'OK')))} |`,
      `| server-stream | ${cell(good.serverStream.made, 7)} | ${cell(good.serverStream.failed, 7)} | ${top(Object.fromEntries(Object.entries(good.serverStream.byStatus).filter(([k]) => k !== 'OK')))} |`,
      ...(goodFailed > 0 ? [`failed while active: ${JSON.stringify(good.failedByActiveKind)}`] : []),
      '',
      '| hostile kind    |     ops | most common outcomes |',
      '|-----------------|---------|----------------------|',
      ...Object.entries(hostile).map(([k, v]) => `| ${k.padEnd(15)} | ${cell(v.ops, 7)} | ${top(merged(v), 3)} |`),
      ...(idleStats ? [`| idle            | ${cell(idleStats.opened, 7)} | held max ${idleStats.maxHeld}; closed by server ${Object.values(idleStats.closedByServer).reduce((a, b) => a + b, 0)} (p50 after ${pct(lifetimes, 50) ?? '-'} ms); open failed ${Object.values(idleStats.openFailed).reduce((a, b) => a + b, 0)} |`] : []),
      ...(Object.values(shutdownAccepted).some((n) => n > 0) ? [`POST /shutdown from ${SHUTDOWN_SOURCE} ACCEPTED (202): ${JSON.stringify(shutdownAccepted)}`] : []),
      '',
      'RSS in MB (VmRSS); refusals: answered to this bench with a qbasis-error-code / counted in qbasis_sidecar_frames_refused_total; /metrics series at start → end',
      '| sidecar    | RSS start | end (settled) | end (attack) |  peak | end/start | running | refusals answered / counted | metrics series |',
      '|------------|-----------|---------------|--------------|-------|-----------|---------|-----------------------------|----------------|',
      ...sidecars.map((s) => {
        const r = sidecarResults[s.name]!;
        return `| ${s.name.padEnd(10)} | ${cell(r.rssMb.start, 9)} | ${cell(r.rssMb.end, 13)} | ${cell(r.rssMb.endUnderAttack, 12)} | ${cell(r.rssMb.peakDuringSoak, 5)} | ${cell(r.endOverStart, 9)} | ${cell(stillRunning[`sidecar-${s.name}`] ? 'yes' : 'NO', 7)} | ${cell(`${r.refusals.answeredWithQbasisCode} / ${r.refusals.countedInMetrics ?? '-'}`, 27)} | ${cell(`${seriesOf(metricsStart[s.name])} → ${seriesOf(metricsEnd[s.name])}`, 14)} |`;
      }),
      ...Object.entries(exits).map(([n, e]) => `exited: ${n} code ${e.code} signal ${e.signal} at ${e.atS} s (${e.phase}, while ${e.active})`),
      '',
      ...Object.entries(goals).map(([g, ok]) => `${ok ? 'met    ' : 'NOT met'}  ${g}`),
      '',
      `wrote ${path.relative(REPO, CFG.out)}${shortRun ? ' (shortRun: true)' : ''}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
    return result.pass ? 0 : 1;
  } finally {
    state.stopping = true;
    state.cleanup = true;
    for (const o of [...open]) o.destroy();
    await stopAll();
    await ctl?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
// Everything is closed by now; should a handle linger anyway, do not hang.
setTimeout(() => process.exit(), 5000).unref();
