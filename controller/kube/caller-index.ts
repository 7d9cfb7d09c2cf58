// Who calls what: pods' qbasis.io/requires, per namespace and API. A PodSink placed beside the
// endpoint registry (tee-sink.ts feeds both) so the BasisService `Compatible` condition can name callers
// whose range a live version does not match. Emits 'change' with the `namespace/api` keys touched
// (reconcile-key.ts).
import { EventEmitter } from 'node:events';
import { ANNOTATIONS, parseRequires } from '../../proto/annotations.ts';
import type { PodInfo, PodRef, PodSink } from '../pod-source.ts';
import type { KnownCaller } from './basis-service-status.ts';
import { reconcileKey, splitKey } from './reconcile-key.ts';

export class CallerIndex extends EventEmitter implements PodSink {
  /** namespace/pod → (api → range) */
  readonly #byPod = new Map<string, Map<string, string>>();
  /** namespace/api → (pod → range) */
  readonly #byKey = new Map<string, Map<string, string>>();

  upsert(pod: PodInfo): void {
    const touched = new Set<string>();
    this.#set(pod, touched);
    this.#announce(touched);
  }

  delete(ref: PodRef): void {
    const touched = new Set<string>();
    this.#drop(ref.namespace, ref.name, touched);
    this.#announce(touched);
  }

  resync(pods: PodInfo[]): void {
    const touched = new Set<string>();
    const keep = new Set(pods.map((p) => `${p.namespace}/${p.name}`));
    for (const k of [...this.#byPod.keys()]) {
      if (keep.has(k)) continue;
      const i = k.indexOf('/');
      this.#drop(k.slice(0, i), k.slice(i + 1), touched);
    }
    for (const p of pods) this.#set(p, touched);
    this.#announce(touched);
  }

  callers(namespace: string, api: string): KnownCaller[] {
    const m = this.#byKey.get(reconcileKey(namespace, api));
    if (m === undefined) return [];
    return [...m].map(([pod, range]) => ({ pod, range }));
  }

  /** Every API some pod requires (for API-id collision checks). */
  apis(): Set<string> {
    const out = new Set<string>();
    for (const k of this.#byKey.keys()) out.add(splitKey(k).api);
    return out;
  }

  #set(pod: PodInfo, touched: Set<string>): void {
    const podKey = `${pod.namespace}/${pod.name}`;
    const value = pod.annotations[ANNOTATIONS.requires];
    const next = new Map<string, string>();
    if (value !== undefined && !pod.deleting) {
      try {
        for (const r of parseRequires(value)) next.set(r.api, r.range);
      } catch {
        // invalid: the registry reports it; this pod counts as no caller
      }
    }
    const before = this.#byPod.get(podKey) ?? new Map<string, string>();
    for (const [api, range] of before) {
      if (next.get(api) === range) continue;
      this.#byKey.get(reconcileKey(pod.namespace, api))?.delete(pod.name);
      touched.add(reconcileKey(pod.namespace, api));
    }
    for (const [api, range] of next) {
      if (before.get(api) === range) continue;
      const key = reconcileKey(pod.namespace, api);
      let m = this.#byKey.get(key);
      if (m === undefined) this.#byKey.set(key, (m = new Map()));
      m.set(pod.name, range);
      touched.add(key);
    }
    if (next.size === 0) this.#byPod.delete(podKey);
    else this.#byPod.set(podKey, next);
  }

  #drop(namespace: string, name: string, touched: Set<string>): void {
    const podKey = `${namespace}/${name}`;
    for (const api of this.#byPod.get(podKey)?.keys() ?? []) {
      const key = reconcileKey(namespace, api);
      const m = this.#byKey.get(key);
      m?.delete(name);
      if (m?.size === 0) this.#byKey.delete(key);
      touched.add(key);
    }
    this.#byPod.delete(podKey);
  }

  #announce(touched: Set<string>): void {
    for (const key of touched) {
      if (this.#byKey.get(key)?.size === 0) this.#byKey.delete(key);
    }
    if (touched.size > 0) this.emit('change', [...touched]);
  }
}
