// Pods in, per-API endpoint sets out. Every change to an API's set bumps that
// API's version and emits 'change'; the discovery server and (in Kubernetes mode)
// the BasisService reconciler read from here. Pods with invalid qbasis
// annotations are left out and reported once per distinct problem.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { parsePodAnnotations, type AnnotationProblem } from '../proto/annotations.ts';
import { DEFAULT_INBOUND_PORT, endpointChanged, endpointKey, type Endpoint } from '../proto/discovery.ts';
import { DEFAULT_TRUST_DOMAIN, spiffeId } from '../proto/identity.ts';
import { ApiIdCollisions, apiIdHex } from './api-id-collisions.ts';
import type { PodInfo, PodRef, PodSink } from './pod-source.ts';

export interface RejectedPod {
  namespace: string;
  name: string;
  uid: string;
  problems: AnnotationProblem[];
}

export interface ApiChange {
  api: string;
  version: number;
}

export interface EndpointRegistryOptions {
  logger: Logger;
  /** The sidecar's inbound port on every pod (DESIGN.md: 15006). */
  inboundPort?: number;
  /** Codec versions assumed for a pod that does not declare its own. */
  defaultCodecs?: number[];
  /** The trust domain of the endpoints' SPIFFE IDs (default cluster.local). */
  trustDomain?: string;
}

/**
 * Events:
 *  'change'   (c: ApiChange)      an API's endpoint set changed; c.version is its new version
 *  'rejected' (p: RejectedPod)    a pod's annotations are invalid (once per distinct problem set)
 *  'accepted' (ref: PodRef)       a previously rejected pod is valid again or gone
 */
export class EndpointRegistry extends EventEmitter implements PodSink {
  readonly #log: Logger;
  readonly #inboundPort: number;
  readonly #defaultCodecs: number[];
  readonly #trustDomain: string;
  readonly #pods = new Map<string, PodInfo>();
  /** api → (namespace/pod → endpoint) */
  readonly #byApi = new Map<string, Map<string, Endpoint>>();
  /** pod key → APIs it currently contributes to */
  readonly #podApis = new Map<string, Set<string>>();
  readonly #versions = new Map<string, number>();
  readonly #rejected = new Map<string, { pod: RejectedPod; signature: string }>();
  /** Every API ever seen (never forgotten: a collision is reported once). */
  readonly #ids = new ApiIdCollisions();

  constructor(opts: EndpointRegistryOptions) {
    super();
    this.#log = opts.logger.child({ component: 'registry' });
    this.#inboundPort = opts.inboundPort ?? DEFAULT_INBOUND_PORT;
    this.#defaultCodecs = opts.defaultCodecs ?? [1];
    this.#trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  }

  // --- PodSink ---

  upsert(pod: PodInfo): void {
    const changed = new Set<string>();
    this.#apply(pod, changed);
    this.#announce(changed);
  }

  delete(ref: PodRef): void {
    const changed = new Set<string>();
    this.#remove(endpointKey({ namespace: ref.namespace, pod: ref.name }), changed);
    this.#announce(changed);
  }

  resync(pods: PodInfo[]): void {
    const changed = new Set<string>();
    const keep = new Set(pods.map((p) => endpointKey({ namespace: p.namespace, pod: p.name })));
    for (const key of [...this.#pods.keys()]) if (!keep.has(key)) this.#remove(key, changed);
    for (const p of pods) this.#apply(p, changed);
    this.#announce(changed);
  }

  // --- reads ---

  /** Endpoints of `api`, sorted by namespace/pod; optionally one namespace only. Fresh array. */
  list(api: string, namespace?: string): Endpoint[] {
    const set = this.#byApi.get(api);
    if (set === undefined) return [];
    const out: Endpoint[] = [];
    for (const ep of set.values()) if (namespace === undefined || namespace === '' || ep.namespace === namespace) out.push(ep);
    return out.sort((a, b) => (endpointKey(a) < endpointKey(b) ? -1 : 1));
  }

  /** Version of `api`'s endpoint set: 0 until anything was known, then +1 per change. */
  version(api: string): number {
    return this.#versions.get(api) ?? 0;
  }

  /** APIs that currently have at least one endpoint. */
  apis(): string[] {
    return [...this.#byApi.keys()].sort();
  }

  /** Pods left out because of invalid annotations, with their problems. */
  rejected(): RejectedPod[] {
    return [...this.#rejected.values()].map((r) => r.pod);
  }

  pods(): PodInfo[] {
    return [...this.#pods.values()];
  }

  // --- internals ---

  #endpointsOf(pod: PodInfo, key: string): Map<string, Endpoint> {
    const out = new Map<string, Endpoint>();
    const hasQbasis = Object.keys(pod.annotations).some((k) => k.startsWith('qbasis.io/'));
    if (!hasQbasis) {
      this.#clearRejected(key);
      return out;
    }
    const parsed = parsePodAnnotations(pod.annotations);
    if (!parsed.ok) {
      this.#reject(pod, key, parsed.problems);
      return out;
    }
    this.#clearRejected(key);
    if (pod.ip === undefined) return out; // not routable yet; it appears once it has an IP
    const decl = parsed.value as typeof parsed.value & { codecs?: number[] };
    const codecs = decl.codecs !== undefined && decl.codecs.length > 0 ? [...decl.codecs] : [...this.#defaultCodecs];
    const identity = spiffeId({ trustDomain: this.#trustDomain, namespace: pod.namespace, serviceAccount: pod.serviceAccount });
    for (const p of decl.provides) {
      out.set(p.api, {
        pod: pod.name,
        namespace: pod.namespace,
        address: pod.ip,
        port: this.#inboundPort,
        version: p.version,
        codecs,
        // a terminating pod stays listed but not ready, so callers stop sending it new calls
        ready: pod.ready && !pod.deleting,
        identity,
      });
    }
    return out;
  }

  #apply(pod: PodInfo, changed: Set<string>): void {
    const key = endpointKey({ namespace: pod.namespace, pod: pod.name });
    this.#pods.set(key, pod);
    const next = this.#endpointsOf(pod, key);
    const before = this.#podApis.get(key) ?? new Set<string>();
    for (const api of before) {
      if (!next.has(api)) {
        this.#byApi.get(api)?.delete(key);
        changed.add(api);
      }
    }
    for (const [api, ep] of next) {
      let set = this.#byApi.get(api);
      if (set === undefined) {
        set = new Map();
        this.#byApi.set(api, set);
      }
      const old = set.get(key);
      if (old === undefined || endpointChanged(old, ep)) {
        set.set(key, ep);
        changed.add(api);
      }
    }
    if (next.size === 0) this.#podApis.delete(key);
    else this.#podApis.set(key, new Set(next.keys()));
  }

  #remove(key: string, changed: Set<string>): void {
    this.#pods.delete(key);
    this.#clearRejected(key);
    for (const api of this.#podApis.get(key) ?? []) {
      this.#byApi.get(api)?.delete(key);
      changed.add(api);
    }
    this.#podApis.delete(key);
  }

  /** Frames name an API by a 32-bit hash: two APIs with one id must be reported, not guessed between. */
  #checkId(api: string): void {
    if (!this.#ids.add(api)) return;
    const others = this.#ids.collidesWith(api);
    if (others.length > 0) {
      const names = [...others, api];
      this.#log.error(
        { code: 'QB_API_ID_COLLISION', apiId: `0x${apiIdHex(api)}`, apis: names },
        `APIs ${names.join(' and ')} share basis API id 0x${apiIdHex(api)}; sidecars cannot tell their frames apart (rename one API)`,
      );
    }
  }

  #announce(changed: Set<string>): void {
    for (const api of changed) {
      this.#checkId(api);
      if (this.#byApi.get(api)?.size === 0) this.#byApi.delete(api);
      const v = (this.#versions.get(api) ?? 0) + 1;
      this.#versions.set(api, v);
    }
    for (const api of changed) this.emit('change', { api, version: this.version(api) } satisfies ApiChange);
  }

  #reject(pod: PodInfo, key: string, problems: AnnotationProblem[]): void {
    const signature = JSON.stringify(problems.map((p) => [p.annotation, p.value, p.expected]));
    if (this.#rejected.get(key)?.signature === signature) return; // already reported
    const rejected: RejectedPod = { namespace: pod.namespace, name: pod.name, uid: pod.uid, problems };
    this.#rejected.set(key, { pod: rejected, signature });
    for (const p of problems) {
      this.#log.error(
        { code: 'QB_INVALID_ANNOTATION', pod: pod.name, namespace: pod.namespace, annotation: p.annotation, value: p.value, expected: p.expected },
        `pod ${pod.namespace}/${pod.name} left out of discovery: annotation ${p.annotation}="${p.value}" is invalid (expected: ${p.expected})`,
      );
    }
    this.emit('rejected', rejected);
  }

  #clearRejected(key: string): void {
    const r = this.#rejected.get(key);
    if (r === undefined) return;
    this.#rejected.delete(key);
    this.#log.info({ pod: r.pod.name, namespace: r.pod.namespace }, 'pod annotations are valid again (or the pod is gone)');
    this.emit('accepted', { namespace: r.pod.namespace, name: r.pod.name } satisfies PodRef);
  }
}
