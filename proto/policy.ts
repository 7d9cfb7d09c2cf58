// A BasisPolicy as the controller validated and normalised it (controller/basis-policy.ts parses the
// untrusted object), and its form on the discovery stream. Shared by both sides: the sidecar never
// parses a policy, it only takes what the controller accepted.
import { Status } from './errors.ts';
import type { Policy as WirePolicy, Policy__Output as WirePolicyOut } from './generated/qbasis/discovery/v1/Policy.ts';

/** A gRPC status a call may be retried on: any but OK. */
export type GrpcCodeName = Exclude<keyof typeof Status, 'OK'>;

export interface RetryPolicy {
  /** Retries after the first try. */
  attempts: number;
  on: GrpcCodeName[];
  perTryTimeoutMs?: number;
  backoff: { baseMs: number; maxMs: number };
  /** Over 10 s, retries ≤ percent % of calls + minPerSecond per second. */
  budget: { percent: number; minPerSecond: number };
}

/** A version group: `versions` is a range as proto/versions.ts parses it (trimmed text). */
export interface SplitGroup {
  versions: string;
  weight: number;
}

export interface Mirror {
  versions: string;
  percent: number;
}

export interface PolicyRoute {
  /** Absent: the route matches every method. */
  methods?: string[];
  /** Absent: every version the caller accepts, as without a policy. */
  split?: SplitGroup[];
  mirror?: Mirror;
}

/** One `allow` entry; `*` in namespace or serviceAccount matches any. */
export interface AllowedIdentity {
  id: string;
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/** A valid spec, normalised: durations in ms, defaults filled in, lists in the order written. */
export interface BasisPolicy {
  api: string;
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** First match wins. */
  routes: PolicyRoute[];
  /** Absent: every mesh identity; empty: none. */
  allow?: AllowedIdentity[];
}

/** Where a policy in force came from, and which spec of it. */
export interface PolicyRef {
  namespace: string;
  name: string;
  generation: number;
}

/** A policy in force as a sidecar holds it. */
export interface AppliedPolicy extends PolicyRef {
  policy: BasisPolicy;
}

const CODE_BY_NUMBER = new Map<number, GrpcCodeName>(
  Object.entries(Status)
    .filter(([name]) => name !== 'OK')
    .map(([name, n]) => [n as number, name as GrpcCodeName]),
);

export function policyToWire(p: AppliedPolicy | undefined): WirePolicy {
  if (p === undefined) return { namespace: '', name: '', generation: 0, timeoutMs: 0, retry: null, routes: [], allowAll: true, allow: [] };
  const { policy } = p;
  const r = policy.retry;
  return {
    namespace: p.namespace,
    name: p.name,
    generation: p.generation,
    timeoutMs: policy.timeoutMs ?? 0,
    retry:
      r === undefined
        ? null
        : {
            attempts: r.attempts,
            on: r.on.map((c) => Status[c]),
            perTryTimeoutMs: r.perTryTimeoutMs ?? 0,
            backoffBaseMs: r.backoff.baseMs,
            backoffMaxMs: r.backoff.maxMs,
            budgetPercent: r.budget.percent,
            budgetMinPerSecond: r.budget.minPerSecond,
          },
    routes: policy.routes.map((route) => ({
      methods: route.methods ?? [],
      split: (route.split ?? []).map((g) => ({ versions: g.versions, weight: g.weight })),
      mirror: route.mirror === undefined ? null : { versions: route.mirror.versions, percent: route.mirror.percent },
    })),
    allowAll: policy.allow === undefined,
    allow: (policy.allow ?? []).map((a) => a.id),
  };
}

const SPIFFE_ID = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

/**
 * The sidecar's side. The controller only sends what it validated, but the stream is still input:
 * unknown codes and malformed ids are dropped, never guessed at. undefined: no policy applies.
 */
export function policyFromWire(api: string, w: WirePolicyOut | null): AppliedPolicy | undefined {
  if (w === null || w.name === '') return undefined;
  const r = w.retry;
  const policy: BasisPolicy = {
    api,
    ...(w.timeoutMs > 0 ? { timeoutMs: w.timeoutMs } : {}),
    ...(r === null || r.attempts === 0
      ? {}
      : {
          retry: {
            attempts: Math.min(r.attempts, 5),
            on: r.on.flatMap((n) => CODE_BY_NUMBER.get(n) ?? []),
            ...(r.perTryTimeoutMs > 0 ? { perTryTimeoutMs: r.perTryTimeoutMs } : {}),
            backoff: { baseMs: r.backoffBaseMs, maxMs: Math.max(r.backoffBaseMs, r.backoffMaxMs) },
            budget: { percent: r.budgetPercent, minPerSecond: r.budgetMinPerSecond },
          },
        }),
    routes: w.routes.map((route) => ({
      ...(route.methods.length > 0 ? { methods: [...route.methods] } : {}),
      ...(route.split.length > 0 ? { split: route.split.map((g) => ({ versions: g.versions, weight: g.weight })) } : {}),
      ...(route.mirror === null ? {} : { mirror: { versions: route.mirror.versions, percent: route.mirror.percent } }),
    })),
    ...(w.allowAll
      ? {}
      : {
          allow: w.allow.flatMap((id) => {
            const m = SPIFFE_ID.exec(id);
            return m === null ? [] : [{ id, trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! }];
          }),
        }),
  };
  return { namespace: w.namespace, name: w.name, generation: w.generation, policy };
}

/** Same policy, same spec: nothing to send. */
export function samePolicy(a: AppliedPolicy | undefined, b: AppliedPolicy | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.namespace === b.namespace && a.name === b.name && a.generation === b.generation && JSON.stringify(a.policy) === JSON.stringify(b.policy);
}
