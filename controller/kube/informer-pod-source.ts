// Kubernetes mode's pod source: list then watch pods (all namespaces, or each configured one;
// reflector.ts does the list/watch/relist/backoff), keep only pods with qbasis.io/* annotations, and
// feed the sink. Nothing here ever gives up: a controller must not die of a watch error.
import type { Logger } from 'pino';
import { podInfoFromObject } from '../pod-info.ts';
import type { PodInfo, PodSink, PodSource } from '../pod-source.ts';
import type { KubeClient } from './kube-client.ts';
import { Reflector, type ReflectorEvent } from './reflector.ts';

export interface InformerPodSourceOptions {
  client: KubeClient;
  logger: Logger;
  /** Namespaces to watch; empty or undefined: all namespaces. */
  namespaces?: readonly string[];
  /** Page size of the initial list and relists. */
  pageSize?: number;
  /** Retry backoff after a failed list or watch: first delay and cap (defaults 200 and 30000). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** A watch with no bytes (not even a bookmark) for this long is restarted. */
  watchInactivityMs?: number;
  /** Called after each completed (re)list of a scope, and on each watch (re)connect/failure. */
  onEvent?: (kind: ReflectorEvent, scope: string, detail?: unknown) => void;
}

function hasQbasisAnnotation(pod: PodInfo): boolean {
  for (const k in pod.annotations) if (k.startsWith('qbasis.io/')) return true;
  return false;
}

function keyOf(ns: string, name: string): string {
  return `${ns}/${name}`;
}

function samePod(a: PodInfo, b: PodInfo): boolean {
  return (
    a.uid === b.uid &&
    a.ip === b.ip &&
    a.ready === b.ready &&
    a.deleting === b.deleting &&
    JSON.stringify(a.annotations) === JSON.stringify(b.annotations) &&
    JSON.stringify(a.labels) === JSON.stringify(b.labels)
  );
}

function podInfo(obj: unknown): PodInfo | undefined {
  try {
    return podInfoFromObject({ kind: 'Pod', ...(obj as object) });
  } catch {
    return undefined;
  }
}

export class InformerPodSource implements PodSource {
  readonly kind = 'kubernetes';
  readonly #log: Logger;
  readonly #reflector: Reflector;
  /** Qbasis pods by scope, then by namespace/name. */
  readonly #store = new Map<string, Map<string, PodInfo>>();
  #sink: PodSink | undefined;

  constructor(opts: InformerPodSourceOptions) {
    this.#log = opts.logger.child({ component: 'pod-informer' });
    this.#reflector = new Reflector({
      client: opts.client,
      logger: this.#log,
      what: 'pod',
      path: (scope) => (scope === '' ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(scope)}/pods`),
      namespaces: opts.namespaces,
      pageSize: opts.pageSize,
      backoffBaseMs: opts.backoffBaseMs,
      backoffMaxMs: opts.backoffMaxMs,
      watchInactivityMs: opts.watchInactivityMs,
      onEvent: opts.onEvent,
      onSynced: (listMs) => this.#log.info({ pods: this.size(), listMs: Math.round(listMs), uptimeMs: Math.round(performance.now()) }, 'pod cache synced'),
      handler: {
        listed: (scope, items) => this.#listed(scope, items),
        event: (scope, type, obj) => this.#apply(scope, type, obj),
      },
    });
  }

  synced(): boolean {
    return this.#reflector.synced();
  }

  /** Pods held (qbasis-annotated only). */
  size(): number {
    let n = 0;
    for (const m of this.#store.values()) n += m.size;
    return n;
  }

  start(sink: PodSink): Promise<void> {
    this.#sink = sink;
    for (const scope of this.#reflector.scopes) this.#store.set(scope, new Map());
    return this.#reflector.start();
  }

  async stop(): Promise<void> {
    await this.#reflector.stop();
    this.#sink = undefined;
  }

  #listed(scope: string, items: unknown[]): void {
    const fresh = new Map<string, PodInfo>();
    for (const item of items) {
      const info = podInfo(item);
      if (info !== undefined && hasQbasisAnnotation(info)) fresh.set(keyOf(info.namespace, info.name), info);
    }
    this.#store.set(scope, fresh);
    // The sink's resync takes the complete set across scopes: anything else is gone.
    const all: PodInfo[] = [];
    for (const m of this.#store.values()) for (const p of m.values()) all.push(p);
    this.#sink?.resync(all);
  }

  #apply(scope: string, type: string, obj: unknown): void {
    const info = podInfo(obj);
    if (info === undefined) return;
    const store = this.#store.get(scope)!;
    const key = keyOf(info.namespace, info.name);
    const had = store.get(key);
    if (type === 'DELETED' || !hasQbasisAnnotation(info)) {
      if (had !== undefined) {
        store.delete(key);
        this.#sink?.delete({ namespace: info.namespace, name: info.name });
      }
      return;
    }
    if (had !== undefined && samePod(had, info)) return;
    store.set(key, info);
    this.#sink?.upsert(info);
  }
}
