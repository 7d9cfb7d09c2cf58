// Kubernetes mode's pod source: list then watch pods (all namespaces, or each configured one),
// keep only pods with qbasis.io/* annotations, and feed the sink. Like client-go's reflector:
// a watch that ends is resumed from the last resourceVersion; 410 Gone (or an expired list
// continue token) relists; any other error backs off (proto/backoff.ts: 200 ms doubling to 30 s,
// up to a quarter less at random) and retries.
// Nothing here ever gives up: a controller must not die of a watch error.
import type { Logger } from 'pino';
import { Backoff, type BackoffOptions } from '../../proto/backoff.ts';
import { podInfoFromObject } from '../pod-info.ts';
import type { PodInfo, PodSink, PodSource } from '../pod-source.ts';
import { KubeApiError, type KubeClient } from './kube-client.ts';

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
  onEvent?: (kind: 'list' | 'watch-start' | 'watch-end' | 'error' | 'relist', scope: string, detail?: unknown) => void;
}

interface PodList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

interface WatchObject {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
  code?: number;
  reason?: string;
  message?: string;
}

class GoneError extends Error {}

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

export class InformerPodSource implements PodSource {
  readonly kind = 'kubernetes';
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #scopes: string[];
  readonly #pageSize: number;
  readonly #backoff: BackoffOptions;
  readonly #inactivityMs: number;
  readonly #onEvent: InformerPodSourceOptions['onEvent'];
  /** Qbasis pods by scope, then by namespace/name. */
  readonly #store = new Map<string, Map<string, PodInfo>>();
  readonly #listed = new Set<string>();
  readonly #aborts = new Set<AbortController>();
  readonly #loops: Promise<void>[] = [];
  #sink: PodSink | undefined;
  #synced = false;
  #stopped = false;
  #initialResolve: (() => void) | undefined;
  #lastListMs = 0;

  constructor(opts: InformerPodSourceOptions) {
    this.#client = opts.client;
    this.#log = opts.logger.child({ component: 'pod-informer' });
    const ns = (opts.namespaces ?? []).filter((n) => n !== '');
    this.#scopes = ns.length === 0 ? [''] : [...new Set(ns)];
    this.#pageSize = opts.pageSize ?? 1000;
    this.#backoff = { initialMs: opts.backoffBaseMs ?? 200, maxMs: opts.backoffMaxMs ?? 30_000, jitter: 0.25 };
    this.#inactivityMs = opts.watchInactivityMs ?? 120_000;
    this.#onEvent = opts.onEvent;
  }

  synced(): boolean {
    return this.#synced;
  }

  /** Pods held (qbasis-annotated only). */
  size(): number {
    let n = 0;
    for (const m of this.#store.values()) n += m.size;
    return n;
  }

  start(sink: PodSink): Promise<void> {
    this.#sink = sink;
    this.#stopped = false;
    const initial = new Promise<void>((resolve) => (this.#initialResolve = resolve));
    for (const scope of this.#scopes) {
      this.#store.set(scope, new Map());
      this.#loops.push(this.#run(scope));
    }
    return initial;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const a of this.#aborts) a.abort();
    await Promise.allSettled(this.#loops);
    this.#sink = undefined;
  }

  #path(scope: string): string {
    return scope === '' ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(scope)}/pods`;
  }

  async #run(scope: string): Promise<void> {
    const log = this.#log.child({ scope: scope === '' ? '*' : scope });
    let rv = '';
    const backoff = new Backoff(this.#backoff);
    while (!this.#stopped) {
      try {
        if (rv === '') {
          this.#listed.delete(scope);
          const listStart = performance.now();
          rv = await this.#list(scope);
          this.#lastListMs = performance.now() - listStart;
          this.#listed.add(scope);
          this.#onEvent?.('list', scope);
          if (!this.#synced && this.#scopes.every((s) => this.#listed.has(s))) {
            this.#synced = true;
            log.info({ pods: this.size(), listMs: Math.round(this.#lastListMs), uptimeMs: Math.round(performance.now()) }, 'pod cache synced');
            this.#initialResolve?.();
          }
        }
        const started = Date.now();
        const result = await this.#watch(scope, rv, log);
        rv = result.rv;
        backoff.reset();
        // A watch the server closes at once, again and again, would spin: pace it.
        if (Date.now() - started < 1000 && !this.#stopped) await this.#sleep(500);
      } catch (err) {
        if (this.#stopped) break;
        if (err instanceof GoneError || (err instanceof KubeApiError && err.status === 410) || (err as { statusCode?: unknown }).statusCode === 410) {
          log.info({ err: (err as Error).message }, 'resource version expired; relisting');
          this.#onEvent?.('relist', scope);
          rv = '';
          continue;
        }
        const delay = backoff.next();
        log.warn({ err: err instanceof Error ? err.message : String(err), failures: backoff.attempts, retryInMs: Math.round(delay) }, 'pod list/watch failed; retrying');
        this.#onEvent?.('error', scope, err);
        await this.#sleep(delay);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const ac = new AbortController();
      const done = (): void => {
        clearTimeout(timer);
        this.#aborts.delete(ac);
        resolve();
      };
      const timer = setTimeout(done, ms);
      ac.signal.addEventListener('abort', done, { once: true });
      this.#aborts.add(ac);
    });
  }

  async #list(scope: string): Promise<string> {
    const fresh = new Map<string, PodInfo>();
    let cont: string | undefined;
    let rv = '';
    do {
      // resourceVersion=0 (as client-go's reflector does): served from the API server's watch cache,
      // not a quorum read of etcd; the watch then continues from the list's resourceVersion.
      const page = await this.#client.request<PodList>('GET', this.#path(scope), {
        query: cont === undefined ? { resourceVersion: '0', limit: this.#pageSize } : { limit: this.#pageSize, continue: cont },
        timeoutMs: 60_000,
      });
      for (const item of page.items ?? []) {
        let info: PodInfo;
        try {
          info = podInfoFromObject({ kind: 'Pod', ...(item as object) });
        } catch {
          continue;
        }
        if (hasQbasisAnnotation(info)) fresh.set(keyOf(info.namespace, info.name), info);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont !== undefined && !this.#stopped);
    this.#store.set(scope, fresh);
    // The sink's resync takes the complete set across scopes: anything else is gone.
    const all: PodInfo[] = [];
    for (const m of this.#store.values()) for (const p of m.values()) all.push(p);
    this.#sink?.resync(all);
    return rv;
  }

  /** One watch from `rv`; resolves with the last resourceVersion seen when the server ends it. */
  #watch(scope: string, rv: string, log: Logger): Promise<{ rv: string }> {
    return new Promise((resolve, reject) => {
      let last = rv;
      let gone = false;
      let settled = false;
      const ac = new AbortController();
      this.#aborts.add(ac);
      let req: AbortController | undefined;
      const finish = (err: unknown): void => {
        if (settled) return;
        settled = true;
        this.#aborts.delete(ac);
        req?.abort();
        this.#onEvent?.('watch-end', scope, err);
        if (gone) reject(new GoneError('watch: 410 Gone'));
        else if (err !== null && err !== undefined && !(err instanceof Error && err.name === 'TimeoutError') && !this.#stopped) reject(err);
        else resolve({ rv: last });
      };
      ac.signal.addEventListener('abort', () => finish(null));
      const store = this.#store.get(scope)!;
      const onEvent = (type: string, obj: WatchObject): void => {
        if (settled) return;
        if (type === 'ERROR') {
          if (obj.code === 410) gone = true;
          else log.warn({ code: obj.code, reason: obj.reason, message: obj.message }, 'watch error event');
          return;
        }
        const objRv = obj.metadata?.resourceVersion;
        if (objRv !== undefined && objRv !== '') last = objRv;
        if (type === 'BOOKMARK') return;
        this.#apply(store, type, obj);
      };
      this.#onEvent?.('watch-start', scope);
      const watcher = this.#client.watcher(this.#inactivityMs);
      watcher
        .watch(
          this.#path(scope),
          { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
          onEvent,
          (err: unknown) => finish(err),
        )
        .then(
          (c) => {
            req = c;
            if (settled) c.abort();
          },
          (err: unknown) => finish(err ?? new Error('watch failed to start')),
        );
    });
  }

  #apply(store: Map<string, PodInfo>, type: string, obj: unknown): void {
    let info: PodInfo;
    try {
      info = podInfoFromObject({ kind: 'Pod', ...(obj as object) });
    } catch {
      return;
    }
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
