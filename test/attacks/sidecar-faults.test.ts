// Faults and abuse around the call path: another pod at the admin port, connections that never send,
// more connections than allowed, a dead app behind a live sidecar, a port already taken, and a
// service nobody provides.
// Addresses: 127.0.81.x (controller .1, providers .11 .12, idle-limits pod .13, caller .21, port-taken .31, attacker .99).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ECHO_API, echoClient, type EchoClient } from '../fixtures/echo-client.ts';
import { admin, startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { QBASIS_BIN, REPO, startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';
import { adminFrom, connect, goodFrame, rawCall } from './raw-h2.ts';
import { waitUntil } from '../fixtures/wait.ts';

const NET = '127.0.81';
const A = `${NET}.11`;
const B = `${NET}.12`;
const LIMITED = `${NET}.13`;
const CALLER = `${NET}.21`;
const CALLER9 = `${NET}.22`;
const ATTACKER = `${NET}.99`;
const GHOST_API = 'qbasis.test.ghost.v1.GhostService';
let ctl: RunningController;
let appA: Proc;
let sidecarA: Proc;
let client: EchoClient;
let client9: EchoClient;

before(async () => {
  const podsFile = path.join(tempDir('attack-faults'), 'pods.yaml');
  writePods(podsFile, [
    { name: 'a', ip: A, provides: `${ECHO_API}@1.4.0` },
    { name: 'b', ip: B, provides: `${ECHO_API}@1.4.0` },
    { name: 'limited', ip: LIMITED, provides: `${ECHO_API}@9.0.0` },
  ]);
  ctl = await startController({ podsFile, host: `${NET}.1`, adminPort: 18810 });
  appA = await startEcho({ host: A, port: 50051, name: 'a', version: '1.4.0' });
  await startEcho({ host: B, port: 50051, name: 'b', version: '1.4.0' });
  await startEcho({ host: LIMITED, port: 50051, name: 'limited', version: '9.0.0' });
  sidecarA = await startSidecar({ ip: A, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0` });
  await startSidecar({ ip: B, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0` });
  await startSidecar({ ip: LIMITED, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@9.0.0`, extra: ['--idle-timeout', '1', '--max-connections', '50'] });
  await startSidecar({ ip: CALLER, discovery: ctl.target, appPort: 50099, requires: `${ECHO_API}@^1.2,${GHOST_API}@^1.0` });
  await startSidecar({ ip: CALLER9, discovery: ctl.target, appPort: 50099, requires: `${ECHO_API}@^9` });
  client = echoClient(`${CALLER}:15001`);
  client9 = echoClient(`${CALLER9}:15001`);
});

after(async () => {
  client?.close();
  client9?.close();
  await stopAll();
  await ctl?.stop();
});

function unary(text: string): Promise<{ served_by: string }> {
  return new Promise((resolve, reject) => {
    client.Unary({ text }, { deadline: Date.now() + 20_000 }, (err: Error | null, res: { served_by: string }) => (err ? reject(err) : resolve(res)));
  });
}

test('another pod cannot shut a sidecar down or read its routes; probes and /metrics still answer it; inside the pod both work', { timeout: 60_000 }, async () => {
  const shut = await adminFrom(A, ATTACKER, '/shutdown', 'POST');
  assert.equal(shut.status, 403, shut.body);
  assert.match(shut.body, /only from inside the pod/);
  const routes = await adminFrom(A, ATTACKER, '/routes');
  assert.equal(routes.status, 403);
  assert.doesNotMatch(routes.body, new RegExp(B.replaceAll('.', '\\.')), 'no endpoint addresses leak');
  for (const p of ['/live', '/ready', '/metrics']) assert.equal((await adminFrom(A, ATTACKER, p)).status, 200, p);
  // From inside the pod (loopback source, or the pod's own IP) /routes answers.
  assert.equal((await admin(A, '/routes')).status, 200);
  assert.equal((await adminFrom(A, A, '/routes')).status, 200);
  // The refused shutdown did nothing: the sidecar still serves.
  assert.equal((await admin(A, '/ready')).status, 200);
  assert.equal(sidecarA.proc.exitCode, null);
});

test('connections that never send are closed after --idle-timeout, and more than --max-connections are refused at once', { timeout: 90_000 }, async () => {
  const socks = Array.from({ length: 100 }, () => net.connect({ host: LIMITED, port: 15006, localAddress: ATTACKER }));
  const fates = await Promise.all(socks.map((s) => new Promise<{ gotSettings: boolean; closedAt: number }>((resolve) => {
    let got = false;
    const opened = Date.now();
    s.on('data', () => (got = true));
    s.on('error', () => {});
    s.on('close', () => resolve({ gotSettings: got, closedAt: Date.now() - opened }));
    s.setTimeout(60_000, () => s.destroy());
  })));
  const accepted = fates.filter((f) => f.gotSettings);
  assert.ok(accepted.length <= 50, `at most --max-connections (50) were accepted: ${accepted.length}`);
  assert.ok(accepted.length >= 1);
  assert.ok(fates.every((f) => f.closedAt < 60_000), 'every idle connection was closed by the sidecar, none by our 60 s guard');
  // The listener still accepts new work once the idle ones are gone.
  const s = connect(LIMITED, 15006, ATTACKER);
  const a = await rawCall(s, [goodFrame()], { range: '^9' });
  s.close();
  assert.equal(a.status, 0, `a call after the idle ones were closed is served: ${a.message}`);
});

test('a dead app behind a live sidecar: calls go to the healthy provider with zero failures, the dead one is counted as failing and goes not ready, and returns when its app does', { timeout: 180_000 }, async () => {
  for (let i = 0; i < 20; i++) await unary(`warm-${i}`);
  await appA.stop('SIGKILL');
  const servedBy = new Map<string, number>();
  const failures: string[] = [];
  // Sequential-ish calls from 4 workers: nothing is in flight to the app when it dies, so 0 may fail.
  await Promise.all(Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; i < 75; i++) {
      try {
        const r = await unary(`after-${w}-${i}`);
        servedBy.set(r.served_by, (servedBy.get(r.served_by) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  }));
  assert.deepEqual(failures, [], 'no call fails while a healthy provider exists');
  assert.equal(servedBy.get('a@1.4.0') ?? 0, 0);
  assert.equal(servedBy.get('b@1.4.0'), 300);
  const routes = JSON.parse((await admin(CALLER, '/routes')).body) as { requires: Record<string, { endpoints: { address: string; consecutive_failures: number; ejections: number }[] }> };
  const epA = routes.requires[ECHO_API]!.endpoints.find((e) => e.address === A)!;
  assert.ok(epA.ejections >= 1 || epA.consecutive_failures >= 1, `the dead app counts as failures of its endpoint: ${JSON.stringify(epA)}`);
  const ready = await admin(A, '/ready');
  assert.equal(ready.status, 503);
  assert.match(ready.body, /does not accept connections/);
  // The app comes back: the endpoint serves again.
  appA = await startEcho({ host: A, port: 50051, name: 'a', version: '1.4.0' });
  await waitUntil('calls to reach the recovered app again', async () => (await unary('back?')).served_by === 'a@1.4.0', { timeoutMs: 90_000, intervalMs: 100 });
});

test('a call to an API no pod provides at any version gets UNIMPLEMENTED naming the API, not UNAVAILABLE', { timeout: 30_000 }, async () => {
  const c = new grpc.Client(`${CALLER}:15001`, grpc.credentials.createInsecure());
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    c.makeUnaryRequest(`/${GHOST_API}/Haunt`, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (e) => resolve(e as grpc.ServiceError));
  });
  c.close();
  assert.equal(err.code, grpc.status.UNIMPLEMENTED, err.message);
  assert.match(err.details, new RegExp(`no pod in the mesh provides ${GHOST_API.replaceAll('.', '\\.')} at any version`));
  assert.equal(err.metadata.get('qbasis-error-code')[0], 'QB_NO_PROVIDER');
});

test('a sidecar whose outbound port is taken exits 1 with one line naming the port, and releases what it bound', { timeout: 60_000 }, async () => {
  const ip = `${NET}.31`;
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(15001, ip, () => resolve()));
  try {
    const proc = spawn(process.execPath, [QBASIS_BIN, 'sidecar', '--ip', ip, '--discovery', ctl.target, '--app-port', '50051', '--provides', `${ECHO_API}@1.4.0`], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => { proc.kill('SIGKILL'); resolve(null); }, 40_000);
      proc.on('exit', (c) => { clearTimeout(t); resolve(c); });
    });
    assert.equal(code, 1, `exit code (stderr: ${stderr})`);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, new RegExp(`cannot listen on ${ip.replaceAll('.', '\\.')}:15001 \\(outbound\\): the port is already in use`));
    // The inbound port it may have bound is free again.
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.listen(15006, ip, () => resolve()); });
    probe.close();
  } finally {
    squatter.close();
  }
});

test('a deadline storm (4,000 calls to one provider cancelled mid-flight) never trips the far ends\' reset limits: good calls beside it do not fail', { timeout: 240_000 }, async () => {
  // All to the one 9.x provider: its inbound and its app each see every cancel on one connection,
  // far past nghttp2's burst of 1000, unless the sender spreads them over fresh connections.
  const call9 = (text: string, delay: number, deadlineMs: number): Promise<number> => new Promise((resolve) => {
    client9.Unary({ text, delay_ms: delay }, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null) => resolve(err?.code ?? 0));
  });
  let stop = false;
  const failed: number[] = [];
  let ok = 0;
  const good = (async () => {
    while (!stop) {
      const code = await call9('good', 0, 20_000);
      if (code === 0) ok++;
      else failed.push(code);
    }
  })();
  let expired = 0;
  for (let batch = 0; batch < 40; batch++) {
    const results = await Promise.all(Array.from({ length: 100 }, () => call9('slow', 2000, 50)));
    expired += results.filter((c) => c === grpc.status.DEADLINE_EXCEEDED).length;
  }
  stop = true;
  await good;
  assert.ok(expired >= 3000, `the storm cancelled ${expired} calls mid-flight`);
  assert.deepEqual(failed, [], `good calls beside ${expired} cancels`);
  assert.ok(ok > 0);
});
