// Failure accrual (as linkerd's): this many consecutive failures eject an endpoint for a penalty that
// doubles on each ejection (1 s → 1 min, jittered); when it expires the endpoint is on probation: one
// success restores it (and resets the penalty), one failure ejects it again.
import { Backoff } from '../proto/backoff.ts';

export const FAILURES_TO_EJECT = 7;

export type EjectionState = 'active' | 'ejected' | 'probation';

export class FailureAccrual {
  readonly #penalty = new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0.5 });
  readonly #threshold: number;
  #consecutive = 0;
  #until = 0;
  #probation = false;
  ejections = 0;

  constructor(threshold = FAILURES_TO_EJECT) {
    this.#threshold = threshold;
  }

  success(): void {
    this.#consecutive = 0;
    if (this.#probation) {
      this.#probation = false;
      this.#penalty.reset();
    }
  }

  /** Returns true when this failure ejected the endpoint. */
  failure(now: number): boolean {
    this.#consecutive++;
    if (now < this.#until) return false;
    if (this.#probation || this.#consecutive >= this.#threshold) {
      this.#until = now + this.#penalty.next();
      this.#probation = true;
      this.ejections++;
      return true;
    }
    return false;
  }

  /** Ejects at once: the endpoint itself said it is not what discovery claims (stale snapshot). */
  eject(now: number): void {
    if (now < this.#until) return;
    this.#until = now + this.#penalty.next();
    this.#probation = true;
    this.ejections++;
  }

  isEjected(now: number): boolean {
    return now < this.#until;
  }

  state(now: number): EjectionState {
    if (now < this.#until) return 'ejected';
    return this.#probation ? 'probation' : 'active';
  }

  get consecutiveFailures(): number {
    return this.#consecutive;
  }

  get ejectedUntil(): number {
    return this.#until;
  }
}
