// BasisPolicy (DESIGN.md "Custom resources") as pure functions: an untrusted object → a normalised
// policy or the problems with it, the Accepted condition, and which policy applies to a call.
// No I/O here, so the rules are tested without a cluster; the controller wires them to the API server.
import { apiNameProblem, MAX_NAME_LENGTH, methodNameProblem } from '../proto/annotations.ts';
import { isQbasisError, Status } from '../proto/errors.ts';
import { minVersion, parseRange } from '../proto/versions.ts';
import { type Condition, GROUP, VERSION } from './kube/basis-service-status.ts';
import { shown } from './local/pods-file-parse.ts';

/**
 * Every bound on an untrusted BasisPolicy. Checked before anything inside is read, so a hostile object
 * costs one problem, not one per element. The CRD schema should say the same (maxItems, maxLength).
 */
export const POLICY_LIMITS = {
  routes: 32,
  /** Per route. */
  splitGroups: 16,
  /** Per route. */
  methods: 64,
  allow: 64,
  /** Every gRPC status but OK, once each. */
  retryOn: 16,
  /** API and method names (proto/annotations.ts). */
  nameLength: MAX_NAME_LENGTH,
  rangeLength: 128,
  durationLength: 32,
  spiffeIdLength: 512,
  maxDurationMs: 3_600_000,
  maxAttempts: 5,
  maxWeight: 1_000_000,
  maxMinPerSecond: 100_000,
  /** Problems listed one by one; the rest are summed up in one more. */
  listedProblems: 32,
} as const;

/** What a retry block gets for the fields it leaves out (the values DESIGN.md's example writes). */
export const RETRY_DEFAULTS = {
  on: ['UNAVAILABLE'] as readonly GrpcCodeName[],
  backoff: { baseMs: 25, maxMs: 250 },
  budget: { percent: 20, minPerSecond: 10 },
} as const;

export type { AllowedIdentity, BasisPolicy, GrpcCodeName, Mirror, PolicyRoute, RetryPolicy, SplitGroup } from '../proto/policy.ts';
import type { AllowedIdentity, BasisPolicy, GrpcCodeName, Mirror, PolicyRoute, RetryPolicy, SplitGroup } from '../proto/policy.ts';

export type ProblemReason = 'InvalidRange' | 'Invalid';

export interface Problem {
  reason: ProblemReason;
  /** Where, as `spec.routes[1].split[0].versions`. */
  field: string;
  /** What was wrong and what is expected. */
  message: string;
}

export interface ParsedPolicy {
  /** Only when there are no problems: a policy is applied whole or not at all. */
  policy?: BasisPolicy;
  problems: Problem[];
}

const API_VERSION = `${GROUP}/${VERSION}`;
const KIND = 'BasisPolicy';

const FIELDS = {
  object: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  spec: ['api', 'timeout', 'retry', 'routes', 'allow'],
  retry: ['attempts', 'on', 'perTryTimeout', 'backoff', 'budget'],
  backoff: ['base', 'max'],
  budget: ['percent', 'minPerSecond'],
  route: ['methods', 'split', 'mirror'],
  group: ['versions', 'weight'],
  mirror: ['versions', 'percent'],
} as const;

const CODE_NAMES = Object.keys(Status).filter((c): c is GrpcCodeName => c !== 'OK');

class Problems {
  private readonly listed: Problem[] = [];
  private unlisted = 0;
  private unlistedField = '';
  private unlistedReason: ProblemReason = 'InvalidRange';

  add(field: string, message: string, reason: ProblemReason = 'Invalid'): void {
    if (this.listed.length < POLICY_LIMITS.listedProblems) {
      this.listed.push({ reason, field, message });
      return;
    }
    if (this.unlisted === 0) this.unlistedField = field;
    if (reason === 'Invalid') this.unlistedReason = 'Invalid';
    this.unlisted++;
  }

  get count(): number {
    return this.listed.length + this.unlisted;
  }

  result(): Problem[] {
    if (this.unlisted === 0) return this.listed;
    const message = `${this.unlisted} more problems not listed, the first here; fix the ones above first`;
    return [...this.listed, { reason: this.unlistedReason, field: this.unlistedField, message }];
  }
}

type Fields = Record<string, unknown>;

// The API server drops null for fields that are not nullable; YAML `key:` gives null in local mode.
function absent(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

function described(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `'${shown(v)}'`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `a ${typeof v === 'object' ? 'mapping' : typeof v}`;
}

function child(field: string, key: string): string {
  return `${field}.${shown(key, 40)}`;
}

/** A mapping with only `known` keys; unknown ones are reported (with a `hint` where one helps), never silently dropped. */
function mapping(v: unknown, field: string, known: readonly string[], p: Problems, hints: Record<string, string> = {}): Fields | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    p.add(field, `is ${described(v)}; expected a mapping with ${known.join(', ')}`);
    return undefined;
  }
  for (const key of Object.keys(v)) {
    if (known.includes(key)) continue;
    const hint = Object.hasOwn(hints, key) ? ` (${hints[key]})` : '';
    p.add(child(field, key), `is not a field here${hint}; expected only ${known.join(', ')}`);
  }
  return v as Fields;
}

// kubectl and Helm read YAML 1.1, where an unquoted `on:` key is the boolean true (kubernetes/kubernetes#34146).
const RETRY_HINTS = { true: 'an unquoted on: reads as true in YAML 1.1, as kubectl reads it; write "on": quoted' };

function list(v: unknown, field: string, max: number, what: string, p: Problems): unknown[] | undefined {
  if (!Array.isArray(v)) {
    p.add(field, `is ${described(v)}; expected a list of ${what}`);
    return undefined;
  }
  if (v.length > max) {
    p.add(field, `has ${v.length} entries; expected at most ${max} ${what}`);
    return undefined;
  }
  return v;
}

function text(v: unknown, field: string, max: number, expected: string, p: Problems, reason: ProblemReason = 'Invalid'): string | undefined {
  if (typeof v !== 'string') {
    p.add(field, `is ${described(v)}; expected ${expected}`, reason);
    return undefined;
  }
  if (v.length > max) {
    p.add(field, `is ${v.length} characters long; expected ${expected}, at most ${max} characters`, reason);
    return undefined;
  }
  return v;
}

function numberIn(v: unknown, field: string, min: number, max: number, integer: boolean, p: Problems): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    p.add(field, `is ${described(v)}; expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    return undefined;
  }
  return v === 0 ? 0 : v; // -0 from JSON reads as 0
}

function missing(field: string, expected: string, p: Problems): undefined {
  p.add(field, `is missing; expected ${expected}`);
  return undefined;
}

const DURATION_PART = /(\d+)(?:\.(\d+))?(ms|h|m|s)/y;
const UNIT_MS = { ms: 1n, s: 1000n, m: 60_000n, h: 3_600_000n } as const;
const DURATION_EXPECTED = 'a duration such as 500ms, 2s or 1m30s (units ms, s, m, h), more than 0 and at most 1h';

/** Go/Kubernetes duration text (the CRD's pattern) → whole milliseconds; exact, so 0.1s is 100. */
function duration(v: unknown, field: string, p: Problems): number | undefined {
  const s = text(v, field, POLICY_LIMITS.durationLength, DURATION_EXPECTED, p);
  if (s === undefined) return undefined;
  let total = 0n;
  let at = 0;
  do {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(s);
    if (m === null) {
      p.add(field, `'${shown(s)}' is not a duration; expected ${DURATION_EXPECTED}`);
      return undefined;
    }
    const [, whole = '0', frac = '', unit = 'ms'] = m;
    const scale = 10n ** BigInt(frac.length);
    const scaled = (BigInt(whole) * scale + BigInt(frac === '' ? '0' : frac)) * UNIT_MS[unit as keyof typeof UNIT_MS];
    if (scaled % scale !== 0n) {
      p.add(field, `'${shown(s)}' is finer than a millisecond; expected whole milliseconds`);
      return undefined;
    }
    total += scaled / scale;
    at = DURATION_PART.lastIndex;
  } while (at < s.length);
  if (total === 0n || total > BigInt(POLICY_LIMITS.maxDurationMs)) {
    p.add(field, `'${shown(s)}' is ${total === 0n ? 'zero' : 'above 1h'}; expected ${DURATION_EXPECTED}`);
    return undefined;
  }
  return Number(total);
}

const RANGE_EXPECTED = 'a semver range such as >=1.10.0, <1.10.0 or ^1.2';

function versionRange(v: unknown, field: string, p: Problems): string | undefined {
  if (absent(v)) return missing(field, RANGE_EXPECTED, p);
  const s = text(v, field, POLICY_LIMITS.rangeLength, `${RANGE_EXPECTED}, quoted`, p, 'InvalidRange');
  if (s === undefined) return undefined;
  let range: string;
  try {
    range = parseRange(s);
  } catch {
    p.add(field, `'${shown(s)}' is not a semver range; expected ${RANGE_EXPECTED}`, 'InvalidRange');
    return undefined;
  }
  try {
    minVersion(range);
  } catch (err) {
    // Only "admits no version" counts: a minimum too large for a basis header may still admit later versions.
    if (isQbasisError(err, 'QB_INVALID_RANGE')) {
      p.add(field, `'${shown(s)}' admits no version; expected a range that some version satisfies`, 'InvalidRange');
      return undefined;
    }
  }
  return range;
}

function apiName(v: unknown, p: Problems): string | undefined {
  const expected = 'the fully-qualified gRPC service name, e.g. shop.orders.v1.OrderService';
  if (absent(v)) return missing('spec.api', expected, p);
  const s = text(v, 'spec.api', POLICY_LIMITS.nameLength, expected, p);
  if (s === undefined) return undefined;
  const problem = apiNameProblem(s);
  if (problem !== undefined) {
    p.add('spec.api', `'${shown(s)}': ${problem}`);
    return undefined;
  }
  return s;
}

function retryCodes(v: unknown, field: string, p: Problems): GrpcCodeName[] {
  const items = list(v, field, POLICY_LIMITS.retryOn, 'gRPC status names', p) ?? [];
  const codes: GrpcCodeName[] = [];
  items.forEach((item, i) => {
    const f = `${field}[${i}]`;
    const name = CODE_NAMES.find((c) => c === item);
    if (name === undefined) {
      const why = item === 'OK' ? 'OK is success and never retried' : `${described(item)} is not a gRPC status name`;
      p.add(f, `${why}; expected one of ${CODE_NAMES.join(', ')}`);
    } else if (codes.includes(name)) p.add(f, `${name} is listed twice; expected each code once`);
    else codes.push(name);
  });
  return codes;
}

function parseRetry(v: unknown, p: Problems): RetryPolicy | undefined {
  const r = mapping(v, 'spec.retry', FIELDS.retry, p, RETRY_HINTS);
  if (r === undefined) return undefined;
  const attemptsExpected = `an integer from 0 to ${POLICY_LIMITS.maxAttempts} (retries after the first try)`;
  const attempts = absent(r['attempts'])
    ? missing('spec.retry.attempts', attemptsExpected, p)
    : numberIn(r['attempts'], 'spec.retry.attempts', 0, POLICY_LIMITS.maxAttempts, true, p);
  const on = absent(r['on']) ? [...RETRY_DEFAULTS.on] : retryCodes(r['on'], 'spec.retry.on', p);
  const perTryTimeoutMs = absent(r['perTryTimeout']) ? undefined : duration(r['perTryTimeout'], 'spec.retry.perTryTimeout', p);
  const backoff: RetryPolicy['backoff'] = { ...RETRY_DEFAULTS.backoff };
  const b = absent(r['backoff']) ? undefined : mapping(r['backoff'], 'spec.retry.backoff', FIELDS.backoff, p);
  if (b !== undefined) {
    const base = absent(b['base']) ? backoff.baseMs : duration(b['base'], 'spec.retry.backoff.base', p);
    const max = absent(b['max']) ? backoff.maxMs : duration(b['max'], 'spec.retry.backoff.max', p);
    if (base !== undefined && max !== undefined && base > max) {
      const byDefault = (key: string): string => (absent(b[key]) ? ' (the default)' : '');
      const field = absent(b['base']) ? 'max' : 'base';
      p.add(`spec.retry.backoff.${field}`, `base ${base}ms${byDefault('base')} is above max ${max}ms${byDefault('max')}; expected base <= max`);
    }
    backoff.baseMs = base ?? backoff.baseMs;
    backoff.maxMs = max ?? backoff.maxMs;
  }
  const budget: RetryPolicy['budget'] = { ...RETRY_DEFAULTS.budget };
  const g = absent(r['budget']) ? undefined : mapping(r['budget'], 'spec.retry.budget', FIELDS.budget, p);
  if (g !== undefined) {
    if (!absent(g['percent'])) budget.percent = numberIn(g['percent'], 'spec.retry.budget.percent', 0, 100, false, p) ?? budget.percent;
    if (!absent(g['minPerSecond'])) {
      const min = numberIn(g['minPerSecond'], 'spec.retry.budget.minPerSecond', 0, POLICY_LIMITS.maxMinPerSecond, true, p);
      budget.minPerSecond = min ?? budget.minPerSecond;
    }
  }
  if (attempts === undefined) return undefined;
  return { attempts, on, ...(perTryTimeoutMs === undefined ? {} : { perTryTimeoutMs }), backoff, budget };
}

function parseSplit(v: unknown, field: string, p: Problems): SplitGroup[] | undefined {
  const items = list(v, field, POLICY_LIMITS.splitGroups, 'version groups { versions, weight }', p);
  if (items === undefined) return undefined;
  if (items.length === 0) {
    p.add(field, 'is empty; expected at least one { versions, weight } group, or no split to use every version the caller accepts');
    return undefined;
  }
  const groups: SplitGroup[] = [];
  const weights: number[] = [];
  let allWeightsRead = true;
  items.forEach((item, i) => {
    const f = `${field}[${i}]`;
    const g = mapping(item, f, FIELDS.group, p);
    if (g === undefined) {
      allWeightsRead = false;
      return;
    }
    const versions = versionRange(g['versions'], `${f}.versions`, p);
    const weightExpected = `an integer from 0 to ${POLICY_LIMITS.maxWeight}`;
    const weight = absent(g['weight'])
      ? missing(`${f}.weight`, weightExpected, p)
      : numberIn(g['weight'], `${f}.weight`, 0, POLICY_LIMITS.maxWeight, true, p);
    if (weight === undefined) allWeightsRead = false;
    else weights.push(weight);
    if (versions !== undefined && weight !== undefined) groups.push({ versions, weight });
  });
  // Only when every weight was read: a bad weight is its own problem, not also "all zero".
  if (allWeightsRead && weights.every((w) => w === 0)) {
    p.add(field, 'gives every group weight 0; expected at least one positive weight');
  }
  return groups;
}

function parseMirror(v: unknown, field: string, p: Problems): Mirror | undefined {
  const m = mapping(v, field, FIELDS.mirror, p);
  if (m === undefined) return undefined;
  const versions = versionRange(m['versions'], `${field}.versions`, p);
  const percent = absent(m['percent'])
    ? missing(`${field}.percent`, 'a number from 0 to 100 (the share of unary calls copied)', p)
    : numberIn(m['percent'], `${field}.percent`, 0, 100, false, p);
  return versions === undefined || percent === undefined ? undefined : { versions, percent };
}

/** Routes in order; a method an earlier route already matches, or any route after a catch-all, is dead and reported. */
function parseRoutes(v: unknown, p: Problems): PolicyRoute[] {
  const items = list(v, 'spec.routes', POLICY_LIMITS.routes, 'routes', p) ?? [];
  const firstMatch = new Map<string, number>();
  let catchAll: number | undefined;
  const routes: PolicyRoute[] = [];
  items.forEach((item, i) => {
    const f = `spec.routes[${i}]`;
    if (catchAll !== undefined) {
      p.add(f, `is never used: routes[${catchAll}] has no methods and matches every call first; expected routes with methods before the one without`);
    }
    const r = mapping(item, f, FIELDS.route, p);
    if (r === undefined) return;
    const route: PolicyRoute = {};
    if (absent(r['methods'])) catchAll ??= i;
    else {
      const names = list(r['methods'], `${f}.methods`, POLICY_LIMITS.methods, 'method names', p);
      if (names?.length === 0) p.add(`${f}.methods`, 'is empty; expected method names, or no methods to match every method');
      const methods: string[] = [];
      names?.forEach((name, j) => {
        const mf = `${f}.methods[${j}]`;
        const s = text(name, mf, POLICY_LIMITS.nameLength, 'a gRPC method name such as Create', p);
        if (s === undefined) return;
        const problem = methodNameProblem(s);
        const earlier = firstMatch.get(s);
        if (problem !== undefined) p.add(mf, `'${shown(s)}': ${problem}`);
        else if (earlier === i) p.add(mf, `${s} is listed twice in this route; expected each method once`);
        else if (earlier !== undefined) {
          p.add(mf, `${s} is matched by routes[${earlier}] first, so this route never sees it; expected each method in one route`);
        } else {
          firstMatch.set(s, i);
          methods.push(s);
        }
      });
      route.methods = methods;
    }
    if (!absent(r['split'])) route.split = parseSplit(r['split'], `${f}.split`, p);
    if (!absent(r['mirror'])) route.mirror = parseMirror(r['mirror'], `${f}.mirror`, p);
    routes.push(route);
  });
  return routes;
}

const SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]{1,255})\/ns\/([^/]+)\/sa\/([^/]+)$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SPIFFE_EXPECTED = 'spiffe://<trust domain>/ns/<namespace>/sa/<service account>, namespace or service account may be *, e.g. spiffe://cluster.local/ns/shop/sa/checkout';

/** The identity pattern, or why `id` is not one. */
function spiffeIdentity(id: string): AllowedIdentity | string {
  const m = SPIFFE_ID.exec(id);
  if (m === null) return `'${shown(id)}' is not a SPIFFE ID; expected ${SPIFFE_EXPECTED}`;
  const [, trustDomain = '', namespace = '', serviceAccount = ''] = m;
  if (namespace !== '*' && !DNS_LABEL.test(namespace)) {
    return `namespace '${shown(namespace)}' is not a Kubernetes namespace name; expected lower-case letters, digits and -, at most 63, or *`;
  }
  if (serviceAccount !== '*' && !(serviceAccount.length <= 253 && DNS_SUBDOMAIN.test(serviceAccount))) {
    return `service account '${shown(serviceAccount)}' is not a Kubernetes name; expected lower-case letters, digits, - and ., at most 253, or *`;
  }
  return { id, trustDomain, namespace, serviceAccount };
}

function parseAllow(v: unknown, p: Problems): AllowedIdentity[] {
  const items = list(v, 'spec.allow', POLICY_LIMITS.allow, 'SPIFFE IDs', p) ?? [];
  const allowed: AllowedIdentity[] = [];
  items.forEach((item, i) => {
    const f = `spec.allow[${i}]`;
    const id = text(item, f, POLICY_LIMITS.spiffeIdLength, SPIFFE_EXPECTED, p);
    if (id === undefined) return;
    const identity = spiffeIdentity(id);
    if (typeof identity === 'string') p.add(f, identity);
    else if (allowed.some((a) => a.id === id)) p.add(f, `${id} is listed twice; expected each identity once`);
    else allowed.push(identity);
  });
  return allowed;
}

function parseSpec(v: unknown, p: Problems): BasisPolicy | undefined {
  const spec = mapping(v, 'spec', FIELDS.spec, p);
  if (spec === undefined) return undefined;
  const api = apiName(spec['api'], p);
  const timeoutMs = absent(spec['timeout']) ? undefined : duration(spec['timeout'], 'spec.timeout', p);
  const retry = absent(spec['retry']) ? undefined : parseRetry(spec['retry'], p);
  const routes = absent(spec['routes']) ? [] : parseRoutes(spec['routes'], p);
  const allow = absent(spec['allow']) ? undefined : parseAllow(spec['allow'], p);
  if (api === undefined) return undefined;
  return {
    api,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(retry === undefined ? {} : { retry }),
    routes,
    ...(allow === undefined ? {} : { allow }),
  };
}

/**
 * Validates a BasisPolicy as the API server (or a pods file) hands it over: every problem at once, each
 * with its field. metadata and status are not checked (the API server's and the controller's).
 */
export function parseBasisPolicy(obj: unknown): ParsedPolicy {
  const p = new Problems();
  const top = mapping(obj, 'BasisPolicy', FIELDS.object, p);
  let policy: BasisPolicy | undefined;
  if (top !== undefined) {
    // Items of a list may come without apiVersion and kind; present, they must be these.
    if (!absent(top['apiVersion']) && top['apiVersion'] !== API_VERSION) {
      p.add('apiVersion', `is ${described(top['apiVersion'])}; expected ${API_VERSION}`);
    }
    if (!absent(top['kind']) && top['kind'] !== KIND) p.add('kind', `is ${described(top['kind'])}; expected ${KIND}`);
    if (absent(top['spec'])) p.add('spec', 'is missing; expected a mapping with at least api');
    else policy = parseSpec(top['spec'], p);
  }
  return p.count === 0 && policy !== undefined ? { policy, problems: [] } : { problems: p.result() };
}

export type AcceptedReason = 'Accepted' | ProblemReason | 'Conflict' | 'NoSuchAPI';

export type AcceptedCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration' | 'reason'> & {
  type: 'Accepted';
  reason: AcceptedReason;
  observedGeneration: number;
};

export interface AcceptedInput {
  parsed: ParsedPolicy;
  /** metadata.generation of the object parsed. */
  generation: number;
  /** An older policy for the same API in the same namespace applies instead (see conflicts()). */
  conflict?: { winner: string };
  /** Some pod in the mesh, in any namespace, provides the API. */
  apiKnown: boolean;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function formatMs(ms: number): string {
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= size) parts.push(`${Math.floor(rest / size)}${unit}`);
    rest %= size;
  }
  return parts.join('');
}

function summary(policy: BasisPolicy): string {
  const parts: string[] = [];
  if (policy.timeoutMs !== undefined) parts.push(`timeout ${formatMs(policy.timeoutMs)}`);
  const retry = policy.retry;
  if (retry !== undefined) parts.push(`${retry.attempts} ${retry.attempts === 1 ? 'retry' : 'retries'} on ${retry.on.join(', ') || 'no code'}`);
  const mirrors = policy.routes.filter((r) => r.mirror !== undefined).length;
  parts.push(plural(policy.routes.length, 'route') + (mirrors > 0 ? ` (${mirrors} mirrored)` : ''));
  parts.push(policy.allow === undefined ? 'every mesh identity allowed' : `${plural(policy.allow.length, 'identity pattern')} allowed`);
  return parts.join('; ');
}

/**
 * The Accepted condition. Reasons in this order, each hiding the next: InvalidRange/Invalid (only the
 * object's author can fix it; InvalidRange when every problem is a range), Conflict (another policy
 * applies instead), NoSuchAPI (valid and in force, but no pod provides the API yet: the world may fix it).
 */
export function acceptedCondition(input: AcceptedInput): AcceptedCondition {
  const { parsed, generation, conflict, apiKnown } = input;
  const base = { type: 'Accepted' as const, observedGeneration: generation };
  if (parsed.policy === undefined) {
    const reason = parsed.problems.every((x) => x.reason === 'InvalidRange') ? 'InvalidRange' : 'Invalid';
    const listed = parsed.problems.map((x) => `${x.field}: ${x.message}`).join('; ');
    const message = `refused, the last accepted spec (if any) stays in force: ${listed}`;
    return { ...base, status: 'False', reason, message };
  }
  const api = parsed.policy.api;
  if (conflict !== undefined) {
    const message = `${conflict.winner}, an older BasisPolicy for ${api} in this namespace, applies instead; one policy per API per namespace: merge this one into it or delete one`;
    return { ...base, status: 'False', reason: 'Conflict', message };
  }
  if (!apiKnown) {
    const message = `no pod in the mesh provides ${api} (check spec.api); the policy applies as soon as one does`;
    return { ...base, status: 'False', reason: 'NoSuchAPI', message };
  }
  return { ...base, status: 'True', reason: 'Accepted', message: `applies to ${api}: ${summary(parsed.policy)}` };
}

/** What precedence needs of a policy whose spec is in force (valid now, or its last valid spec). */
export interface PolicyCandidate {
  namespace: string;
  name: string;
  /** metadata.creationTimestamp; missing or unreadable counts as newest, so it never displaces another. */
  creationTimestamp: string | undefined;
  api: string;
}

export interface PolicyQuery {
  api: string;
  callerNamespace: string;
  /** Namespaces with pods that provide the API. */
  providerNamespaces: readonly string[];
}

function createdMs(p: PolicyCandidate): number {
  const t = p.creationTimestamp === undefined ? NaN : Date.parse(p.creationTimestamp);
  return Number.isNaN(t) ? Infinity : t;
}

function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// Creation times have one-second precision, so ties are common (one kubectl apply): then names decide.
function olderFirst(a: PolicyCandidate, b: PolicyCandidate): number {
  return createdMs(a) - createdMs(b) || byText(a.namespace, b.namespace) || byText(a.name, b.name);
}

function oldest<T extends PolicyCandidate>(policies: readonly T[]): T | undefined {
  return [...policies].sort(olderFirst)[0];
}

/**
 * The policy that applies to a call (DESIGN.md, the Gateway API's consumer/producer rule): the caller's
 * namespace's, else one from a namespace whose pods provide the API. Among several providing namespaces
 * the oldest policy wins (then namespace, then name), so a newly created namespace never takes over
 * traffic that another policy already shapes. Inside one namespace the oldest wins; the rest are Conflict.
 * For inbound `allow`, ask with the providing pod's namespace as callerNamespace.
 */
export function selectPolicy<T extends PolicyCandidate>(policies: readonly T[], query: PolicyQuery): T | undefined {
  const forApi = policies.filter((p) => p.api === query.api);
  const own = oldest(forApi.filter((p) => p.namespace === query.callerNamespace));
  if (own !== undefined) return own;
  const providers = new Set(query.providerNamespaces);
  return oldest(forApi.filter((p) => providers.has(p.namespace)));
}

export interface PolicyConflict {
  namespace: string;
  /** The policy that loses (reports Conflict). */
  name: string;
  api: string;
  /** The oldest policy for the API in the namespace, which applies. */
  winner: string;
}

/** Every policy that loses to an older one for the same API in its namespace, sorted by namespace and name. */
export function conflicts(policies: readonly PolicyCandidate[]): PolicyConflict[] {
  const winners = new Map<string, string>();
  const out: PolicyConflict[] = [];
  for (const p of [...policies].sort(olderFirst)) {
    const key = JSON.stringify([p.namespace, p.api]);
    const winner = winners.get(key);
    if (winner === undefined) winners.set(key, p.name);
    else out.push({ namespace: p.namespace, name: p.name, api: p.api, winner });
  }
  return out.sort((a, b) => byText(a.namespace, b.namespace) || byText(a.name, b.name));
}
