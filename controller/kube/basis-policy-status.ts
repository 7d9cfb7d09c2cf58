// Pure functions: what a BasisPolicy's status should say, given the intake's view of it. No I/O here,
// so the rules are tested without a cluster; basis-policy-reconciler.ts writes the result.
import type { AcceptedCondition, BasisPolicy } from '../basis-policy.ts';
import type { MirrorStatus } from '../mirror-results.ts';
import { statusName } from '../../proto/errors.ts';
import { stampConditions, type Condition } from './basis-service-status.ts';

export const BPOL_PLURAL = 'basispolicies';
export const BPOL_KIND = 'BasisPolicy';

/**
 * A last valid spec larger than this is not copied into status.lastValid: a restarted controller then
 * has no last valid spec of that object while it is invalid. Real policies are a few KiB; the schema's
 * bounds allow specs of ~600 KiB, and status plus spec must stay under etcd's 1.5 MiB per object.
 */
export const LAST_VALID_MAX_BYTES = 256 * 1024;

/** The condition message cap of the CRD schema (metav1.Condition's). */
const MESSAGE_MAX = 32_768;

/** The status fields the controller owns (status.mirror is the mirror counters' own). */
export interface BasisPolicyStatus {
  observedGeneration: number;
  conditions: Condition[];
  /** Routes of the spec in force (the ROUTES column); absent when nothing of it is in force. */
  routes?: number;
  /** The MIRROR column: per mirrored route of the spec in force, `5% >=1.10.0`. */
  mirrorTarget?: string;
  /** The spec in force and its generation, read back by a restarted controller while the spec is invalid. */
  lastValid?: { generation: number; spec: unknown };
  /** The sidecars' mirror comparisons, summed (DESIGN.md); absent until one reported. */
  mirror?: MirrorStatusField;
}

/** status.mirror as the CRD's schema has it. */
export interface MirrorStatusField {
  compared: number;
  matched: number;
  mismatched: number;
  shadowFailed: number;
  dropped: number;
  methods: { api: string; method: string; matched: number; statusMismatched: number; payloadMismatched: number; shadowFailed: number; dropped: number }[];
  samples: { method: string; kind: 'status' | 'payload'; primaryVersion: string; shadowVersion: string; primaryStatus: string; shadowStatus: string; primaryFrame: string; shadowFrame: string; time: string }[];
}

/** The schema's caps: at most this many methods are listed (the counts above cover all). */
const MIRROR_METHODS_MAX = 64;

export function mirrorStatusField(m: MirrorStatus): MirrorStatusField {
  return {
    compared: m.compared,
    matched: m.matched,
    mismatched: m.mismatched,
    shadowFailed: m.shadowFailed,
    dropped: m.dropped,
    methods: m.methods.slice(0, MIRROR_METHODS_MAX),
    samples: m.samples.map((x) => ({
      method: x.method,
      kind: x.result === 'status_mismatch' ? 'status' : 'payload',
      primaryVersion: x.primaryVersion,
      shadowVersion: x.shadowVersion,
      primaryStatus: statusName(x.primaryStatus),
      shadowStatus: statusName(x.shadowStatus),
      primaryFrame: x.primaryFrame,
      shadowFrame: x.shadowFrame,
      time: x.at,
    })),
  };
}

export interface PolicyStatusInput {
  condition: AcceptedCondition;
  /** metadata.generation of the object read. */
  generation: number;
  /** The spec in force for this object (valid now, or its last valid spec), if any. */
  inForce: BasisPolicy | undefined;
  /** The object (whole, as read) whose spec is in force, and its generation. */
  accepted: { generation: number; raw: unknown } | undefined;
  /** The sidecars' mirror sums for this policy, if any reported. */
  mirror?: MirrorStatus | undefined;
}

function mirrorTarget(policy: BasisPolicy): string | undefined {
  const parts = policy.routes.flatMap((r) => (r.mirror === undefined ? [] : [`${r.mirror.percent}% ${r.mirror.versions}`]));
  return parts.length === 0 ? undefined : parts.join(', ');
}

function specOf(raw: unknown): unknown {
  return raw !== null && typeof raw === 'object' ? (raw as { spec?: unknown }).spec : undefined;
}

/** The status for this input; the Accepted condition keeps its lastTransitionTime while its status holds. */
export function computePolicyStatus(input: PolicyStatusInput, previous: Partial<BasisPolicyStatus> | undefined, now: Date): BasisPolicyStatus {
  const c = input.condition;
  const message = c.message.length > MESSAGE_MAX ? `${c.message.slice(0, MESSAGE_MAX - 1)}…` : c.message;
  const conditions = stampConditions([{ type: c.type, status: c.status, reason: c.reason, message }], previous?.conditions, input.generation, now);
  const status: BasisPolicyStatus = { observedGeneration: input.generation, conditions };
  if (input.inForce !== undefined) {
    status.routes = input.inForce.routes.length;
    const target = mirrorTarget(input.inForce);
    if (target !== undefined) status.mirrorTarget = target;
  }
  if (input.mirror !== undefined) status.mirror = mirrorStatusField(input.mirror);
  const spec = specOf(input.accepted?.raw);
  if (input.accepted !== undefined && spec !== undefined && JSON.stringify(spec).length <= LAST_VALID_MAX_BYTES) {
    status.lastValid = { generation: input.accepted.generation, spec };
  }
  return status;
}

/** The merge patch that makes the object's status `s`: null removes an owned field `s` leaves out. */
export function policyStatusPatch(s: BasisPolicyStatus): { status: Record<string, unknown> } {
  return {
    status: {
      observedGeneration: s.observedGeneration,
      conditions: s.conditions,
      routes: s.routes ?? null,
      mirrorTarget: s.mirrorTarget ?? null,
      lastValid: s.lastValid ?? null,
      mirror: s.mirror ?? null,
    },
  };
}

/** The owned fields of both, as read from anywhere (cache or API server, any key order), say the same. */
export function samePolicyStatus(a: Partial<BasisPolicyStatus> | undefined, b: Partial<BasisPolicyStatus> | undefined): boolean {
  return canonical(a) === canonical(b);
}

function canonical(s: Partial<BasisPolicyStatus> | undefined): string {
  if (s === undefined) return 'none';
  return JSON.stringify({
    observedGeneration: s.observedGeneration,
    conditions: (s.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime, c.observedGeneration]),
    routes: s.routes ?? null,
    mirrorTarget: s.mirrorTarget ?? null,
    lastValid: s.lastValid === undefined ? null : [s.lastValid.generation, sorted(s.lastValid.spec)],
    mirror: s.mirror === undefined ? null : sorted(s.mirror),
  });
}

/** JSON with object keys sorted: the API server need not keep the key order we wrote. */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]));
}
