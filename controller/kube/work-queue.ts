// A controller-runtime style work queue: keys, not events. A key added many times before a worker
// takes it runs once; a key never runs on two workers at once (added while running, it runs again
// after); failures retry with per-key exponential backoff; a terminal error is logged, not retried.
import type { Logger } from 'pino';
import { backoffDelayMs, type BackoffOptions } from '../../proto/backoff.ts';
import { isQbasisError } from '../../proto/errors.ts';

export type ReconcileResult = 'success' | 'requeue' | 'error' | 'terminal';

export interface ReconcileOutcome {
  /** Run the key again after this many ms even on success (periodic re-check). */
  requeueAfterMs?: number;
}

export type ReconcileFn = (key: string) => Promise<ReconcileOutcome | void>;

export interface WorkQueueOptions {
  /** Parallel workers (distinct keys only). */
  workers?: number;
  /** First retry delay after an error; doubles per consecutive failure of that key. */
  baseDelayMs?: number;
  /** Retry delay cap. */
  maxDelayMs?: number;
  /** Called after every pass (metrics, logs). */
  onResult?: (key: string, result: ReconcileResult, durationMs: number, err?: unknown) => void;
}

/**
 * An onResult that logs each pass by its key, as the reconcilers do: an error warns (it is retried), a
 * terminal error is an error line, anything else is debug.
 */
export function logResults(log: Logger): NonNullable<WorkQueueOptions['onResult']> {
  return (key, result, durationMs, err) => {
    const ms = Math.round(durationMs * 10) / 10;
    const fields = { key, result, durationMs: ms };
    const errText = err === undefined ? undefined : err instanceof Error ? err.message : String(err);
    if (result === 'error') log.warn({ ...fields, err: errText }, 'reconcile failed; will retry');
    else if (result === 'terminal') log.error({ ...fields, err: errText }, 'reconcile failed; not retrying');
    else log.debug(fields, 'reconciled');
  };
}

export class WorkQueue {
  readonly #reconcile: ReconcileFn;
  readonly #workers: number;
  readonly #backoff: BackoffOptions;
  readonly #onResult: WorkQueueOptions['onResult'];
  /** Keys waiting for a worker, FIFO (a Set keeps insertion order and removes duplicates). */
  readonly #ready = new Set<string>();
  /** Keys a worker is running now. */
  readonly #running = new Set<string>();
  /** Keys added while running: they go back to #ready when their pass ends. */
  readonly #dirty = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<string, number>();
  readonly #idleWaiters: Array<() => void> = [];
  #active = 0;
  #stopped = false;

  constructor(reconcile: ReconcileFn, options: WorkQueueOptions = {}) {
    this.#reconcile = reconcile;
    this.#workers = Math.max(1, options.workers ?? 4);
    // no jitter, as controller-runtime's per-item rate limiter
    this.#backoff = { initialMs: options.baseDelayMs ?? 5, maxMs: options.maxDelayMs ?? 60_000, jitter: 0 };
    this.#onResult = options.onResult;
  }

  /** Keys waiting (ready or dirty), not counting delayed retries. */
  get depth(): number {
    return this.#ready.size + this.#dirty.size;
  }

  /** Keys waiting on a backoff or requeue timer. */
  get delayed(): number {
    return this.#timers.size;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    const t = this.#timers.get(key);
    if (t !== undefined) {
      clearTimeout(t.timer);
      this.#timers.delete(key);
    }
    this.#ready.add(key);
    this.#pump();
  }

  /** Add after a delay; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return;
    if (delayMs <= 0) return this.add(key);
    if (this.#ready.has(key) || this.#dirty.has(key)) return;
    const at = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Backoff delay the next failure of this key would get (for tests and logs). */
  nextDelayMs(key: string): number {
    return backoffDelayMs(this.#failures.get(key) ?? 0, this.#backoff);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Resolves when nothing is ready, running or dirty (delayed keys do not count). */
  whenIdle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stop taking keys, drop timers; resolves once running passes end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t.timer);
    this.#timers.clear();
    this.#ready.clear();
    this.#dirty.clear();
    await this.whenIdle();
  }

  #isIdle(): boolean {
    return this.#ready.size === 0 && this.#running.size === 0 && this.#dirty.size === 0;
  }

  #pump(): void {
    while (!this.#stopped && this.#active < this.#workers && this.#ready.size > 0) {
      const key = this.#ready.values().next().value as string;
      this.#ready.delete(key);
      this.#running.add(key);
      this.#active++;
      void this.#run(key);
    }
    if (this.#isIdle()) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  async #run(key: string): Promise<void> {
    const started = performance.now();
    let result: ReconcileResult;
    let error: unknown;
    let requeueAfter: number | undefined;
    try {
      const outcome = await this.#reconcile(key);
      requeueAfter = outcome?.requeueAfterMs;
      result = requeueAfter !== undefined ? 'requeue' : 'success';
      this.#failures.delete(key);
    } catch (err) {
      error = err;
      if (isQbasisError(err, 'QB_RECONCILE_TERMINAL')) {
        result = 'terminal';
        this.#failures.delete(key);
      } else {
        result = 'error';
      }
    }
    const duration = performance.now() - started;
    this.#running.delete(key);
    this.#active--;
    try {
      this.#onResult?.(key, result, duration, error);
    } catch {
      // an observer must not break the queue
    }
    if (this.#dirty.delete(key)) {
      // New information arrived during the pass: run again now, whatever the result.
      this.#ready.add(key);
    } else if (result === 'error') {
      const delay = this.nextDelayMs(key);
      this.#failures.set(key, (this.#failures.get(key) ?? 0) + 1);
      this.addAfter(key, delay);
    } else if (requeueAfter !== undefined) {
      this.addAfter(key, requeueAfter);
    }
    this.#pump();
  }
}
