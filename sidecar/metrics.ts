// Prometheus metrics of one sidecar. The hot path only touches pre-bound label children (one counter
// inc and one histogram observe per call); gauges about endpoints and discovery are computed at scrape.
import client from 'prom-client';
import { registerDefaultMetrics } from '../proto/default-metrics.ts';

export type Direction = 'outbound' | 'inbound';

type Inc = { inc(v?: number): void };
type Obs = { observe(v: number): void };

const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL',
  'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? String(code);
}

/** The label children of one (direction, api, method): one counter per status, one histogram. */
class Bound {
  readonly #m: Metrics;
  readonly #labels: [Direction, string, string];
  readonly #byStatus: (Inc | undefined)[] = [];
  readonly #duration: Obs;

  constructor(m: Metrics, direction: Direction, api: string, method: string) {
    this.#m = m;
    this.#labels = [direction, api, method];
    this.#duration = m.duration.labels(direction, api, method);
  }

  record(status: number, seconds: number): void {
    let c = this.#byStatus[status];
    if (c === undefined) {
      const [d, a, mth] = this.#labels;
      c = this.#m.requests.labels(d, a, mth, statusName(status));
      this.#byStatus[status] = c;
    }
    c.inc();
    this.#duration.observe(seconds);
  }
}

/** Most method names kept per (direction, API); the rest are counted as `other`. */
export const MAX_METHOD_LABELS = 256;
export const OTHER_METHOD = 'other';

/**
 * The method label values of one (direction, API). Method names come from the wire, so a name is
 * kept only once the far end has answered a call to it with anything but UNIMPLEMENTED (the app
 * knows it), and at most MAX_METHOD_LABELS of them: made-up names cannot grow the label sets.
 */
export class ApiMethods {
  readonly #m: Metrics;
  readonly #direction: Direction;
  readonly #api: string;
  readonly #known = new Map<string, Bound>();
  readonly other: Bound;

  constructor(m: Metrics, direction: Direction, api: string) {
    this.#m = m;
    this.#direction = direction;
    this.#api = api;
    this.other = new Bound(m, direction, api, OTHER_METHOD);
  }

  known(method: string): Bound | undefined {
    return this.#known.get(method);
  }

  admit(method: string): Bound | undefined {
    let b = this.#known.get(method);
    if (b === undefined && this.#known.size < MAX_METHOD_LABELS && method !== OTHER_METHOD) {
      b = new Bound(this.#m, this.#direction, this.#api, method);
      this.#known.set(method, b);
    }
    return b;
  }
}

/** Metrics of the calls to one path; the method label is its own name once admitted, else `other`. */
export class CallMetrics {
  readonly #methods: ApiMethods;
  readonly #method: string;
  #own: Bound | undefined;

  constructor(methods: ApiMethods, method: string) {
    this.#methods = methods;
    this.#method = method;
    this.#own = methods.known(method);
  }

  /** `answered`: the status came from the far end (the app, or the peer on its behalf), not from this sidecar. */
  done(status: number, seconds: number, answered: boolean): void {
    let b = this.#own;
    if (b === undefined) {
      if (answered && status !== UNIMPLEMENTED) b = this.#own = this.#methods.admit(this.#method);
      else b = this.#methods.known(this.#method);
      b ??= this.#methods.other;
    }
    b.record(status, seconds);
  }
}

const UNIMPLEMENTED = 12;

export interface EndpointCounts { api: string; state: string; count: number }

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'direction' | 'api' | 'method' | 'status'>;
  readonly duration: client.Histogram<'direction' | 'api' | 'method'>;
  readonly framesRefused: client.Counter<'direction' | 'reason'>;
  readonly retries: client.Counter<'api' | 'reason'>;
  readonly ejections: client.Counter<'api'>;
  #endpointSource: () => EndpointCounts[] = () => [];
  #discoverySource: () => string = () => 'connecting';
  #inflightSource: () => { outbound: number; inbound: number } = () => ({ outbound: 0, inbound: 0 });
  readonly #refused = new Map<string, Inc>();
  readonly #apis = new Map<string, ApiMethods>();

  constructor() {
    const registers = [this.registry];
    this.requests = new client.Counter({ name: 'qbasis_sidecar_requests_total', help: 'Calls completed, by direction, API, method and gRPC status', labelNames: ['direction', 'api', 'method', 'status'], registers });
    this.duration = new client.Histogram({
      name: 'qbasis_sidecar_request_duration_seconds', help: 'Call duration as seen by the sidecar (first byte in to last byte out)',
      labelNames: ['direction', 'api', 'method'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.framesRefused = new client.Counter({ name: 'qbasis_sidecar_frames_refused_total', help: 'Frames or calls refused, by direction and reason (a QB_* code)', labelNames: ['direction', 'reason'], registers });
    this.retries = new client.Counter({ name: 'qbasis_sidecar_retries_total', help: 'Calls retried on another endpoint (nothing had been processed)', labelNames: ['api', 'reason'], registers });
    this.ejections = new client.Counter({ name: 'qbasis_sidecar_endpoint_ejections_total', help: 'Endpoints ejected after consecutive failures', labelNames: ['api'], registers });
    const self = this;
    new client.Gauge({
      name: 'qbasis_sidecar_endpoints', help: 'Endpoints known from discovery, by API and state (ready, ejected, backoff, incompatible)',
      labelNames: ['api', 'state'], registers,
      collect() {
        this.reset();
        for (const e of self.#endpointSource()) this.set({ api: e.api, state: e.state }, e.count);
      },
    });
    new client.Gauge({
      name: 'qbasis_sidecar_discovery_connected', help: 'Discovery stream state: 1 for the current state',
      labelNames: ['state'], registers,
      collect() {
        const s = self.#discoverySource();
        for (const st of ['connecting', 'connected', 'disconnected']) this.set({ state: st }, st === s ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'qbasis_sidecar_inflight', help: 'Calls in flight, by direction', labelNames: ['direction'], registers,
      collect() {
        const f = self.#inflightSource();
        this.set({ direction: 'outbound' }, f.outbound);
        this.set({ direction: 'inbound' }, f.inbound);
      },
    });
    registerDefaultMetrics(this.registry);
  }

  sources(s: { endpoints: () => EndpointCounts[]; discovery: () => string; inflight: () => { outbound: number; inbound: number } }): void {
    this.#endpointSource = s.endpoints;
    this.#discoverySource = s.discovery;
    this.#inflightSource = s.inflight;
  }

  /** Callers pass only bounded API names: provided or declared ones, or `undeclared`. */
  methods(direction: Direction, api: string): ApiMethods {
    const key = `${direction}/${api}`;
    let m = this.#apis.get(key);
    if (m === undefined) {
      m = new ApiMethods(this, direction, api);
      this.#apis.set(key, m);
    }
    return m;
  }

  refused(direction: Direction, reason: string): void {
    const key = `${direction}/${reason}`;
    let c = this.#refused.get(key);
    if (c === undefined) {
      c = this.framesRefused.labels(direction, reason);
      this.#refused.set(key, c);
    }
    c.inc();
  }
}
