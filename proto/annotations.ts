// The user's interface: qbasis.io/* pod annotations (DESIGN.md). One parser, used by the controller,
// the admission webhook and the sidecar's flags, so a value means the same everywhere.
import { QbasisError } from './errors.ts';
import { parseRange, parseVersion } from './versions.ts';

export const ANNOTATIONS = {
  inject: 'qbasis.io/inject',
  provides: 'qbasis.io/provides',
  requires: 'qbasis.io/requires',
  appPort: 'qbasis.io/app-port',
  appProtocol: 'qbasis.io/app-protocol',
  schema: 'qbasis.io/schema',
} as const;

export type AppProtocol = 'grpc' | 'http';

export interface ApiVersion {
  api: string;
  version: string;
}

export interface ApiRange {
  api: string;
  range: string;
}

export interface PodDeclaration {
  inject: boolean;
  provides: ApiVersion[];
  requires: ApiRange[];
  appPort?: number;
  appProtocol: AppProtocol;
  /** app-protocol http: the ConfigMap (in the pod's namespace) holding the API schema. */
  schema?: string;
}

export interface AnnotationProblem {
  annotation: string;
  value: string;
  expected: string;
}

export type ParseResult = { ok: true; value: PodDeclaration } | { ok: false; problems: AnnotationProblem[] };

// The name rules, one place for annotations, flags, discovery and `qbasis basis encode`.
// An API: protobuf identifiers joined by dots, as in a gRPC path's service part, at most 253 characters.
// A method: one protobuf identifier, at most 253 characters. Both ASCII only (so always valid UTF-8).
const API_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_NAME_LENGTH = 253;

export function isApiName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && API_NAME.test(name);
}

export function isMethodName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && METHOD_NAME.test(name);
}

function nameProblem(name: string, ok: RegExp, what: string, example: string): string | undefined {
  if (name.length > MAX_NAME_LENGTH) return `it is ${name.length} characters long; expected ${what} of at most ${MAX_NAME_LENGTH} characters, e.g. ${example}`;
  if (name.includes('\ufffd')) return `it contains bytes that are not valid UTF-8 (shown as U+FFFD); expected ${what}, e.g. ${example}`;
  if (!ok.test(name)) return `expected ${what} (letters, digits and _${what.startsWith('a fully') ? ', dot-separated' : ''}, not starting with a digit), e.g. ${example}`;
  return undefined;
}

/** Why `name` is not an API name ("expected …"), or undefined if it is one. */
export function apiNameProblem(name: string): string | undefined {
  return nameProblem(name, API_NAME, 'a fully-qualified gRPC service name', 'shop.orders.v1.OrderService');
}

/** Why `name` is not a method name ("expected …"), or undefined if it is one. */
export function methodNameProblem(name: string): string | undefined {
  return nameProblem(name, METHOD_NAME, 'a gRPC method name', 'Create');
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function splitEntry(entry: string, what: string, example: string): [string, string] {
  const at = entry.indexOf('@');
  if (at <= 0 || at === entry.length - 1) {
    throw new Error(`entry '${entry}' is not API@${what}; expected e.g. ${example}`);
  }
  const api = entry.slice(0, at).trim();
  if (!isApiName(api)) {
    throw new Error(`'${api}' is not a fully-qualified gRPC service name; expected e.g. shop.orders.v1.OrderService`);
  }
  return [api, entry.slice(at + 1).trim()];
}

function listOf<T extends { api: string }>(value: string, parseEntry: (e: string) => T): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const entry of splitList(value)) {
    const item = parseEntry(entry);
    if (seen.has(item.api)) throw new Error(`API ${item.api} is listed twice`);
    seen.add(item.api);
    out.push(item);
  }
  return out;
}

const PROVIDES_EXAMPLE = 'shop.orders.v1.OrderService@1.4.0';
const REQUIRES_EXAMPLE = 'shop.inventory.v1.InventoryService@^1.2';

function provides(value: string): ApiVersion[] {
  return listOf(value, (entry) => {
    const [api, v] = splitEntry(entry, 'semver', PROVIDES_EXAMPLE);
    try {
      return { api, version: parseVersion(v) };
    } catch {
      throw new Error(`'${v}' in '${entry}' is not a semantic version; expected MAJOR.MINOR.PATCH, e.g. ${PROVIDES_EXAMPLE}`);
    }
  });
}

function requires(value: string): ApiRange[] {
  return listOf(value, (entry) => {
    const [api, r] = splitEntry(entry, 'range', REQUIRES_EXAMPLE);
    try {
      return { api, range: parseRange(r) };
    } catch {
      throw new Error(`'${r}' in '${entry}' is not a semver range; expected e.g. ${REQUIRES_EXAMPLE} or API@>=1.2 <3`);
    }
  });
}

function invalid(annotation: string, value: string, message: string): QbasisError {
  return new QbasisError('QB_INVALID_ANNOTATION', `${annotation}: ${message}`, { details: { annotation, value } });
}

/** `API@semver, …` — throws QB_INVALID_ANNOTATION naming the value and what is expected. */
export function parseProvides(value: string, name: string = ANNOTATIONS.provides): ApiVersion[] {
  try {
    return provides(value);
  } catch (err) {
    throw invalid(name, value, (err as Error).message);
  }
}

/** `API@range, …` — throws QB_INVALID_ANNOTATION naming the value and what is expected. */
export function parseRequires(value: string, name: string = ANNOTATIONS.requires): ApiRange[] {
  try {
    return requires(value);
  } catch (err) {
    throw invalid(name, value, (err as Error).message);
  }
}

export function parsePort(value: string): number {
  const n = /^\d{1,5}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error('expected a port number from 1 to 65535');
  return n;
}

/** All qbasis annotations of a pod, every problem reported at once. */
export function parsePodAnnotations(annotations: Record<string, string | undefined> | undefined): ParseResult {
  const a = annotations ?? {};
  const problems: AnnotationProblem[] = [];
  const decl: PodDeclaration = { inject: false, provides: [], requires: [], appProtocol: 'grpc' };

  const inject = a[ANNOTATIONS.inject];
  if (inject !== undefined) {
    if (inject === 'true' || inject === 'false') decl.inject = inject === 'true';
    else problems.push({ annotation: ANNOTATIONS.inject, value: inject, expected: '"true" or "false"' });
  }
  const prov = a[ANNOTATIONS.provides];
  if (prov !== undefined) {
    try {
      decl.provides = provides(prov);
    } catch (err) {
      problems.push({ annotation: ANNOTATIONS.provides, value: prov, expected: (err as Error).message });
    }
  }
  const req = a[ANNOTATIONS.requires];
  if (req !== undefined) {
    try {
      decl.requires = requires(req);
    } catch (err) {
      problems.push({ annotation: ANNOTATIONS.requires, value: req, expected: (err as Error).message });
    }
  }
  const port = a[ANNOTATIONS.appPort];
  if (port !== undefined) {
    try {
      decl.appPort = parsePort(port);
    } catch (err) {
      problems.push({ annotation: ANNOTATIONS.appPort, value: port, expected: (err as Error).message });
    }
  }
  const proto = a[ANNOTATIONS.appProtocol];
  if (proto !== undefined) {
    if (proto === 'grpc' || proto === 'http') decl.appProtocol = proto;
    else problems.push({ annotation: ANNOTATIONS.appProtocol, value: proto, expected: '"grpc" or "http"' });
  }
  const schema = a[ANNOTATIONS.schema];
  if (schema !== undefined) {
    if (isConfigMapName(schema)) decl.schema = schema;
    else problems.push({ annotation: ANNOTATIONS.schema, value: schema, expected: 'the name of a ConfigMap in the pod\'s namespace (lower-case letters, digits, "-" and ".", at most 253 characters)' });
  } else if (decl.appProtocol === 'http') {
    problems.push({ annotation: ANNOTATIONS.schema, value: '', expected: `${ANNOTATIONS.appProtocol} "http" needs it: the ConfigMap holding the API's protobuf schema (a FileDescriptorSet or .proto files)` });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: decl };
}

/** A Kubernetes object name (DNS-1123 subdomain), as ConfigMaps have. */
export function isConfigMapName(name: string): boolean {
  return name.length <= 253 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name);
}

/** One line for logs and Events: annotation, the bad value, what is expected. */
export function describeProblem(p: AnnotationProblem): string {
  return `invalid ${p.annotation} value ${JSON.stringify(p.value)}: ${p.expected}`;
}
