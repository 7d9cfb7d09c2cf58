// Two number spellings where @bufbuild/protobuf's JSON differs from Go's protojson and protoc's C++ (found
// by test/gateway/protojson-conformance.test.ts): a float is written as the shortest decimal that reads back
// as the same 32-bit float (0.1, not 0.10000000149011612), and a negative zero as -0 (JSON.stringify drops
// the sign). Both walk the JSON that toJson made, skipping subtrees whose types hold no float or double.
import { ScalarType, type DescField, type DescMessage, type JsonValue, type Registry } from '@bufbuild/protobuf';

type JsonObject = { [k: string]: JsonValue };

const FLOATY_WKT = new Set(['google.protobuf.Any', 'google.protobuf.Value', 'google.protobuf.Struct', 'google.protobuf.ListValue', 'google.protobuf.DoubleValue', 'google.protobuf.FloatValue']);

// Types written in their own JSON form (under "value" inside an Any).
const CUSTOM_JSON = new Set([
  'google.protobuf.Any', 'google.protobuf.Timestamp', 'google.protobuf.Duration', 'google.protobuf.FieldMask', 'google.protobuf.Struct',
  'google.protobuf.ListValue', 'google.protobuf.Value', 'google.protobuf.DoubleValue', 'google.protobuf.FloatValue', 'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value', 'google.protobuf.Int32Value', 'google.protobuf.UInt32Value', 'google.protobuf.BoolValue',
  'google.protobuf.StringValue', 'google.protobuf.BytesValue',
]);

const relevance = new WeakMap<DescMessage, boolean>();

/** Whether a message's JSON can hold a float or a double (or an Any, which can hold anything). */
function relevant(m: DescMessage): boolean {
  const known = relevance.get(m);
  if (known !== undefined) return known;
  relevance.set(m, true); // a cycle reaches itself: assume yes until known
  let r = FLOATY_WKT.has(m.typeName);
  for (const f of m.fields) {
    if (r) break;
    const scalar = f.fieldKind === 'scalar' ? f.scalar : f.fieldKind === 'list' && f.listKind === 'scalar' ? f.scalar : f.fieldKind === 'map' && f.mapKind === 'scalar' ? f.scalar : undefined;
    if (scalar === ScalarType.FLOAT || scalar === ScalarType.DOUBLE) r = true;
    const msg = f.fieldKind === 'message' ? f.message : f.fieldKind === 'list' && f.listKind === 'message' ? f.message : f.fieldKind === 'map' && f.mapKind === 'message' ? f.message : undefined;
    if (msg !== undefined && relevant(msg)) r = true;
  }
  relevance.set(m, r);
  return r;
}

/**
 * The shortest decimal that reads back as the same float32, and of those the closest, an exact tie going
 * to the even digit: what Go's strconv.FormatFloat(v, 'g', -1, 32) picks. Distances are exact (BigInt).
 */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const a = Math.abs(v);
  for (let p = 1; p < 10; p++) {
    const [mant, exp] = splitDecimal(a.toPrecision(p));
    // toPrecision rounds to nearest; at a power of two the float's interval is lopsided, so a neighbour can fit where it does not.
    const cands = [mant - 1n, mant, mant + 1n].filter((m) => m > 0n && Math.fround(Number(`${m}e${exp}`)) === a);
    if (cands.length === 0) continue;
    const exact = exactValue(a);
    const scale = Math.max(exact.scale, -exp);
    const target = exact.num * 10n ** BigInt(scale - exact.scale);
    const dist = (m: bigint): bigint => {
      const d = m * 10n ** BigInt(scale + exp) - target;
      return d < 0n ? -d : d;
    };
    let best = cands[0]!;
    for (const m of cands.slice(1)) {
      const d = dist(m) - dist(best);
      if (d < 0n || (d === 0n && m % 2n === 0n)) best = m;
    }
    const c = Number(`${best}e${exp}`);
    return v < 0 ? -c : c;
  }
  return v;
}

/** "1.2345e+5" or "0.0012" → digits as an integer and the power of ten they are scaled by. */
function splitDecimal(s: string): [bigint, number] {
  const [m, e] = s.split('e') as [string, string | undefined];
  const dot = m.indexOf('.');
  const frac = dot === -1 ? 0 : m.length - dot - 1;
  return [BigInt(m.replace('.', '')), Number(e ?? 0) - frac];
}

const f32 = new DataView(new ArrayBuffer(4));

/** A float32's exact value as num / 10^scale (it is M·2^E, and 2^-k = 5^k / 10^k). */
function exactValue(a: number): { num: bigint; scale: number } {
  f32.setFloat32(0, a);
  const bits = f32.getUint32(0);
  const expBits = (bits >>> 23) & 0xff;
  const frac = bits & 0x7fffff;
  const m = BigInt(expBits === 0 ? frac : frac | 0x800000);
  const e = expBits === 0 ? -149 : expBits - 150;
  return e >= 0 ? { num: m << BigInt(e), scale: 0 } : { num: m * 5n ** BigInt(-e), scale: -e };
}

/**
 * Rewrites float32 values in `json` (of type `m`) to their shortest form, in place; true if a -0 is in it
 * (the caller then needs a serializer that keeps the sign).
 */
export function fixNumbers(m: DescMessage, json: JsonValue, registry: Registry): boolean {
  if (!relevant(m) || json === null || typeof json !== 'object') return false;
  return message(m, json as JsonObject, registry);
}

function message(m: DescMessage, obj: JsonObject, registry: Registry): boolean {
  switch (m.typeName) {
    case 'google.protobuf.Value':
    case 'google.protobuf.Struct':
    case 'google.protobuf.ListValue':
      return anyNegZero(obj);
    case 'google.protobuf.Any': {
      const t = registry.getMessage(String(obj['@type'] ?? '').slice(String(obj['@type'] ?? '').lastIndexOf('/') + 1));
      if (t === undefined || !relevant(t)) return false;
      // A type with its own JSON form sits under "value"; any other's fields are inline.
      if (CUSTOM_JSON.has(t.typeName)) return wkt(t, obj, 'value', registry);
      return message(t, obj, registry);
    }
    case 'google.protobuf.FloatValue':
    case 'google.protobuf.DoubleValue':
      return false; // only ever reached as a field's value, handled there
  }
  let neg = false;
  for (const f of m.fields) {
    const v = obj[f.jsonName];
    if (v === undefined || v === null) continue;
    neg = field(f, obj, f.jsonName, registry) || neg;
  }
  return neg;
}

function wkt(t: DescMessage, holder: JsonObject, key: string, registry: Registry): boolean {
  const v = holder[key];
  if (t.typeName === 'google.protobuf.FloatValue') return scalar(ScalarType.FLOAT, holder, key);
  if (t.typeName === 'google.protobuf.DoubleValue') return scalar(ScalarType.DOUBLE, holder, key);
  return v !== undefined && v !== null && typeof v === 'object' ? message(t, v as JsonObject, registry) : typeof v === 'number' && Object.is(v, -0);
}

function field(f: DescField, obj: JsonObject, key: string, registry: Registry): boolean {
  const v = obj[key]!;
  switch (f.fieldKind) {
    case 'scalar':
      return scalar(f.scalar, obj, key);
    case 'message':
      return relevant(f.message) ? wkt(f.message, obj, key, registry) : false;
    case 'list': {
      const arr = v as JsonValue[];
      let neg = false;
      if (f.listKind === 'scalar') for (let i = 0; i < arr.length; i++) neg = scalar(f.scalar, arr as unknown as JsonObject, String(i)) || neg;
      else if (f.listKind === 'message' && relevant(f.message)) for (let i = 0; i < arr.length; i++) neg = wkt(f.message, arr as unknown as JsonObject, String(i), registry) || neg;
      return neg;
    }
    case 'map': {
      const o = v as JsonObject;
      let neg = false;
      if (f.mapKind === 'scalar') for (const k of Object.keys(o)) neg = scalar(f.scalar, o, k) || neg;
      else if (f.mapKind === 'message' && relevant(f.message)) for (const k of Object.keys(o)) neg = wkt(f.message, o, k, registry) || neg;
      return neg;
    }
    default:
      return false;
  }
}

function scalar(s: ScalarType, holder: JsonObject, key: string): boolean {
  const v = holder[key];
  if (typeof v !== 'number') return false;
  if (s === ScalarType.FLOAT) holder[key] = shortestFloat32(v);
  return (s === ScalarType.FLOAT || s === ScalarType.DOUBLE) && Object.is(v, -0);
}

function anyNegZero(v: JsonValue): boolean {
  if (typeof v === 'number') return Object.is(v, -0);
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some(anyNegZero);
  return Object.values(v).some(anyNegZero);
}

/** JSON.stringify, except that -0 stays -0. */
export function stringifyKeepingNegativeZero(v: JsonValue): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : JSON.stringify(v);
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stringifyKeepingNegativeZero).join(',')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${stringifyKeepingNegativeZero(x)}`).join(',')}}`;
}
