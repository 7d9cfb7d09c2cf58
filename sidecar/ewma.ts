// Peak-sensitive latency EWMA (as tower/linkerd's PeakEwma): a slower sample takes over at once, faster
// samples blend in with a weight that grows with the time since the last one, and an idle estimate
// decays so that an endpoint nobody picked gets tried again. Slow start: a new endpoint's first answer
// is often cold (connection, JIT, caches) and, taken as a peak, would starve it for tens of seconds; so
// the first sample alone leaves the default in place, and until WARMUP_SAMPLES more have come the
// estimate is their median (Finagle's probation, in miniature). A slow endpoint is known by its second.
export const DEFAULT_DECAY_MS = 10_000;
export const WARMUP_SAMPLES = 3;

export class PeakEwma {
  readonly #decayMs: number;
  #estimateMs: number;
  #at: number;
  #observed = false;
  /** Samples while warming up (the first one included); null once warm. */
  #warmup: number[] | null = [];

  constructor(defaultRttMs: number, now: number, decayMs = DEFAULT_DECAY_MS) {
    this.#estimateMs = defaultRttMs;
    this.#at = now;
    this.#decayMs = decayMs;
  }

  observe(rttMs: number, now: number): void {
    const warm = this.#warmup;
    if (warm !== null) {
      warm.push(rttMs);
      this.#at = now;
      if (warm.length === 1) return;
      const after = warm.slice(1).sort((a, b) => a - b);
      this.#estimateMs = after[after.length >> 1]!;
      this.#observed = true;
      if (after.length >= WARMUP_SAMPLES) this.#warmup = null;
      return;
    }
    if (rttMs > this.#estimateMs) {
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
