// The one retry backoff of sidecar and controller: capped exponential, jittered downwards.
// Attempt n (from 0) waits min(maxMs, initialMs × factor^n) less up to `jitter` of it, so a
// delay is never above the cap and, with jitter < 1, never 0. Each user keeps its own numbers
// (reconnects, call retries, ejection penalties, discovery streams, the pod informer, work queues).
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** 0..1: how much of each delay may be randomised away (0: none; 0.5, as linkerd: "equal jitter"). */
  jitter: number;
  factor?: number;
}

/** The delay before retry `attempt` (0 = the first retry); `random` in [0, 1) for tests. */
export function backoffDelayMs(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  // the exponent is capped so that a long outage cannot overflow to Infinity (0 × Infinity is NaN)
  const base = Math.min(o.maxMs, o.initialMs * (o.factor ?? 2) ** Math.min(attempt, 64));
  return o.jitter === 0 ? base : base * (1 - o.jitter * random());
}

/** One retrying thing's attempt count: next() is the delay before the next retry, reset() after a success. */
export class Backoff {
  readonly #o: BackoffOptions;
  #attempt = 0;

  constructor(o: BackoffOptions) {
    this.#o = o;
  }

  next(): number {
    return backoffDelayMs(this.#attempt++, this.#o);
  }

  reset(): void {
    this.#attempt = 0;
  }

  /** Retries since the last reset (each next() counts one). */
  get attempts(): number {
    return this.#attempt;
  }
}
