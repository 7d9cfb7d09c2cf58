// Peak-sensitive latency EWMA (as tower/linkerd's PeakEwma): a slower sample takes over at once, faster
// samples blend in with a weight that grows with the time since the last one, and an idle estimate
// decays so that an endpoint nobody picked gets tried again.
export const DEFAULT_DECAY_MS = 10_000;

export class PeakEwma {
  readonly #decayMs: number;
  #estimateMs: number;
  #at: number;
  #observed = false;

  constructor(defaultRttMs: number, now: number, decayMs = DEFAULT_DECAY_MS) {
    this.#estimateMs = defaultRttMs;
    this.#at = now;
    this.#decayMs = decayMs;
  }

  observe(rttMs: number, now: number): void {
    if (!this.#observed) {
      // The first real sample replaces the default outright.
      this.#observed = true;
      this.#estimateMs = rttMs;
    } else if (rttMs > this.#estimateMs) {
      this.#estimateMs = rttMs;
    } else {
      const w = Math.exp(-(now - this.#at) / this.#decayMs);
      this.#estimateMs = this.#estimateMs * w + rttMs * (1 - w);
    }
    this.#at = now;
  }

  /** The estimate as of `now` (idle time decays it toward zero). */
  value(now: number): number {
    const idle = now - this.#at;
    return idle > 0 ? this.#estimateMs * Math.exp(-idle / this.#decayMs) : this.#estimateMs;
  }

  get observed(): boolean {
    return this.#observed;
  }
}
