// Pure functions: what a BasisService should say about one API in one namespace, given the cache.
// No I/O here, so the rules (conditions, reasons, transition times) are tested without a cluster.
import { createHash } from 'node:crypto';
import semver from 'semver';
import { satisfies } from '../../proto/versions.ts';
import { apiIdHex } from '../api-id-collisions.ts';

export const GROUP = 'qbasis.io';
export const VERSION = 'v1alpha1';
export const BSVC_PLURAL = 'basisservices';
export const BSVC_KIND = 'BasisService';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'qbasis';
export const API_LABEL = 'qbasis.io/api';
export const API_ID_LABEL = 'qbasis.io/api-id';
export const API_ANNOTATION = 'qbasis.io/api';

export interface StatusEndpoint {
  pod: string;
  ip: string;
  port: number;
  version: string;
  codecs: number[];
  ready: boolean;
  /** The pod's SPIFFE ID (spiffe://TD/ns/NS/sa/SA), which callers' sidecars require of its certificate. */
  identity?: string;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface BasisServiceStatus {
  observedGeneration?: number;
  endpoints: StatusEndpoint[];
  versions: string[];
  versionSummary: string;
  readyEndpoints: number;
  totalEndpoints: number;
  ready: string;
  conditions: Condition[];
  /** The BasisPolicy (namespace/name) that applies to calls from this namespace; absent: none. */
  policy?: string;
  /** The endpoints' distinct identities, sorted, for the IDENTITIES column of -o wide; absent: none known. */
  identities?: string;
}

/** The IDENTITIES column stays short: past this many characters the rest is counted, not listed. */
const MAX_IDENTITIES_TEXT = 512;

/** Distinct identities joined with commas; `…,+N more` past the limit. */
export function identitySummary(endpoints: readonly StatusEndpoint[]): string | undefined {
  const ids = [...new Set(endpoints.map((e) => e.identity).filter((i): i is string => i !== undefined && i !== ''))].sort();
  if (ids.length === 0) return undefined;
  let text = '';
  for (let i = 0; i < ids.length; i++) {
    const next = text === '' ? ids[i]! : `${text},${ids[i]}`;
    if (next.length > MAX_IDENTITIES_TEXT && i > 0) return `${text},+${ids.length - i} more`;
    text = next;
  }
  return text;
}

/** A pod in the namespace that calls the API (from its qbasis.io/requires). */
export interface KnownCaller {
  pod: string;
  range: string;
}

export interface StatusInput {
  api: string;
  endpoints: readonly StatusEndpoint[];
  callers: readonly KnownCaller[];
  /** Other APIs the controller knows whose API id equals this one's. */
  collidesWith: readonly string[];
  /** The pod cache has completed its initial list (and is not relisting). */
  synced: boolean;
  generation: number;
  /** The BasisPolicy that applies here (namespace/name), if any: PolicyStore.forCaller(api, namespace, providers). */
  policy?: string | undefined;
}

const MAX_NAME = 63;

/** DNS-safe object name for an API: lower case, dots to dashes; a hash suffix when it had to be cut. */
export function basisServiceName(api: string): string {
  const base = api
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (base.length > 0 && base.length <= MAX_NAME) return base;
  const hash = createHash('sha256').update(api).digest('hex').slice(0, 8);
  const head = base.slice(0, MAX_NAME - hash.length - 1).replace(/-+$/g, '');
  return head.length > 0 ? `${head}-${hash}` : `api-${hash}`;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Labels that find the object again: the API itself when it is a valid label value, always its id. */
export function basisServiceLabels(api: string): Record<string, string> {
  const labels: Record<string, string> = {
    [MANAGED_BY_LABEL]: MANAGED_BY,
    [API_ID_LABEL]: apiIdHex(api),
  };
  if (api.length <= 63 && LABEL_VALUE.test(api)) labels[API_LABEL] = api;
  return labels;
}

function compareVersionsDesc(a: string, b: string): number {
  const va = semver.valid(a);
  const vb = semver.valid(b);
  if (va !== null && vb !== null) return semver.rcompare(va, vb);
  return a < b ? 1 : a > b ? -1 : 0;
}

function majorOf(v: string): number | undefined {
  const p = semver.parse(v);
  return p === null ? undefined : p.major;
}

export interface DesiredCondition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

function readyCondition(ready: number, total: number): DesiredCondition {
  if (ready > 0) {
    return { type: 'Ready', status: 'True', reason: 'EndpointsReady', message: `${ready} of ${total} endpoints ready` };
  }
  return {
    type: 'Ready',
    status: 'False',
    reason: total === 0 ? 'NoEndpoints' : 'NoReadyEndpoints',
    message: total === 0 ? 'no pod provides this API in this namespace' : `none of ${total} endpoints is ready`,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function compatibleCondition(input: StatusInput): DesiredCondition {
  const type = 'Compatible';
  if (input.collidesWith.length > 0) {
    const id = apiIdHex(input.api);
    return {
      type,
      status: 'False',
      reason: 'ApiIdCollision',
      message: `API id 0x${id} of ${input.api} equals that of ${[...input.collidesWith].sort().join(', ')}; basis frames cannot tell them apart: rename one of the services`,
    };
  }
  const live = input.endpoints.filter((e) => e.ready);
  if (live.length === 0) {
    return { type, status: 'Unknown', reason: 'NoReadyEndpoints', message: 'no ready endpoint to check callers against' };
  }
  const liveVersions = [...new Set(live.map((e) => e.version))].sort(compareVersionsDesc);
  const liveMajors = [...new Set(liveVersions.map(majorOf).filter((m): m is number => m !== undefined))].sort((a, b) => a - b);
  // One message per distinct range; callers sorted so the message is stable across passes.
  const byRange = new Map<string, string[]>();
  for (const c of [...input.callers].sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0))) {
    const pods = byRange.get(c.range) ?? [];
    pods.push(c.pod);
    byRange.set(c.range, pods);
  }
  const stranded: string[] = [];
  const split: string[] = [];
  for (const [range, pods] of [...byRange].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const matching = liveVersions.filter((v) => safeSatisfies(v, range));
    const who = `${plural(pods.length, 'caller')} (${pods.slice(0, 3).join(', ')}${pods.length > 3 ? ', …' : ''}) requiring ${range}`;
    if (matching.length === 0) {
      stranded.push(`${who} match none of the live versions ${liveVersions.join(', ')}`);
      continue;
    }
    const matchedMajors = new Set(matching.map(majorOf));
    if (liveMajors.length > 1 && matchedMajors.size < liveMajors.length) {
      const others = liveVersions.filter((v) => !matchedMajors.has(majorOf(v)));
      split.push(`${who} can use only ${matching.join(', ')}, not ${others.join(', ')}`);
    }
  }
  if (stranded.length > 0) {
    return { type, status: 'False', reason: 'NoVersionForCaller', message: stranded.concat(split).join('; ') };
  }
  if (split.length > 0) {
    return { type, status: 'False', reason: 'MajorVersionSplit', message: `majors ${liveMajors.join(' and ')} are live; ${split.join('; ')}` };
  }
  if (byRange.size === 0) {
    return { type, status: 'True', reason: 'NoKnownCallers', message: `live versions ${liveVersions.join(', ')}; no pod here declares it calls this API` };
  }
  return {
    type,
    status: 'True',
    reason: 'AllCallersServed',
    message: `every known caller's range matches every live major (${liveVersions.join(', ')})`,
  };
}

function safeSatisfies(version: string, range: string): boolean {
  try {
    return satisfies(version, range);
  } catch {
    return false;
  }
}

function syncedCondition(synced: boolean): DesiredCondition {
  return synced
    ? { type: 'Synced', status: 'True', reason: 'CacheSynced', message: 'written from a fully synced pod cache' }
    : { type: 'Synced', status: 'Unknown', reason: 'CacheNotSynced', message: 'the pod cache is (re)listing; endpoints may be incomplete' };
}

/**
 * Conditions as written: each keeps its lastTransitionTime from `previous` when its status did not
 * change (metav1.Condition semantics), so rewriting the same state changes nothing. Whole seconds, as
 * metav1.Time.
 */
export function stampConditions(desired: readonly DesiredCondition[], previous: readonly Condition[] | undefined, generation: number, now: Date): Condition[] {
  const prior = new Map((previous ?? []).map((c) => [c.type, c]));
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return desired.map((d): Condition => {
    const old = prior.get(d.type);
    const lastTransitionTime = old !== undefined && old.status === d.status ? old.lastTransitionTime : stamp;
    return { ...d, lastTransitionTime, observedGeneration: generation };
  });
}

/**
 * The status for this input. Conditions keep their lastTransitionTime from `previous` when their
 * status did not change (metav1.Condition semantics), so rewriting the same state changes nothing.
 */
export function computeStatus(input: StatusInput, previous: Partial<BasisServiceStatus> | undefined, now: Date): BasisServiceStatus {
  const endpoints = [...input.endpoints]
    .map((e) => ({ pod: e.pod, ip: e.ip, port: e.port, version: e.version, codecs: [...e.codecs].sort((a, b) => a - b), ready: e.ready, ...(e.identity !== undefined ? { identity: e.identity } : {}) }))
    .sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
  const versions = [...new Set(endpoints.map((e) => e.version))].sort(compareVersionsDesc);
  const readyEndpoints = endpoints.filter((e) => e.ready).length;
  const desired = [readyCondition(readyEndpoints, endpoints.length), compatibleCondition(input), syncedCondition(input.synced)];
  const conditions = stampConditions(desired, previous?.conditions, input.generation, now);
  return {
    observedGeneration: input.generation,
    endpoints,
    versions,
    versionSummary: versions.join(','),
    readyEndpoints,
    totalEndpoints: endpoints.length,
    ready: `${readyEndpoints}/${endpoints.length}`,
    conditions,
    ...(input.policy !== undefined ? { policy: input.policy } : {}),
    ...(identitySummary(endpoints) !== undefined ? { identities: identitySummary(endpoints)! } : {}),
  };
}

/** True when writing `next` over `current` would change nothing a reader can see. */
export function statusEqual(current: Partial<BasisServiceStatus> | undefined, next: BasisServiceStatus): boolean {
  if (current === undefined) return false;
  return canonical(current) === canonical(next);
}

/** Both sides as read from anywhere (cache or API server, any key order). */
export function sameStatus(a: Partial<BasisServiceStatus> | undefined, b: Partial<BasisServiceStatus> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonical(a) === canonical(b);
}

function canonical(s: Partial<BasisServiceStatus>): string {
  return JSON.stringify({
    observedGeneration: s.observedGeneration,
    endpoints: (s.endpoints ?? []).map((e) => [e.pod, e.ip, e.port, e.version, e.codecs ?? [], e.ready, e.identity ?? null]),
    versions: s.versions ?? [],
    versionSummary: s.versionSummary ?? '',
    readyEndpoints: s.readyEndpoints,
    totalEndpoints: s.totalEndpoints,
    ready: s.ready,
    conditions: (s.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime, c.observedGeneration]),
    policy: s.policy ?? null,
    identities: s.identities ?? null,
  });
}
