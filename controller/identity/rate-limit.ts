// Certify's per-pod rate: a token bucket per pod (a burst, then a steady rate), so one pod cannot
// make the CA sign in a loop. Keys are authenticated pods, so an unauthenticated flood cannot spend
// a pod's budget; the number of buckets is bounded all the same (the oldest go first).

export class PerKeyRate {
  readonly #burst: number;
  readonly #perSecond: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(burst: number, perSecond: number, maxKeys = 100_000) {
    this.#burst = burst;
    this.#perSecond = perSecond;
    this.#maxKeys = maxKeys;
  }

  /** 0 when `key` may go now (and a token is taken), else ms until it may. */
  take(key: string, now = performance.now()): number {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.#burst, at: now };
      if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    } else {
      this.#buckets.delete(key); // re-inserted below: the map stays in least-recently-used order
      b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#perSecond);
      b.at = now;
    }
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / this.#perSecond) * 1000);
  }
}
