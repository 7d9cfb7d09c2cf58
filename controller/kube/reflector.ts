// List then watch one kind of object (all namespaces, or each configured one), like client-go's
// reflector: a watch that ends is resumed from the last resourceVersion; 410 Gone (or an expired list
// continue token) relists; any other error backs off (proto/backoff.ts: 200 ms doubling to 30 s, up
// to a quarter less at random) and retries. Nothing here ever gives up: a controller must not die of
// a watch error. What the objects mean is the handler's business (informer-pod-source.ts for pods,
// policy-informer.ts for BasisPolicies).
import type { Logger } from 'pino';
import { Backoff, type BackoffOptions } from '../../proto/backoff.ts';
import { isNotFound, KubeApiError, type KubeClient } from './kube-client.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ReflectorHandler {
  /** A complete list of one scope (every page): anything of the scope not in `items` is gone. */
  listed(scope: string, items: unknown[]): void;
  /** One watch event of one scope. */
  event(scope: string, type: WatchEventType, obj: unknown): void;
}

export type ReflectorEvent = 'list' | 'watch-start' | 'watch-end' | 'error' | 'relist';

export interface ReflectorOptions {
  client: KubeClient;
  logger: Logger;
  /** What is listed, for log lines: 'pod', 'BasisPolicy'. */
  what: string;
  /** The collection's path for one scope ('' = all namespaces). */
  path: (scope: string) => string;
  /** Namespaces to watch; empty or undefined: all namespaces. */
  namespaces?: readonly string[] | undefined;
  handler: ReflectorHandler;
  /** Page size of the initial list and relists. */
  pageSize?: number | undefined;
  /** Retry backoff after a failed list or watch: first delay and cap (defaults 200 and 30000). */
  backoffBaseMs?: number | undefined;
  backoffMaxMs?: number | undefined;
  /** A watch with no bytes (not even a bookmark) for this long is restarted. */
  watchInactivityMs?: number | undefined;
  /**
   * A 404 on a scope's first list means the kind is not served (its CRD is not installed): count the
   * scope as listed and empty, and list again every 5 s until it is served. Once a scope has
   * listed, a 404 is retried like any error and what it holds stays: an API server that is starting
   * answers 404 for a CRD's kind until its handler is up, and that must not empty the cache (so after
   * the CRD is deleted, the last objects stay until a restart). Without it, a 404 is always an error.
   */
  notServedIsEmpty?: boolean;
  /** Called after each completed (re)list of a scope, and on each watch (re)connect/failure. */
  onEvent?: ((kind: ReflectorEvent, scope: string, detail?: unknown) => void) | undefined;
  /** Once, when every scope has been listed. */
  onSynced?: (listMs: number) => void;
}

interface ObjectList {
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

/** The kind is not served: listed as empty, looked at again later. */
class NotServed extends Error {}

/** How often a kind that is not served is listed again. */
const NOT_SERVED_RETRY_MS = 5000;

export class Reflector {
  readonly #o: ReflectorOptions;
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #scopes: string[];
  readonly #pageSize: number;
  readonly #backoff: BackoffOptions;
  readonly #inactivityMs: number;
  readonly #listed = new Set<string>();
  /** Scopes whose last list found the kind not served (warned once per spell). */
  readonly #notServed = new Set<string>();
  /** Scopes that have listed the kind once. */
  readonly #served = new Set<string>();
  readonly #aborts = new Set<AbortController>();
  readonly #loops: Promise<void>[] = [];
  #synced = false;
  #stopped = false;
  #initialResolve: (() => void) | undefined;

  constructor(opts: ReflectorOptions) {
    this.#o = opts;
    this.#client = opts.client;
    this.#log = opts.logger;
    const ns = (opts.namespaces ?? []).filter((n) => n !== '');
    this.#scopes = ns.length === 0 ? [''] : [...new Set(ns)];
    this.#pageSize = opts.pageSize ?? 1000;
    this.#backoff = { initialMs: opts.backoffBaseMs ?? 200, maxMs: opts.backoffMaxMs ?? 30_000, jitter: 0.25 };
    this.#inactivityMs = opts.watchInactivityMs ?? 120_000;
  }

  /** The scopes watched ('' = all namespaces). */
  get scopes(): readonly string[] {
    return this.#scopes;
  }

  /** Every scope has completed its first list. */
  synced(): boolean {
    return this.#synced;
  }

  /** Starts one loop per scope; resolves when every scope has been listed once. */
  start(): Promise<void> {
    this.#stopped = false;
    const initial = new Promise<void>((resolve) => (this.#initialResolve = resolve));
    for (const scope of this.#scopes) this.#loops.push(this.#run(scope));
    return initial;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const a of this.#aborts) a.abort();
    await Promise.allSettled(this.#loops);
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
          if (this.#notServed.delete(scope)) log.info(`${this.#o.what} is served now`);
          this.#markListed(scope, performance.now() - listStart);
        }
        const started = Date.now();
        const result = await this.#watch(scope, rv, log);
        rv = result.rv;
        backoff.reset();
        // A watch the server closes at once, again and again, would spin: pace it.
        if (Date.now() - started < 1000 && !this.#stopped) await this.#sleep(500);
      } catch (err) {
        if (this.#stopped) break;
        if (err instanceof NotServed) {
          if (!this.#notServed.has(scope)) log.warn({ retryInMs: NOT_SERVED_RETRY_MS }, `${this.#o.what} is not served by the API server (is its CRD installed?); none are held until it is`);
          this.#notServed.add(scope);
          this.#markListed(scope, 0);
          await this.#sleep(NOT_SERVED_RETRY_MS);
          continue;
        }
        if (err instanceof GoneError || (err instanceof KubeApiError && err.status === 410) || (err as { statusCode?: unknown }).statusCode === 410) {
          log.info({ err: (err as Error).message }, 'resource version expired; relisting');
          this.#o.onEvent?.('relist', scope);
          rv = '';
          continue;
        }
        const delay = backoff.next();
        log.warn({ err: err instanceof Error ? err.message : String(err), failures: backoff.attempts, retryInMs: Math.round(delay) }, `${this.#o.what} list/watch failed; retrying`);
        this.#o.onEvent?.('error', scope, err);
        await this.#sleep(delay);
      }
    }
  }

  #markListed(scope: string, listMs: number): void {
    this.#listed.add(scope);
    this.#o.onEvent?.('list', scope);
    if (!this.#synced && this.#scopes.every((s) => this.#listed.has(s))) {
      this.#synced = true;
      this.#o.onSynced?.(listMs);
      this.#initialResolve?.();
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
    const items: unknown[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      // resourceVersion=0 (as client-go's reflector does): served from the API server's watch cache,
      // not a quorum read of etcd; the watch then continues from the list's resourceVersion.
      let page: ObjectList;
      try {
        page = await this.#client.request<ObjectList>('GET', this.#o.path(scope), {
          query: cont === undefined ? { resourceVersion: '0', limit: this.#pageSize } : { limit: this.#pageSize, continue: cont },
          timeoutMs: 60_000,
        });
      } catch (err) {
        if (this.#o.notServedIsEmpty === true && isNotFound(err) && !this.#served.has(scope)) {
          this.#o.handler.listed(scope, []);
          throw new NotServed();
        }
        throw err;
      }
      for (const item of page.items ?? []) items.push(item);
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont !== undefined && !this.#stopped);
    this.#served.add(scope);
    this.#o.handler.listed(scope, items);
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
        this.#o.onEvent?.('watch-end', scope, err);
        if (gone) reject(new GoneError('watch: 410 Gone'));
        else if (err !== null && err !== undefined && !(err instanceof Error && err.name === 'TimeoutError') && !this.#stopped) reject(err);
        else resolve({ rv: last });
      };
      ac.signal.addEventListener('abort', () => finish(null));
      const onEvent = (type: string, obj: WatchObject): void => {
        if (settled) return;
        if (type === 'ERROR') {
          if (obj.code === 410) gone = true;
          else log.warn({ code: obj.code, reason: obj.reason, message: obj.message }, 'watch error event');
          return;
        }
        const objRv = obj.metadata?.resourceVersion;
        if (objRv !== undefined && objRv !== '') last = objRv;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.#o.handler.event(scope, type, obj);
      };
      this.#o.onEvent?.('watch-start', scope);
      const watcher = this.#client.watcher(this.#inactivityMs);
      watcher
        .watch(
          this.#o.path(scope),
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
}
