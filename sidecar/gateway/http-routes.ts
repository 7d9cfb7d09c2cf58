// The HTTP forms of a schema's methods, both ways. In (a legacy caller's request → method and request
// message): `POST /<pkg.Service>/<Method>` with the whole request as JSON, or the method's google.api.http
// route (path template variables, `body`, the other fields as query parameters). Out (a call for a legacy
// provider → its HTTP request): the same rule backwards, the first binding; without a rule, the POST form.
import { ScalarType, type DescField, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import type { HttpBinding, PathSegment } from './http-rule.ts';
import type { MethodInfo, Schema } from './schema.ts';

/** A request matched to a method: what to convert the body and the URL's parts into. */
export interface RouteMatch {
  method: MethodInfo;
  /** undefined: the POST /pkg.Service/Method form (the body is the whole request). */
  binding: HttpBinding | undefined;
  /** The request fields the path and query set, as proto3 JSON (merged after the body). */
  fields: { [k: string]: JsonValue } | undefined;
}

/** The HTTP request for a call to a legacy provider. */
export interface AppRequest {
  method: string;
  /** Path and query. */
  path: string;
  /** The JSON body, or undefined for none (GET, DELETE, a rule with no `body`). */
  body: string | undefined;
}

type Obj = { [k: string]: JsonValue };

interface Route {
  method: MethodInfo;
  binding: HttpBinding;
}

export class RouteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteError';
  }
}

export class HttpRoutes {
  readonly #byPath: Map<string, MethodInfo>;
  /** Rule routes by HTTP method, in schema order: the first match wins. */
  readonly #rules = new Map<string, Route[]>();

  constructor(schema: Schema) {
    this.#byPath = schema.methods;
    for (const m of schema.methods.values()) {
      if (m.http === undefined) continue;
      for (const b of [m.http, ...m.http.additionalBindings]) {
        let list = this.#rules.get(b.method);
        if (list === undefined) this.#rules.set(b.method, (list = []));
        list.push({ method: m, binding: b });
      }
    }
    // A template with a verb before those without: `/v1/echo/x:stream` is the streaming route, not `{text}` = "x:stream".
    for (const list of this.#rules.values()) list.sort((a, b) => Number(b.binding.verb !== undefined) - Number(a.binding.verb !== undefined));
  }

  /** The method for `verb url`; undefined when nothing matches. Throws RouteError for a bad query parameter value. */
  match(verb: string, url: string): RouteMatch | undefined {
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    if (verb === 'POST' && q === -1) {
      const m = this.#byPath.get(pathname);
      if (m !== undefined) return { method: m, binding: undefined, fields: undefined };
    }
    const rules = this.#rules.get(verb);
    if (rules === undefined) return undefined;
    const parts = pathname.split('/').slice(1);
    for (const r of rules) {
      const vars = matchTemplate(r.binding, parts);
      if (vars === undefined) continue;
      const fields: Obj = {};
      for (const [fieldPath, value] of vars) setField(r.method.input, fields, fieldPath, value, `path variable {${fieldPath.join('.')}}`);
      if (q !== -1 && r.binding.body !== '*') {
        for (const [k, v] of new URLSearchParams(url.slice(q + 1))) setField(r.method.input, fields, k.split('.'), v, `query parameter ${k}`);
      }
      return { method: r.method, binding: r.binding, fields: Object.keys(fields).length === 0 ? undefined : fields };
    }
    return undefined;
  }

  /** What a legacy caller may send, for a 404's message. */
  describe(): string {
    const rules = [...this.#rules.values()].flat().map((r) => `${r.binding.method} ${r.binding.path}`);
    const posts = [...this.#byPath.keys()].map((p) => `POST ${p}`);
    const all = [...posts, ...rules];
    return all.length > 8 ? `${all.slice(0, 8).join(', ')}, … (${all.length})` : all.join(', ');
  }
}

/**
 * The HTTP request for a call to a legacy provider: the method's first binding applied to the request
 * (`json`, its proto3 JSON), or `POST /<pkg.Service>/<Method>` with the whole request.
 */
export function appRequest(m: MethodInfo, json: string): AppRequest {
  const b = m.http;
  if (b === undefined) return { method: 'POST', path: m.path, body: json };
  if (b.body === '*' && !b.segments.some((s) => s.kind === 'variable')) {
    // The whole request is the body and the path takes nothing from it: the JSON as it is.
    return { method: b.method, path: `/${fillTemplate(m.input, b.segments, {})}${b.verb === undefined ? '' : `:${b.verb}`}`, body: json };
  }
  const value = JSON.parse(json) as Obj;
  const path = `/${fillTemplate(m.input, b.segments, value)}${b.verb === undefined ? '' : `:${b.verb}`}`;
  let body: string | undefined;
  if (b.body === '*') body = JSON.stringify(value);
  else if (b.body !== '') {
    const f = fieldByName(m.input, b.body)!;
    const v = value[f.jsonName];
    delete value[f.jsonName];
    body = v === undefined ? defaultJson(f) : JSON.stringify(v);
  }
  const query = b.body === '*' ? '' : queryOf(value);
  return { method: b.method, path: query === '' ? path : `${path}?${query}`, body };
}

/** A legacy provider's answer for a rule with `response_body`: that field's JSON, made the whole response. */
export function wrapResponseBody(m: MethodInfo, text: string): string {
  const rb = m.http?.responseBody;
  if (rb === undefined || rb === '') return text;
  return `{${JSON.stringify(fieldByName(m.output, rb)!.jsonName)}:${text}}`;
}

/** The reverse, for a legacy caller: only the `response_body` field of the JSON answer. */
export function pickResponseBody(m: MethodInfo, text: string): string {
  const rb = m.http?.responseBody;
  if (rb === undefined || rb === '') return text;
  const f = fieldByName(m.output, rb)!;
  const v = (JSON.parse(text) as Obj)[f.jsonName];
  return v === undefined ? defaultJson(f) : JSON.stringify(v);
}

// ---- matching ----

/** The variables' values (decoded) if `parts` (the path split at '/') match the binding's template. */
function matchTemplate(b: HttpBinding, parts: string[]): [string[], string][] | undefined {
  let segs = parts;
  if (b.verb !== undefined) {
    const last = segs[segs.length - 1];
    const suffix = `:${b.verb}`;
    if (last === undefined || !last.endsWith(suffix)) return undefined;
    segs = [...segs.slice(0, -1), last.slice(0, -suffix.length)];
  }
  const vars: [string[], string][] = [];
  const end = matchSegments(b.segments, segs, 0, vars);
  return end === segs.length ? vars : undefined;
}

/** Matches `pattern` from parts[i]; the index after it, or -1. */
function matchSegments(pattern: PathSegment[], parts: string[], i: number, vars: [string[], string][]): number {
  for (const s of pattern) {
    switch (s.kind) {
      case 'literal':
        if (parts[i] !== s.value) return -1;
        i++;
        break;
      case 'wildcard':
        if (parts[i] === undefined || parts[i] === '') return -1;
        i++;
        break;
      case 'deep-wildcard':
        i = parts.length;
        break;
      case 'variable': {
        const start = i;
        i = matchSegments(s.segments, parts, i, []);
        if (i === -1) return -1;
        const raw = parts.slice(start, i);
        // One segment is fully decoded; a multi-segment value keeps its '/' (RFC 6570 reserved expansion).
        const value = raw.length === 1 ? decode(raw[0]!) : raw.map((p) => decode(p).replaceAll('/', '%2F')).join('/');
        if (value === undefined) return -1;
        vars.push([s.fieldPath, value]);
        break;
      }
    }
  }
  return i;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RouteError(`path segment ${JSON.stringify(s)} is not valid percent-encoding`);
  }
}

/** Sets `fields[path]` to a path or query value, typed as the field wants it in JSON (repeated fields collect). */
function setField(msg: DescMessage, fields: Obj, path: string[], value: string, what: string): void {
  let m: DescMessage | undefined = msg;
  let holder = fields;
  for (let k = 0; k < path.length; k++) {
    const f: DescField | undefined = m === undefined ? undefined : fieldByName(m, path[k]!);
    if (f === undefined) throw new RouteError(`${what}: ${m?.typeName ?? 'the request'} has no field ${JSON.stringify(path[k])}`);
    const key = f.jsonName;
    if (k < path.length - 1) {
      if (f.fieldKind !== 'message') throw new RouteError(`${what}: ${m!.typeName}.${f.name} is not a message field`);
      const next = holder[key];
      holder = (next !== null && typeof next === 'object' && !Array.isArray(next) ? next : (holder[key] = {})) as Obj;
      m = f.message;
      continue;
    }
    if (f.fieldKind === 'map' || (f.fieldKind === 'message' && !isWrapperOrScalarLike(f.message)) || (f.fieldKind === 'list' && f.listKind === 'message')) {
      throw new RouteError(`${what}: ${m!.typeName}.${f.name} is a message or map field; a URL can set only scalar fields (send it in the body)`);
    }
    const typed = typedValue(f, value);
    if (f.fieldKind === 'list') {
      const prev = holder[key];
      holder[key] = Array.isArray(prev) ? [...prev, typed] : [typed];
    } else {
      holder[key] = typed;
    }
  }
}

/** Strings are what proto3 JSON takes for every scalar but bool (numbers, 64-bit integers, enums, bytes as base64). */
function typedValue(f: DescField, value: string): JsonValue {
  const scalar = f.fieldKind === 'scalar' ? f.scalar : f.fieldKind === 'list' && f.listKind === 'scalar' ? f.scalar : f.fieldKind === 'message' && f.message.typeName === 'google.protobuf.BoolValue' ? ScalarType.BOOL : undefined;
  if (scalar === ScalarType.BOOL) {
    if (value === 'true') return true;
    if (value === 'false') return false;
  }
  return value;
}

/** Well-known types whose JSON is one string or scalar (wrappers, Timestamp, Duration, FieldMask). */
function isWrapperOrScalarLike(m: DescMessage): boolean {
  return m.typeName.startsWith('google.protobuf.') && (m.typeName.endsWith('Value') || m.typeName === 'google.protobuf.Timestamp' || m.typeName === 'google.protobuf.Duration' || m.typeName === 'google.protobuf.FieldMask') && m.typeName !== 'google.protobuf.Value' && m.typeName !== 'google.protobuf.ListValue';
}

function fieldByName(m: DescMessage, name: string): DescField | undefined {
  return m.fields.find((f) => f.name === name || f.jsonName === name);
}

// ---- building ----

/** The path template with the request's values in (taken out of `value`, so they are not sent twice). */
function fillTemplate(msg: DescMessage, segments: PathSegment[], value: Obj): string {
  return segments.map((s) => {
    switch (s.kind) {
      case 'literal':
        return s.value;
      case 'variable': {
        const v = takeField(msg, value, s.fieldPath);
        const multi = s.segments.length > 1 || s.segments.some((x) => x.kind === 'deep-wildcard');
        return multi ? v.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(v);
      }
      default:
        return '-'; // a bare * or ** outside a variable binds nothing; any segment matches it
    }
  }).join('/');
}

function takeField(msg: DescMessage, value: Obj, path: string[]): string {
  let m = msg;
  let holder: Obj | undefined = value;
  for (let k = 0; k < path.length; k++) {
    const f = fieldByName(m, path[k]!)!;
    const v: JsonValue | undefined = holder?.[f.jsonName];
    if (k === path.length - 1) {
      if (holder !== undefined) delete holder[f.jsonName];
      if (v === undefined || v === null) return JSON.parse(defaultJson(f)) as string;
      return String(v);
    }
    holder = v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
    if (f.fieldKind === 'message') m = f.message;
  }
  return '';
}

/** The JSON of a field proto3 JSON leaves out at its default. */
function defaultJson(f: DescField): string {
  if (f.fieldKind === 'list') return '[]';
  if (f.fieldKind === 'map' || f.fieldKind === 'message') return f.fieldKind === 'message' && isWrapperOrScalarLike(f.message) ? 'null' : '{}';
  if (f.fieldKind === 'enum') return JSON.stringify(f.enum.values[0]?.name ?? 0);
  switch (f.scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return '""';
    case ScalarType.BOOL:
      return 'false';
    case ScalarType.INT64: case ScalarType.UINT64: case ScalarType.SINT64: case ScalarType.FIXED64: case ScalarType.SFIXED64:
      return '"0"';
    default:
      return '0';
  }
}

/** The fields left after path and body, as query parameters: nested fields dotted, repeated ones repeated. */
function queryOf(value: Obj): string {
  const q = new URLSearchParams();
  const walk = (o: Obj, prefix: string): void => {
    for (const [k, v] of Object.entries(o)) {
      const key = prefix + k;
      if (Array.isArray(v)) for (const el of v) q.append(key, scalarText(el));
      else if (v !== null && typeof v === 'object') walk(v, `${key}.`);
      else if (v !== null) q.append(key, scalarText(v));
    }
  };
  walk(value, '');
  return q.toString();
}

function scalarText(v: JsonValue): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
