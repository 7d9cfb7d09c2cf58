// Other spellings of the same proto3 JSON that a parser must accept (protobuf.dev's JSON mapping): proto
// field names instead of lowerCamelCase, 64-bit integers as numbers, 32-bit ones as strings, enums by number,
// URL-safe unpadded base64, floats as strings. Applied to Go's output, both parsers must read the same message.
import { ScalarType, type DescField, type DescMessage, type JsonValue, type Registry } from '@bufbuild/protobuf';

export interface Variation {
  protoNames: boolean;
  int64AsNumber: boolean;
  int32AsString: boolean;
  enumAsNumber: boolean;
  urlSafeBase64: boolean;
  floatAsString: boolean;
}

type Obj = { [k: string]: JsonValue };

// Types with their own JSON form: left as they are.
const CUSTOM = /^google\.protobuf\.(Any|Timestamp|Duration|FieldMask|Struct|ListValue|Value|\w+Value)$/;

export function vary(m: DescMessage, json: JsonValue, v: Variation, registry: Registry): JsonValue {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return json;
  if (m.typeName === 'google.protobuf.Any') {
    const t = registry.getMessage(String((json as Obj)['@type']).split('/').pop()!);
    if (t === undefined || CUSTOM.test(t.typeName)) return json;
    const { '@type': type, ...rest } = json as Obj;
    return { '@type': type!, ...(vary(t, rest, v, registry) as Obj) };
  }
  if (CUSTOM.test(m.typeName)) return json;
  const out: Obj = {};
  for (const [k, val] of Object.entries(json as Obj)) {
    const f = m.fields.find((x) => x.jsonName === k);
    if (f === undefined) {
      out[k] = val;
      continue;
    }
    out[v.protoNames ? f.name : k] = val === null ? null : varyField(f, val, v, registry);
  }
  return out;
}

function varyField(f: DescField, val: JsonValue, v: Variation, registry: Registry): JsonValue {
  switch (f.fieldKind) {
    case 'scalar':
      return varyScalar(f.scalar, val, v);
    case 'enum':
      return varyEnum(f, val, v);
    case 'message':
      return vary(f.message, val, v, registry);
    case 'list':
      return (val as JsonValue[]).map((x) => (f.listKind === 'scalar' ? varyScalar(f.scalar, x, v) : f.listKind === 'enum' ? varyEnum(f, x, v) : vary(f.message, x, v, registry)));
    case 'map':
      return Object.fromEntries(Object.entries(val as Obj).map(([k, x]) => [k, f.mapKind === 'scalar' ? varyScalar(f.scalar, x, v) : f.mapKind === 'enum' ? varyEnum(f, x, v) : vary(f.message, x, v, registry)]));
  }
}

function varyEnum(f: DescField, val: JsonValue, v: Variation): JsonValue {
  if (!v.enumAsNumber || typeof val !== 'string') return val;
  const e = f.fieldKind === 'enum' ? f.enum : f.fieldKind === 'list' && f.listKind === 'enum' ? f.enum : f.fieldKind === 'map' && f.mapKind === 'enum' ? f.enum : undefined;
  return e?.values.find((x) => x.name === val)?.number ?? val;
}

function varyScalar(s: ScalarType, val: JsonValue, v: Variation): JsonValue {
  switch (s) {
    case ScalarType.INT64: case ScalarType.SINT64: case ScalarType.SFIXED64: case ScalarType.UINT64: case ScalarType.FIXED64:
      return v.int64AsNumber && typeof val === 'string' && Math.abs(Number(val)) <= Number.MAX_SAFE_INTEGER ? Number(val) : val;
    case ScalarType.INT32: case ScalarType.SINT32: case ScalarType.SFIXED32: case ScalarType.UINT32: case ScalarType.FIXED32:
      return v.int32AsString && typeof val === 'number' ? String(val) : val;
    case ScalarType.BYTES:
      return v.urlSafeBase64 && typeof val === 'string' ? val.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : val;
    case ScalarType.FLOAT: case ScalarType.DOUBLE:
      return v.floatAsString && typeof val === 'number' && !Object.is(val, -0) ? String(val) : val;
    default:
      return val;
  }
}
