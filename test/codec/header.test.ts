import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  apiId,
  decodeFrame,
  encodeFrame,
  encodeHeader,
  formatText,
  fnv1a32,
  fnv1a32Bytes,
  methodId,
  parseText,
  readHeader,
  type BasisHeader,
  type Encoding,
  type Kind,
} from '../../proto/basis/index.ts';
import { isQbasisError, Status } from '../../proto/errors.ts';

const base: BasisHeader = {
  codec: 1,
  kind: 'request',
  gzip: false,
  encoding: 'protobuf',
  apiId: apiId('shop.orders.v1.OrderService'),
  methodId: methodId('Create'),
  major: 1,
  minor: 4,
  length: 42,
};

test('the worked example of DESIGN.md encodes to 7101:0:30c0:50e8:7d70:104:0:2a and back', () => {
  assert.equal(formatText(base), '7101:0:30c0:50e8:7d70:104:0:2a');
  assert.deepEqual(readHeader(parseText('7101:0:30c0:50e8:7d70:104:0:2a')), base);
});

test('FNV-1a matches the published 32-bit test vectors', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  // Non-ASCII names hash their UTF-8 bytes.
  assert.equal(fnv1a32('é'), fnv1a32Bytes(Buffer.from([0xc3, 0xa9])));
  assert.notEqual(fnv1a32('é'), fnv1a32Bytes(Buffer.from([0xe9])));
});

test('method ids are FNV-1a xor-folded to 16 bits', () => {
  const h = fnv1a32('Create');
  assert.equal(methodId('Create'), (h >>> 16) ^ (h & 0xffff));
  assert.equal(methodId('Create'), 0x7d70);
});

test('every flag combination lands in segment 1 as kind | gzip<<2 | encoding<<3', () => {
  const kinds: Kind[] = ['request', 'response'];
  const encodings: Encoding[] = ['protobuf', 'json', 'opaque'];
  for (const [ki, kind] of kinds.entries()) {
    for (const gzip of [false, true]) {
      for (const [ei, encoding] of encodings.entries()) {
        const h = { ...base, kind, gzip, encoding };
        const bytes = encodeHeader(h);
        const flags = ki | (gzip ? 4 : 0) | (ei << 3);
        assert.equal(bytes.readUInt16BE(2), flags, `${kind} gzip=${gzip} ${encoding}`);
        assert.equal(formatText(h).split(':')[1], flags.toString(16));
        assert.deepEqual(readHeader(bytes), h);
      }
    }
  }
  // Two hand-checked vectors: a gzip JSON response and an opaque request.
  assert.equal(formatText({ ...base, kind: 'response', gzip: true, encoding: 'json' }), '7101:d:30c0:50e8:7d70:104:0:2a');
  assert.equal(formatText({ ...base, encoding: 'opaque' }), '7101:10:30c0:50e8:7d70:104:0:2a');
});

test('extreme field values round-trip', () => {
  const cases: BasisHeader[] = [
    { ...base, apiId: 0, methodId: 0, major: 0, minor: 0, length: 0 },
    { ...base, apiId: 0xffffffff, methodId: 0xffff, major: 255, minor: 255, length: 4 * 1024 * 1024 },
    { ...base, apiId: 0x80000000, methodId: 0x8000, major: 128, minor: 1, length: 0xffffffff },
  ];
  for (const h of cases) {
    const bytes = encodeHeader(h);
    assert.deepEqual(readHeader(bytes, 0, { maxPayload: 0xffffffff }), h);
    assert.deepEqual(readHeader(parseText(formatText(h)), 0, { maxPayload: 0xffffffff }), h);
  }
  assert.equal(formatText(cases[0]!), '7101:0:0:0:0:0:0:0'.replace(/:0:0:0:0:0:0:0$/, '::'));
  assert.equal(formatText(cases[1]!), '7101:0:ffff:ffff:ffff:ffff:40:0');
});

function refusedWith(fn: () => unknown, code: string, status: number, mentions: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isQbasisError(err), `expected a QbasisError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.grpcStatus, status);
    assert.match(err.message, mentions);
    assert.match(err.message, /expected/);
    return true;
  });
}

test('each bad-frame class is refused with its own code, status and an explanation', () => {
  const good = encodeFrame({ ...base, length: 3 }, Buffer.from('abc'));
  refusedWith(() => readHeader(good.subarray(0, 15)), 'QB_FRAME_TRUNCATED', Status.DATA_LOSS, /got 15 bytes/);
  refusedWith(() => decodeFrame(good.subarray(0, 18)), 'QB_FRAME_TRUNCATED', Status.DATA_LOSS, /got 2 payload bytes/);
  refusedWith(() => decodeFrame(Buffer.concat([good, Buffer.from('x')])), 'QB_FRAME_OVERLONG', Status.INVALID_ARGUMENT, /1 bytes follow/);
  const magic = Buffer.from(good);
  magic[0] = 0x72;
  refusedWith(() => decodeFrame(magic), 'QB_FRAME_BAD_MAGIC', Status.INVALID_ARGUMENT, /0x7201/);
  const codec = Buffer.from(good);
  codec[1] = 2;
  refusedWith(() => decodeFrame(codec), 'QB_FRAME_UNKNOWN_CODEC', Status.UNIMPLEMENTED, /codec version 2/);
  for (const flags of [0x0002, 0x0003, 0x0018, 0x0020, 0x8000]) {
    const reserved = Buffer.from(good);
    reserved.writeUInt16BE(flags, 2);
    refusedWith(() => decodeFrame(reserved), 'QB_FRAME_RESERVED_BITS', Status.INVALID_ARGUMENT, /reserved/);
  }
  refusedWith(() => encodeHeader({ ...base, major: 256 }), 'QB_FRAME_VERSION_RANGE', Status.OUT_OF_RANGE, /256\.4/);
  refusedWith(() => encodeHeader({ ...base, minor: 300 }), 'QB_FRAME_VERSION_RANGE', Status.OUT_OF_RANGE, /1\.300/);
  const big = encodeHeader({ ...base, length: 4 * 1024 * 1024 + 1 });
  refusedWith(() => readHeader(big), 'QB_FRAME_TOO_LARGE', Status.RESOURCE_EXHAUSTED, /4194305 bytes/);
  refusedWith(() => readHeader(encodeHeader({ ...base, length: 11 }), 0, { maxPayload: 10 }), 'QB_FRAME_TOO_LARGE', Status.RESOURCE_EXHAUSTED, /at most 10/);
});

test('a codec version this side was told it speaks is accepted', () => {
  const h = { ...base, codec: 2 };
  assert.deepEqual(readHeader(encodeHeader(h), 0, { codecs: [1, 2] }), h);
});

test('framing copies the payload once and splitting a whole frame copies nothing', () => {
  const payload = Buffer.from('hello basis');
  const frame = encodeFrame({ ...base, length: payload.length }, payload);
  assert.equal(frame.length, 16 + payload.length);
  const { header, payload: view } = decodeFrame(frame);
  assert.equal(header.length, payload.length);
  assert.equal(view.buffer, frame.buffer, 'payload is a view into the frame');
  assert.equal(view.toString(), 'hello basis');
  assert.throws(() => encodeFrame({ ...base, length: 1 }, payload), /does not match/);
});
