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

test('decode(encode(h)) = h for every valid header', () => {
  fc.assert(fc.property(header, (h) => assert.deepEqual(readHeader(encodeHeader(h)), { ...h })), { numRuns: 2000 });
});

// ---- What DESIGN.md says, written out independently of proto/basis, to check it against. ----

const MAX_PAYLOAD = 4 * 1024 * 1024; // the default payload limit
const ENCODINGS = ['protobuf', 'json', 'opaque'] as const;

type Spec<T> = { ok: T } | { codes: string[] };

/** The header 16+ bytes hold, or every rule of DESIGN.md they break (as the frame error codes). */
function specHeader(b: Uint8Array): Spec<BasisHeader> {
  if (b.length < 16) return { codes: ['QB_FRAME_TRUNCATED'] };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const codes: string[] = [];
  if (b[0] !== 0x71) codes.push('QB_FRAME_BAD_MAGIC');
  if (b[1] !== 1) codes.push('QB_FRAME_UNKNOWN_CODEC');
  const flags = v.getUint16(2);
  const kind = flags & 0b11;
  const encoding = (flags >> 3) & 0b11;
  if (kind > 1 || encoding > 2 || flags >> 5 !== 0) codes.push('QB_FRAME_RESERVED_BITS');
  const length = v.getUint32(12);
  if (length > MAX_PAYLOAD) codes.push('QB_FRAME_TOO_LARGE');
  if (codes.length > 0) return { codes };
  return {
    ok: {
      codec: 1,
      kind: kind === 0 ? 'request' : 'response',
      gzip: (flags & 0b100) !== 0,
      encoding: ENCODINGS[encoding]!,
      apiId: v.getUint32(4),
      methodId: v.getUint16(8),
      major: b[10]!,
      minor: b[11]!,
      length,
    },
  };
}

/** One whole frame: a valid header and exactly `length` payload bytes. */
function specFrame(b: Uint8Array): Spec<{ header: BasisHeader; payload: Buffer }> {
  const h = specHeader(b);
  if (!('ok' in h)) return h;
  const want = 16 + h.ok.length;
  if (b.length < want) return { codes: ['QB_FRAME_TRUNCATED'] };
  if (b.length > want) return { codes: ['QB_FRAME_OVERLONG'] };
  return { ok: { header: h.ok, payload: Buffer.from(b.subarray(16)) } };
}

/** Runs `fn` and checks it against the spec: the same value when the spec accepts, else a catalogued frame error for a rule the input breaks. */
function agrees<T>(fn: () => T, spec: Spec<T>, seen: Map<string, number>, what: string): void {
  let got: { ok: T } | { err: unknown };
  try {
    got = { ok: fn() };
  } catch (err) {
    got = { err };
  }
  if ('ok' in spec) {
    if (!('ok' in got)) throw new Error(`${what}: refused a valid input: ${(got.err as Error).message}`);
    assert.deepEqual(got.ok, spec.ok, what);
    seen.set('accepted', (seen.get('accepted') ?? 0) + 1);
  } else {
    if ('ok' in got) assert.fail(`${what}: accepted an input that breaks ${spec.codes.join(', ')}: ${JSON.stringify(got.ok)}`);
    const err = got.err;
    if (!isQbasisError(err) || !frameCodes.includes(err.code)) throw err;
    assert.ok(spec.codes.includes(err.code), `${what}: refused with ${err.code}, but the input breaks ${spec.codes.join(', ')}: ${err.message}`);
    seen.set(err.code, (seen.get(err.code) ?? 0) + 1);
  }
}

/** RFC 5952 canonical text as the WHATWG URL parser (an independent implementation) prints an IPv6 host. */
function urlCanonical(text: string): string | undefined {
  try {
    return new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** RFC 5952 §4 rule by rule: lower-case hex without leading zeros; the longest run of two or more zero segments (the first if tied) as '::'. */
function rfc5952(segs: readonly number[]): string {
  let best = { at: -1, len: 1 };
  for (let at = 0; at < 8; at++) {
    let len = 0;
    while (at + len < 8 && segs[at + len] === 0) len++;
    if (len > best.len) best = { at, len };
  }
  const hex = segs.map((s) => s.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

const segmentsOf = (b: Uint8Array): number[] => Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
const bytesOf = (segs: readonly number[]): Buffer => {
  const b = Buffer.alloc(16);
  segs.forEach((s, i) => b.writeUInt16BE(s, 2 * i));
  return b;
};

/** The 16 bytes a text names, by the text rules of DESIGN.md (IPv6 hex form, or 32 hex digits), or undefined. */
function specText(input: string): Buffer | undefined {
  const t = input.trim();
  if (/^(?:0x)?[0-9a-fA-F]{32}$/.test(t)) return Buffer.from(t.replace(/^0x/, ''), 'hex');
  if (!/^[0-9a-fA-F:]+$/.test(t)) return undefined; // hex segments only (no IPv4 tail, no zone)
  const c = urlCanonical(t);
  if (c === undefined) return undefined;
  const [head, tail] = c.includes('::') ? c.split('::') : [c, undefined];
  const h = head === '' ? [] : head!.split(':');
  const tl = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  return bytesOf(groups.map((g) => parseInt(g, 16)));
}

const zeroHeavySegments = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.nat({ max: 0xffff })), { minLength: 8, maxLength: 8 });
const anySegments = fc.oneof(zeroHeavySegments, fc.array(fc.nat({ max: 0xffff }), { minLength: 8, maxLength: 8 }));

/** Any spelling of the segments the text rules allow: either case, leading zeros, '::' for any run of zero segments, spaces around. */
const spelling = fc
  .record({
    segs: anySegments,
    upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
    pad: fc.array(fc.nat({ max: 3 }), { minLength: 8, maxLength: 8 }),
    squeeze: fc.option(fc.tuple(fc.nat({ max: 7 }), fc.nat({ max: 7 }))),
    space: fc.constantFrom('', ' ', '\t', '\n', '  '),
    hex32: fc.nat({ max: 9 }),
  })
  .map(({ segs, upper, pad, squeeze, space, hex32 }) => {
    const bytes = bytesOf(segs);
    if (hex32 === 0) return { bytes, text: `${space}${bytes.toString('hex')}` };
    if (hex32 === 1) return { bytes, text: `0x${bytes.toString('hex').toUpperCase()}${space}` };
    const groups = segs.map((s, i) => {
      const g = s.toString(16).padStart(Math.min(4, s.toString(16).length + pad[i]!), '0');
      return upper[i] ? g.toUpperCase() : g;
    });
    const runs: Array<[number, number]> = []; // every [start, length] of consecutive zero segments
    for (let at = 0; at < 8; at++) for (let len = 1; at + len <= 8 && segs[at + len - 1] === 0; len++) runs.push([at, len]);
    if (squeeze === null || runs.length === 0) return { bytes, text: `${space}${groups.join(':')}${space}` };
    const [at, len] = runs[(squeeze[0] * 8 + squeeze[1]) % runs.length]!;
    return { bytes, text: `${space}${groups.slice(0, at).join(':')}::${groups.slice(at + len).join(':')}` };
  });

// ---- The properties. ----

test('the text form is RFC 5952 canonical for any 16 bytes: as an independent IPv6 printer writes it, rule by rule', () => {
  fc.assert(
    fc.property(anySegments, (segs) => {
      const text = formatText(bytesOf(segs));
      assert.equal(text, urlCanonical(segs.map((s) => s.toString(16)).join(':')), `WHATWG URL's IPv6 form of ${segs.join(',')}`);
      assert.equal(text, rfc5952(segs), `RFC 5952 §4 for ${segs.join(',')}`);
      assert.match(text, /^[0-9a-f:]+$/, 'lower-case hex');
      for (const g of text.split(':')) assert.ok(g === '' || (g.length <= 4 && (g === '0' || !g.startsWith('0'))), `no leading zeros: ${text}`);
    }),
    { numRuns: 3000 },
  );
  // and from random bytes, with both forms of the header
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => assert.equal(formatText(bytes), rfc5952(segmentsOf(bytes)))),
    { numRuns: 1000 },
  );
  fc.assert(fc.property(header, (h) => assert.equal(formatText(h), rfc5952(segmentsOf(encodeHeader(h))))), { numRuns: 1000 });
});

test('every spelling the text rules allow is accepted and names the same 16 bytes; its canonical form round-trips', () => {
  fc.assert(
    fc.property(spelling, ({ bytes, text }) => {
      assert.deepEqual(parseText(text), bytes, JSON.stringify(text));
      const canonical = formatText(parseText(text));
      assert.equal(canonical, rfc5952(segmentsOf(bytes)), JSON.stringify(text));
      assert.deepEqual(parseText(canonical), bytes, canonical);
      assert.equal(formatText(parseText(canonical)), canonical);
    }),
    { numRuns: 3000 },
  );
});

test('random bytes are accepted exactly when DESIGN.md says they are a header or a frame (same fields), else refused for a rule they break', (t) => {
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      agrees(() => readHeader(bytes), specHeader(bytes), seen, 'readHeader');
      agrees(() => decodeFrame(Buffer.from(bytes)), specFrame(bytes), seen, 'decodeFrame');
    }),
    { numRuns: 3000 },
  );
  // Biased towards valid fields, so that valid headers and frames come up as well as each broken rule.
  const flags = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.nat({ max: 1 }), gzip: fc.boolean(), encoding: fc.nat({ max: 2 }) }).map((f) => f.kind | (f.gzip ? 0b100 : 0) | (f.encoding << 3)) },
    { weight: 1, arbitrary: fc.constantFrom(2, 3, 3 << 3, 1 << 5, 1 << 15) },
    { weight: 1, arbitrary: fc.nat({ max: 0xffff }) },
  );
  const length = fc.oneof(fc.nat({ max: 48 }), fc.nat({ max: 48 }), fc.constantFrom(MAX_PAYLOAD, MAX_PAYLOAD + 1, 0xffffffff), fc.nat({ max: 0xffffffff }));
  const candidate = fc
    .record({
      magic: fc.oneof({ weight: 4, arbitrary: fc.constant(0x71) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
      codec: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
      flags,
      apiId: fc.nat({ max: 0xffffffff }),
      methodId: fc.nat({ max: 0xffff }),
      major: fc.nat({ max: 255 }),
      minor: fc.nat({ max: 255 }),
      length,
      payloadDelta: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: -1 }) }),
      filler: fc.uint8Array({ maxLength: 60 }),
      cut: fc.oneof({ arbitrary: fc.constant(null), weight: 9 }, { arbitrary: fc.nat({ max: 15 }), weight: 1 }),
    })
    .map((c) => {
      const head = Buffer.alloc(16);
      head[0] = c.magic;
      head[1] = c.codec;
      head.writeUInt16BE(c.flags, 2);
      head.writeUInt32BE(c.apiId, 4);
      head.writeUInt16BE(c.methodId, 8);
      head[10] = c.major;
      head[11] = c.minor;
      head.writeUInt32BE(c.length, 12);
      const size = c.length <= 48 ? Math.max(0, c.length + c.payloadDelta) : c.filler.length;
      const payload = Buffer.alloc(size, 0xab);
      const frame = Buffer.concat([head, payload]);
      return c.cut === null ? frame : frame.subarray(0, c.cut);
    });
  fc.assert(
    fc.property(candidate, (bytes) => {
      agrees(() => readHeader(bytes), specHeader(bytes), seen, 'readHeader');
      agrees(() => decodeFrame(bytes), specFrame(bytes), seen, 'decodeFrame');
    }),
    { numRuns: 4000 },
  );
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
  // The runs were not one-sided: valid inputs were accepted, and every rule was met broken.
  for (const what of ['accepted', 'QB_FRAME_TRUNCATED', 'QB_FRAME_BAD_MAGIC', 'QB_FRAME_UNKNOWN_CODEC', 'QB_FRAME_RESERVED_BITS', 'QB_FRAME_TOO_LARGE', 'QB_FRAME_OVERLONG']) {
    assert.ok((seen.get(what) ?? 0) >= 20, `${what}: ${seen.get(what) ?? 0} times (${JSON.stringify([...seen])})`);
  }
});

test('random strings parse exactly when they are text forms (to the bytes they name), else fail with a catalogued frame error', (t) => {
  const seen = new Map<string, number>();
  const headers = new Map<string, number>();
  const check = (text: string): void => {
    const want = specText(text);
    agrees(() => parseText(text), want === undefined ? { codes: ['QB_FRAME_BAD_TEXT'] } : { ok: want }, seen, `parseText(${JSON.stringify(text)})`);
    if (want !== undefined) agrees(() => readHeader(parseText(text)), specHeader(want), headers, `readHeader(parseText(${JSON.stringify(text)}))`);
  };
  const alphabet = fc.constantFrom(...'0123456789abcdefABCDEFxg:: .'.split(''));
  fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 45 })), check), { numRuns: 3000 });
  // Spellings the rules allow with one character deleted, inserted or replaced: near misses and near hits.
  const edited = fc
    .tuple(spelling, fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), fc.constantFrom(...'0123456789aAfF:g. x'.split('')))
    .map(([{ text }, at, op, ch]) => {
      const i = at % (text.length + 1);
      if (op === 'delete') return text.slice(0, i) + text.slice(i + 1);
      if (op === 'insert') return text.slice(0, i) + ch + text.slice(i);
      return text.slice(0, i) + ch + text.slice(i + 1);
    });
  fc.assert(fc.property(edited, check), { numRuns: 4000 });
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
  assert.ok((seen.get('accepted') ?? 0) >= 500, `valid texts accepted: ${JSON.stringify([...seen])}`);
  assert.ok((seen.get('QB_FRAME_BAD_TEXT') ?? 0) >= 500, `invalid texts refused: ${JSON.stringify([...seen])}`);
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
