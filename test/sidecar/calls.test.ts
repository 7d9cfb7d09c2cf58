// Calls through two sidecars (app ← sidecar ← sidecar ← client with plain @grpc/grpc-js stubs): all four
// call kinds, metadata both ways (incl. -bin), status codes, trailers and trailers-only answers,
// deadlines and cancellation reaching the app, version-safe routing, and the no-compatible-endpoint
// and undeclared-API refusals. Everything runs as real processes against the real local controller.
// Addresses: 127.0.41.x (controller .1; echo 1.4.0 pod .11; echo 2.0.0 pod .13; caller pod .12).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { echoClient, ECHO_API, type EchoClient, type EchoResponse, type StatsResponse } from '../fixtures/echo-client.ts';
import { admin, logsByIp, startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController, type TestPod } from '../fixtures/local-controller.ts';
import { pollFor, waitUntil } from '../fixtures/wait.ts';

const NET = '127.0.41';
const V1 = `${NET}.11`;
const V2 = `${NET}.13`;
const CALLER = `${NET}.12`;
const APP_PORT = 50051;
let ctl: RunningController;
let podsFile: string;
let client: EchoClient;
const direct: Record<string, EchoClient> = {};

const pods = (which: ('v1' | 'v2')[]): TestPod[] =>
  which.map((w) => (w === 'v1' ? { name: 'echo-v1', ip: V1, provides: `${ECHO_API}@1.4.0` } : { name: 'echo-v2', ip: V2, provides: `${ECHO_API}@2.0.0` }));

before(async () => {
  podsFile = path.join(tempDir('sidecar-calls'), 'pods.yaml');
  writePods(podsFile, pods(['v1', 'v2']));
  ctl = await startController({ podsFile, host: `${NET}.1`, adminPort: 18410 });
  await Promise.all([
    startEcho({ host: V1, port: APP_PORT, name: 'echo-v1', version: '1.4.0' }),
    startEcho({ host: V2, port: APP_PORT, name: 'echo-v2', version: '2.0.0' }),
  ]);
  await Promise.all([
    startSidecar({ ip: V1, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@1.4.0`, podName: 'echo-v1' }),
    startSidecar({ ip: V2, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@2.0.0`, podName: 'echo-v2' }),
    // The caller is configured through QBASIS_* environment variables only (flags and env are equivalent).
    startSidecar({ ip: CALLER, discovery: '', appPort: 0, envOnly: true, env: { QBASIS_IP: CALLER, QBASIS_DISCOVERY: ctl.target, QBASIS_APP_PORT: String(APP_PORT), QBASIS_REQUIRES: `${ECHO_API}@^1.2`, QBASIS_POD_NAME: 'caller', QBASIS_GRACE_PERIOD: '10' } }),
  ]);
  client = echoClient(`${CALLER}:15001`);
  direct.v1 = echoClient(`${V1}:${APP_PORT}`);
  direct.v2 = echoClient(`${V2}:${APP_PORT}`);
});

after(async () => {
  client?.close();
  for (const c of Object.values(direct)) c.close();
  await stopAll();
  await ctl?.stop();
});

function unary(c: EchoClient, req: Record<string, unknown>, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<{ res: EchoResponse; headers: grpc.Metadata; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    let trailers = new grpc.Metadata();
    const call = c.Unary(req, md, { deadline: Date.now() + 15_000, ...opts }, (err: grpc.ServiceError | null, res: EchoResponse) => {
      if (err) reject(err);
      else setImmediate(() => resolve({ res, headers, trailers }));
    });
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

async function stats(which: 'v1' | 'v2'): Promise<StatsResponse> {
  return new Promise((resolve, reject) => direct[which]!.Stats({}, (e: Error | null, r: StatsResponse) => (e ? reject(e) : resolve(r))));
}

test('unary call passes through two sidecars with payload, metadata (text and -bin) in headers and trailers', async () => {
  const md = new grpc.Metadata();
  md.set('x-echo-text', 'hello');
  md.set('x-echo-data-bin', Buffer.from([0, 1, 2, 255]));
  const payload = Buffer.alloc(1024, 9);
  const { res, headers, trailers } = await unary(client, { text: 'hi', payload }, md);
  assert.equal(res.text, 'hi');
  assert.deepEqual(Buffer.from(res.payload), payload);
  assert.equal(res.served_by, 'echo-v1@1.4.0');
  assert.equal(headers.get('x-echo-text')[0], 'hello');
  assert.deepEqual(headers.get('x-echo-data-bin')[0], Buffer.from([0, 1, 2, 255]));
  assert.equal(trailers.get('x-echo-text')[0], 'hello');
  assert.deepEqual(trailers.get('x-echo-data-bin')[0], Buffer.from([0, 1, 2, 255]));
});

test('client-streaming call delivers every message and one answer', async () => {
  const res = await new Promise<EchoResponse>((resolve, reject) => {
    const call = client.ClientStream((e: Error | null, r: EchoResponse) => (e ? reject(e) : resolve(r)));
    for (let i = 0; i < 5; i++) call.write({ payload: Buffer.from([i]), text: String(i) });
    call.end();
  });
  assert.equal(res.text, '5');
  assert.deepEqual(Buffer.from(res.payload), Buffer.from([0, 1, 2, 3, 4]));
  assert.equal(res.served_by, 'echo-v1@1.4.0');
});

test('a client stream of large messages (split across many HTTP/2 frames, under flow control) arrives whole', async () => {
  const parts = Array.from({ length: 8 }, (_, i) => Buffer.alloc(300_000, i + 1));
  const res = await new Promise<EchoResponse>((resolve, reject) => {
    const call = client.ClientStream((e: Error | null, r: EchoResponse) => (e ? reject(e) : resolve(r)));
    for (const p of parts) call.write({ payload: p });
    call.end();
  });
  assert.equal(res.text, '8');
  assert.ok(Buffer.from(res.payload).equals(Buffer.concat(parts)));
});

test('a request message above --max-frame-bytes (default 4 MiB) is refused by the outbound sidecar with RESOURCE_EXHAUSTED', async () => {
  await assert.rejects(unary(client, { payload: Buffer.alloc(5 * 1024 * 1024, 1) }), (e: grpc.ServiceError) => {
    assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(e.details, /exceeds the limit; expected at most 4194304 bytes/);
    return true;
  });
  assert.equal((await unary(client, { text: 'after' })).res.text, 'after');
});

test('server-streaming call delivers every message in order, including one larger than an HTTP/2 frame', async () => {
  const big = Buffer.alloc(200_000, 3);
  const got: EchoResponse[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.ServerStream({ count: 20, payload: big, text: 's' });
    call.on('data', (r: EchoResponse) => got.push(r));
    call.on('error', reject);
    call.on('end', resolve);
  });
  assert.equal(got.length, 20);
  assert.deepEqual(got.map((r) => r.index), [...Array(20).keys()]);
  assert.ok(got.every((r) => Buffer.from(r.payload).equals(big)));
});

test('bidi-streaming call echoes each message as it comes', async () => {
  const call = client.Bidi();
  const got: EchoResponse[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    call.on('data', (r: EchoResponse) => got.push(r));
    call.on('error', reject);
    call.on('end', resolve);
  });
  for (let i = 0; i < 10; i++) {
    call.write({ text: `m${i}` });
    // Interleaved: the answer to message i arrives before message i+1 is sent.
    await waitUntil(`bidi answer ${i}`, async () => got.length > i, { timeoutMs: 10_000 });
  }
  call.end();
  await ended;
  assert.deepEqual(got.map((r) => r.text), [...Array(10).keys()].map((i) => `m${i}`));
});

test('status codes, messages and trailers-only answers pass through unchanged', async () => {
  for (const code of [grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED, grpc.status.UNAVAILABLE]) {
    await assert.rejects(unary(client, { fail_code: code, text: `fails with ${code} ünïcode` }), (e: grpc.ServiceError) => {
      assert.equal(e.code, code);
      assert.equal(e.details, `fails with ${code} ünïcode`);
      return true;
    });
  }
  // With metadata echoed the app answers headers + trailers; the error still carries its trailer metadata.
  const md = new grpc.Metadata();
  md.set('x-echo-t', 'v');
  await assert.rejects(unary(client, { fail_code: grpc.status.ABORTED, text: 'x' }, md), (e: grpc.ServiceError) => e.code === grpc.status.ABORTED && e.metadata.get('x-echo-t')[0] === 'v');
});

test('the deadline reaches the app (reduced, not dropped) and an expired one gives DEADLINE_EXCEEDED and cancels the app call', async () => {
  const { res } = await unary(client, { text: 'd' }, new grpc.Metadata(), { deadline: Date.now() + 4000 });
  const seen = Number(res.deadline_ms);
  assert.ok(seen > 0 && seen <= 4000, `app saw a deadline of ${seen} ms`);
  const tag = `deadline-${Date.now()}`;
  await assert.rejects(unary(client, { text: 'slow', delay_ms: 5000, tag }, new grpc.Metadata(), { deadline: Date.now() + 500 }), (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED);
  await waitUntil('the app to see the expired call cancelled', async () => (await stats('v1')).cancelled_tags.includes(tag), { timeoutMs: 20_000 });
});

test('cancelling a server stream from the client cancels the call in the app', async () => {
  const tag = `cancel-${Date.now()}`;
  const call = client.ServerStream({ count: 1000, delay_ms: 20, tag });
  let n = 0;
  await new Promise<void>((resolve) => {
    call.on('data', () => {
      if (++n === 3) {
        call.cancel();
        resolve();
      }
    });
    call.on('error', () => {});
  });
  await waitUntil('the app to see the cancellation', async () => (await stats('v1')).cancelled_tags.includes(tag), { timeoutMs: 20_000 });
});

test('a ^1.2 caller never reaches the 2.x app while a 1.x endpoint exists', async () => {
  const before2 = Number((await stats('v2')).calls);
  const served = new Map<string, number>();
  for (let i = 0; i < 100; i++) {
    const { res } = await unary(client, { text: String(i) });
    served.set(res.served_by, (served.get(res.served_by) ?? 0) + 1);
  }
  assert.deepEqual([...served.keys()], ['echo-v1@1.4.0']);
  assert.equal(Number((await stats('v2')).calls), before2, 'the 2.x app received no call');
});

test('with only 2.x endpoints left a ^1.2 call fails UNAVAILABLE naming the API, the range and the versions that exist; it recovers when 1.x returns', async () => {
  writePods(podsFile, pods(['v2']));
  try {
    const err = await pollFor('the caller to see the 1.x endpoint gone', async () => {
      try {
        await unary(client, { text: 'x' });
        return undefined;
      } catch (e) {
        return e as grpc.ServiceError;
      }
    }, { timeoutMs: 20_000 });
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, new RegExp(`no compatible endpoint for ${ECHO_API.replaceAll('.', '\\.')} \\(required range \\^1\\.2\\); versions that exist: 2\\.0\\.0`));
    assert.equal(err.metadata.get('qbasis-error-code')[0], 'QB_NO_COMPATIBLE_ENDPOINT');
    const line = await pollFor('a log line with the basis text form', async () => {
      const logs = logsByIp(CALLER);
      return logs.find((l) => l.code === 'QB_NO_COMPATIBLE_ENDPOINT');
    }, { timeoutMs: 20_000 });
    assert.match(String(line.frame), /^7101:/);
  } finally {
    writePods(podsFile, pods(['v1', 'v2']));
  }
  await pollFor('1.x back in rotation', async () => {
    try {
      return (await unary(client, { text: 'y' })).res.served_by === 'echo-v1@1.4.0' ? true : undefined;
    } catch {
      return undefined;
    }
  }, { timeoutMs: 20_000 });
});

test('an API missing from --requires is refused with FAILED_PRECONDITION saying how to declare it', async () => {
  const other = new grpc.Client(`${CALLER}:15001`, grpc.credentials.createInsecure());
  try {
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      other.makeUnaryRequest('/shop.orders.v1.OrderService/Create', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(3), (e) => resolve(e as grpc.ServiceError));
    });
    assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
    assert.match(err.details, /shop\.orders\.v1\.OrderService is not declared in --requires/);
  } finally {
    other.close();
  }
});

test('/routes shows the snapshot with per-endpoint EWMA, in-flight and ejection state; /metrics counts calls', async () => {
  const routes = JSON.parse((await admin(CALLER, '/routes')).body) as { discovery: string; requires: Record<string, { range: string; endpoints: { pod: string; compatible: boolean; ewma_ms?: number; inflight?: number; ejection?: string }[] }> };
  assert.equal(routes.discovery, 'connected');
  const r = routes.requires[ECHO_API]!;
  assert.equal(r.range, '^1.2');
  const v1 = r.endpoints.find((e) => e.pod === 'echo-v1')!;
  const v2 = r.endpoints.find((e) => e.pod === 'echo-v2')!;
  assert.equal(v1.compatible, true);
  assert.equal(typeof v1.ewma_ms, 'number');
  assert.equal(v1.inflight, 0);
  assert.equal(v1.ejection, 'active');
  assert.equal(v2.compatible, false);
  const metrics = (await admin(CALLER, '/metrics')).body;
  assert.match(metrics, new RegExp(`qbasis_sidecar_requests_total\\{direction="outbound",api="${ECHO_API.replaceAll('.', '\\.')}",method="Unary",status="OK"\\} \\d+`));
  assert.match(metrics, /qbasis_sidecar_discovery_connected\{state="connected"\} 1/);
  const inbound = (await admin(V1, '/metrics')).body;
  assert.match(inbound, /qbasis_sidecar_requests_total\{direction="inbound",.*status="OK"\} \d+/);
});


test('a providing sidecar whose app does not listen is started (/started 200) but not ready (/ready 503 naming the app)', async () => {
  const ip = `${NET}.20`;
  const p = await startSidecar({ ip, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@1.4.0`, requires: `${ECHO_API}@^1.2`, waitReady: false });
  try {
    await waitUntil('/started', async () => (await admin(ip, '/started').catch(() => ({ status: 0 }))).status === 200, { timeoutMs: 20_000 });
    const r = await admin(ip, '/ready');
    assert.equal(r.status, 503);
    assert.match(r.body, new RegExp(`the app at ${ip.replaceAll('.', '\\.')}:${APP_PORT} does not accept connections`));
    assert.equal((await admin(ip, '/live')).status, 200);
  } finally {
    await p.stop();
  }
});

test('with --outbound-host 127.0.0.1 (as injected in pods) the app reaches its sidecar on loopback, and the pod IP does not expose the outbound port', async () => {
  const ip = `${NET}.14`;
  const port = 18414;
  await startSidecar({ ip, discovery: ctl.target, appPort: APP_PORT, requires: `${ECHO_API}@^1.2`, podName: 'loopback-caller', extra: ['--outbound-host', '127.0.0.1', '--outbound-port', String(port)] });
  const local = echoClient(`127.0.0.1:${port}`);
  const outside = echoClient(`${ip}:${port}`);
  try {
    const { res } = await unary(local, { text: 'via loopback' });
    assert.equal(res.text, 'via loopback');
    assert.equal(res.served_by, 'echo-v1@1.4.0');
    await assert.rejects(unary(outside, { text: 'from outside' }, new grpc.Metadata(), { deadline: Date.now() + 3_000 }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
    // The admin port listens on the pod's loopback too, so the app can reach /routes and POST /shutdown there.
    const routes = await admin('127.0.0.1', '/routes');
    assert.equal(routes.status, 200, routes.body);
    assert.equal((JSON.parse(routes.body) as { pod: string }).pod, 'loopback-caller');
  } finally {
    local.close();
    outside.close();
  }
});
