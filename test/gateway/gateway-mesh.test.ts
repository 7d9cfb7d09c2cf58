// Legacy HTTP/JSON apps in the mesh through the protocol gateway (app-protocol http), all real processes: the
// local controller, the gRPC echo app, the legacy echo app (node:http, JSON only), sidecars started as
// `qbasis sidecar`; the legacy callers are this test's HTTP requests to their sidecars' outbound port.
// The three pairings: legacy caller → gRPC provider, gRPC caller → legacy provider, legacy → legacy; unary
// and server streaming, headers, deadlines, errors both ways, and bad input, each a clear error.
// The legacy → legacy caller is configured through QBASIS_* variables only, its schema a ConfigMap-style mount.
// Addresses: 127.0.120.x (controller .1; gRPC echo 1.4.0 pod .11; legacy echo 2.0.0 pod .12;
// legacy caller of ^1 .21, legacy caller of ^2 .22, gRPC caller of ^2 .23).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { echoClient, ECHO_API, type EchoClient, type EchoResponse } from '../fixtures/echo-client.ts';
import { startEcho, startLegacyEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { REPO, startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';
import { waitUntil } from '../fixtures/wait.ts';

const NET = '127.0.120';
const GRPC_POD = `${NET}.11`;
const LEGACY_POD = `${NET}.12`;
const LEGACY_TO_GRPC = `${NET}.21`;
const LEGACY_TO_LEGACY = `${NET}.22`;
const GRPC_TO_LEGACY = `${NET}.23`;
const SCHEMA = path.join(REPO, 'test/fixtures/legacy/echo-http.proto');
const APP_PORT = 50051;
const LIMIT = 65_536;
const HTTP_SIDECAR = ['--app-protocol', 'http', '--schema', SCHEMA];
let ctl: RunningController;
let grpcCaller: EchoClient;
const sidecars: Proc[] = [];
let legacyApp: Proc;

before(async () => {
  const podsFile = path.join(tempDir('gateway-mesh'), 'pods.yaml');
  const legacy = { 'qbasis.io/app-protocol': 'http', 'qbasis.io/schema': 'echo-schema' };
  writePods(podsFile, [
    { name: 'echo-grpc', ip: GRPC_POD, provides: `${ECHO_API}@1.4.0` },
    { name: 'echo-legacy', ip: LEGACY_POD, provides: `${ECHO_API}@2.0.0`, annotations: legacy },
  ]);
  ctl = await startController({ podsFile, host: `${NET}.1` });
  await startEcho({ host: GRPC_POD, port: APP_PORT, name: 'echo-grpc', version: '1.4.0' });
  legacyApp = await startLegacyEcho({ host: LEGACY_POD, port: APP_PORT, name: 'echo-legacy', version: '2.0.0' });
  sidecars.push(...await Promise.all([
    startSidecar({ ip: GRPC_POD, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@1.4.0`, podName: 'echo-grpc' }),
    startSidecar({ ip: LEGACY_POD, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@2.0.0`, podName: 'echo-legacy', extra: HTTP_SIDECAR }),
    startSidecar({ ip: LEGACY_TO_GRPC, discovery: ctl.target, appPort: 1, requires: `${ECHO_API}@^1.2`, podName: 'legacy-caller-1', extra: [...HTTP_SIDECAR, '--max-frame-bytes', String(LIMIT)] }),
    // Configured as the webhook does it: QBASIS_* environment only, the schema a ConfigMap mount.
    startSidecar({ ip: LEGACY_TO_LEGACY, discovery: '', appPort: 0, envOnly: true, env: { QBASIS_IP: LEGACY_TO_LEGACY, QBASIS_DISCOVERY: ctl.target, QBASIS_APP_PORT: '1', QBASIS_REQUIRES: `${ECHO_API}@^2`, QBASIS_POD_NAME: 'legacy-caller-2', QBASIS_APP_PROTOCOL: 'http', QBASIS_SCHEMA: configMapMount(path.join(tempDir('gateway-mesh-schema'), 'schema')) } }),
    startSidecar({ ip: GRPC_TO_LEGACY, discovery: ctl.target, appPort: 1, requires: `${ECHO_API}@^2`, podName: 'grpc-caller-2' }),
  ]));
  grpcCaller = echoClient(`${GRPC_TO_LEGACY}:15001`);
});

after(async () => {
  grpcCaller?.close();
  await stopAll();
  await ctl?.stop();
});

/** The schema as the kubelet mounts a ConfigMap: the file a symlink through ..data into a timestamped directory. */
function configMapMount(dir: string): string {
  const stamp = path.join(dir, '..2026_12_02_05_00_00.000000001');
  fs.mkdirSync(stamp, { recursive: true });
  fs.copyFileSync(SCHEMA, path.join(stamp, 'echo-http.proto'));
  fs.symlinkSync('..2026_12_02_05_00_00.000000001', path.join(dir, '..data'));
  fs.symlinkSync('..data/echo-http.proto', path.join(dir, 'echo-http.proto'));
  return dir;
}

interface HttpAnswer { status: number; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string>; body: string; json: () => Record<string, unknown> }

/** A legacy caller's HTTP/1.1 request to its sidecar's outbound port. */
function call(ip: string, method: string, urlPath: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ip, port: 15001, method, path: urlPath, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, agent: false, timeout: 20_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, trailers: res.trailers, body: text, json: () => JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const UNARY = `/${ECHO_API}/Unary`;

function grpcUnary(req: Record<string, unknown>, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<{ res: EchoResponse; headers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    const c = grpcCaller.Unary(req, md, { deadline: Date.now() + 15_000, ...opts }, (err: grpc.ServiceError | null, res: EchoResponse) => (err ? reject(err) : resolve({ res, headers })));
    c.on('metadata', (m: grpc.Metadata) => (headers = m));
  });
}

/** google.rpc.Status bytes → code, message, and each Any's type URL with an ErrorInfo's reason, domain and metadata. */
function readStatus(bin: Buffer): { code: number; message: string; details: { typeUrl: string; fields: string[] }[] } {
  const out = { code: 0, message: '', details: [] as { typeUrl: string; fields: string[] }[] };
  const r = protobuf.Reader.create(bin);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) out.code = r.int32();
    else if (tag >>> 3 === 2) out.message = r.string();
    else if (tag >>> 3 === 3) {
      const any = protobuf.Reader.create(r.bytes());
      const d = { typeUrl: '', fields: [] as string[] };
      while (any.pos < any.len) {
        const t = any.uint32();
        if (t >>> 3 === 1) d.typeUrl = any.string();
        else {
          const info = protobuf.Reader.create(any.bytes());
          while (info.pos < info.len) {
            const f = info.uint32();
            if (f >>> 3 === 3) {
              const e = protobuf.Reader.create(info.bytes());
              e.uint32();
              const k = e.string();
              e.uint32();
              d.fields.push(`${k}=${e.string()}`);
            } else d.fields.push(info.string());
          }
        }
      }
      out.details.push(d);
    } else r.skipType(tag & 7);
  }
  return out;
}

function grpcFails(req: Record<string, unknown>, opts: grpc.CallOptions = {}, md = new grpc.Metadata()): Promise<grpc.ServiceError> {
  return grpcUnary(req, md, opts).then(() => assert.fail('expected the call to fail'), (e: grpc.ServiceError) => e);
}

// ---- legacy caller → gRPC provider ----

test('a legacy caller POSTs proto3 JSON to /pkg.Service/Method and gets the gRPC provider\'s answer as JSON, headers both ways', async () => {
  const payload = Buffer.from('hello, mesh').toString('base64');
  const r = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'hi', payload, seq: '9007199254740993' }), { 'x-echo-who': 'legacy' });
  assert.equal(r.status, 200, r.body);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const j = r.json();
  assert.equal(j.text, 'hi');
  assert.equal(j.payload, payload);
  assert.equal(j.servedBy, 'echo-grpc@1.4.0');
  assert.equal(j.deadlineMs, '-1', 'no deadline: int64 as a string');
  assert.equal(r.headers['x-echo-who'], 'legacy', 'metadata the app sent back is a response header');
  assert.equal(r.headers['qbasis-error-code'], undefined);
});

test('a legacy caller reaches a method by its google.api.http route: POST with body "*", GET with a path variable', async () => {
  const post = await call(LEGACY_TO_GRPC, 'POST', '/v1/echo', JSON.stringify({ text: 'routed' }));
  assert.equal(post.status, 200, post.body);
  assert.equal(post.json().text, 'routed');
  const get = await call(LEGACY_TO_GRPC, 'GET', '/v1/echo/from%20the%20path?tag=t1');
  assert.equal(get.status, 200, get.body);
  assert.equal(get.json().text, 'from the path');
  assert.equal(get.json().servedBy, 'echo-grpc@1.4.0');
});

test('server streaming answers application/x-ndjson, one JSON message per line (route with query parameters)', async () => {
  const r = await call(LEGACY_TO_GRPC, 'GET', '/v1/echo/tick:stream?count=3');
  assert.equal(r.status, 200, r.body);
  assert.match(String(r.headers['content-type']), /^application\/x-ndjson/);
  const lines = r.body.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => l.index ?? 0), [0, 1, 2]);
  assert.ok(lines.every((l) => l.text === 'tick' && l.servedBy === 'echo-grpc@1.4.0'));
  assert.deepEqual(r.trailers, {}, 'no trailers for a client that did not send TE: trailers');
});

test('a long NDJSON stream to a legacy caller that stops reading for a while arrives whole and in order (backpressure through the gateway)', async () => {
  const text = 'y'.repeat(5000);
  const lines = await new Promise<string[]>((resolve, reject) => {
    const req = http.request({ host: LEGACY_TO_GRPC, port: 15001, method: 'GET', path: `/v1/echo/${text}:stream?count=1600`, agent: false, timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body.trimEnd().split('\n')));
      res.pause(); // ~8 MB behind it
      setTimeout(() => res.resume(), 500);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(lines.length, 1600);
  assert.ok(lines.every((l, i) => ((JSON.parse(l) as { index?: number }).index ?? 0) === i), 'every line once, in order');
});

test('a stream\'s trailing metadata and grpc-status reach a legacy caller as HTTP trailers: over HTTP/1.1 with TE: trailers, and over h2c', async () => {
  const h1 = await call(LEGACY_TO_GRPC, 'GET', '/v1/echo/tick:stream?count=2', undefined, { te: 'trailers', 'x-echo-tag': 'h1' });
  assert.equal(h1.status, 200, h1.body);
  assert.deepEqual([h1.trailers['grpc-status'], h1.trailers['x-echo-tag']], ['0', 'h1']);
  const s = http2.connect(`http://${LEGACY_TO_GRPC}:15001`);
  try {
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const st = s.request({ ':method': 'GET', ':path': '/v1/echo/tick:stream?count=2', 'x-echo-tag': 'h2' });
      let t: http2.IncomingHttpHeaders = {};
      st.on('trailers', (h) => (t = h));
      st.on('data', () => {}).on('end', () => resolve(t)).on('error', reject);
      st.end();
    });
    assert.deepEqual([trailers['grpc-status'], trailers['x-echo-tag']], ['0', 'h2']);
  } finally {
    s.close();
  }
});

test('the provider\'s gRPC error is its HTTP status with {"code","message","details"} (grpc-status-details-bin as JSON, unknown detail types named in qbasis-details-omitted); the mesh\'s own refusals add qbasis-error-code', async () => {
  const nf = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'no such order', failCode: 5 }));
  assert.equal(nf.status, 404, nf.body);
  assert.deepEqual(nf.json(), { code: 5, message: 'no such order', details: [] });
  assert.equal(nf.headers['grpc-status'], '5');
  assert.equal(nf.headers['qbasis-error-code'], undefined, 'the app answered it, not the mesh');
  const fp = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'not now', failCode: 9 }));
  assert.equal(fp.status, 400);
  assert.equal(fp.json().code, 9);
  const un = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'busy', failCode: 14 }));
  assert.equal(un.status, 503);
  // Rich error details (grpc-status-details-bin): a standard type as proto3 JSON, a type nobody knows named in a header.
  const rich = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'sold out', failCode: 9 }), { 'x-echo-error-details': '1' });
  assert.equal(rich.status, 400, rich.body);
  assert.deepEqual(rich.json(), { code: 9, message: 'sold out', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'OUT_OF_STOCK', domain: 'echo.test', metadata: { sku: 'A-1' } }] });
  assert.equal(rich.headers['qbasis-details-omitted'], 'type.googleapis.com/acme.internal.v1.Secret');
  assert.equal(rich.headers['grpc-status-details-bin'], undefined, 'the binary trailer is not passed on as a header');
});

test('a deadline travels as grpc-timeout: the provider sees it, and the gateway answers 504 when it passes', async () => {
  const seen = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'd' }), { 'grpc-timeout': '5S' });
  assert.equal(seen.status, 200, seen.body);
  const left = Number(seen.json().deadlineMs);
  assert.ok(left > 3000 && left <= 5000, `the app saw ${left} ms left`);
  const t0 = Date.now();
  const late = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'slow', delayMs: 3000 }), { 'grpc-timeout': '300m' });
  assert.equal(late.status, 504, late.body);
  assert.equal(late.json().code, 4);
  assert.ok(Date.now() - t0 < 2500, 'answered at the deadline, not when the app finished');
});

test('a legacy caller that hangs up cancels the call: the gRPC provider sees it cancelled', async () => {
  const tag = `hangup-${Date.now()}`;
  const req = http.request({ host: LEGACY_TO_GRPC, port: 15001, method: 'POST', path: UNARY, headers: { 'content-type': 'application/json' }, agent: false });
  req.on('error', () => {});
  req.end(JSON.stringify({ text: 'slow', delayMs: 5000, tag }));
  await new Promise((r) => setTimeout(r, 500));
  req.destroy();
  const direct = echoClient(`${GRPC_POD}:${APP_PORT}`);
  try {
    const tags = async (): Promise<string[]> => new Promise((resolve, reject) => direct.Stats({}, (e: Error | null, r: { cancelled_tags: string[] }) => (e ? reject(e) : resolve(r.cancelled_tags))));
    await waitUntil('the provider to see the call cancelled', async () => (await tags()).includes(tag), { timeoutMs: 4000 });
  } finally {
    direct.close();
  }
});

test('h2c with prior knowledge works on the same port as HTTP/1.1', async () => {
  const s = http2.connect(`http://${LEGACY_TO_GRPC}:15001`);
  try {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const st = s.request({ ':method': 'POST', ':path': UNARY, 'content-type': 'application/json' });
      let status = 0;
      let body = '';
      st.on('response', (h) => (status = Number(h[':status'])));
      st.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status, body })).on('error', reject);
      st.end(JSON.stringify({ text: 'over h2c' }));
    });
    assert.equal(status, 200, body);
    assert.equal((JSON.parse(body) as { text: string }).text, 'over h2c');
  } finally {
    s.close();
  }
});

// ---- bad input from a legacy caller ----

test('bad input is a clear 4xx/5xx naming what is wrong, and the sidecars keep serving', async () => {
  const cases: { name: string; send: () => Promise<HttpAnswer>; status: number; code: number; qb: string; message: RegExp }[] = [
    { name: 'malformed JSON', send: () => call(LEGACY_TO_GRPC, 'POST', UNARY, '{"text": "a",}'), status: 400, code: 3, qb: 'QB_INVALID_JSON', message: /invalid JSON at byte 13/ },
    { name: 'an unknown field', send: () => call(LEGACY_TO_GRPC, 'POST', UNARY, '{"text": "a", "colour": "red"}'), status: 400, code: 3, qb: 'QB_INVALID_JSON', message: /colour/ },
    { name: 'a wrong type', send: () => call(LEGACY_TO_GRPC, 'POST', UNARY, '{"count": "many"}'), status: 400, code: 3, qb: 'QB_INVALID_JSON', message: /count/ },
    { name: 'a 64-bit number beyond 2^53 as a JSON number', send: () => call(LEGACY_TO_GRPC, 'POST', UNARY, '{"seq": 9007199254740993}'), status: 400, code: 3, qb: 'QB_INVALID_JSON', message: /seq: .*beyond 2\^53.*decimal string/ },
    { name: 'a body over the limit', send: () => call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'x'.repeat(LIMIT + 10) })), status: 413, code: 8, qb: 'QB_BODY_TOO_LARGE', message: /over the limit of 65536 bytes/ },
    { name: 'a path that names no method', send: () => call(LEGACY_TO_GRPC, 'POST', `/${ECHO_API}/Nope`, '{}'), status: 404, code: 5, qb: 'QB_NO_SUCH_METHOD', message: /POST \/qbasis\.test\.echo\.v1\.EchoService\/Nope names no method of the schema/ },
    { name: 'a client-streaming method', send: () => call(LEGACY_TO_GRPC, 'POST', `/${ECHO_API}/ClientStream`, '{}'), status: 501, code: 12, qb: 'QB_STREAMING_NOT_SUPPORTED', message: /client-streaming method: the HTTP\/JSON gateway carries unary and server-streaming calls only/ },
    { name: 'a bidi-streaming method', send: () => call(LEGACY_TO_GRPC, 'POST', `/${ECHO_API}/Bidi`, '{}'), status: 501, code: 12, qb: 'QB_STREAMING_NOT_SUPPORTED', message: /bidi-streaming/ },
  ];
  for (const c of cases) {
    const r = await c.send();
    assert.equal(r.status, c.status, `${c.name}: ${r.body}`);
    const j = r.json();
    assert.equal(j.code, c.code, c.name);
    assert.match(String(j.message), c.message, c.name);
    assert.deepEqual(j.details, [], c.name);
    assert.equal(r.headers['qbasis-error-code'], c.qb, c.name);
  }
  // Bytes that are neither HTTP/1.1 nor HTTP/2 on the port: 400 and the connection closed.
  const garbage = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(15001, LEGACY_TO_GRPC, () => sock.write('\x16\x03\x01 not http at all\r\n\r\n'));
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => (got += d)).on('close', () => resolve(got)).on('error', reject);
  });
  assert.match(garbage, /^HTTP\/1\.1 400 Bad Request/);
  const still = await call(LEGACY_TO_GRPC, 'POST', UNARY, JSON.stringify({ text: 'still here' }));
  assert.equal(still.status, 200);
  for (const s of sidecars) assert.equal(s.proc.exitCode, null, 'no sidecar exited');
});

test('an app-protocol http sidecar still carries gRPC on its outbound port (an app can move method by method)', async () => {
  const c = echoClient(`${LEGACY_TO_GRPC}:15001`);
  try {
    const res = await new Promise<EchoResponse>((resolve, reject) => c.Unary({ text: 'plain gRPC' }, { deadline: Date.now() + 15_000 }, (e: Error | null, r: EchoResponse) => (e ? reject(e) : resolve(r))));
    assert.equal(res.text, 'plain gRPC');
    assert.equal(res.served_by, 'echo-grpc@1.4.0');
  } finally {
    c.close();
  }
});

// ---- gRPC caller → legacy provider ----

test('a gRPC caller reaches a legacy HTTP provider: JSON both ways inside its gateway, metadata as headers', async () => {
  const md = new grpc.Metadata();
  md.set('x-echo-trace', 'abc');
  const payload = Buffer.from([0, 1, 2, 250]);
  const { res, headers } = await grpcUnary({ text: 'to legacy', payload }, md);
  assert.equal(res.text, 'to legacy');
  assert.deepEqual(Buffer.from(res.payload), payload);
  assert.equal(res.served_by, 'echo-legacy@2.0.0');
  assert.equal(headers.get('x-echo-trace')[0], 'abc', 'the app\'s response header is response metadata');
});

test('server streaming from a legacy provider: its NDJSON lines are the gRPC messages', async () => {
  const got: EchoResponse[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = grpcCaller.ServerStream({ text: 'lines', count: 4 }, { deadline: Date.now() + 15_000 });
    s.on('data', (m: EchoResponse) => got.push(m));
    s.on('error', reject);
    s.on('end', resolve);
  });
  assert.deepEqual(got.map((m) => m.index), [0, 1, 2, 3]);
  assert.ok(got.every((m) => m.text === 'lines' && m.served_by === 'echo-legacy@2.0.0'));
});

test('a legacy provider\'s long stream to a caller that stops reading for a while arrives whole and in order (backpressure through the gateway)', async () => {
  const text = 'x'.repeat(5000);
  const got: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = grpcCaller.ServerStream({ text, count: 1600, tag: 'burst' }, { deadline: Date.now() + 30_000 });
    s.pause(); // ~8 MB written at once behind it: far more than the 1 MiB HTTP/2 windows between here and the app hold
    setTimeout(() => s.resume(), 500);
    s.on('data', (m: EchoResponse) => got.push(m.index ?? 0));
    s.on('error', reject);
    s.on('end', resolve);
  });
  assert.equal(got.length, 1600);
  assert.ok(got.every((v, i) => v === i), 'every line once, in order');
});

test('a legacy provider\'s HTTP error statuses map back to gRPC codes and its JSON details to grpc-status-details-bin; HTML or a wrong field is INTERNAL naming the byte or field', async () => {
  const denied = await grpcFails({ text: 'go away', fail_code: 7 });
  assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
  assert.equal(denied.details, 'go away');
  // The app's JSON error details reach the gRPC caller as grpc-status-details-bin (read here with protobufjs, not the gateway's library).
  const md = new grpc.Metadata();
  md.set('x-echo-error-details', '1');
  const rich = await grpcFails({ text: 'sold out', fail_code: 9 }, {}, md);
  assert.deepEqual([rich.code, rich.details], [grpc.status.FAILED_PRECONDITION, 'sold out']);
  const status = readStatus(rich.metadata.get('grpc-status-details-bin')[0] as Buffer);
  assert.deepEqual(status, { code: 9, message: 'sold out', details: [{ typeUrl: 'type.googleapis.com/google.rpc.ErrorInfo', fields: ['OUT_OF_STOCK', 'echo.test', 'sku=A-1'] }] });
  assert.equal(rich.metadata.get('qbasis-details-omitted')[0], 'type.googleapis.com/acme.internal.v1.Secret');
  const plain = await grpcFails({ fail_code: 99 });
  assert.equal(plain.code, grpc.status.NOT_FOUND, 'a plain 404 is NOT_FOUND');
  assert.match(plain.details, /the app answered HTTP 404: no such thing/);
  const html = await grpcFails({ text: 'html' });
  assert.equal(html.code, grpc.status.INTERNAL);
  assert.match(html.details, /answered HTTP 200, and its answer is not JSON \(content-type text\/html; invalid at byte 0/);
  assert.equal(html.metadata.get('qbasis-error-code')[0], 'QB_APP_BAD_ANSWER');
  const utf8 = await grpcFails({ text: 'bad-utf8' });
  assert.equal(utf8.code, grpc.status.INTERNAL);
  assert.match(utf8.details, /answered HTTP 200, and its answer is not valid UTF-8 \(content-type application\/json; at byte 10\)/);
  assert.equal(utf8.metadata.get('qbasis-error-code')[0], 'QB_APP_BAD_ANSWER');
  const field = await grpcFails({ text: 'bad-field' });
  assert.equal(field.code, grpc.status.INTERNAL);
  assert.match(field.details, /is not a valid qbasis\.test\.echo\.v1\.EchoResponse: .*colour/);
});

test('a gRPC deadline reaches the legacy app as grpc-timeout, and passes as DEADLINE_EXCEEDED', async () => {
  const { res } = await grpcUnary({ text: 'deadline' }, new grpc.Metadata(), { deadline: Date.now() + 4000 });
  const left = Number(res.deadline_ms);
  assert.ok(left > 2000 && left <= 4000, `the legacy app saw ${left} ms left`);
  const late = await grpcFails({ text: 'slow', delay_ms: 3000, tag: 'late-1' }, { deadline: Date.now() + 300 });
  assert.equal(late.code, grpc.status.DEADLINE_EXCEEDED);
  // The gateway aborted the HTTP request: the legacy app saw its client go away.
  await waitUntil('the legacy app to see the expired call go away', async () => (await legacyStats()).cancelledTags.includes('late-1'), { timeoutMs: 4000 });
});

test('a legacy provider that closes a kept-alive connection just as a call arrives (FIN or RST, no answer) fails no call: it is sent once more on another connection', async () => {
  for (const how of ['drop-once', 'reset-once']) {
    await grpcUnary({ text: 'warm' }); // a connection that has answered, for the next call to reuse
    const { res } = await grpcUnary({ text: how, tag: `${how}-1` });
    assert.deepEqual([res.text, res.served_by], [how, 'echo-legacy@2.0.0']);
  }
  assert.deepEqual((await legacyStats()).dropped, [{ tag: 'drop-once-1', reused: true }, { tag: 'reset-once-1', reused: true }]);
});

/** The legacy echo app's own record, asked directly (not through the mesh). */
async function legacyStats(): Promise<{ cancelledTags: string[]; dropped: { tag: string; reused: boolean }[] }> {
  const r = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: LEGACY_POD, port: APP_PORT, method: 'POST', path: `/${ECHO_API}/Stats`, agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end('{}');
  });
  return JSON.parse(r) as { cancelledTags: string[]; dropped: { tag: string; reused: boolean }[] };
}

// ---- legacy → legacy ----

test('legacy caller → legacy provider: unary by route, streaming and an error, the basis frame in between unchanged', async () => {
  const r = await call(LEGACY_TO_LEGACY, 'POST', '/v1/echo', JSON.stringify({ text: 'both old' }), { 'x-echo-hop': 'two' });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json().servedBy, 'echo-legacy@2.0.0');
  assert.equal(r.headers['x-echo-hop'], 'two');
  const s = await call(LEGACY_TO_LEGACY, 'GET', '/v1/echo/old:stream?count=2');
  assert.equal(s.status, 200, s.body);
  assert.deepEqual(s.body.trimEnd().split('\n').map((l) => (JSON.parse(l) as { index?: number }).index ?? 0), [0, 1]);
  const broken = await call(LEGACY_TO_LEGACY, 'GET', '/v1/echo/old:stream?count=2&failCode=13');
  assert.equal(broken.status, 200, 'the lines were already answered');
  const lines = broken.body.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 3);
  assert.deepEqual(lines[2], { error: { code: 13, message: 'broke after the lines', details: [] } });
  const e = await call(LEGACY_TO_LEGACY, 'POST', UNARY, JSON.stringify({ text: 'conflict', failCode: 6 }));
  assert.equal(e.status, 409);
  assert.deepEqual(e.json(), { code: 6, message: 'conflict', details: [] }, 'the exact code survives HTTP → gRPC → HTTP');
  const rich = await call(LEGACY_TO_LEGACY, 'POST', UNARY, JSON.stringify({ text: 'sold out', failCode: 9 }), { 'x-echo-error-details': '1' });
  assert.deepEqual(rich.json().details, [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'OUT_OF_STOCK', domain: 'echo.test', metadata: { sku: 'A-1' } }], 'details survive JSON → grpc-status-details-bin → JSON');
  const html = await call(LEGACY_TO_LEGACY, 'POST', UNARY, JSON.stringify({ text: 'html' }));
  assert.equal(html.status, 500);
  assert.equal(html.headers['qbasis-error-code'], 'QB_APP_BAD_ANSWER');
  assert.equal(legacyApp.proc.exitCode, null);
});
