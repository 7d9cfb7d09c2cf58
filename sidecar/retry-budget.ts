// A retry budget (as linkerd's and Finagle's): over a sliding 10 s window, retries may be at most
// `percent` % of the calls plus `minPerSecond` per second. Ten one-second buckets, so the cost per
// call is two additions and the window slides without timers.
const BUCKETS = 10;
const BUCKET_MS = 1000;

export class RetryBudget {
  readonly #ratio: number;
  readonly #minPerWindow: number;
  readonly #calls = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);
  #bucket = 0;
  #bucketStart = 0;

  constructor(percent: number, minPerSecond: number, now: number) {
    this.#ratio = percent / 100;
    this.#minPerWindow = minPerSecond * (BUCKETS * BUCKET_MS) / 1000;
    this.#bucketStart = now;
  }

  /** A call started (it earns the budget its share). */
  call(now: number): void {
    this.#advance(now);
    this.#calls[this.#bucket]!++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(now: number): boolean {
    this.#advance(now);
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      calls += this.#calls[i]!;
      retries += this.#retries[i]!;
    }
    if (retries + 1 > calls * this.#ratio + this.#minPerWindow) return false;
    this.#retries[this.#bucket]!++;
    return true;
  }

  #advance(now: number): void {
    let steps = Math.floor((now - this.#bucketStart) / BUCKET_MS);
    if (steps <= 0) return;
    this.#bucketStart += steps * BUCKET_MS;
    if (steps > BUCKETS) steps = BUCKETS;
    for (let i = 0; i < steps; i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS;
      this.#calls[this.#bucket] = 0;
      this.#retries[this.#bucket] = 0;
    }
  }
}
