// Keeps one BasisService per (namespace, API) matching the endpoint registry, in the
// controller-runtime manner: changes only enqueue keys `namespace/api`; each pass re-reads the
// registry and the caller index and makes the object exist (server-side apply of labels + spec)
// with the status computed by basis-service-status.ts, or deletes it when the API's last pod is
// gone. Only the leader writes; on becoming leader every key is enqueued, and a periodic resync
// lists managed BasisServices to catch objects changed or deleted behind our back.
import type { Logger } from 'pino';
import { QbasisError } from '../../proto/errors.ts';
import type { BasisServicesHealth } from '../console/mesh-snapshot.ts';
import { ApiIdCollisions } from '../api-id-collisions.ts';
import type { EndpointRegistry, ApiChange } from '../endpoint-registry.ts';
import type { PolicyChange, PolicyStore } from '../policy-store.ts';
import {
  API_ANNOTATION,
  BSVC_KIND,
  BSVC_PLURAL,
  GROUP,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  VERSION,
  basisServiceLabels,
  basisServiceName,
  computeStatus,
  sameStatus,
  statusEqual,
  type BasisServiceStatus,
} from './basis-service-status.ts';
import type { CallerIndex } from './caller-index.ts';
import { isNotFound, type KubeClient } from './kube-client.ts';
import { reconcileKey, splitKey } from './reconcile-key.ts';
import { logResults, WorkQueue, type ReconcileResult } from './work-queue.ts';

export const FIELD_MANAGER = 'qbasis-controller';

const SHOWN_NOT_SYNCED = 50;


interface BasisServiceObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { api?: string };
  status?: Partial<BasisServiceStatus>;
}

interface Known {
  name: string;
  api: string;
  generation: number;
  status: Partial<BasisServiceStatus> | undefined;
}

export interface ReconcilerMetrics {
  onResult(key: string, result: ReconcileResult, durationMs: number): void;
  onWrite(kind: 'apply' | 'status' | 'delete'): void;
}

export interface BasisServiceReconcilerOptions {
  client: KubeClient;
  registry: EndpointRegistry;
  callers: CallerIndex;
  /** BasisPolicies in force: status.policy names the one that applies; absent: never any. */
  policies?: PolicyStore;
  logger: Logger;
  /** The pod cache is synced (writes wait for it). */
  synced: () => boolean;
  /** Only the leader writes. */
  isLeader: () => boolean;
  /** Namespaces watched; empty: all (limits the periodic resync's list). */
  namespaces?: readonly string[];
  workers?: number;
  resyncMs?: number;
  metrics?: ReconcilerMetrics;
}

export class BasisServiceReconciler {
  readonly #o: BasisServiceReconcilerOptions;
  readonly #log: Logger;
  readonly queue: WorkQueue;
  /** namespace/api → what we last wrote or read. */
  readonly #known = new Map<string, Known>();
  /** api → namespaces where it had endpoints at the last change (to find namespaces it left). */
  readonly #apiNamespaces = new Map<string, Set<string>>();
  /** APIs with endpoints or callers now, by API id. */
  readonly #ids = new ApiIdCollisions();
  #resyncTimer: NodeJS.Timeout | undefined;
  /** Keys of the managed objects the last resync listed: a key outside it needs no GET before its create. */
  #listed: Set<string> | undefined;
  #started = false;
  /** Keys whose last pass failed, and why (the console's health block). */
  readonly #failing = new Map<string, string>();

  readonly #onRegistryChange = (c: ApiChange): void => {
    const now = new Set(this.#o.registry.list(c.api).map((e) => e.namespace));
    const before = this.#apiNamespaces.get(c.api) ?? new Set<string>();
    for (const ns of new Set([...now, ...before])) this.queue.add(reconcileKey(ns, c.api));
    if (now.size === 0) this.#apiNamespaces.delete(c.api);
    else this.#apiNamespaces.set(c.api, now);
    this.#trackId(c.api, now.size > 0 || this.#o.callers.apis().has(c.api));
  };

  readonly #onCallersChange = (keys: string[]): void => {
    for (const key of keys) {
      const { namespace, api } = splitKey(key);
      // only APIs that have (or had) a BasisService here; a caller alone makes none
      if (this.#apiNamespaces.get(api)?.has(namespace) || this.#known.has(key)) this.queue.add(key);
      this.#trackId(api, this.#apiNamespaces.has(api) || this.#o.callers.apis().has(api));
    }
  };

  // which policy applies can change for every namespace the API has a BasisService in
  readonly #onPolicyChange = (c: PolicyChange): void => {
    for (const ns of this.#apiNamespaces.get(c.api) ?? []) this.queue.add(reconcileKey(ns, c.api));
  };

  constructor(opts: BasisServiceReconcilerOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'bsvc-reconciler' });
    const logged = logResults(this.#log);
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      workers: opts.workers ?? 4,
      baseDelayMs: 50,
      maxDelayMs: 30_000,
      onResult: (key, result, durationMs, err) => {
        opts.metrics?.onResult(key, result, durationMs);
        if (result === 'error' || result === 'terminal') this.#failing.set(key, err instanceof Error ? err.message : String(err));
        else this.#failing.delete(key);
        logged(key, result, durationMs, err);
      },
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#o.registry.on('change', this.#onRegistryChange);
    this.#o.callers.on('change', this.#onCallersChange);
    this.#o.policies?.on('change', this.#onPolicyChange);
    for (const api of this.#o.registry.apis()) this.#onRegistryChange({ api, version: this.#o.registry.version(api) });
    for (const api of this.#o.callers.apis()) this.#trackId(api, true);
    const resyncMs = this.#o.resyncMs ?? 60_000;
    if (resyncMs > 0) {
      this.#resyncTimer = setInterval(() => void this.resync(), resyncMs);
      this.#resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#o.registry.off('change', this.#onRegistryChange);
    this.#o.callers.off('change', this.#onCallersChange);
    this.#o.policies?.off('change', this.#onPolicyChange);
    if (this.#resyncTimer !== undefined) clearInterval(this.#resyncTimer);
    await this.queue.stop();
  }

  /**
   * BasisServices whose Synced condition is not True (as last written or read), or whose last write
   * failed: the console's health block. Only the leader writes, so only its answer is complete.
   */
  health(): BasisServicesHealth {
    const notSynced: BasisServicesHealth['notSynced'] = [];
    let total = 0;
    const add = (key: string, why: string): void => {
      total++;
      if (notSynced.length < SHOWN_NOT_SYNCED) {
        const { namespace, api } = splitKey(key);
        notSynced.push({ namespace, name: basisServiceName(api), api, why: why.slice(0, 300) });
      }
    };
    for (const [key, k] of this.#known) {
      const failed = this.#failing.get(key);
      const c = k.status?.conditions?.find((x) => x.type === 'Synced');
      if (failed !== undefined) add(key, `writing it failed (retried with backoff): ${failed}`);
      else if (c === undefined) add(key, 'no Synced condition yet');
      else if (c.status !== 'True') add(key, `Synced=${c.status} ${c.reason}: ${c.message}`);
    }
    for (const [key, err] of this.#failing) if (!this.#known.has(key)) add(key, `creating it failed (retried with backoff): ${err}`);
    return { writer: this.#o.isLeader(), total: this.#known.size, notSynced, notSyncedTotal: total };
  }

  /** Enqueue every key the cache implies plus every managed object that exists (leader start, resync). */
  async resync(): Promise<void> {
    if (!this.#o.isLeader()) return;
    try {
      const listed = new Set<string>();
      for (const obj of await this.#listManaged()) {
        const api = obj.spec?.api;
        if (api === undefined) continue;
        const key = reconcileKey(obj.metadata.namespace, api);
        listed.add(key);
        const known = this.#known.get(key);
        this.#known.set(key, { name: obj.metadata.name, api, generation: obj.metadata.generation ?? 1, status: obj.status });
        // changed behind our back, or unknown to us (e.g. left by a previous leader): look again
        if (known === undefined || !sameStatus(known.status, obj.status)) this.queue.add(key);
      }
      // objects we thought existed but were deleted by someone: forget them so the pass recreates them
      for (const key of [...this.#known.keys()]) {
        if (listed.has(key)) continue;
        this.#known.delete(key);
        this.queue.add(key);
      }
      this.#listed = listed;
    } catch (err) {
      this.#listed = undefined;
      this.#log.warn({ err: errText(err) }, 'resync list of BasisServices failed');
    }
    // After the list, so passes find what exists in #known instead of asking one by one.
    for (const [api, nss] of this.#apiNamespaces) for (const ns of nss) this.queue.add(reconcileKey(ns, api));
  }

  async #listManaged(): Promise<BasisServiceObject[]> {
    const nss = (this.#o.namespaces ?? []).filter((n) => n !== '');
    const paths = nss.length === 0 ? [`/apis/${GROUP}/${VERSION}/${BSVC_PLURAL}`] : nss.map((ns) => this.#collection(ns));
    const out: BasisServiceObject[] = [];
    for (const p of paths) {
      let cont: string | undefined;
      do {
        const page = await this.#o.client.request<{ items?: BasisServiceObject[]; metadata?: { continue?: string } }>('GET', p, {
          query: { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`, limit: 500, continue: cont },
        });
        out.push(...(page.items ?? []));
        cont = page.metadata?.continue || undefined;
      } while (cont !== undefined);
    }
    return out;
  }

  #trackId(api: string, present: boolean): void {
    if (!(present ? this.#ids.add(api) : this.#ids.remove(api))) return;
    // a collision appeared or went away: every API with this id must say so
    for (const other of this.#ids.collidesWith(api)) {
      for (const ns of this.#apiNamespaces.get(other) ?? []) this.queue.add(reconcileKey(ns, other));
    }
  }

  #collection(namespace: string): string {
    return `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${BSVC_PLURAL}`;
  }

  #objectPath(namespace: string, name: string): string {
    return `${this.#collection(namespace)}/${encodeURIComponent(name)}`;
  }

  /** One pass for `namespace/api`. Public for tests. */
  async reconcile(key: string): Promise<void> {
    if (!this.#o.isLeader() || !this.#o.synced()) return;
    const { namespace, api } = splitKey(key);
    const name = basisServiceName(api);
    const endpoints = this.#o.registry.list(api, namespace);
    const known = this.#known.get(key);

    if (endpoints.length === 0) {
      await this.#delete(namespace, name, api, key);
      return;
    }

    let current: Known | undefined = known;
    if (current === undefined) {
      const absent = this.#listed !== undefined && !this.#listed.has(key);
      try {
        current = await this.#ensure(namespace, name, api, absent);
      } catch (err) {
        if (absent) this.#listed?.add(key); // the retry looks before it writes
        throw err;
      }
      this.#known.set(key, current);
    }
    const collidesWith = this.#ids.collidesWith(api);
    const providers = [...new Set(this.#o.registry.list(api).map((e) => e.namespace))];
    const policy = this.#o.policies?.forCaller(api, namespace, providers);
    const status = computeStatus(
      {
        api,
        endpoints: endpoints.map((e) => ({ pod: e.pod, ip: e.address, port: e.port, version: e.version, codecs: e.codecs, ready: e.ready, ...(e.identity ? { identity: e.identity } : {}) })),
        callers: this.#o.callers.callers(namespace, api),
        collidesWith,
        synced: this.#o.synced(),
        generation: current.generation,
        policy: policy === undefined ? undefined : `${policy.namespace}/${policy.name}`,
      },
      current.status,
      new Date(),
    );
    if (statusEqual(current.status, status)) return;
    try {
      await this.#writeStatus(namespace, name, status, current);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // deleted behind our back: create it again, then write the status
      this.#known.delete(key);
      this.#listed?.delete(key);
      current = await this.#ensure(namespace, name, api);
      await this.#writeStatus(namespace, name, status, current);
    }
    this.#known.set(key, { ...current, status });
    this.#log.info(
      { key, ready: status.ready, versions: status.versionSummary, policy: status.policy, conditions: status.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ') },
      'BasisService status written',
    );
  }

  /** Server-side apply of metadata + spec; refuses (terminal) to take over an object for another API. */
  async #ensure(namespace: string, name: string, api: string, knownAbsent = false): Promise<Known> {
    let existing: BasisServiceObject | undefined;
    // Known absent from the last list: apply straight away (an object made meanwhile for another API
    // still cannot be taken over: spec.api is immutable, the apply fails and the retry GETs it).
    if (!knownAbsent) {
      try {
        existing = await this.#o.client.request<BasisServiceObject>('GET', this.#objectPath(namespace, name));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (existing !== undefined) {
      if (existing.spec?.api !== api) {
        throw new QbasisError(
          'QB_RECONCILE_TERMINAL',
          `BasisService ${namespace}/${name} exists for API '${existing.spec?.api ?? '(none)'}', not '${api}'; names derive from the API lower-cased, so two APIs differing only in case collide: rename one`,
          { details: { namespace, name, api, existingApi: existing.spec?.api } },
        );
      }
      if (existing.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) {
        throw new QbasisError(
          'QB_RECONCILE_TERMINAL',
          `BasisService ${namespace}/${name} for ${api} is not managed by qbasis (label ${MANAGED_BY_LABEL} is not ${MANAGED_BY}); delete it or add the label to let the controller keep it`,
          { details: { namespace, name, api } },
        );
      }
      return { name, api, generation: existing.metadata.generation ?? 1, status: existing.status };
    }
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: BSVC_KIND,
      metadata: { name, namespace, labels: basisServiceLabels(api), annotations: { [API_ANNOTATION]: api } },
      spec: { api },
    };
    const applied = await this.#o.client.request<BasisServiceObject>('PATCH', this.#objectPath(namespace, name), {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
    this.#o.metrics?.onWrite('apply');
    return { name, api, generation: applied.metadata.generation ?? 1, status: applied.status };
  }

  async #writeStatus(namespace: string, name: string, status: BasisServiceStatus, current: Known): Promise<void> {
    // A merge patch replaces the lists wholesale and needs no resourceVersion: the leader is
    // the only writer of status, and each pass writes the complete status from the cache.
    const got = await this.#o.client.request<BasisServiceObject>('PATCH', `${this.#objectPath(namespace, name)}/status`, {
      // null removes a field a merge patch would otherwise leave in place
      body: { status: { ...status, policy: status.policy ?? null, identities: status.identities ?? null } },
      contentType: 'application/merge-patch+json',
    });
    this.#o.metrics?.onWrite('status');
    const gen = got.metadata.generation ?? current.generation;
    if (gen !== status.observedGeneration) {
      // spec changed since we read it (someone edited it); the next pass records the new generation
      current.generation = gen;
      this.queue.addAfter(reconcileKey(namespace, current.api), 10);
    }
  }

  async #delete(namespace: string, name: string, api: string, key: string): Promise<void> {
    try {
      const obj = await this.#o.client.request<BasisServiceObject>('GET', this.#objectPath(namespace, name));
      if (obj.spec?.api !== api || obj.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) {
        this.#known.delete(key);
        return; // not ours to delete
      }
      await this.#o.client.request('DELETE', this.#objectPath(namespace, name), {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: obj.metadata.uid } },
      });
      this.#o.metrics?.onWrite('delete');
      this.#log.info({ key, name }, 'BasisService deleted: no pod provides the API here any more');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.#known.delete(key);
  }
}


function errText(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  return err instanceof Error ? err.message : String(err);
}
