import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeFrame,
  encodeFrame,
  encodeHeader,
  formatText,
  FrameReader,
  parseText,
  readHeader,
  type BasisHeader,
} from '../../proto/basis/index.ts';
import { catalogue, isQbasisError } from '../../proto/errors.ts';

const header: fc.Arbitrary<BasisHeader> = fc.record({
  codec: fc.constant(1),
  kind: fc.constantFrom('request' as const, 'response' as const),
  gzip: fc.boolean(),
  encoding: fc.constantFrom('protobuf' as const, 'json' as const, 'opaque' as const),
  apiId: fc.nat({ max: 0xffffffff }),
  methodId: fc.nat({ max: 0xffff }),
  major: fc.nat({ max: 255 }),
  minor: fc.nat({ max: 255 }),
  length: fc.nat({ max: 4 * 1024 * 1024 }),
});

const frameCodes = Object.keys(catalogue).filter((c) => c.startsWith('QB_FRAME_'));

function onlyCodedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!isQbasisError(err) || !frameCodes.includes(err.code)) throw err;
  }
}

test('decode(encode(h)) = h for every valid header', () => {
  fc.assert(fc.property(header, (h) => assert.deepEqual(readHeader(encodeHeader(h)), { ...h })), { numRuns: 2000 });
});

test('parse(format(t)) = t for the text form of any 16 bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const text = formatText(bytes);
      assert.deepEqual(new Uint8Array(parseText(text)), bytes);
      assert.equal(formatText(parseText(text)), text);
    }),
    { numRuns: 2000 },
  );
});

test('zero-heavy segments still format canonically and round-trip', () => {
  const seg = fc.oneof(fc.constant(0), fc.constant(0), fc.nat({ max: 0xffff }));
  fc.assert(
    fc.property(fc.array(seg, { minLength: 8, maxLength: 8 }), (segs) => {
      const b = Buffer.alloc(16);
      segs.forEach((s, i) => b.writeUInt16BE(s, 2 * i));
      const text = formatText(b);
      assert.ok(!text.includes(':::'), text);
      assert.ok((text.match(/::/g) ?? []).length <= 1, text);
      assert.deepEqual(parseText(text), b);
    }),
    { numRuns: 2000 },
  );
});

test('random bytes either decode or fail with a catalogued frame error, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      onlyCodedErrors(() => readHeader(bytes));
      onlyCodedErrors(() => decodeFrame(Buffer.from(bytes)));
    }),
    { numRuns: 3000 },
  );
  // Biased towards valid magic so the later checks are reached too.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 14, maxLength: 40 }), (tail) => {
      const bytes = Buffer.concat([Buffer.from([0x71, 1]), tail]);
      onlyCodedErrors(() => decodeFrame(bytes));
    }),
    { numRuns: 3000 },
  );
});

test('random strings either parse as text form or fail with a catalogued frame error', () => {
  const alphabet = fc.constantFrom(...'0123456789abcdefABCDEFxg:: .'.split(''));
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 45 })), (text) => {
      onlyCodedErrors(() => readHeader(parseText(text)));
    }),
    { numRuns: 3000 },
  );
});

test('a stream of frames split at arbitrary points comes out whole and in order', () => {
  const frameArb = fc.tuple(header, fc.uint8Array({ maxLength: 300 })).map(([h, p]) => ({ h: { ...h, length: p.length }, p: Buffer.from(p) }));
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat({ max: 400 }), { maxLength: 10 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.h, f.p)));
      const got: Array<{ h: BasisHeader; p: Buffer }> = [];
      const reader = new FrameReader({ onFrame: (h, p) => got.push({ h, p: Buffer.from(p) }) });
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      let at = 0;
      for (const point of [...points, stream.length]) {
        reader.push(stream.subarray(at, point));
        at = point;
      }
      reader.end();
      assert.deepEqual(got, frames.map((f) => ({ h: { ...f.h }, p: f.p })));
    }),
    { numRuns: 500 },
  );
});

test('a stream that ends inside a frame is reported truncated', () => {
  const frame = encodeFrame({ codec: 1, kind: 'request', gzip: false, encoding: 'opaque', apiId: 1, methodId: 2, major: 1, minor: 0, length: 5 }, Buffer.from('12345'));
  for (const cut of [1, 15, 16, 20]) {
    const reader = new FrameReader({ onFrame: () => assert.fail('no frame expected') });
    reader.push(frame.subarray(0, cut));
    assert.throws(() => reader.end(), (err: unknown) => isQbasisError(err, 'QB_FRAME_TRUNCATED'));
  }
});
