// The CA's metrics: certificates issued, Certify latency, refusals by reason (a QB_* code, a closed
// set), and when the root expires. Registered into the controller's registry when identity is on.
import { Counter, Gauge, Histogram, type Metric, type Registry } from '../../proto/prom.ts';

export class IdentityMetrics {
  readonly #issued = new Counter({ name: 'qbasis_controller_certificates_issued_total', help: 'Workload certificates signed by Certify', registers: [] });
  readonly #refused = new Counter({ name: 'qbasis_controller_certify_refused_total', help: 'Certify calls refused, by reason (a QB_* code)', labelNames: ['reason'], registers: [] });
  readonly #duration = new Histogram({
    name: 'qbasis_controller_certify_duration_seconds', help: 'Certify calls that issued a certificate, from request to answer',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [],
  });
  readonly #rootExpiry = new Gauge({ name: 'qbasis_controller_identity_root_expiry_timestamp_seconds', help: 'When the mesh root certificate expires (Unix seconds)', registers: [] });

  issued(ms: number): void {
    this.#issued.inc();
    this.#duration.observe(ms / 1000);
  }

  refused(code: string): void {
    this.#refused.inc({ reason: code });
  }

  rootExpires(at: Date): void {
    this.#rootExpiry.set(at.getTime() / 1000);
  }

  register(reg: Registry): void {
    for (const m of [this.#issued, this.#refused, this.#duration, this.#rootExpiry]) reg.registerMetric(m as Metric);
  }
}
