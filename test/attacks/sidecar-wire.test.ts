// Attacks on a provider sidecar's inbound port by another "pod" (source 127.0.80.99): made-up method
// names, headers that declare huge payloads, frames that never complete, rapid reset, frames that ask
// for more than the pod provides, malformed ranges, and one refusal counted once. Good traffic from a
// caller sidecar runs beside them and must not fail.
// Addresses: 127.0.80.x (controller .1, provider .11, caller .21, attacker source .99).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { encodeFrame, writeHeader, HEADER_BYTES } from '../../proto/basis/index.ts';
import { ECHO_API, echoClient, type EchoClient, type StatsResponse } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';
import { connect, frameHeader, goodFrame, grpcHeaders, labelValues, metric, metricsText, OK_PAYLOAD, rapidResets, rawCall } from './raw-h2.ts';

const NET = '127.0.80';
const PROVIDER = `${NET}.11`;
const CALLER = `${NET}.21`;
const ATTACKER = `${NET}.99`;
let ctl: RunningController;
let provider: Proc;
let client: EchoClient;
let appClient: EchoClient;

before(async () => {
  const podsFile = path.join(tempDir('attack-inbound'), 'pods.yaml');
  writePods(podsFile, [{ name: 'provider', ip: PROVIDER, provides: `${ECHO_API}@1.4.0` }]);
  ctl = await startController({ podsFile, host: `${NET}.1`, adminPort: 18800 });
  await startEcho({ host: PROVIDER, port: 50051, name: 'provider', version: '1.4.0' });
  provider = await startSidecar({ ip: PROVIDER, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0`, extra: ['--frame-idle-timeout', '1'] });
  await startSidecar({ ip: CALLER, discovery: ctl.target, appPort: 50099, requires: `${ECHO_API}@^1.2` });
  client = echoClient(`${CALLER}:15001`);
  appClient = echoClient(`${PROVIDER}:50051`);
});

after(async () => {
  client?.close();
  appClient?.close();
  await stopAll();
  await ctl?.stop();
});

/** prom-client's external-memory gauge, with or without our prefix. */
async function externalMemory(ip: string): Promise<number> {
  const text = await metricsText(ip);
  const m = /^(?:qbasis_sidecar_)?nodejs_external_memory_bytes (\d+)/m.exec(text);
  assert.ok(m, 'nodejs_external_memory_bytes is exported');
  return Number(m[1]);
}

function unary(c: EchoClient, text: string): Promise<{ served_by: string }> {
  return new Promise((resolve, reject) => {
    c.Unary({ text }, { deadline: Date.now() + 20_000 }, (err: Error | null, res: { served_by: string }) => (err ? reject(err) : resolve(res)));
  });
}

function stats(): Promise<StatsResponse> {
  return new Promise((resolve, reject) => appClient.Stats({}, (err: Error | null, r: StatsResponse) => (err ? reject(err) : resolve(r))));
}

/** Good calls through the caller's sidecar while `attack` runs; returns the failures. */
async function goodTrafficDuring(attack: () => Promise<void>): Promise<{ ok: number; failed: string[] }> {
  let stop = false;
  let ok = 0;
  const failed: string[] = [];
  const loop = async (): Promise<void> => {
    for (let i = 0; !stop && i < 5000; i++) {
      try {
        await unary(client, `good-${i}`);
        ok++;
      } catch (err) {
        failed.push((err as Error).message);
      }
    }
  };
  const loops = [loop(), loop()];
  try {
    await attack();
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  return { ok, failed };
}

test('made-up method names on a provided API are counted as `other`: /metrics label sets stay bounded and known methods keep their names', { timeout: 120_000 }, async () => {
  await unary(client, 'warm');
  const s = connect(PROVIDER, 15006, ATTACKER);
  const N = 1500;
  for (let batch = 0; batch < N; batch += 100) {
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => {
      const m = `Made${batch + i}x${Math.random().toString(36).slice(2, 8)}`;
      return rawCall(s, [encodeFrame(frameHeader({}, m), OK_PAYLOAD)], { path: `/${ECHO_API}/${m}`, range: '^1.2' });
    }));
    for (const a of answers) assert.equal(a.status, 12, `the app answers UNIMPLEMENTED for a made-up method (${a.message})`);
  }
  s.close();
  const text = await metricsText(PROVIDER);
  const methods = labelValues(text, 'qbasis_sidecar_requests_total', 'method', { direction: 'inbound', api: ECHO_API });
  assert.ok(methods.has('other'), `made-up names are counted as other; got ${[...methods].slice(0, 10).join(',')}`);
  assert.ok(methods.has('Unary'), 'a method the app serves keeps its name');
  assert.ok(methods.size <= 3, `label values stay bounded (Unary, other): got ${methods.size}`);
  const other = Number(/qbasis_sidecar_requests_total\{direction="inbound",api="[^"]+",method="other",status="UNIMPLEMENTED"\} (\d+)/.exec(text)?.[1]);
  assert.ok(other >= N, `every made-up call is still counted (${other} ≥ ${N})`);
});

test('a caller app calling made-up methods of a declared API is counted as `other` on the outbound side', { timeout: 60_000 }, async () => {
  const s = connect(CALLER, 15001);
  const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => rawCall(s, [Buffer.from([0, 0, 0, 0, 0])], { path: `/${ECHO_API}/Nope${i}` })));
  s.close();
  for (const a of answers) assert.equal(a.status, 12);
  const methods = labelValues(await metricsText(CALLER), 'qbasis_sidecar_requests_total', 'method', { direction: 'outbound', api: ECHO_API });
  assert.ok(methods.size <= 3 && methods.has('other'), `outbound method labels bounded: ${[...methods].slice(0, 10).join(',')}`);
});

test('headers declaring 4 MiB payloads on 1,000 streams cost no memory until bytes arrive; the sidecar advertises its stream limit; good calls do not fail', { timeout: 180_000 }, async () => {
  const before = await externalMemory(PROVIDER);
  const s = connect(PROVIDER, 15006, ATTACKER);
  await new Promise<void>((resolve) => s.once('remoteSettings', () => resolve()));
  assert.equal(s.remoteSettings.maxConcurrentStreams, 1000, 'SETTINGS_MAX_CONCURRENT_STREAMS advertised');
  const head = Buffer.alloc(HEADER_BYTES);
  writeHeader(frameHeader({ length: 4 * 1024 * 1024 }), head, 0);
  const streams: http2.ClientHttp2Stream[] = [];
  let peak = 0;
  const result = await goodTrafficDuring(async () => {
    for (let i = 0; i < 1000; i++) {
      const req = s.request({ ':method': 'POST', ':path': `/${ECHO_API}/Unary`, 'content-type': 'application/grpc', te: 'trailers', 'qbasis-range': '^1.2' });
      req.on('error', () => {});
      req.write(head);
      streams.push(req);
    }
    // Wait until the sidecar holds them all (each is an inbound call in flight), then measure.
    const deadline = Date.now() + 60_000;
    while ((await metric(PROVIDER, 'qbasis_sidecar_inflight{direction="inbound"}')) < 900 && Date.now() < deadline) await sleep(200);
    peak = await externalMemory(PROVIDER);
  });
  assert.deepEqual(result.failed, [], 'good calls beside the attack');
  assert.ok(result.ok > 0);
  assert.ok(peak - before < 64 * 1024 * 1024, `external memory grew ${((peak - before) / 1048576).toFixed(1)} MiB for 1,000 declared 4 MiB frames (expected < 64 MiB)`);
  // Every held stream is failed by the frame idle timeout (1 s here), with its coded status.
  const ends = await Promise.all(streams.slice(0, 20).map((r) => new Promise<string>((resolve) => {
    let code = '';
    r.on('response', (h) => (code = String(h['qbasis-error-code'] ?? '')));
    r.on('close', () => resolve(code));
  })));
  assert.ok(ends.every((c) => c === 'QB_FRAME_TRUNCATED'), `held frames time out with QB_FRAME_TRUNCATED: ${[...new Set(ends)].join(',')}`);
  s.destroy();
});

test('a frame that stops arriving midway fails after --frame-idle-timeout with DATA_LOSS saying so', { timeout: 60_000 }, async () => {
  const s = connect(PROVIDER, 15006, ATTACKER);
  const f = goodFrame();
  const a = await rawCall(s, [f.subarray(0, 18)], { range: '^1.2', end: false });
  s.close();
  assert.equal(a.status, 15);
  assert.equal(a.code, 'QB_FRAME_TRUNCATED');
  assert.match(a.message, /no byte of it arrived for 1 s/);
});

test('rapid reset (streams opened and reset at once) never reaches the app one for one, the abuser gets GOAWAY, and good calls do not fail', { timeout: 180_000 }, async () => {
  const callsBefore = Number((await stats()).calls);
  let attack = { resets: 0, goaway: undefined as number | undefined };
  const result = await goodTrafficDuring(async () => {
    attack = await rapidResets(() => connect(PROVIDER, 15006, ATTACKER), grpcHeaders(`/${ECHO_API}/Unary`, '^1.2'), goodFrame(), 6000);
  });
  const { resets, goaway } = attack;
  assert.deepEqual(result.failed, [], 'good calls beside the attack');
  const reached = Number((await stats()).calls) - callsBefore - result.ok - 1;
  assert.ok(resets >= 2000, `the attack sent ${resets} resets`);
  assert.ok(reached <= resets * 0.1, `${reached} of ${resets} reset streams reached the app (expected at most 10 %)`);
  assert.equal(goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 'the abusive connection is told to calm down');
  assert.equal(provider.proc.exitCode, null);
});

test('a frame asking for 2.0 is refused by a 1.4.0 pod even when the range header admits 1.4.0', { timeout: 30_000 }, async () => {
  const s = connect(PROVIDER, 15006, ATTACKER);
  const a = await rawCall(s, [encodeFrame(frameHeader({ major: 2, minor: 0 }), OK_PAYLOAD)], { range: '^1.2' });
  s.close();
  assert.equal(a.status, 9, a.message);
  assert.equal(a.code, 'QB_VERSION_INCOMPATIBLE');
  assert.match(a.message, /at least 2\.0.*1\.4\.0/);
});

test('a malformed range header is reported as malformed (INVALID_ARGUMENT, QB_INVALID_RANGE), not as outside the range', { timeout: 30_000 }, async () => {
  const s = connect(PROVIDER, 15006, ATTACKER);
  const a = await rawCall(s, [goodFrame()], { range: '^^1' });
  s.close();
  assert.equal(a.status, 3, a.message);
  assert.equal(a.code, 'QB_INVALID_RANGE');
  assert.match(a.message, /'\^\^1' is not a semver range/);
});

test('one bad frame is one refusal: counted once, one coded status', { timeout: 30_000 }, async () => {
  const series = 'qbasis_sidecar_frames_refused_total{direction="inbound",reason="QB_FRAME_BAD_MAGIC"}';
  const before = await metric(PROVIDER, series);
  const s = connect(PROVIDER, 15006, ATTACKER);
  const f = goodFrame();
  f.writeUInt16BE(0x7201, 0);
  const a = await rawCall(s, [f, goodFrame(), goodFrame()], { range: '^1.2' });
  s.close();
  assert.equal(a.code, 'QB_FRAME_BAD_MAGIC');
  assert.equal(await metric(PROVIDER, series), before + 1);
});

test('a 64 MiB frame is refused once with RESOURCE_EXHAUSTED and its code while the peer keeps sending, not reset with ENHANCE_YOUR_CALM', { timeout: 60_000 }, async () => {
  const series = 'qbasis_sidecar_frames_refused_total{direction="inbound",reason="QB_FRAME_TOO_LARGE"}';
  const before = await metric(PROVIDER, series);
  const s = connect(PROVIDER, 15006, ATTACKER);
  const head = Buffer.alloc(HEADER_BYTES);
  writeHeader(frameHeader({ length: 64 * 1024 * 1024 }), head, 0);
  const body = [head, ...Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 7))];
  const a = await rawCall(s, body, { range: '^1.2' });
  s.close();
  assert.equal(a.status, 8, `status ${a.status} rst ${a.rstCode}: ${a.message}`);
  assert.equal(a.code, 'QB_FRAME_TOO_LARGE');
  assert.notEqual(a.rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  assert.equal(await metric(PROVIDER, series), before + 1, 'counted once');
});

test("an app's rapid resets on its outbound port never reach a peer: the caller's shared connection survives, good calls do not fail, the abusing connection gets ENHANCE_YOUR_CALM", { timeout: 180_000 }, async () => {
  const callsBefore = Number((await stats()).calls);
  let attack = { resets: 0, goaway: undefined as number | undefined };
  const result = await goodTrafficDuring(async () => {
    const msg = Buffer.concat([Buffer.from([0, 0, 0, 0, OK_PAYLOAD.length]), OK_PAYLOAD]);
    attack = await rapidResets(() => connect(CALLER, 15001), grpcHeaders(`/${ECHO_API}/Unary`), msg, 4000);
  });
  const { resets, goaway } = attack;
  assert.deepEqual(result.failed, [], 'good calls through the same caller sidecar');
  const reached = Number((await stats()).calls) - callsBefore - result.ok - 1;
  assert.ok(reached <= resets * 0.1, `${reached} of ${resets} reset calls reached the provider's app`);
  assert.equal(goaway, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
});

test('a gRPC message whose compressed flag is neither 0 nor 1 is refused with INTERNAL (QB_BAD_MESSAGE) and counted, not passed on', { timeout: 30_000 }, async () => {
  const series = 'qbasis_sidecar_frames_refused_total{direction="outbound",reason="QB_BAD_MESSAGE"}';
  const before = await metric(CALLER, series);
  const s = connect(CALLER, 15001);
  const a = await rawCall(s, [Buffer.concat([Buffer.from([2, 0, 0, 0, OK_PAYLOAD.length]), OK_PAYLOAD])]);
  s.close();
  assert.equal(a.status, 13, a.message);
  assert.equal(a.code, 'QB_BAD_MESSAGE');
  assert.match(a.message, /compressed flag 2; expected 0 or 1/);
  assert.equal(await metric(CALLER, series), before + 1);
});
