// Where a proto3 JSON body went wrong. The library's errors name a field's full name but not where it sits
// (`items[2].price.units`), so after a failure the parsed JSON is walked with the schema and each value is
// tried alone; the first that fails names the path. Only failures pay for this.
import { fromJson, type DescEnum, type DescField, type DescMessage, type JsonValue, type Registry } from '@bufbuild/protobuf';
import { ScalarType } from '@bufbuild/protobuf';

export interface LocateOptions {
  registry: Registry;
  ignoreUnknownFields: boolean;
  recursionLimit: number;
}

// Messages with their own JSON form: tried whole, never walked.
const SPECIAL = new Set([
  'google.protobuf.Any', 'google.protobuf.Timestamp', 'google.protobuf.Duration', 'google.protobuf.FieldMask',
  'google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.ListValue',
  'google.protobuf.DoubleValue', 'google.protobuf.FloatValue', 'google.protobuf.Int64Value', 'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value', 'google.protobuf.UInt32Value', 'google.protobuf.BoolValue', 'google.protobuf.StringValue', 'google.protobuf.BytesValue',
]);

export function locateJsonError(type: DescMessage, json: unknown, opts: LocateOptions): { path: string; what: string } | undefined {
  return walkMessage(type, json, '', opts, 0);
}

function walkMessage(type: DescMessage, json: unknown, path: string, opts: LocateOptions, depth: number): { path: string; what: string } | undefined {
  if (depth > opts.recursionLimit) return { path, what: `messages nest deeper than ${opts.recursionLimit} levels` };
  if (SPECIAL.has(type.typeName)) {
    const err = tryValue(type, json, opts);
    return err === undefined ? undefined : { path, what: `${err}; expected ${expectedMessage(type)}` };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { path, what: `expected ${expectedMessage(type)}, got ${show(json)}` };
  const seen = new Map<DescField, string>();
  const oneofs = new Map<string, string>();
  for (const [key, value] of Object.entries(json)) {
    const here = path === '' ? key : `${path}.${key}`;
    const field = type.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined) {
      if (opts.ignoreUnknownFields) continue;
      return { path: here, what: `unknown field; ${type.typeName} has no field "${key}"${suggest(type, key)}` };
    }
    const twice = seen.get(field);
    if (twice !== undefined) return { path: here, what: `field ${field.name} is set twice (as "${twice}" and "${key}")` };
    seen.set(field, key);
    if (field.oneof !== undefined && value !== null) {
      const other = oneofs.get(field.oneof.name);
      if (other !== undefined) return { path: here, what: `oneof ${field.oneof.name} is already set by "${other}"` };
      oneofs.set(field.oneof.name, key);
    }
    const found = walkField(type, field, key, value, here, opts, depth);
    if (found !== undefined) return found;
  }
  return undefined;
}

function walkField(type: DescMessage, field: DescField, key: string, value: unknown, here: string, opts: LocateOptions, depth: number): { path: string; what: string } | undefined {
  const alone = (v: unknown): string | undefined => tryValue(type, { [key]: v }, opts);
  if (value === null) {
    const err = alone(null);
    return err === undefined ? undefined : { path: here, what: `${err}; expected ${expectedField(field)}` };
  }
  switch (field.fieldKind) {
    case 'message':
      return walkMessage(field.message, value, here, opts, depth + 1);
    case 'list': {
      if (!Array.isArray(value)) return { path: here, what: `expected ${expectedField(field)}, got ${show(value)}` };
      for (let i = 0; i < value.length; i++) {
        const at = `${here}[${i}]`;
        if (value[i] === null) return { path: at, what: `a list item cannot be null; expected ${expectedElement(field)}` };
        if (field.listKind === 'message') {
          const found = walkMessage(field.message, value[i], at, opts, depth + 1);
          if (found !== undefined) return found;
        } else {
          const err = alone([value[i]]);
          if (err !== undefined) return { path: at, what: `${err.replace(/^list item #1: /, '')}; expected ${expectedElement(field)}` };
        }
      }
      return undefined;
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) return { path: here, what: `expected ${expectedField(field)}, got ${show(value)}` };
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const at = `${here}[${JSON.stringify(k)}]`;
        if (v === null) return { path: at, what: `a map value cannot be null; expected ${expectedElement(field)}` };
        // The key alone, with a value that is surely valid, then the value.
        const keyErr = alone({ [k]: field.mapKind === 'message' ? {} : field.mapKind === 'enum' ? 0 : zeroOf(field.scalar) });
        if (keyErr !== undefined) return { path: at, what: `invalid map key ${JSON.stringify(k)}; expected ${expectedScalar(field.mapKey)}` };
        if (field.mapKind === 'message') {
          const found = walkMessage(field.message, v, at, opts, depth + 1);
          if (found !== undefined) return found;
        } else {
          const err = alone({ [k]: v });
          if (err !== undefined) return { path: at, what: `${err.replace(/^map entry [^:]*: /, '')}; expected ${expectedElement(field)}` };
        }
      }
      return undefined;
    }
    default: {
      const err = alone(value);
      return err === undefined ? undefined : { path: here, what: `${err}; expected ${expectedField(field)}` };
    }
  }
}

/** The library's reason without its "cannot decode X from JSON:" prefix, or undefined if the value reads. */
function tryValue(type: DescMessage, json: unknown, opts: LocateOptions): string | undefined {
  try {
    fromJson(type, json as JsonValue, { registry: opts.registry, ignoreUnknownFields: opts.ignoreUnknownFields, recursionLimit: opts.recursionLimit });
    return undefined;
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e);
    // The library's wording, shortened: the caller adds what was expected.
    const reason = m
      .replace(/^cannot decode (?:field|message) [\w.]+ from JSON:? ?/, '')
      .replace(/^cannot decode enum [\w.]+ from JSON: (.*)$/, 'unknown value $1')
      .replace(/^(list item #\d+: |map entry [^:]*: )?expected \w+ \(\w+\), got (.*)$/, '$1got $2')
      .replace(/^(list item #\d+: |map entry [^:]*: )?expected \w+ \(\w+\): (.*)$/, '$1$2');
    return reason || 'invalid value';
  }
}

function zeroOf(s: ScalarType | undefined): JsonValue {
  if (s === ScalarType.BOOL) return false;
  if (s === ScalarType.STRING || s === ScalarType.BYTES) return '';
  return 0;
}

function expectedField(f: DescField): string {
  switch (f.fieldKind) {
    case 'list':
      return `an array of ${plural(expectedElement(f))}`;
    case 'map':
      return `an object mapping ${expectedScalar(f.mapKey)} keys to ${plural(expectedElement(f))}`;
    case 'message':
      return expectedMessage(f.message);
    case 'enum':
      return expectedEnum(f.enum);
    case 'scalar':
      return expectedScalar(f.scalar);
  }
}

function expectedElement(f: DescField): string {
  if (f.fieldKind === 'list') return f.listKind === 'message' ? expectedMessage(f.message) : f.listKind === 'enum' ? expectedEnum(f.enum) : expectedScalar(f.scalar);
  if (f.fieldKind === 'map') return f.mapKind === 'message' ? expectedMessage(f.message) : f.mapKind === 'enum' ? expectedEnum(f.enum) : expectedScalar(f.scalar);
  return expectedField(f);
}

function plural(s: string): string {
  return s.replace(/^an? /, '');
}

function expectedEnum(e: DescEnum): string {
  if (e.typeName === 'google.protobuf.NullValue') return 'null';
  const names = e.values.map((v) => v.name);
  return `a ${e.typeName} name (${names.slice(0, 6).join(', ')}${names.length > 6 ? ', …' : ''}) or number`;
}

function expectedScalar(s: ScalarType): string {
  switch (s) {
    case ScalarType.INT64: case ScalarType.SINT64: case ScalarType.SFIXED64:
      return 'an int64 (a decimal string, or a number, from -9223372036854775808 to 9223372036854775807)';
    case ScalarType.UINT64: case ScalarType.FIXED64:
      return 'a uint64 (a decimal string, or a number, from 0 to 18446744073709551615)';
    case ScalarType.INT32: case ScalarType.SINT32: case ScalarType.SFIXED32:
      return 'an int32 (an integer from -2147483648 to 2147483647)';
    case ScalarType.UINT32: case ScalarType.FIXED32:
      return 'a uint32 (an integer from 0 to 4294967295)';
    case ScalarType.DOUBLE: case ScalarType.FLOAT:
      return `a ${s === ScalarType.FLOAT ? 'float' : 'double'} (a number, or "NaN", "Infinity", "-Infinity")`;
    case ScalarType.BOOL:
      return 'true or false';
    case ScalarType.STRING:
      return 'a string';
    case ScalarType.BYTES:
      return 'base64 text (standard or URL-safe)';
  }
}

const WKT_EXPECTED: Record<string, string> = {
  'google.protobuf.Any': 'an object with "@type" naming a message of the schema',
  'google.protobuf.Timestamp': 'an RFC 3339 UTC timestamp string from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, e.g. "2024-05-01T12:00:00Z"',
  'google.protobuf.Duration': 'a duration string of seconds with an "s" suffix, e.g. "1.5s", within ±315576000000s',
  'google.protobuf.FieldMask': 'a string of comma-separated lowerCamelCase field paths, e.g. "user.displayName,photo"',
  'google.protobuf.Struct': 'a JSON object',
  'google.protobuf.ListValue': 'a JSON array',
  'google.protobuf.Value': 'any JSON value',
  'google.protobuf.DoubleValue': expectedScalar(ScalarType.DOUBLE),
  'google.protobuf.FloatValue': expectedScalar(ScalarType.FLOAT),
  'google.protobuf.Int64Value': expectedScalar(ScalarType.INT64),
  'google.protobuf.UInt64Value': expectedScalar(ScalarType.UINT64),
  'google.protobuf.Int32Value': expectedScalar(ScalarType.INT32),
  'google.protobuf.UInt32Value': expectedScalar(ScalarType.UINT32),
  'google.protobuf.BoolValue': expectedScalar(ScalarType.BOOL),
  'google.protobuf.StringValue': expectedScalar(ScalarType.STRING),
  'google.protobuf.BytesValue': expectedScalar(ScalarType.BYTES),
};

function expectedMessage(m: DescMessage): string {
  return WKT_EXPECTED[m.typeName] ?? `an object (${m.typeName})`;
}

/** A near miss by case or spelling style: "order_Id" → did you mean "orderId"? */
function suggest(type: DescMessage, key: string): string {
  const norm = (s: string): string => s.replace(/_/g, '').toLowerCase();
  const near = type.fields.find((f) => norm(f.jsonName) === norm(key));
  return near === undefined ? '' : ` (did you mean "${near.jsonName}"?)`;
}

function show(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}…` : s;
}
