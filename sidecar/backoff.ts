// Capped exponential backoff with full jitter in [base*(1-jitter), base]: used for endpoint reconnects,
// call retries after connect errors, and ejection penalties.
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** 0..1: how much of each delay is randomised away (linkerd uses 0.5). */
  jitter: number;
  factor?: number;
}

export class Backoff {
  readonly #o: Required<BackoffOptions>;
  #attempt = 0;

  constructor(o: BackoffOptions) {
    this.#o = { factor: 2, ...o };
  }

  next(): number {
    const base = Math.min(this.#o.maxMs, this.#o.initialMs * this.#o.factor ** this.#attempt);
    this.#attempt++;
    return base * (1 - this.#o.jitter * Math.random());
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}
