// A method's google.api.http rule, parsed and checked against its messages now, so a bad template is a
// schema error at load rather than a routing surprise later. The path template grammar (http.proto):
//   Template = "/" Segments [ Verb ] ;  Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;  Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;  Verb = ":" LITERAL ;
import type { DescField, DescMessage } from '@bufbuild/protobuf';

export type PathSegment =
  | { kind: 'literal'; value: string }
  | { kind: 'wildcard' } // *
  | { kind: 'deep-wildcard' } // **
  | { kind: 'variable'; fieldPath: string[]; segments: PathSegment[] };

export interface HttpBinding {
  /** GET, PUT, POST, DELETE, PATCH, or a custom verb's kind as written. */
  method: string;
  path: string;
  segments: PathSegment[];
  verb?: string;
  /** '' (no body), '*' (the whole request), or a top-level request field's name. */
  body: string;
  /** '' (the whole response) or a top-level response field's name. */
  responseBody: string;
}

export interface HttpRule extends HttpBinding {
  additionalBindings: HttpBinding[];
}

/** The HttpRule message as decoded (proto field names as bufbuild's localNames). */
export interface HttpRuleMessage {
  pattern: { case: 'get' | 'put' | 'post' | 'delete' | 'patch'; value: string } | { case: 'custom'; value: { kind: string; path: string } } | { case: undefined; value?: undefined };
  body: string;
  responseBody: string;
  additionalBindings: HttpRuleMessage[];
}

export function parseHttpRule(rule: HttpRuleMessage, input: DescMessage, output: DescMessage, top = true): HttpRule {
  const p = rule.pattern;
  if (p.case === undefined) throw new Error('google.api.http sets no pattern (get, put, post, delete, patch or custom)');
  const method = p.case === 'custom' ? p.value.kind : p.case.toUpperCase();
  const path = p.case === 'custom' ? p.value.path : p.value;
  if (method === '') throw new Error('google.api.http custom pattern has an empty kind');
  const { segments, verb } = parseTemplate(path);
  for (const v of variables(segments)) fieldAt(input, v, `path variable {${v.join('.')}}`);
  if (rule.body !== '' && rule.body !== '*') topField(input, rule.body, 'body');
  if (rule.responseBody !== '') topField(output, rule.responseBody, 'response_body');
  if (!top && rule.additionalBindings.length > 0) throw new Error('an additional binding cannot have additional bindings');
  const binding: HttpBinding = { method, path, segments, body: rule.body, responseBody: rule.responseBody, ...(verb === undefined ? {} : { verb }) };
  return { ...binding, additionalBindings: rule.additionalBindings.map((b) => parseHttpRule(b, input, output, false)) };
}

export function parseTemplate(path: string): { segments: PathSegment[]; verb?: string } {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`path template "${path}": ${what} at character ${i + 1}`);
  };
  const literal = (): string => {
    const m = /^[A-Za-z0-9\-._~%!$&'()+,;=@]+/.exec(path.slice(i));
    if (m === null) fail('expected a literal, "*", "**" or "{variable}"');
    i += m![0].length;
    return m![0];
  };
  const segmentsUntil = (stop: (c: string | undefined) => boolean, inVariable: boolean): PathSegment[] => {
    const segs: PathSegment[] = [];
    while (true) {
      if (path.startsWith('**', i)) {
        segs.push({ kind: 'deep-wildcard' });
        i += 2;
      } else if (path[i] === '*') {
        segs.push({ kind: 'wildcard' });
        i++;
      } else if (path[i] === '{') {
        if (inVariable) fail('variables cannot nest');
        i++;
        const m = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(path.slice(i));
        if (m === null) fail('expected a field path after "{"');
        i += m![0].length;
        let inner: PathSegment[] = [{ kind: 'wildcard' }];
        if (path[i] === '=') {
          i++;
          inner = segmentsUntil((c) => c === '}', true);
        }
        if (path[i] !== '}') fail('expected "}"');
        i++;
        segs.push({ kind: 'variable', fieldPath: m![0].split('.'), segments: inner });
      } else {
        segs.push({ kind: 'literal', value: literal() });
      }
      if (stop(path[i])) return segs;
      if (path[i] !== '/') fail('expected "/"');
      i++;
    }
  };
  if (path[0] !== '/') fail('must start with "/"');
  i = 1;
  const segments = segmentsUntil((c) => c === undefined || c === ':', false);
  const deep = segments.flatMap((s) => (s.kind === 'variable' ? s.segments : [s])).findIndex((s) => s.kind === 'deep-wildcard');
  const flat = segments.flatMap((s) => (s.kind === 'variable' ? s.segments : [s]));
  if (deep !== -1 && deep !== flat.length - 1) fail('"**" must be the last segment');
  if (path[i] === ':') {
    i++;
    const verb = literal();
    if (i !== path.length) fail('unexpected text after the verb');
    return { segments, verb };
  }
  return { segments };
}

function variables(segs: PathSegment[]): string[][] {
  return segs.flatMap((s) => (s.kind === 'variable' ? [s.fieldPath] : []));
}

/** A path variable must name a singular scalar (or enum) field, through singular message fields. */
function fieldAt(msg: DescMessage, path: string[], what: string): DescField {
  let m = msg;
  for (let k = 0; k < path.length; k++) {
    const f = m.fields.find((x) => x.name === path[k]);
    if (f === undefined) throw new Error(`${what}: ${m.typeName} has no field "${path[k]}"`);
    if (k === path.length - 1) {
      if (f.fieldKind !== 'scalar' && f.fieldKind !== 'enum') throw new Error(`${what}: ${m.typeName}.${f.name} is not a singular scalar field`);
      return f;
    }
    if (f.fieldKind !== 'message') throw new Error(`${what}: ${m.typeName}.${f.name} is not a message field`);
    m = f.message;
  }
  throw new Error(`${what}: empty field path`);
}

function topField(msg: DescMessage, name: string, what: string): void {
  if (msg.fields.find((x) => x.name === name) === undefined) throw new Error(`${what} "${name}": ${msg.typeName} has no field "${name}"`);
}
