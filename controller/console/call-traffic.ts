// Calls per (API, provided version, caller) from the sidecars' reports (Discovery/Report, every 2 s,
// cumulative per sidecar run): the console's traffic figures. Each report's increase over the same
// sidecar's previous one is spread over the time since that report (so a 5 s bucket holds the calls
// made in it, not the reports that happened to land in it) and added to rings of 5 s buckets:
//   - per (API, version): 180 buckets, calls/s over 15 minutes (the chart);
//   - per (API, version, caller workload, required range): 12 buckets, the last minute (the matrix's
//     shares), plus the time of its last call (the planner's "still calls it").
// A summary per API × version × caller, never per call. Reports are wire input: every string, count and
// map is bounded, and a bad report is refused whole.
import { EventEmitter } from 'node:events';
import semver from 'semver';
import { isApiName } from '../../proto/annotations.ts';
import { isRange } from '../../proto/versions.ts';
import type { SidecarReport__Output } from '../../proto/generated/qbasis/discovery/v1/SidecarReport.ts';
import { shown } from '../local/pods-file-parse.ts';
import { workloadKey, type WorkloadRef } from './workload.ts';

export const TRAFFIC_LIMITS = {
  bucketMs: 5000,
  /** 15 minutes of 5 s buckets. */
  seriesBuckets: 180,
  /** 1 minute. */
  recentBuckets: 12,
  reporters: 10_000,
  entriesPerReport: 1024,
  /** (API, version) series kept (each ~3 KB). */
  series: 5000,
  /** (API, version, caller, range) entries kept (each ~200 B). */
  callers: 50_000,
  text: 253,
  version: 64,
  /** An increase is spread over at most this much time before its report. */
  spreadMs: 30_000,
  /** A reporter not heard from for this long is forgotten (its next report starts a new baseline). */
  reporterIdleMs: 60 * 60_000,
} as const;

/** Fixed-size ring of buckets numbered by time (bucket b holds [b*bucketMs, (b+1)*bucketMs)). */
export class BucketRing {
  readonly #counts: Float64Array;
  readonly #epochs: Float64Array;

  constructor(size: number) {
    this.#counts = new Float64Array(size);
    this.#epochs = new Float64Array(size).fill(-1);
  }

  add(bucket: number, n: number): void {
    const i = bucket % this.#counts.length;
    if (this.#epochs[i] !== bucket) {
      this.#epochs[i] = bucket;
      this.#counts[i] = 0;
    }
    this.#counts[i]! += n;
  }

  at(bucket: number): number {
    const i = bucket % this.#counts.length;
    return this.#epochs[i] === bucket ? this.#counts[i]! : 0;
  }

  /** Sum of buckets (last - span, last]. */
  sum(last: number, span: number): number {
    let n = 0;
    for (let b = last - span + 1; b <= last; b++) n += this.at(b);
    return n;
  }
}

/** Spreads `n` calls made over [from, to) (ms) across the buckets that interval covers. */
export function spread(n: number, from: number, to: number, bucketMs: number, add: (bucket: number, n: number) => void): void {
  const end = Math.max(to, from + 1);
  let t = from;
  while (t < end) {
    const b = Math.floor(t / bucketMs);
    const next = Math.min(end, (b + 1) * bucketMs);
    add(b, (n * (next - t)) / (end - from));
    t = next;
  }
}

interface Reporter {
  runId: string;
  atMs: number;
  /** entry key → cumulative calls in the last accepted report */
  calls: Map<string, number>;
}

interface VersionSeries {
  version: string;
  ring: BucketRing;
  lastCallAt: number;
}

export interface CallerTraffic {
  workload: WorkloadRef;
  range: string;
  version: string;
  ring: BucketRing;
  lastCallAt: number;
}

interface ApiTraffic {
  versions: Map<string, VersionSeries>;
  callers: Map<string, CallerTraffic>;
}

/** What the console reads for one API. */
export interface ApiTrafficView {
  /** Start (unix ms) of the first bucket of each series. */
  startMs: number;
  bucketMs: number;
  /** calls/s per version, oldest first, complete buckets only (the one in progress is left out). */
  series: { version: string; rates: number[] }[];
  /** Per caller and version: calls in the last minute (bucket in progress included), last call (unix ms). */
  callers: { workload: WorkloadRef; range: string; version: string; lastMinute: number; lastCallAt: number }[];
}

function problem(r: SidecarReport__Output): string | undefined {
  if (r.pod === '' || r.pod.length > TRAFFIC_LIMITS.text || r.namespace.length > TRAFFIC_LIMITS.text) return 'pod and namespace must be 1-253 characters';
  if (r.runId.length === 0 || r.runId.length > 64) return 'run_id must be 1-64 characters';
  if (r.calls.length > TRAFFIC_LIMITS.entriesPerReport) return `${r.calls.length} call entries; at most ${TRAFFIC_LIMITS.entriesPerReport}`;
  for (const c of r.calls) {
    const what = `call entry ${shown(c.api)}@${shown(c.version)}`;
    if (!isApiName(c.api)) return `${what}: api is not a gRPC service name`;
    if (c.version.length > TRAFFIC_LIMITS.version || (c.version !== 'other' && semver.valid(c.version) !== c.version)) return `${what}: version is not a semantic version`;
    if (c.range.length > TRAFFIC_LIMITS.text || !isRange(c.range)) return `${what}: range ${shown(c.range)} is not a semver range`;
    if (!Number.isSafeInteger(c.calls) || c.calls < 0 || !Number.isSafeInteger(c.failed) || c.failed < 0 || c.failed > c.calls) return `${what}: calls/failed are not counts`;
  }
  return undefined;
}

export interface CallTrafficOptions {
  /** The workload of a reporting sidecar's pod (the registry knows its labels; else its name). */
  workloadOf(namespace: string, pod: string): WorkloadRef;
  now?: () => number;
}

/**
 * Events:
 *  'change' (api: string)   traffic of an API moved (a report added calls to it)
 */
export class CallTraffic extends EventEmitter {
  readonly #opts: CallTrafficOptions;
  readonly #now: () => number;
  readonly #reporters = new Map<string, Reporter>();
  readonly #apis = new Map<string, ApiTraffic>();
  #seriesCount = 0;
  #callerCount = 0;
  /** Increases dropped because a cap was reached (new keys beyond it). */
  dropped = 0;

  constructor(opts: CallTrafficOptions) {
    super();
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Takes a report; returns why it was refused, or undefined. */
  report(r: SidecarReport__Output): string | undefined {
    const bad = problem(r);
    if (bad !== undefined) return bad;
    const now = this.#now();
    this.#forgetIdle(now);
    const podKey = `${r.namespace}/${r.pod}`;
    let rep = this.#reporters.get(podKey);
    // Calls made before this controller knew the run are counted only if the run is young enough to
    // place them in time; an old run seen first (this controller restarted) only sets the baseline.
    const runAge = Number.isSafeInteger(r.runAgeMs) ? r.runAgeMs : Number.MAX_SAFE_INTEGER;
    let from: number;
    let baselineOnly = false;
    if (rep === undefined || rep.runId !== r.runId) {
      if (rep === undefined) {
        if (this.#reporters.size >= TRAFFIC_LIMITS.reporters) return `more than ${TRAFFIC_LIMITS.reporters} sidecars report; refused`;
        rep = { runId: r.runId, atMs: now, calls: new Map() };
        this.#reporters.set(podKey, rep);
      }
      // A new run (first seen, or a restarted sidecar) counts from 0.
      rep.runId = r.runId;
      rep.calls = new Map();
      baselineOnly = runAge > TRAFFIC_LIMITS.spreadMs;
      from = now - Math.max(1, runAge);
    } else from = Math.max(rep.atMs, now - TRAFFIC_LIMITS.spreadMs);
    const workload = this.#opts.workloadOf(r.namespace, r.pod);
    const next = new Map<string, number>();
    const touched = new Set<string>();
    for (const c of r.calls) {
      const k = JSON.stringify([c.api, c.version, c.range]);
      next.set(k, c.calls);
      const before = rep.calls.get(k) ?? 0;
      const delta = c.calls >= before ? c.calls - before : c.calls;
      if (delta === 0 || baselineOnly) continue;
      if (this.#add(c.api, c.version, c.range, workload, delta, from, now)) touched.add(c.api);
    }
    rep.calls = next;
    rep.atMs = now;
    for (const api of touched) this.emit('change', api);
    return undefined;
  }

  /** Sidecars that reported within `withinMs`. */
  reporters(withinMs = 10_000): number {
    const since = this.#now() - withinMs;
    let n = 0;
    for (const r of this.#reporters.values()) if (r.atMs >= since) n++;
    return n;
  }

  apis(): string[] {
    return [...this.#apis.keys()];
  }

  has(api: string): boolean {
    return this.#apis.has(api);
  }

  /** The time axis of every series now: first bucket's start, bucket size, buckets (complete ones only). */
  axis(): { startMs: number; bucketMs: number; buckets: number } {
    const { bucketMs, seriesBuckets } = TRAFFIC_LIMITS;
    const lastDone = Math.floor(this.#now() / bucketMs) - 1;
    return { startMs: (lastDone - seriesBuckets + 1) * bucketMs, bucketMs, buckets: seriesBuckets };
  }

  /** The API's figures now; undefined when nothing was ever counted for it (or it aged out). */
  forApi(api: string): ApiTrafficView | undefined {
    const t = this.#apis.get(api);
    if (t === undefined) return undefined;
    const now = this.#now();
    const { bucketMs, seriesBuckets, recentBuckets } = TRAFFIC_LIMITS;
    const current = Math.floor(now / bucketMs);
    const lastDone = current - 1;
    const first = lastDone - seriesBuckets + 1;
    const series = [...t.versions.values()].map((s) => {
      const rates: number[] = new Array(seriesBuckets);
      for (let i = 0; i < seriesBuckets; i++) rates[i] = Math.round((s.ring.at(first + i) / (bucketMs / 1000)) * 100) / 100;
      return { version: s.version, rates };
    });
    const callers = [...t.callers.values()].map((c) => ({
      workload: c.workload,
      range: c.range,
      version: c.version,
      lastMinute: Math.round(c.ring.sum(current, recentBuckets + 1) * 100) / 100,
      lastCallAt: Math.round(c.lastCallAt),
    }));
    return { startMs: first * bucketMs, bucketMs, series, callers };
  }

  /** Drops what has had no call for 15 minutes. Returns the APIs that lost all their figures. */
  gc(): string[] {
    const now = this.#now();
    const horizon = now - TRAFFIC_LIMITS.seriesBuckets * TRAFFIC_LIMITS.bucketMs;
    const gone: string[] = [];
    for (const [api, t] of this.#apis) {
      for (const [k, c] of t.callers) if (c.lastCallAt < horizon) (t.callers.delete(k), this.#callerCount--);
      for (const [k, s] of t.versions) if (s.lastCallAt < horizon) (t.versions.delete(k), this.#seriesCount--);
      if (t.versions.size === 0 && t.callers.size === 0) {
        this.#apis.delete(api);
        gone.push(api);
      }
    }
    this.#forgetIdle(now);
    return gone;
  }

  #forgetIdle(now: number): void {
    if (this.#reporters.size < TRAFFIC_LIMITS.reporters) return;
    for (const [k, r] of this.#reporters) if (r.atMs < now - TRAFFIC_LIMITS.reporterIdleMs) this.#reporters.delete(k);
  }

  #add(api: string, version: string, range: string, workload: WorkloadRef, n: number, from: number, to: number): boolean {
    let t = this.#apis.get(api);
    if (t === undefined) {
      if (this.#seriesCount >= TRAFFIC_LIMITS.series) return this.#drop();
      t = { versions: new Map(), callers: new Map() };
      this.#apis.set(api, t);
    }
    let s = t.versions.get(version);
    if (s === undefined) {
      if (this.#seriesCount >= TRAFFIC_LIMITS.series) return this.#drop();
      s = { version, ring: new BucketRing(TRAFFIC_LIMITS.seriesBuckets), lastCallAt: 0 };
      t.versions.set(version, s);
      this.#seriesCount++;
    }
    const ck = JSON.stringify([version, workloadKey(workload), range]);
    let c = t.callers.get(ck);
    if (c === undefined) {
      if (this.#callerCount >= TRAFFIC_LIMITS.callers) return this.#drop();
      c = { workload, range, version, ring: new BucketRing(TRAFFIC_LIMITS.recentBuckets + 1), lastCallAt: 0 };
      t.callers.set(ck, c);
      this.#callerCount++;
    }
    const bucketMs = TRAFFIC_LIMITS.bucketMs;
    const series = s.ring;
    const recent = c.ring;
    spread(n, from, to, bucketMs, (b, x) => {
      series.add(b, x);
      recent.add(b, x);
    });
    s.lastCallAt = to;
    c.lastCallAt = to;
    return true;
  }

  #drop(): boolean {
    this.dropped++;
    return false;
  }
}
