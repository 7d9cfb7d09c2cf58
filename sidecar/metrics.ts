// Prometheus metrics of one sidecar. The per-call path allocates nothing: a call adds to plain numbers in
// the `Bound` of its (direction, api, method) (a count per status, the duration histogram's bucket counts,
// sum and count), and refusals to one number per (direction, reason). prom-client sees those numbers only
// at scrape time: the two counters are ordinary prom-client counters refilled by their `collect()`, the
// histogram is a small registered metric (`CallDurations`) whose output is what prom-client's Histogram
// prints. Series come out in the order they first got a value, as prom-client's own children did.
// Gauges about endpoints and discovery are computed at scrape too.
import * as client from '../proto/prom.ts';

export type Direction = 'outbound' | 'inbound';

const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL',
  'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** Any status the far end sends that gRPC does not define (its grpc-status is wire input) shares one label. */
const OTHER_STATUS = STATUS_NAMES.length;

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? 'OTHER';
}

function statusIndex(code: number): number {
  return Number.isInteger(code) && code >= 0 && code < OTHER_STATUS ? code : OTHER_STATUS;
}

const DURATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// Layout of a Bound's duration numbers: one (non-cumulative) count per bucket, then the sum and the count.
const SUM = DURATION_BUCKETS.length;
const COUNT = SUM + 1;

/** One counter series: its labels (built once, handed to prom-client at scrape) and its value. */
interface CountSeries<L extends string> { readonly labels: Record<L, string>; n: number }

type CallLabel = 'direction' | 'api' | 'method' | 'status';
type DurationLabel = 'direction' | 'api' | 'method';

/** The series of requests_total and request_duration_seconds, each in the order it first got a value. */
class CallSeries {
  readonly counts: CountSeries<CallLabel>[] = [];
  readonly durations: Bound[] = [];
}

/** The numbers of one (direction, api, method): a count per status and the duration histogram. */
class Bound {
  readonly #series: CallSeries;
  /** The histogram's labels; also the start of every status series' labels. */
  readonly labels: Readonly<Record<DurationLabel, string>>;
  readonly #byStatus: (CountSeries<CallLabel> | undefined)[] = [];
  /** DURATION_BUCKETS.length bucket counts (not cumulative; above the last bound only COUNT grows), SUM, COUNT. */
  readonly durations = new Float64Array(COUNT + 1);

  constructor(m: Metrics, direction: Direction, api: string, method: string) {
    this.#series = m.calls;
    this.labels = { direction, api, method };
  }

  record(code: number, seconds: number): void {
    const status = statusIndex(code);
    let c = this.#byStatus[status];
    if (c === undefined) {
      c = { labels: { ...this.labels, status: statusName(status) }, n: 0 };
      this.#byStatus[status] = c;
      this.#series.counts.push(c);
    }
    c.n++;
    // prom-client's observe() threw on a non-finite value; a duration from performance.now() is never one.
    if (!Number.isFinite(seconds)) return;
    const d = this.durations;
    if (d[COUNT] === 0) this.#series.durations.push(this);
    for (let i = 0; i < SUM; i++) {
      if (seconds <= DURATION_BUCKETS[i]!) {
        d[i]!++;
        break;
      }
    }
    d[SUM]! += seconds;
    d[COUNT]!++;
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

  /** The method label this path's calls are counted under (its own name once admitted, else `other`). */
  get methodLabel(): string {
    return (this.#own ?? this.#methods.known(this.#method))?.labels.method ?? OTHER_METHOD;
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

/** A sample as prom-client's Registry reads it (see prom-client's histogram.js `getForPromString`). */
interface Sample {
  labels: Record<string, string | number>;
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  exemplar?: null;
}

/**
 * request_duration_seconds, read from the Bounds at scrape. prom-client 15's Histogram has no way to set
 * a series, so this is the small metric object its Registry takes through registerMetric(): name, help,
 * type, aggregator, get() (JSON, cluster) and getForPromString() (text), the same samples as a
 * prom-client Histogram with these labels and buckets would give. reset() does nothing: the numbers in
 * the Bounds are the truth (as for the counters, whose collect() refills them at every scrape).
 */
class CallDurations {
  readonly name = 'qbasis_sidecar_request_duration_seconds';
  readonly help = 'Call duration as seen by the sidecar (first byte in to last byte out)';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly DurationLabel[] = ['direction', 'api', 'method'];
  readonly buckets = DURATION_BUCKETS;
  readonly #series: CallSeries;

  constructor(series: CallSeries) {
    this.#series = series;
  }

  async getForPromString(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    const bucket = `${this.name}_bucket`, sum = `${this.name}_sum`, count = `${this.name}_count`;
    const values: Sample[] = [];
    for (const b of this.#series.durations) {
      const d = b.durations, sharedLabels = b.labels;
      let acc = 0;
      for (let i = 0; i < SUM; i++) {
        acc += d[i]!;
        values.push({ labels: { le: DURATION_BUCKETS[i]! }, sharedLabels, value: acc, metricName: bucket, exemplar: null });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels, value: d[COUNT]!, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels, value: d[SUM]!, metricName: sum },
        { labels: {}, sharedLabels, value: d[COUNT]!, metricName: count },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** As prom-client's Histogram.get(): the shared labels folded into each sample's labels. */
  async get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  reset(): void {}
}

/** Counter series of one label set, refilled from plain numbers at scrape (prom-client's `collect()`). */
function countsCounter<L extends string>(config: { name: string; help: string; labelNames: L[]; registers: client.Registry[] },
  series: readonly CountSeries<L>[]): client.Counter<L> {
  return new client.Counter<L>({
    ...config,
    collect() {
      this.reset();
      for (const s of series) this.inc(s.labels, s.n);
    },
  });
}

export class Metrics {
  readonly registry = new client.Registry();
  /** requests, duration and framesRefused are filled from plain numbers at scrape: an inc() on them is lost. */
  readonly requests: client.Counter<CallLabel>;
  readonly duration: CallDurations;
  readonly framesRefused: client.Counter<'direction' | 'reason'>;
  readonly retries: client.Counter<'api' | 'reason'>;
  readonly ejections: client.Counter<'api'>;
  readonly retryBudgetExhausted: client.Counter<'api'>;
  /** Labels come from the BasisPolicy (≤ 32 routes × 16 groups per API), never from the wire. */
  readonly splitDecisions: client.Counter<'api' | 'route' | 'versions'>;
  /** method: a label CallMetrics admitted (≤ 256 per API) or `other`. */
  readonly mirrorResults: client.Counter<'api' | 'method' | 'result'>;
  /** Mesh identity: peers whose certificate did not name the endpoint's identity (or did not chain to the bundle). */
  readonly peerIdentityMismatches: client.Counter;
  /** Mesh identity: Certify attempts by result (ok, failed). */
  readonly certificateRenewals: client.Counter<'result'>;
  /** Mesh identity: inbound TLS handshakes that failed (no client certificate, an unknown issuer, plain text). */
  readonly tlsHandshakeFailures: client.Counter;
  /** The numbers behind requests and duration, kept by the Bounds; read at scrape. */
  readonly calls = new CallSeries();
  #endpointSource: () => EndpointCounts[] = () => [];
  #discoverySource: () => string = () => 'connecting';
  #inflightSource: () => { outbound: number; inbound: number } = () => ({ outbound: 0, inbound: 0 });
  #certificateExpiry: (() => number | undefined) | undefined;
  readonly #refusedOutbound = new Map<string, CountSeries<'direction' | 'reason'>>();
  readonly #refusedInbound = new Map<string, CountSeries<'direction' | 'reason'>>();
  readonly #refusedSeries: CountSeries<'direction' | 'reason'>[] = [];
  readonly #apis = new Map<string, ApiMethods>();

  constructor() {
    const registers = [this.registry];
    const self = this;
    this.requests = countsCounter({ name: 'qbasis_sidecar_requests_total', help: 'Calls completed, by direction, API, method and gRPC status', labelNames: ['direction', 'api', 'method', 'status'], registers }, this.calls.counts);
    this.duration = new CallDurations(this.calls);
    // The Registry reads a metric by duck typing; its TypeScript type lists only prom-client's own classes.
    this.registry.registerMetric(this.duration as unknown as client.Metric);
    this.framesRefused = countsCounter({ name: 'qbasis_sidecar_frames_refused_total', help: 'Frames or calls refused, by direction and reason (a QB_* code)', labelNames: ['direction', 'reason'], registers }, this.#refusedSeries);
    this.retries = new client.Counter({ name: 'qbasis_sidecar_retries_total', help: 'Calls retried: on another endpoint when nothing had been processed (connect, refused, stale, app-unavailable), or by a BasisPolicy (status, per-try-timeout)', labelNames: ['api', 'reason'], registers });
    this.retryBudgetExhausted = new client.Counter({ name: 'qbasis_sidecar_retry_budget_exhausted_total', help: 'Retries a BasisPolicy allowed but its retry budget refused', labelNames: ['api'], registers });
    this.splitDecisions = new client.Counter({ name: 'qbasis_sidecar_split_decisions_total', help: 'Tries sent to a version group of a BasisPolicy split, by API, route index and the group\'s versions', labelNames: ['api', 'route', 'versions'], registers });
    this.mirrorResults = new client.Counter({ name: 'qbasis_sidecar_mirror_results_total', help: 'Shadow calls of a BasisPolicy mirror, by API, method and result (match, status_mismatch, payload_mismatch, shadow_failed, dropped)', labelNames: ['api', 'method', 'result'], registers });
    this.peerIdentityMismatches = new client.Counter({ name: 'qbasis_sidecar_peer_identity_mismatches_total', help: "Peer handshakes refused because the peer's certificate did not name the identity discovery gave for the endpoint, or did not chain to the trust bundle", registers });
    this.certificateRenewals = new client.Counter({ name: 'qbasis_sidecar_certificate_requests_total', help: 'Certify requests for this sidecar\'s certificate, by result (ok, failed)', labelNames: ['result'], registers });
    this.tlsHandshakeFailures = new client.Counter({ name: 'qbasis_sidecar_inbound_tls_handshake_failures_total', help: 'Inbound TLS handshakes that failed (no client certificate, one not chained to the trust bundle, plain text on the TLS port)', registers });
    new client.Gauge({
      name: 'qbasis_sidecar_certificate_expiry_timestamp_seconds', help: "When this sidecar's current workload certificate expires (Unix seconds); absent with mesh identity off or before the first certificate",
      registers,
      collect() {
        this.reset();
        const at = self.#certificateExpiry?.();
        if (at !== undefined) this.set(at / 1000);
      },
    });
    this.ejections = new client.Counter({ name: 'qbasis_sidecar_endpoint_ejections_total', help: 'Endpoints ejected after consecutive failures', labelNames: ['api'], registers });
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
    client.registerDefaultMetrics(this.registry);
  }

  sources(s: { endpoints: () => EndpointCounts[]; discovery: () => string; inflight: () => { outbound: number; inbound: number }; certificateExpiry?: () => number | undefined }): void {
    this.#endpointSource = s.endpoints;
    this.#discoverySource = s.discovery;
    this.#inflightSource = s.inflight;
    this.#certificateExpiry = s.certificateExpiry;
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
    const byReason = direction === 'outbound' ? this.#refusedOutbound : this.#refusedInbound;
    let c = byReason.get(reason);
    if (c === undefined) {
      c = { labels: { direction, reason }, n: 0 };
      byReason.set(reason, c);
      this.#refusedSeries.push(c);
    }
    c.n++;
  }
}
