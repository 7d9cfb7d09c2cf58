// Outbound calls per required API and provided version, for the controller's console (traffic by
// version and caller). The hot path only adds to plain numbers on an object found when the call was
// sent (Balancer.counterFor), never allocates; the reporter reads the counts every 2 s.
// Bounded: one ApiCallCounts per --requires entry, at most MAX_VERSIONS_PER_API versions each (what
// discovery listed), the rest counted as `other`.

export const MAX_VERSIONS_PER_API = 64;
export const OTHER_VERSION = 'other';

/** One (API, provided version) of this sidecar: cumulative since it started. */
export interface VersionCalls {
  readonly version: string;
  calls: number;
  failed: number;
}

export class ApiCallCounts {
  readonly api: string;
  readonly range: string;
  readonly #byVersion = new Map<string, VersionCalls>();
  /** Calls counted for this API (any version): the reporter sends only when it moved. */
  total = 0;

  constructor(api: string, range: string) {
    this.api = api;
    this.range = range;
  }

  /** The counter of a provided version (made when discovery first lists it). */
  counter(version: string): VersionCalls {
    let c = this.#byVersion.get(version);
    if (c === undefined) {
      const v = this.#byVersion.size < MAX_VERSIONS_PER_API ? version : OTHER_VERSION;
      c = this.#byVersion.get(v);
      if (c === undefined) {
        c = { version: v, calls: 0, failed: 0 };
        this.#byVersion.set(v, c);
      }
    }
    return c;
  }

  /** A finished call that reached an endpoint of `c`'s version. */
  count(c: VersionCalls, status: number): void {
    c.calls++;
    if (status !== 0) c.failed++;
    this.total++;
  }

  /** Versions that took at least one call. */
  entries(): VersionCalls[] {
    const out: VersionCalls[] = [];
    for (const c of this.#byVersion.values()) if (c.calls > 0) out.push(c);
    return out;
  }
}
