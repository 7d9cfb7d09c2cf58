// grpc-go's interop suite through two sidecars: the interop client calls its caller pod's outbound port,
// the caller sidecar frames each call to the provider pod's inbound port, and that sidecar hands it to
// grpc-go's interop server. Both binaries are built from google.golang.org/grpc through
// test/cluster/build.ts. Every case also runs client → server directly first, so a case that cannot
// pass in this environment is told apart from one the mesh breaks.
// Addresses: 127.0.72.x (controller .1, provider pod .11, caller pod .21). The interop server has only
// --port and listens on every interface, so the provider sidecar dials it at --app-host 127.0.0.1 on a
// port the OS picked free.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ensureTools } from '../cluster/build.ts';
import { admin, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';
import { portOpen, waitUntil } from '../fixtures/wait.ts';

const NET = '127.0.72';
const PROVIDER = `${NET}.11`;
const CALLER = `${NET}.21`;
const TEST_SERVICE = 'grpc.testing.TestService';
const UNIMPLEMENTED_SERVICE = 'grpc.testing.UnimplementedService';
/** The ORCA out-of-band stream (orca_oob) is a call of its own, from the client's LB policy to the server. */
const ORCA_SERVICE = 'xds.service.orca.v3.OpenRcaService';
/** What the interop runner passes for the ORCA cases (grpc-go interop/interop_test.sh). */
const ORCA_SERVICE_CONFIG = '{"loadBalancingConfig":[{"test_backend_metrics_load_balancer":{}}]}';
const CASE_TIMEOUT_MS = 90_000;

/**
 * Every case grpc-go's client runs without TLS, ALTS or cloud credentials, except pick_first_unary: it
 * needs servers that fill in server_id (grpc-go's interop server does not; it fails directly too).
 */
const CASES: { name: string; args?: string[] }[] = [
  { name: 'empty_unary' },
  { name: 'large_unary' },
  { name: 'client_streaming' },
  { name: 'server_streaming' },
  { name: 'ping_pong' },
  { name: 'empty_stream' },
  { name: 'timeout_on_sleeping_server' },
  { name: 'cancel_after_begin' },
  { name: 'cancel_after_first_response' },
  { name: 'status_code_and_message' },
  { name: 'special_status_message' },
  { name: 'custom_metadata' },
  { name: 'unimplemented_method' },
  // Nobody in the mesh provides grpc.testing.UnimplementedService: the caller sidecar must answer
  // UNIMPLEMENTED (the case asserts that code), not UNAVAILABLE.
  { name: 'unimplemented_service' },
  // Generous per-iteration latency: two sidecars on a busy 2-core machine, ~300 KB each way.
  { name: 'rpc_soak', args: ['--soak_per_iteration_max_acceptable_latency_ms', '5000', '--soak_overall_timeout_seconds', '60'] },
  { name: 'channel_soak', args: ['--soak_per_iteration_max_acceptable_latency_ms', '5000', '--soak_overall_timeout_seconds', '60'] },
  { name: 'orca_per_rpc', args: [`--service_config_json=${ORCA_SERVICE_CONFIG}`] },
  { name: 'orca_oob', args: [`--service_config_json=${ORCA_SERVICE_CONFIG}`] },
];

let bin: string;
let ctl: RunningController;
let appPort: number;
let server: ChildProcess | undefined;
let serverLog = '';
let caller: Proc;
let provider: Proc;
const clients = new Set<ChildProcess>();

before(async () => {
  bin = await ensureTools({ tools: ['grpc-interop-server', 'grpc-interop-client'] });
  const dir = tempDir('attacks-grpc-interop');
  const podsFile = path.join(dir, 'pods.yaml');
  writePods(podsFile, [{ name: 'interop-server', ip: PROVIDER, provides: `${TEST_SERVICE}@1.0.0,${ORCA_SERVICE}@1.0.0` }]);
  ctl = await startController({ podsFile, host: `${NET}.1` });
  appPort = await freePort();
  server = spawn(path.join(bin, 'grpc-interop-server'), ['--port', String(appPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout!.setEncoding('utf8').on('data', (c: string) => (serverLog = (serverLog + c).slice(-20_000)));
  server.stderr!.setEncoding('utf8').on('data', (c: string) => (serverLog = (serverLog + c).slice(-20_000)));
  await waitUntil(`the interop server to listen on 127.0.0.1:${appPort}`, () => portOpen('127.0.0.1', appPort), {
    timeoutMs: 30_000,
    intervalMs: 100,
    abortIf: () => (server?.exitCode !== null ? `interop server exited ${server?.exitCode}` : undefined),
    detail: () => serverLog,
  });
  provider = await startSidecar({
    ip: PROVIDER, discovery: ctl.target, appPort, podName: 'interop-server',
    provides: `${TEST_SERVICE}@1.0.0,${ORCA_SERVICE}@1.0.0`, extra: ['--app-host', '127.0.0.1'],
  });
  caller = await startSidecar({
    ip: CALLER, discovery: ctl.target, appPort: 50051, podName: 'interop-client',
    requires: `${TEST_SERVICE}@^1.0,${UNIMPLEMENTED_SERVICE}@>=0.0.0,${ORCA_SERVICE}@^1.0`,
  });
}, { timeout: 15 * 60_000 });

after(async () => {
  for (const c of clients) c.kill('SIGKILL');
  if (server !== undefined && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGKILL');
    await exited;
  }
  await stopAll();
  await ctl?.stop();
});

/** A port free on every interface (the interop server binds them all), as the OS hands it out. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Run { code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }

function runClient(host: string, port: number, c: { name: string; args?: string[] }, timeoutMs: number): Promise<Run> {
  const started = Date.now();
  const args = ['--server_host', host, '--server_port', String(port), '--test_case', c.name, ...(c.args ?? [])];
  const child = spawn(path.join(bin, 'grpc-interop-client'), args, {
    stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL',
    env: { ...process.env, GRPC_GO_LOG_SEVERITY_LEVEL: 'warning' },
  });
  clients.add(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve) => child.on('close', (code, signal) => {
    clients.delete(child);
    resolve({ code, signal, out: out.slice(-4000), ms: Date.now() - started });
  }));
}

const describeRun = (r: Run): string => `${r.signal ?? `exit ${r.code}`} after ${r.ms} ms${r.out.trim() ? `:\n${r.out.trim()}` : ''}`;

for (const c of CASES) {
  test(`grpc-go interop ${c.name} through two sidecars`, { timeout: 2 * CASE_TIMEOUT_MS + 10_000 }, async (t) => {
    const direct = await runClient('127.0.0.1', appPort, c, CASE_TIMEOUT_MS);
    assert.equal(direct.code, 0, `${c.name} fails even client → server directly (not the mesh's doing): ${describeRun(direct)}`);
    const mesh = await runClient(CALLER, 15001, c, CASE_TIMEOUT_MS);
    t.diagnostic(`direct ${direct.ms} ms, through two sidecars ${mesh.ms} ms`);
    assert.equal(mesh.code, 0, `${c.name} through ${CALLER}:15001 → ${PROVIDER}:15006 → interop server: ${describeRun(mesh)}`);
  });
}

test('a call to an API nobody provides is UNIMPLEMENTED and the message names the API', { timeout: 30_000 }, async () => {
  const client = new grpc.Client(`${CALLER}:15001`, grpc.credentials.createInsecure());
  try {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest(`/${UNIMPLEMENTED_SERVICE}/UnimplementedCall`, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (e) => resolve(e));
    });
    assert.ok(err !== null, 'the call must fail');
    assert.equal(err.code, grpc.status.UNIMPLEMENTED, `code ${err.code}: ${err.details}`);
    assert.match(err.details, new RegExp(UNIMPLEMENTED_SERVICE.replaceAll('.', '\\.')));
  } finally {
    client.close();
  }
});

/** Protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

// grpc-go servers allow a client PING at most every 5 minutes while they send nothing (keepalive
// enforcement: the third early PING after their last write gets GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings" and the connection closes with every call on it).
test('a call on which the grpc-go server stays quiet for 70 s survives the sidecar keeping its app connection alive', { timeout: 150_000 }, async () => {
  const QUIET_US = 70_000_000;
  // StreamingOutputCallRequest{response_parameters: [{size: 1, interval_us: 70 s}]}
  const params = [0x08, 0x01, 0x10, ...varint(QUIET_US)];
  const request = Buffer.from([0x12, params.length, ...params]);
  const client = new grpc.Client(`${CALLER}:15001`, grpc.credentials.createInsecure());
  const started = Date.now();
  try {
    const result = await new Promise<{ messages: number; status: grpc.StatusObject }>((resolve) => {
      const call = client.makeServerStreamRequest(`/${TEST_SERVICE}/StreamingOutputCall`, (b: Buffer) => b, (b: Buffer) => b, request, new grpc.Metadata(), { deadline: Date.now() + 120_000 });
      let messages = 0;
      call.on('data', () => messages++);
      call.on('error', () => {});
      call.on('status', (status: grpc.StatusObject) => resolve({ messages, status }));
    });
    assert.equal(result.status.code, grpc.status.OK, `after ${Date.now() - started} ms: ${result.status.details}`);
    assert.equal(result.messages, 1);
  } finally {
    client.close();
  }
});

test('the calls went through both sidecars (their request counters)', async () => {
  const callerMetrics = (await admin(CALLER, '/metrics')).body;
  const providerMetrics = (await admin(PROVIDER, '/metrics')).body;
  const count = (text: string, direction: string, api: string): number =>
    text.split('\n').filter((l) => l.startsWith('qbasis_sidecar_requests_total{') && l.includes(`direction="${direction}"`) && l.includes(`api="${api}"`))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  assert.ok(count(callerMetrics, 'outbound', TEST_SERVICE) > 20, `caller outbound ${TEST_SERVICE} calls:\n${callerMetrics.split('\n').filter((l) => l.startsWith('qbasis_sidecar_requests_total')).join('\n')}`);
  assert.ok(count(providerMetrics, 'inbound', TEST_SERVICE) > 20, `provider inbound ${TEST_SERVICE} calls`);
  assert.ok(count(callerMetrics, 'outbound', UNIMPLEMENTED_SERVICE) >= 1, `caller outbound ${UNIMPLEMENTED_SERVICE} calls`);
});

test('both sidecars and the interop server are still running', () => {
  assert.equal(provider.proc.exitCode, null, `provider sidecar exited: ${provider.err()}`);
  assert.equal(caller.proc.exitCode, null, `caller sidecar exited: ${caller.err()}`);
  assert.equal(server?.exitCode, null, `interop server exited: ${serverLog}`);
});
