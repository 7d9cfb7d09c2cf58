// Bad frames sent straight to a sidecar's inbound port with a raw HTTP/2 client: each gets its coded
// gRPC status (qbasis-error-code trailer, a message saying what was wrong and what was expected), is
// counted in /metrics, and the sidecar keeps serving good calls afterwards.
// Addresses: 127.0.43.x (controller .1; provider pod .11).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { apiId, encodeFrame, methodId, readHeader, type BasisHeader } from '../../proto/basis/index.ts';
import { ECHO_API } from '../fixtures/echo-client.ts';
import { admin, startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';

const NET = '127.0.43';
const POD = `${NET}.11`;
const MAX = 65536;
let ctl: RunningController;
let sidecar: Proc;
let session: http2.ClientHttp2Session;

before(async () => {
  const podsFile = path.join(tempDir('sidecar-bad-frames'), 'pods.yaml');
  writePods(podsFile, [{ name: 'echo', ip: POD, provides: `${ECHO_API}@1.4.0` }]);
  ctl = await startController({ podsFile, host: `${NET}.1`, adminPort: 18430 });
  await startEcho({ host: POD, port: 50051, name: 'echo', version: '1.4.0' });
  sidecar = await startSidecar({ ip: POD, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0`, extra: ['--max-frame-bytes', String(MAX)] });
  session = http2.connect(`http://${POD}:15006`);
  session.on('error', () => {});
});

after(async () => {
  session?.close();
  await stopAll();
  await ctl?.stop();
});

// EchoRequest{text: "ok"} in protobuf.
const OK_PAYLOAD = Buffer.from([0x12, 0x02, 0x6f, 0x6b]);
const header = (over: Partial<BasisHeader> = {}): BasisHeader => ({
  codec: 1, kind: 'request', gzip: false, encoding: 'protobuf', apiId: apiId(ECHO_API), methodId: methodId('Unary'), major: 1, minor: 2, length: OK_PAYLOAD.length, ...over,
});
const goodFrame = (): Buffer => encodeFrame(header(), OK_PAYLOAD);

interface Answer { status: number; message: string; code: string | undefined; data: Buffer }

function call(body: Buffer[], opts: { path?: string; range?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST', ':path': opts.path ?? `/${ECHO_API}/Unary`, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '10S',
    };
    if (opts.range !== undefined) headers['qbasis-range'] = opts.range;
    const req = session.request(headers);
    const chunks: Buffer[] = [];
    let meta: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (meta = { ...meta, ...h }));
    req.on('trailers', (t) => (meta = { ...meta, ...t }));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => resolve({
      status: Number(meta['grpc-status']), message: decodeURIComponent(String(meta['grpc-message'] ?? '')),
      code: meta['qbasis-error-code'] as string | undefined, data: Buffer.concat(chunks),
    }));
    for (const b of body) req.write(b);
    req.end();
  });
}

async function assertStillServing(): Promise<void> {
  const a = await call([goodFrame()], { range: '^1.2' });
  assert.equal(a.status, 0, a.message);
  const h = readHeader(a.data, 0);
  assert.equal(h.kind, 'response');
  assert.deepEqual([h.major, h.minor], [1, 4], 'responses carry the provider version');
  assert.ok(a.data.subarray(16).includes(Buffer.from('ok')));
}

const withSegment0 = (seg0: number): Buffer => {
  const f = goodFrame();
  f.writeUInt16BE(seg0, 0);
  return f;
};

const cases: { name: string; body: () => Buffer[]; opts?: { path?: string; range?: string }; status: number; code: string; message: RegExp }[] = [
  { name: 'wrong magic', body: () => [withSegment0(0x7201)], status: 3, code: 'QB_FRAME_BAD_MAGIC', message: /not a basis frame.*expected 0x71/ },
  { name: 'unknown codec version', body: () => [withSegment0(0x7109)], status: 12, code: 'QB_FRAME_UNKNOWN_CODEC', message: /unknown codec version 9.*speaks:? 1/ },
  { name: 'reserved flag bits set', body: () => { const f = goodFrame(); f.writeUInt16BE(0x0020, 2); return [f]; }, status: 3, code: 'QB_FRAME_RESERVED_BITS', message: /reserved/ },
  { name: 'payload above --max-frame-bytes', body: () => { const f = goodFrame(); f.writeUInt32BE(MAX + 1, 12); return [f]; }, status: 8, code: 'QB_FRAME_TOO_LARGE', message: new RegExp(`${MAX + 1} bytes exceeds the limit; expected at most ${MAX}`) },
  { name: 'stream ends inside a payload', body: () => [goodFrame().subarray(0, 18)], status: 15, code: 'QB_FRAME_TRUNCATED', message: /expected 4/ },
  { name: 'stream ends inside a header', body: () => [goodFrame().subarray(0, 7)], status: 15, code: 'QB_FRAME_TRUNCATED', message: /got 7 bytes; expected 16/ },
  { name: 'a response frame on a request stream', body: () => [encodeFrame(header({ kind: 'response' }), OK_PAYLOAD)], status: 3, code: 'QB_FRAME_BAD_FIELD', message: /expected a request frame/ },
  { name: 'frame API id not matching the path', body: () => [encodeFrame(header({ apiId: apiId('shop.orders.v1.OrderService') }), OK_PAYLOAD)], status: 3, code: 'QB_FRAME_BAD_FIELD', message: /names API id .*; expected/ },
  { name: 'frame asks for a newer major than provided', body: () => [encodeFrame(header({ major: 2, minor: 0 }), OK_PAYLOAD)], status: 9, code: 'QB_VERSION_INCOMPATIBLE', message: /at least 2\.0.*1\.4\.0/ },
  { name: "caller's range excludes the provided version", body: () => [goodFrame()], opts: { range: '^2.0' }, status: 9, code: 'QB_VERSION_INCOMPATIBLE', message: /provides 1\.4\.0, outside the caller's range \^2\.0/ },
  { name: 'API not provided by this pod', body: () => [goodFrame()], opts: { path: '/shop.orders.v1.OrderService/Create' }, status: 9, code: 'QB_API_NOT_PROVIDED', message: /not provided by this pod; it provides qbasis\.test\.echo\.v1\.EchoService@1\.4\.0/ },
  { name: 'not a gRPC method path', body: () => [goodFrame()], opts: { path: '/nope' }, status: 12, code: 'QB_BAD_REQUEST', message: /expected \/package\.Service\/Method/ },
];

for (const c of cases) {
  test(`inbound refuses ${c.name} with ${c.code} and keeps serving`, async () => {
    const a = await call(c.body(), c.opts);
    assert.equal(a.status, c.status, `status (message: ${a.message})`);
    assert.equal(a.code, c.code);
    assert.match(a.message, c.message);
    await assertStillServing();
  });
}

test('a good frame split across many tiny DATA chunks is reassembled', async () => {
  const f = goodFrame();
  const a = await call([...f].map((b) => Buffer.from([b])), { range: '^1.2' });
  assert.equal(a.status, 0, a.message);
});

test('refusals are counted by reason in /metrics and logged with the basis text form; the sidecar is still up', async () => {
  const m = (await admin(POD, '/metrics')).body;
  for (const code of ['QB_FRAME_BAD_MAGIC', 'QB_FRAME_UNKNOWN_CODEC', 'QB_FRAME_TOO_LARGE', 'QB_FRAME_TRUNCATED', 'QB_VERSION_INCOMPATIBLE', 'QB_API_NOT_PROVIDED']) {
    assert.match(m, new RegExp(`qbasis_sidecar_frames_refused_total\\{direction="inbound",reason="${code}"\\} [1-9]`));
  }
  const line = sidecar.logs().find((l) => l.code === 'QB_FRAME_UNKNOWN_CODEC');
  // The refused frame's header in the basis text form: segment 0 shows the unknown codec 9.
  assert.match(String(line?.frame), /^7109:0:[0-9a-f]+:[0-9a-f]+:[0-9a-f]+:102:0:4$/);
  assert.equal(sidecar.proc.exitCode, null);
});
