// The console's callers: pods with a valid `qbasis.io/requires`, grouped per API into rows of
// (workload, required range) — workload.ts says how pods make a workload. A workload whose pods
// disagree on the range (mid-rollout of the caller itself) is two rows, each with its pods.
// A PodSink fed beside the endpoint registry (main.ts tees the pod source into both). Terminating pods
// and pods whose annotations are invalid (the registry reports those) are no callers.
import { EventEmitter } from 'node:events';
import { ANNOTATIONS, parseRequires } from '../../proto/annotations.ts';
import type { PodInfo, PodRef, PodSink } from '../pod-source.ts';
import { workloadKey, workloadName, workloadOf, type WorkloadRef } from './workload.ts';

export interface CallerGroup {
  workload: WorkloadRef;
  range: string;
  /** Pod names, sorted. */
  pods: string[];
  ready: number;
}

interface PodEntry {
  workload: WorkloadRef;
  ready: boolean;
  requires: Map<string, string>;
}

interface Group {
  workload: WorkloadRef;
  range: string;
  pods: Map<string, boolean>;
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function groupKey(w: WorkloadRef, range: string): string {
  return JSON.stringify([workloadKey(w), range]);
}

/**
 * Events:
 *  'change' (apis: string[])   the callers of these APIs changed
 */
export class CallerPods extends EventEmitter implements PodSink {
  readonly #pods = new Map<string, PodEntry>();
  /** api → group key → group */
  readonly #byApi = new Map<string, Map<string, Group>>();

  upsert(pod: PodInfo): void {
    const touched = new Set<string>();
    this.#set(pod, touched);
    this.#announce(touched);
  }

  delete(ref: PodRef): void {
    const touched = new Set<string>();
    this.#drop(podKey(ref.namespace, ref.name), ref.name, touched);
    this.#announce(touched);
  }

  resync(pods: PodInfo[]): void {
    const touched = new Set<string>();
    const keep = new Set(pods.map((p) => podKey(p.namespace, p.name)));
    for (const k of [...this.#pods.keys()]) if (!keep.has(k)) this.#drop(k, k.slice(k.indexOf('/') + 1), touched);
    for (const p of pods) this.#set(p, touched);
    this.#announce(touched);
  }

  /** APIs some pod requires. */
  apis(): string[] {
    return [...this.#byApi.keys()];
  }

  /** The rows of one API, sorted by workload then range. */
  groups(api: string): CallerGroup[] {
    const m = this.#byApi.get(api);
    if (m === undefined) return [];
    return [...m.values()]
      .map((g) => ({ workload: g.workload, range: g.range, pods: [...g.pods.keys()].sort(), ready: [...g.pods.values()].filter(Boolean).length }))
      .sort((a, b) => (groupKey(a.workload, a.range) < groupKey(b.workload, b.range) ? -1 : 1));
  }

  /** Caller pods that are ready (their sidecars should hold discovery streams). */
  readyPods(): { namespace: string; pod: string }[] {
    const out: { namespace: string; pod: string }[] = [];
    for (const [k, e] of this.#pods) if (e.ready) out.push({ namespace: e.workload.namespace, pod: k.slice(k.indexOf('/') + 1) });
    return out;
  }

  /** The workload of a (reporting) pod: from its labels if it is a caller here, else from its name. */
  workloadOf(namespace: string, name: string): WorkloadRef {
    return this.#pods.get(podKey(namespace, name))?.workload ?? { namespace, name: workloadName(name) };
  }

  #set(pod: PodInfo, touched: Set<string>): void {
    const k = podKey(pod.namespace, pod.name);
    const value = pod.annotations[ANNOTATIONS.requires];
    const requires = new Map<string, string>();
    if (value !== undefined && !pod.deleting) {
      try {
        for (const r of parseRequires(value)) requires.set(r.api, r.range);
      } catch {
        // invalid: the registry reports it; this pod is no caller
      }
    }
    const before = this.#pods.get(k);
    const entry: PodEntry = { workload: workloadOf(pod), ready: pod.ready && !pod.deleting, requires };
    if (before !== undefined && sameEntry(before, entry)) return;
    if (before !== undefined) this.#unlink(before, pod.name, touched);
    if (requires.size === 0) {
      this.#pods.delete(k);
      return;
    }
    this.#pods.set(k, entry);
    for (const [api, range] of requires) {
      let m = this.#byApi.get(api);
      if (m === undefined) this.#byApi.set(api, (m = new Map()));
      const gk = groupKey(entry.workload, range);
      let g = m.get(gk);
      if (g === undefined) m.set(gk, (g = { workload: entry.workload, range, pods: new Map() }));
      g.pods.set(pod.name, entry.ready);
      touched.add(api);
    }
  }

  #drop(k: string, name: string, touched: Set<string>): void {
    const before = this.#pods.get(k);
    if (before === undefined) return;
    this.#unlink(before, name, touched);
    this.#pods.delete(k);
  }

  #unlink(e: PodEntry, name: string, touched: Set<string>): void {
    for (const [api, range] of e.requires) {
      const m = this.#byApi.get(api);
      const gk = groupKey(e.workload, range);
      const g = m?.get(gk);
      g?.pods.delete(name);
      if (g?.pods.size === 0) m!.delete(gk);
      if (m?.size === 0) this.#byApi.delete(api);
      touched.add(api);
    }
  }

  #announce(touched: Set<string>): void {
    if (touched.size > 0) this.emit('change', [...touched]);
  }
}

function sameEntry(a: PodEntry, b: PodEntry): boolean {
  if (a.ready !== b.ready || workloadKey(a.workload) !== workloadKey(b.workload) || a.requires.size !== b.requires.size) return false;
  for (const [api, range] of a.requires) if (b.requires.get(api) !== range) return false;
  return true;
}
