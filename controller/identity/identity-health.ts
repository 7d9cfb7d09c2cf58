// What the console's health block says of mesh identity: when the roots expire, what Certify signed and
// refused, and which pods' certificates are overdue for renewal (a sidecar renews at half-life ±10 %:
// one still on its certificate at three quarters of it has failed to renew, and its calls stop at expiry).
// Fed by Certify (one entry per pod, its latest certificate) and by the pod stream (gone pods are dropped).
import type { IdentityHealthView } from '../console/mesh-snapshot.ts';
import type { PodInfo, PodRef, PodSink } from '../pod-source.ts';

/** Pods tracked; past this the least recently certified are forgotten (bounded whatever the mesh's size). */
export const MAX_TRACKED_PODS = 50_000;
const SHOWN_OVERDUE = 50;
const OVERDUE_SHARE = 0.75;

interface Entry {
  identity: string;
  /** When it was signed (its notBefore is backdated for clock skew; sidecars renew at half of what is left from here). */
  issuedAt: number;
  notAfter: number;
}

export class IdentityHealth implements PodSink {
  #rootNotAfter = 0;
  #trusted: number[] = [];
  #lifetimeMs = 0;
  #issued = 0;
  readonly #refused = new Map<string, number>();
  /** namespace/pod → its latest certificate, least recently certified first. */
  readonly #pods = new Map<string, Entry>();

  roots(signingNotAfter: Date, trusted: readonly Date[], leafLifetimeMs: number): void {
    this.#rootNotAfter = signingNotAfter.getTime();
    this.#trusted = trusted.map((d) => d.getTime()).sort((a, b) => a - b);
    this.#lifetimeMs = leafLifetimeMs;
  }

  issued(namespace: string, pod: string, identity: string, notAfter: Date, issuedAt = Date.now()): void {
    this.#issued++;
    const key = `${namespace}/${pod}`;
    this.#pods.delete(key);
    this.#pods.set(key, { identity, issuedAt, notAfter: notAfter.getTime() });
    if (this.#pods.size > MAX_TRACKED_PODS) this.#pods.delete(this.#pods.keys().next().value!);
  }

  refused(code: string): void {
    this.#refused.set(code, (this.#refused.get(code) ?? 0) + 1);
  }

  upsert(pod: PodInfo): void {
    if (pod.deleting) this.delete(pod);
  }

  delete(ref: PodRef): void {
    this.#pods.delete(`${ref.namespace}/${ref.name}`);
  }

  resync(pods: PodInfo[]): void {
    const live = new Set(pods.filter((p) => !p.deleting).map((p) => `${p.namespace}/${p.name}`));
    for (const key of [...this.#pods.keys()]) if (!live.has(key)) this.#pods.delete(key);
  }

  view(now = Date.now()): IdentityHealthView {
    const overdue: (IdentityHealthView['overdue'][number])[] = [];
    let expired = 0;
    for (const [key, e] of this.#pods) {
      if (now < e.issuedAt + (e.notAfter - e.issuedAt) * OVERDUE_SHARE) continue;
      if (now >= e.notAfter) expired++;
      const slash = key.indexOf('/');
      overdue.push({ namespace: key.slice(0, slash), pod: key.slice(slash + 1), identity: e.identity, notAfter: e.notAfter });
    }
    overdue.sort((a, b) => a.notAfter - b.notAfter);
    return {
      rootNotAfter: this.#rootNotAfter,
      trustedRootsNotAfter: this.#trusted,
      leafLifetimeMs: this.#lifetimeMs,
      issued: this.#issued,
      refused: Object.fromEntries(this.#refused),
      overdue: overdue.slice(0, SHOWN_OVERDUE),
      overdueTotal: overdue.length,
      expiredTotal: expired,
    };
  }
}
