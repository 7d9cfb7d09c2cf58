// The sidecars' mirror (parallel run) reports, summed per BasisPolicy for status.mirror. Each sidecar
// sends cumulative counts for its run; the latest report per sidecar replaces the one before, and when
// a sidecar restarts (new run id) its last counts are kept as retired, so the sums never go down.
// Reports are wire input: sizes, counts and strings are bounded, and a bad report is refused whole.
import { EventEmitter } from 'node:events';
import type { SidecarReport__Output } from '../proto/generated/qbasis/discovery/v1/SidecarReport.ts';
import { shown } from './local/pods-file-parse.ts';
// One shape for a mirror sample, here and in the console's snapshot (a types-only leaf).
import type { MirrorSampleView } from './console/mesh-snapshot.ts';

export type { MirrorSampleView };

/** entries: per report; totalEntries: over every sidecar's latest report (~4 KB each at worst: ~80 MB). */
export const MIRROR_LIMITS = { entries: 256, totalEntries: 20_000, samples: 5, reporters: 10_000, text: 253, frame: 64, shownSamples: 10 } as const;

interface Counts {
  matched: number;
  statusMismatched: number;
  payloadMismatched: number;
  shadowFailed: number;
  dropped: number;
}

export interface MethodMirrorStatus extends Counts {
  api: string;
  method: string;
}

/** status.mirror of one BasisPolicy (DESIGN.md), with the per-method counts under it. */
export interface MirrorStatus {
  compared: number;
  matched: number;
  mismatched: number;
  shadowFailed: number;
  dropped: number;
  methods: MethodMirrorStatus[];
  samples: MirrorSampleView[];
}

interface Entry extends MethodMirrorStatus {
  policy: string;
  samples: MirrorSampleView[];
}

function zero(): Counts {
  return { matched: 0, statusMismatched: 0, payloadMismatched: 0, shadowFailed: 0, dropped: 0 };
}

function add(a: Counts, b: Counts): void {
  a.matched += b.matched;
  a.statusMismatched += b.statusMismatched;
  a.payloadMismatched += b.payloadMismatched;
  a.shadowFailed += b.shadowFailed;
  a.dropped += b.dropped;
}

const COUNT_FIELDS = ['matched', 'statusMismatched', 'payloadMismatched', 'shadowFailed', 'dropped'] as const;

/** Why a report is refused, or undefined. */
function problem(r: SidecarReport__Output): string | undefined {
  if (r.pod === '' || r.pod.length > MIRROR_LIMITS.text || r.namespace.length > MIRROR_LIMITS.text) return 'pod and namespace must be 1-253 characters';
  if (r.runId.length === 0 || r.runId.length > 64) return 'run_id must be 1-64 characters';
  if (r.mirror.length > MIRROR_LIMITS.entries) return `${r.mirror.length} entries; at most ${MIRROR_LIMITS.entries}`;
  for (const c of r.mirror) {
    for (const s of [c.policyNamespace, c.policyName, c.api, c.method]) if (s === '' || s.length > MIRROR_LIMITS.text) return `entry ${shown(c.api)}/${shown(c.method)}: names must be 1-253 characters`;
    for (const f of COUNT_FIELDS) if (!Number.isSafeInteger(c[f]) || c[f] < 0) return `entry ${shown(c.api)}/${shown(c.method)}: ${f} is not a count`;
    if (c.samples.length > MIRROR_LIMITS.samples) return `entry ${shown(c.api)}/${shown(c.method)}: ${c.samples.length} samples; at most ${MIRROR_LIMITS.samples}`;
  }
  return undefined;
}

function key(...parts: string[]): string {
  return JSON.stringify(parts);
}

export class MirrorResults extends EventEmitter {
  /** pod key → its latest report's entries (by policy/api/method). */
  readonly #latest = new Map<string, { runId: string; entries: Map<string, Entry> }>();
  /** Counts of runs that ended (a sidecar restarted), by policy/api/method. */
  readonly #retired = new Map<string, Entry>();
  #totalEntries = 0;

  /** Takes a report; returns why it was refused, or undefined. Emits 'change' (policy "ns/name") per policy it touched. */
  report(r: SidecarReport__Output): string | undefined {
    const bad = problem(r);
    if (bad !== undefined) return bad;
    const pod = `${r.namespace}/${r.pod}`;
    const before = this.#latest.get(pod);
    if (before === undefined && this.#latest.size >= MIRROR_LIMITS.reporters) return `more than ${MIRROR_LIMITS.reporters} sidecars report; refused`;
    const total = this.#totalEntries - (before?.entries.size ?? 0) + r.mirror.length;
    if (total > MIRROR_LIMITS.totalEntries) return `the controller holds ${MIRROR_LIMITS.totalEntries} mirror entries at most; refused`;
    this.#totalEntries = total;
    if (before !== undefined && before.runId !== r.runId) this.#retire(before.entries);
    const entries = new Map<string, Entry>();
    const touched = new Set<string>(before === undefined ? [] : [...before.entries.values()].map((e) => e.policy));
    for (const c of r.mirror) {
      const policy = `${c.policyNamespace}/${c.policyName}`;
      touched.add(policy);
      entries.set(key(policy, c.api, c.method), {
        policy,
        api: c.api,
        method: c.method,
        matched: c.matched,
        statusMismatched: c.statusMismatched,
        payloadMismatched: c.payloadMismatched,
        shadowFailed: c.shadowFailed,
        dropped: c.dropped,
        samples: c.samples.map((s) => ({
          method: s.method.slice(0, MIRROR_LIMITS.text),
          primaryVersion: s.primaryVersion.slice(0, MIRROR_LIMITS.frame),
          shadowVersion: s.shadowVersion.slice(0, MIRROR_LIMITS.frame),
          primaryStatus: s.primaryStatus,
          shadowStatus: s.shadowStatus,
          primaryFrame: s.primaryFrame.slice(0, MIRROR_LIMITS.frame),
          shadowFrame: s.shadowFrame.slice(0, MIRROR_LIMITS.frame),
          result: s.result === 'status_mismatch' ? 'status_mismatch' : 'payload_mismatch',
          at: new Date(Number.isSafeInteger(s.atUnixMs) ? s.atUnixMs : 0).toISOString(),
          pod,
        })),
      });
    }
    this.#latest.set(pod, { runId: r.runId, entries });
    for (const p of touched) this.emit('change', p);
    return undefined;
  }

  /** The sums for one policy ("ns/name"); undefined when no sidecar ever mirrored for it. */
  forPolicy(policy: string): MirrorStatus | undefined {
    const byMethod = new Map<string, MethodMirrorStatus>();
    const samples: MirrorSampleView[] = [];
    const take = (e: Entry): void => {
      if (e.policy !== policy) return;
      const k = key(e.api, e.method);
      const m = byMethod.get(k) ?? { api: e.api, method: e.method, ...zero() };
      add(m, e);
      byMethod.set(k, m);
      samples.push(...e.samples);
    };
    for (const e of this.#retired.values()) take(e);
    for (const r of this.#latest.values()) for (const e of r.entries.values()) take(e);
    if (byMethod.size === 0) return undefined;
    const total = zero();
    for (const m of byMethod.values()) add(total, m);
    const mismatched = total.statusMismatched + total.payloadMismatched;
    return {
      compared: total.matched + mismatched,
      matched: total.matched,
      mismatched,
      shadowFailed: total.shadowFailed,
      dropped: total.dropped,
      methods: [...byMethod.values()].sort((a, b) => (key(a.api, a.method) < key(b.api, b.method) ? -1 : 1)),
      samples: samples.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)).slice(-MIRROR_LIMITS.shownSamples),
    };
  }

  /** Forgets a sidecar whose pod is gone (its counts stay, as retired). */
  podGone(namespace: string, name: string): void {
    const pod = `${namespace}/${name}`;
    const r = this.#latest.get(pod);
    if (r === undefined) return;
    this.#retire(r.entries);
    this.#totalEntries -= r.entries.size;
    this.#latest.delete(pod);
  }

  #retire(entries: Map<string, Entry>): void {
    for (const [k, e] of entries) {
      // Keys come from reports: beyond the cap a new key's old counts are let go rather than grow without end.
      if (!this.#retired.has(k) && this.#retired.size >= MIRROR_LIMITS.totalEntries) continue;
      const kept = this.#retired.get(k) ?? { ...e, ...zero(), samples: [] };
      add(kept, e);
      kept.samples = [...kept.samples, ...e.samples].slice(-MIRROR_LIMITS.shownSamples);
      this.#retired.set(k, kept);
    }
  }
}
