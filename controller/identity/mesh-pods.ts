// Kubernetes mode's view of the pods for identity, fed from the informer (a PodSink teed beside the
// registry): Certify asks it whether a token's pod exists, is that object (uid) and is not terminating;
// the trust-bundle reconciler asks which namespaces hold injected pods. 'namespace' is emitted when a
// namespace gains its first injected pod (and on every resync, for each such namespace).
import { EventEmitter } from 'node:events';
import type { PodInfo, PodRef, PodSink } from '../pod-source.ts';

export interface MeshPod {
  uid: string;
  deleting: boolean;
  serviceAccount: string;
}

/** A pod the webhook injected (or asked to be). */
function injected(p: PodInfo): boolean {
  return p.annotations['qbasis.io/injected'] !== undefined || p.annotations['qbasis.io/inject'] === 'true';
}

export class MeshPods extends EventEmitter<{ namespace: [string] }> implements PodSink {
  readonly #pods = new Map<string, MeshPod>();
  /** Injected pods per namespace (names). */
  readonly #injected = new Map<string, Set<string>>();

  get(namespace: string, name: string): MeshPod | undefined {
    return this.#pods.get(`${namespace}/${name}`);
  }

  injectedNamespaces(): string[] {
    return [...this.#injected.keys()];
  }

  upsert(pod: PodInfo): void {
    this.#pods.set(`${pod.namespace}/${pod.name}`, { uid: pod.uid, deleting: pod.deleting, serviceAccount: pod.serviceAccount });
    if (injected(pod)) this.#mark(pod.namespace, pod.name);
    else this.#unmark(pod);
  }

  delete(ref: PodRef): void {
    this.#pods.delete(`${ref.namespace}/${ref.name}`);
    this.#unmark(ref);
  }

  resync(pods: PodInfo[]): void {
    this.#pods.clear();
    this.#injected.clear();
    for (const p of pods) {
      this.#pods.set(`${p.namespace}/${p.name}`, { uid: p.uid, deleting: p.deleting, serviceAccount: p.serviceAccount });
      if (injected(p)) {
        let s = this.#injected.get(p.namespace);
        if (s === undefined) this.#injected.set(p.namespace, (s = new Set()));
        s.add(p.name);
      }
    }
    for (const ns of this.#injected.keys()) this.emit('namespace', ns);
  }

  #mark(namespace: string, name: string): void {
    let s = this.#injected.get(namespace);
    if (s === undefined) this.#injected.set(namespace, (s = new Set()));
    const first = s.size === 0;
    s.add(name);
    if (first) this.emit('namespace', namespace);
  }

  #unmark(ref: PodRef): void {
    const s = this.#injected.get(ref.namespace);
    if (s === undefined) return;
    s.delete(ref.name);
    if (s.size === 0) this.#injected.delete(ref.namespace);
  }
}
