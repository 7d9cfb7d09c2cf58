// What this pod provides (--provides), looked up by :path; per path the ids, the response frame header
// template and bound metrics; per caller range a cached verdict (ranges repeat: one semver check each).
import type { ApiVersion } from '../../proto/annotations.ts';
import type { BasisHeader } from '../../proto/basis/index.ts';
import { apiId, CODEC_VERSION, methodId } from '../../proto/basis/index.ts';
import { acceptsRequest, isRange, satisfies, versionSegment, type Compatibility } from '../../proto/versions.ts';
import { CallMetrics, type Metrics } from '../metrics.ts';
import { splitPath } from '../grpc-path.ts';

export interface ProvidedPath {
  path: string;
  api: string;
  method: string;
  version: string;
  apiId: number;
  methodId: number;
  /** Header of response frames (provider's version); gzip and length change per message. */
  header: BasisHeader;
  metrics: CallMetrics;
  /** Verdicts per frame minimum (major << 8 | minor) + range, cached. */
  verdicts: Map<string, Compatibility>;
}

const MAX_PATHS_PER_API = 1024;
const MAX_VERDICTS = 256;
const MAX_RANGE_CHARS = 256;

export class Provided {
  readonly list: readonly ApiVersion[];
  readonly #versions = new Map<string, string>();
  readonly #paths = new Map<string, ProvidedPath>();
  readonly #perApi = new Map<string, number>();
  readonly #metrics: Metrics;

  constructor(list: readonly ApiVersion[], metrics: Metrics) {
    this.list = list;
    this.#metrics = metrics;
    for (const p of list) this.#versions.set(p.api, p.version);
  }

  describe(): string {
    return this.list.length === 0 ? 'nothing' : this.list.map((p) => `${p.api}@${p.version}`).join(', ');
  }

  /** 'bad-path' | 'not-provided' | the entry. */
  lookup(path: string | undefined): ProvidedPath | 'bad-path' | { notProvided: string } {
    if (path === undefined) return 'bad-path';
    const hit = this.#paths.get(path);
    if (hit !== undefined) return hit;
    const parts = splitPath(path);
    if (parts === undefined) return 'bad-path';
    const version = this.#versions.get(parts.api);
    if (version === undefined) return { notProvided: parts.api };
    const seg = versionSegment(version);
    const entry: ProvidedPath = {
      path, api: parts.api, method: parts.method, version, apiId: apiId(parts.api), methodId: methodId(parts.method),
      header: { codec: CODEC_VERSION, kind: 'response', gzip: false, encoding: 'protobuf', apiId: apiId(parts.api), methodId: methodId(parts.method), major: seg.major, minor: seg.minor, length: 0 },
      metrics: new CallMetrics(this.#metrics.methods('inbound', parts.api), parts.method),
      verdicts: new Map(),
    };
    const n = this.#perApi.get(parts.api) ?? 0;
    if (n < MAX_PATHS_PER_API) {
      this.#perApi.set(parts.api, n + 1);
      this.#paths.set(path, entry);
    }
    return entry;
  }
}

export type RangeVerdict = { ok: true } | { ok: false; malformed: boolean; reason: string };

/** The caller's full range (header), checked once per path and range. */
export function rangeVerdict(e: ProvidedPath, range: string): RangeVerdict {
  const key = `r${range}`;
  let v = e.verdicts.get(key) as RangeVerdict | undefined;
  if (v === undefined) {
    if (range.length > MAX_RANGE_CHARS || !isRange(range)) {
      v = { ok: false, malformed: true, reason: `qbasis-range '${range.slice(0, MAX_RANGE_CHARS)}' is not a semver range; expected a range such as ^1.2 or >=1.2 <3` };
    } else {
      v = satisfies(e.version, range) ? { ok: true } : { ok: false, malformed: false, reason: `${e.api}: this pod provides ${e.version}, outside the caller's range ${range}` };
    }
    if (e.verdicts.size < MAX_VERDICTS) e.verdicts.set(key, v);
  }
  return v;
}

/** A frame's minimum version (and the range when sent), checked once per distinct pair. */
export function frameVerdict(e: ProvidedPath, major: number, minor: number, range: string | undefined): Compatibility {
  const key = `f${(major << 8) | minor}/${range ?? ''}`;
  let v = e.verdicts.get(key);
  if (v === undefined) {
    const c = acceptsRequest(e.version, { major, minor }, range);
    v = c.ok ? c : { ok: false, reason: `${e.api}: frame asks for at least ${major}.${minor}; ${c.reason}` };
    if (e.verdicts.size < MAX_VERDICTS) e.verdicts.set(key, v);
  }
  return v;
}
