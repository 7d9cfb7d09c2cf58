// Logical routing: a call's :path names the API and method; the API's required range (from --requires)
// picks the concrete balancer. Path lookups are cached (bounded) with everything a call needs pre-built:
// the request frame header template and the bound metrics.
import type { BasisHeader, Encoding } from '../../proto/basis/index.ts';
import { apiId, CODEC_VERSION, methodId } from '../../proto/basis/index.ts';
import { minVersion } from '../../proto/versions.ts';
import { Balancer } from '../balancer.ts';
import { splitPath } from '../grpc-path.ts';
import { CallMetrics, type Metrics } from '../metrics.ts';

export interface PathRoute {
  path: string;
  api: string;
  method: string;
  /** undefined: the API is not in --requires (the call is refused, see README). */
  balancer: Balancer | undefined;
  /** Frame header for this path's requests; only gzip and length change per message. */
  header: BasisHeader;
  metrics: CallMetrics;
}

const MAX_CACHED_PATHS = 4096;

export class Router {
  readonly balancers = new Map<string, Balancer>();
  readonly #paths = new Map<string, PathRoute>();
  readonly #metrics: Metrics;

  constructor(requires: readonly { api: string; range: string }[], metrics: Metrics) {
    this.#metrics = metrics;
    for (const r of requires) this.balancers.set(r.api, new Balancer(r.api, r.range));
  }

  /** undefined for a path that is not /package.Service/Method. */
  route(path: string | undefined, encoding: Encoding): PathRoute | undefined {
    if (path === undefined) return undefined;
    const hit = this.#paths.get(path);
    if (hit !== undefined && hit.header.encoding === encoding) return hit;
    const parts = splitPath(path);
    if (parts === undefined) return undefined;
    const balancer = this.balancers.get(parts.api);
    const min = balancer ? minVersion(balancer.range) : { major: 0, minor: 0 };
    const route: PathRoute = {
      path, api: parts.api, method: parts.method, balancer,
      header: { codec: CODEC_VERSION, kind: 'request', gzip: false, encoding, apiId: apiId(parts.api), methodId: methodId(parts.method), major: min.major, minor: min.minor, length: 0 },
      // Undeclared APIs share one API label; method labels are bounded by CallMetrics.
      metrics: new CallMetrics(this.#metrics.methods('outbound', balancer ? parts.api : 'undeclared'), parts.method),
    };
    if (balancer !== undefined || this.#paths.size < MAX_CACHED_PATHS) {
      if (this.#paths.size >= MAX_CACHED_PATHS) this.#paths.clear();
      this.#paths.set(path, route);
    }
    return route;
  }
}

export function encodingOf(contentType: string | string[] | undefined): Encoding | undefined {
  if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) return undefined;
  if (contentType.length === 16 || contentType === 'application/grpc+proto') return 'protobuf';
  if (contentType === 'application/grpc+json') return 'json';
  return 'opaque';
}
