// fast-check arbitraries for any message of a schema, from its descriptors: every scalar's full range
// (NaN, ±Infinity, -0, 64-bit extremes), unknown enum numbers, maps, oneofs, and the well-known types
// with values their JSON form can hold (a Timestamp within 0001…9999, a Duration with one sign, …).
import fc from 'fast-check';
import { create, ScalarType, toBinary, type DescEnum, type DescField, type DescMessage, type Registry } from '@bufbuild/protobuf';

type Init = Record<string, unknown>;

export interface ArbitraryOptions {
  registry: Registry;
  /** Messages nested in messages (recursive types stop here). */
  maxDepth: number;
  /** Types an Any may hold. */
  anyTypes: string[];
}

const INT32 = fc.oneof(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.constantFrom(0, -1, 1, -0x80000000, 0x7fffffff));
const UINT32 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 0xffffffff));
const INT64 = fc.oneof(fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n), fc.bigInt(-(2n ** 53n), 2n ** 53n), fc.constantFrom(0n, -1n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n));
const UINT64 = fc.oneof(fc.bigInt(0n, 2n ** 64n - 1n), fc.bigInt(0n, 2n ** 53n), fc.constantFrom(0n, 2n ** 64n - 1n, 2n ** 63n));
const STRING = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary-ascii', maxLength: 8 }),
  fc.constantFrom('', '\u2028\u2029', '<a href="x">&amp;</a>', '"\\/\b\f\n\r\t', '\u0000\u001f\u007f', '😀é中'),
);

export function scalarArb(s: ScalarType): fc.Arbitrary<unknown> {
  switch (s) {
    case ScalarType.DOUBLE:
      return fc.oneof(fc.double(), fc.constantFrom(0, -0, 1.5, 1e21, 1e-7, 123456789.125, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53 + 2));
    case ScalarType.FLOAT:
      return fc.oneof(fc.float(), fc.constantFrom(0, -0, 0.1, 1.5, 3.4028234663852886e38, 1e-45).map(Math.fround));
    case ScalarType.INT32: case ScalarType.SINT32: case ScalarType.SFIXED32:
      return INT32;
    case ScalarType.UINT32: case ScalarType.FIXED32:
      return UINT32;
    case ScalarType.INT64: case ScalarType.SINT64: case ScalarType.SFIXED64:
      return INT64;
    case ScalarType.UINT64: case ScalarType.FIXED64:
      return UINT64;
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.STRING:
      return STRING;
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 20 });
  }
}

function enumArb(e: DescEnum): fc.Arbitrary<number> {
  if (e.typeName === 'google.protobuf.NullValue') return fc.constant(0);
  // Open enums: numbers the schema does not name are valid values too.
  return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...e.values.map((v) => v.number)) }, { weight: 1, arbitrary: INT32 });
}

// A JSON-safe google.protobuf.Value (numbers finite: NaN has no JSON form there).
const valueArb: fc.Arbitrary<Init> = fc.letrec<{ value: Init; struct: Init; list: Init }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant({ kind: { case: 'nullValue', value: 0 } }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => ({ kind: { case: 'numberValue', value: v } })),
    STRING.map((v) => ({ kind: { case: 'stringValue', value: v } })),
    fc.boolean().map((v) => ({ kind: { case: 'boolValue', value: v } })),
    tie('struct').map((v) => ({ kind: { case: 'structValue', value: v } })),
    tie('list').map((v) => ({ kind: { case: 'listValue', value: v } })),
  ),
  struct: fc.dictionary(STRING, tie('value'), { maxKeys: 4 }).map((fields) => ({ fields })),
  list: fc.array(tie('value'), { maxLength: 4 }).map((values) => ({ values })),
})).value;

const fieldPath = fc.stringMatching(/^[a-z]{1,6}(_[a-z]{1,5}){0,2}(\.[a-z]{1,6}(_[a-z]{1,5})?){0,2}$/);

function wellKnownArb(m: DescMessage, opts: ArbitraryOptions, depth: number): fc.Arbitrary<Init> | undefined {
  switch (m.typeName) {
    case 'google.protobuf.Timestamp':
      return fc.record({
        seconds: fc.oneof(fc.bigInt(-62135596800n, 253402300799n), fc.constantFrom(-62135596800n, 253402300799n, 0n, -1n)),
        nanos: fc.oneof(fc.integer({ min: 0, max: 999_999_999 }), fc.constantFrom(0, 1_000_000, 1_000, 500_000_000, 999_999_999)),
      });
    case 'google.protobuf.Duration':
      return fc
        .record({ neg: fc.boolean(), seconds: fc.oneof(fc.bigInt(0n, 315576000000n), fc.bigInt(0n, 100n)), nanos: fc.oneof(fc.integer({ min: 0, max: 999_999_999 }), fc.constantFrom(0, 1_000, 1_000_000, 999_999_999)) })
        .map(({ neg, seconds, nanos }) => ({ seconds: neg ? -seconds : seconds, nanos: neg ? -nanos : nanos }));
    case 'google.protobuf.FieldMask':
      return fc.array(fieldPath, { maxLength: 4 }).map((paths) => ({ paths }));
    case 'google.protobuf.Value':
      return valueArb;
    case 'google.protobuf.Struct':
      return fc.dictionary(STRING, valueArb, { maxKeys: 4 }).map((fields) => ({ fields }));
    case 'google.protobuf.ListValue':
      return fc.array(valueArb, { maxLength: 4 }).map((values) => ({ values }));
    case 'google.protobuf.Any': {
      // An Any in an Any, but not for ever.
      const inner = opts.anyTypes.filter((t) => depth < opts.maxDepth || t !== 'google.protobuf.Any').map((t) => {
        const d = opts.registry.getMessage(t)!;
        return messageArb(d, opts, depth + 1).map((init) => ({ typeUrl: `type.googleapis.com/${t}`, value: toBinary(d, create(d, init as never)) }));
      });
      return fc.oneof(...inner);
    }
  }
  return undefined;
}

/** Init objects for `create(desc, init)`. */
export function messageArb(m: DescMessage, opts: ArbitraryOptions, depth = 0): fc.Arbitrary<Init> {
  const wk = wellKnownArb(m, opts, depth);
  if (wk !== undefined) return wk;
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of m.members) {
    if (member.kind === 'oneof') {
      const cases = member.fields.map((f) => singularArb(f, opts, depth).map((value) => ({ case: f.localName, value })));
      parts[member.localName] = fc.option(fc.oneof(...cases), { nil: undefined, freq: 2 });
      continue;
    }
    const arb = fieldArb(member, opts, depth);
    if (arb !== undefined) parts[member.localName] = fc.option(arb, { nil: undefined, freq: 2 });
  }
  return fc.record(parts).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));
}

function fieldArb(f: DescField, opts: ArbitraryOptions, depth: number): fc.Arbitrary<unknown> | undefined {
  const deep = depth >= opts.maxDepth;
  switch (f.fieldKind) {
    case 'list': {
      if (f.listKind === 'message' && deep) return undefined;
      const el = f.listKind === 'scalar' ? scalarArb(f.scalar) : f.listKind === 'enum' ? enumArb(f.enum) : messageArb(f.message, opts, depth + 1);
      return fc.array(el, { maxLength: f.listKind === 'message' ? 2 : 4 });
    }
    case 'map': {
      if (f.mapKind === 'message' && deep) return undefined;
      const v = f.mapKind === 'scalar' ? scalarArb(f.scalar) : f.mapKind === 'enum' ? enumArb(f.enum) : messageArb(f.message, opts, depth + 1);
      return fc.array(fc.tuple(mapKeyArb(f.mapKey), v), { maxLength: 3 }).map((entries) => Object.fromEntries(entries));
    }
    case 'message':
      return deep ? undefined : singularArb(f, opts, depth);
    default:
      return singularArb(f, opts, depth);
  }
}

function singularArb(f: DescField, opts: ArbitraryOptions, depth: number): fc.Arbitrary<unknown> {
  if (f.fieldKind === 'scalar') return scalarArb(f.scalar);
  if (f.fieldKind === 'enum') return enumArb(f.enum);
  if (f.fieldKind === 'message') {
    // bufbuild's local shapes: a singular wrapper field outside a oneof is its bare value, and a Struct
    // field (except Value's own) a plain JSON object.
    if (f.oneof === undefined && f.message.typeName.startsWith('google.protobuf.') && f.message.typeName.endsWith('Value') && f.message.fields.length === 1 && f.message.fields[0]!.name === 'value') {
      return scalarArb(f.message.fields[0]!.scalar!);
    }
    if (f.message.typeName === 'google.protobuf.Struct' && f.parent.typeName !== 'google.protobuf.Value') {
      return fc.dictionary(STRING, valueArb.map(valueToJson), { maxKeys: 4 });
    }
    return messageArb(f.message, opts, Math.min(depth + 1, opts.maxDepth));
  }
  throw new Error(`not singular: ${f.name}`);
}

function valueToJson(v: Init): unknown {
  const kind = v['kind'] as { case: string; value: unknown };
  switch (kind.case) {
    case 'nullValue':
      return null;
    case 'structValue':
      return Object.fromEntries(Object.entries((kind.value as { fields: Record<string, Init> }).fields).map(([k, x]) => [k, valueToJson(x)]));
    case 'listValue':
      return (kind.value as { values: Init[] }).values.map(valueToJson);
    default:
      return kind.value;
  }
}

// Map keys as bufbuild holds them: strings for every key kind (bool "true"/"false", integers in decimal).
function mapKeyArb(k: ScalarType): fc.Arbitrary<string> {
  if (k === ScalarType.BOOL) return fc.boolean().map(String);
  if (k === ScalarType.STRING) return STRING;
  return (scalarArb(k) as fc.Arbitrary<number | bigint>).map(String);
}
