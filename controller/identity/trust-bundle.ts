// The trust bundle ConfigMap `qbasis-root-ca` (key `ca.crt`: the mesh root's PEM) kept in every
// namespace with injected pods, which mount it (the webhook adds the volume). Level-based: a key is a
// namespace, and a pass reads the ConfigMap and writes only when it is missing or differs (an update
// carries the resourceVersion read). Passes run on the leader only, when a namespace gains its first
// injected pod, when this replica becomes leader, and again every resync period (someone may have
// edited or deleted it). A namespace that loses its last injected pod keeps its ConfigMap (a public
// certificate; deleting it would need the delete verb).
import type { Logger } from 'pino';
import { logResults, WorkQueue } from '../kube/work-queue.ts';
import type { MeshPods } from './mesh-pods.ts';

export const TRUST_BUNDLE_CONFIGMAP = 'qbasis-root-ca';
export const TRUST_BUNDLE_KEY = 'ca.crt';

export interface ConfigMapApi {
  request<T = unknown>(method: 'GET' | 'POST' | 'PUT', path: string, opts?: { body?: unknown; timeoutMs?: number }): Promise<T>;
}

interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

export interface TrustBundleOptions {
  api: ConfigMapApi;
  pods: MeshPods;
  /** The PEM every sidecar trusts (the root; old and new during a rotation). */
  bundle: () => string;
  isLeader: () => boolean;
  log: Logger;
  resyncMs: number;
}

export class TrustBundleReconciler {
  readonly queue: WorkQueue;
  readonly #o: TrustBundleOptions;
  readonly #log: Logger;
  readonly #onNamespace = (ns: string): void => this.queue.add(ns);

  constructor(o: TrustBundleOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'trust-bundle' });
    this.queue = new WorkQueue((ns) => this.#reconcile(ns), { workers: 2, baseDelayMs: 200, maxDelayMs: 30_000, onResult: logResults(this.#log) });
  }

  start(): void {
    this.#o.pods.on('namespace', this.#onNamespace);
    this.enqueueAll();
  }

  /** Every namespace with injected pods (a new leader, a new bundle). */
  enqueueAll(): void {
    for (const ns of this.#o.pods.injectedNamespaces()) this.queue.add(ns);
  }

  async stop(): Promise<void> {
    this.#o.pods.off('namespace', this.#onNamespace);
    await this.queue.stop();
  }

  async #reconcile(ns: string): Promise<{ requeueAfterMs?: number } | void> {
    const again = this.#o.resyncMs > 0 ? { requeueAfterMs: this.#o.resyncMs } : undefined;
    if (!this.#o.isLeader()) return;
    if (!this.#o.pods.injectedNamespaces().includes(ns)) return;
    const bundle = this.#o.bundle();
    const base = `/api/v1/namespaces/${encodeURIComponent(ns)}/configmaps`;
    let cm: ConfigMap | undefined;
    try {
      cm = await this.#o.api.request<ConfigMap>('GET', `${base}/${TRUST_BUNDLE_CONFIGMAP}`, { timeoutMs: 10_000 });
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
    if (cm === undefined) {
      await this.#o.api.request('POST', base, {
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: TRUST_BUNDLE_CONFIGMAP, namespace: ns, labels: { 'app.kubernetes.io/managed-by': 'qbasis' } }, data: { [TRUST_BUNDLE_KEY]: bundle } },
        timeoutMs: 10_000,
      });
      this.#log.info({ namespace: ns, configMap: TRUST_BUNDLE_CONFIGMAP }, `trust bundle ConfigMap created in ${ns}`);
      return again;
    }
    if (cm.data?.[TRUST_BUNDLE_KEY] === bundle) return again;
    await this.#o.api.request('PUT', `${base}/${TRUST_BUNDLE_CONFIGMAP}`, { body: { ...cm, apiVersion: 'v1', kind: 'ConfigMap', data: { ...cm.data, [TRUST_BUNDLE_KEY]: bundle } }, timeoutMs: 10_000 });
    this.#log.info({ namespace: ns, configMap: TRUST_BUNDLE_CONFIGMAP }, `trust bundle ConfigMap updated in ${ns}`);
    return again;
  }
}
