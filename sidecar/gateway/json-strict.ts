// What @bufbuild/protobuf reads more loosely than Go's protojson (found by the hostile-values test in
// test/gateway/protojson-conformance.test.ts): a number in a string must be a JSON number ("0x10", "01",
// "+1", " 1" are refused), base64 must be standard or URL-safe, padded correctly or not at all ("A==="), and a
// FieldMask's paths must be field paths (lowerCamelCase identifiers: "1.5s" and "a_b" are refused).
// And the other way: a 64-bit integer in a string may have a fraction or an exponent if its value is whole
// ("1.0", "1e3", as Go reads them); those are rewritten in place to plain digits, which the library reads.
// A bare null for a repeated Value or NullValue field is refused, as Go does (its null is a value, not "unset").
// One deliberate difference from Go: a 64-bit integer written as a JSON number that a double cannot hold
// exactly (9007199254740993) is refused naming the field (Go reads the digits exactly; JSON.parse has rounded
// them before any check sees them). 2^53 itself, and every integer a double holds, reads as Go reads it.
// Checked on the parsed JSON before the library reads it, so both sides refuse and accept the same bodies.
import { ScalarType, type DescField, type DescMessage, type JsonValue, type Registry } from '@bufbuild/protobuf';

type Obj = { [k: string]: JsonValue };

const IS_64_BIT = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

// Types with their own JSON form whose strings are not numbers or bytes: the library checks them fully.
const OPAQUE = new Set(['google.protobuf.Timestamp', 'google.protobuf.Duration', 'google.protobuf.FieldMask', 'google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.ListValue', 'google.protobuf.Empty']);

const byKey = new WeakMap<DescMessage, Map<string, DescField>>();

function fieldsByKey(m: DescMessage): Map<string, DescField> {
  let map = byKey.get(m);
  if (map === undefined) {
    map = new Map();
    for (const f of m.fields) {
      map.set(f.name, f);
      map.set(f.jsonName, f);
    }
    byKey.set(m, map);
  }
  return map;
}

/** Integer literals of the text being checked that JSON.parse could not read exactly (see json-codec.ts). */
let inexact: Map<number, string> | undefined;

export function checkStrict(m: DescMessage, json: JsonValue, registry: Registry, inexactIntegers?: Map<number, string>): { path: string; what: string } | undefined {
  inexact = inexactIntegers;
  try {
    return message(m, json, '', registry);
  } finally {
    inexact = undefined;
  }
}

function message(m: DescMessage, json: JsonValue, path: string, registry: Registry): { path: string; what: string } | undefined {
  if (m.typeName === 'google.protobuf.FieldMask') return fieldMask(json, path);
  if (json === null || typeof json !== 'object' || Array.isArray(json) || OPAQUE.has(m.typeName)) return undefined;
  const wrapped = wrapperScalar(m);
  if (wrapped !== undefined) return undefined; // a wrapper's JSON is its bare value, checked by the field
  if (m.typeName === 'google.protobuf.Any') {
    const url = (json as Obj)['@type'];
    if (typeof url !== 'string') return undefined;
    const t = registry.getMessage(url.slice(url.lastIndexOf('/') + 1));
    if (t === undefined) return undefined;
    const ws = wrapperScalar(t);
    if (ws !== undefined) return scalar(ws, json as Obj, 'value', `${path}.value`);
    if (t.typeName === 'google.protobuf.Any' || t.typeName === 'google.protobuf.FieldMask') return message(t, (json as Obj)['value'] ?? null, `${path}.value`, registry);
    if (OPAQUE.has(t.typeName)) return undefined;
    return message(t, json, path, registry);
  }
  const fields = fieldsByKey(m);
  for (const key in json) {
    const f = fields.get(key);
    const v = (json as Obj)[key]!;
    if (f === undefined) continue;
    const here = path === '' ? key : `${path}.${key}`;
    if (v === null) {
      // null means "not set" for every field but those whose null is a value: a repeated Value or NullValue
      // field then needs a list, so Go refuses a bare null there.
      const t = f.fieldKind !== 'list' ? undefined : f.listKind === 'enum' ? f.enum.typeName : f.listKind === 'message' ? f.message.typeName : undefined;
      if (t === 'google.protobuf.NullValue' || t === 'google.protobuf.Value') return { path: here, what: `null for a repeated ${t} field; expected a list, e.g. [null] (or leave the field out)` };
      continue;
    }
    const bad = field(f, json as Obj, key, here, registry);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

function field(f: DescField, holder: Obj, key: string, here: string, registry: Registry): { path: string; what: string } | undefined {
  const v = holder[key]!;
  switch (f.fieldKind) {
    case 'scalar':
      return scalar(f.scalar, holder, key, here);
    case 'message': {
      const ws = wrapperScalar(f.message);
      return ws !== undefined ? scalar(ws, holder, key, here) : message(f.message, v, here, registry);
    }
    case 'list': {
      if (!Array.isArray(v) || f.listKind === 'enum') return undefined;
      for (let i = 0; i < v.length; i++) {
        const el = v[i]!;
        let bad;
        if (f.listKind === 'scalar') bad = scalar(f.scalar, v, i, `${here}[${i}]`);
        else {
          const ws = wrapperScalar(f.message);
          bad = ws !== undefined ? scalar(ws, v, i, `${here}[${i}]`) : message(f.message, el, `${here}[${i}]`, registry);
        }
        if (bad !== undefined) return bad;
      }
      return undefined;
    }
    case 'map': {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || f.mapKind === 'enum') return undefined;
      for (const k in v) {
        const el = (v as Obj)[k]!;
        const at = `${here}[${JSON.stringify(k)}]`;
        let bad;
        if (f.mapKind === 'scalar') bad = scalar(f.scalar, v as Obj, k, at);
        else {
          const ws = wrapperScalar(f.message);
          bad = ws !== undefined ? scalar(ws, v as Obj, k, at) : message(f.message, el, at, registry);
        }
        if (bad !== undefined) return bad;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

function scalar(s: ScalarType, holder: Obj | JsonValue[], key: string | number, path: string): { path: string; what: string } | undefined {
  const v = (holder as Obj)[key as string];
  if (typeof v === 'number' && inexact !== undefined && inexact.has(v) && IS_64_BIT.has(s)) {
    // JSON.parse has already rounded it (9007199254740993 reads as …992): refused rather than silently changed.
    return { path, what: `${inexact.get(v)!} as a JSON number is beyond 2^53 and cannot be read exactly; expected a 64-bit integer beyond ±9007199254740991 as a decimal string, "${inexact.get(v)!}"` };
  }
  if (typeof v !== 'string') return undefined;
  switch (s) {
    case ScalarType.STRING:
    case ScalarType.BOOL:
      return undefined;
    case ScalarType.BYTES:
      return validBase64(v) ? undefined : { path, what: `invalid base64 ${show(v)}; expected base64 text (standard or URL-safe, padded or not)` };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return undefined;
      return JSON_NUMBER.test(v) ? undefined : { path, what: `${show(v)} is not a number; expected a number, or a string holding a JSON number, "NaN", "Infinity" or "-Infinity"` };
    case ScalarType.INT64: case ScalarType.UINT64: case ScalarType.SINT64: case ScalarType.FIXED64: case ScalarType.SFIXED64:
      if (!JSON_NUMBER.test(v)) return { path, what: `${show(v)} is not an integer; expected an integer, or a string holding one in JSON number syntax` };
      if (!/^-?\d+$/.test(v)) {
        const whole = wholeNumber(v);
        if (whole !== undefined) (holder as Obj)[key as string] = whole;
      }
      return undefined;
    default:
      return JSON_NUMBER.test(v) ? undefined : { path, what: `${show(v)} is not an integer; expected an integer, or a string holding one in JSON number syntax` };
  }
}

/** "1.0" → "1", "-2.5e1" → "-25"; undefined if not whole (or absurdly large: out of range anyway). */
function wholeNumber(v: string): string | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(v)!;
  const digits = m[2]! + (m[3] ?? '');
  const exp = Number(m[4] ?? 0) - (m[3] ?? '').length;
  if (exp > 40) return undefined;
  let n: bigint;
  if (exp >= 0) n = BigInt(digits) * 10n ** BigInt(exp);
  else if (-exp <= digits.length && /^0*$/.test(digits.slice(digits.length + exp))) n = BigInt(digits.slice(0, digits.length + exp) || '0');
  else if (/^0*$/.test(digits)) n = 0n;
  else return undefined;
  return n === 0n ? '0' : `${m[1]}${n}`;
}

const FIELD_PATH = /^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*$/;

/** Go's rule: each comma-separated path, snake_cased, must be a valid protobuf name, and has no '_' as written. */
function fieldMask(json: JsonValue, path: string): { path: string; what: string } | undefined {
  if (typeof json !== 'string' || json === '') return undefined;
  const bad = json.split(',').find((p) => !FIELD_PATH.test(p));
  return bad === undefined ? undefined : { path, what: `invalid field path ${show(bad)}; expected a string of comma-separated lowerCamelCase field paths, e.g. "user.displayName,photo"` };
}

/** Go's rule: URL-safe if it has '-' or '_', else standard; a length that is a multiple of 4 is padded. */
function validBase64(s: string): boolean {
  const url = s.includes('-') || s.includes('_');
  const alphabet = url ? /^[A-Za-z0-9\-_]*$/ : /^[A-Za-z0-9+/]*$/;
  if (s.length % 4 !== 0) return s.length % 4 !== 1 && alphabet.test(s);
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const body = s.slice(0, s.length - pad);
  return alphabet.test(body) && (pad === 0 || body.length % 4 === 4 - pad);
}

function wrapperScalar(m: DescMessage): ScalarType | undefined {
  if (!m.typeName.startsWith('google.protobuf.') || !m.typeName.endsWith('Value') || m.fields.length !== 1) return undefined;
  const f = m.fields[0]!;
  return f.name === 'value' && f.fieldKind === 'scalar' ? f.scalar : undefined;
}

function show(v: string): string {
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}…"` : s;
}
