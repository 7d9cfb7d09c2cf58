// Sends what this sidecar measured to the controller (Discovery/Report) every few seconds while it
// changes: the mirror tally (parallel run) and the outbound calls per API and provided version.
// Reports are cumulative since the sidecar started, so a lost one costs nothing: the next one carries
// everything.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SidecarReport } from '../proto/generated/qbasis/discovery/v1/SidecarReport.ts';
import type { MirrorTally } from './outbound/mirror.ts';
import type { ApiCallCounts } from './outbound/call-counts.ts';

export const REPORT_INTERVAL_MS = 2000;

export interface SidecarReporterOptions {
  tally: MirrorTally;
  /** One per required API (the balancers'). */
  calls: readonly ApiCallCounts[];
  pod: string;
  namespace: string;
  send(report: SidecarReport): Promise<void>;
  log: Logger;
  intervalMs?: number;
}

export function toReport(tally: MirrorTally, calls: readonly ApiCallCounts[], pod: string, namespace: string, runId: string, runAgeMs: number): SidecarReport {
  return {
    pod,
    namespace,
    runId,
    runAgeMs: Math.max(0, Math.round(runAgeMs)),
    mirror: tally.entries().map((e) => ({
      policyNamespace: e.policyNamespace,
      policyName: e.policyName,
      api: e.api,
      method: e.method,
      matched: e.counts.match,
      statusMismatched: e.counts.status_mismatch,
      payloadMismatched: e.counts.payload_mismatch,
      shadowFailed: e.counts.shadow_failed,
      dropped: e.counts.dropped,
      samples: e.samples,
    })),
    calls: calls.flatMap((a) => a.entries().map((c) => ({ api: a.api, version: c.version, range: a.range, calls: c.calls, failed: c.failed }))),
  };
}

export class SidecarReporter {
  readonly #o: SidecarReporterOptions;
  readonly #runId = randomBytes(8).toString('hex');
  readonly #startedAt = performance.now();
  #sent = 0;
  #busy = false;
  #timer: NodeJS.Timeout | undefined;
  #warned = false;

  constructor(o: SidecarReporterOptions) {
    this.#o = o;
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.#o.intervalMs ?? REPORT_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /** Both only grow: their sum moves whenever anything to report changed. */
  #changes(): number {
    let n = this.#o.tally.changes;
    for (const a of this.#o.calls) n += a.total;
    return n;
  }

  /** Sends the counts if they changed since the last acknowledged report. */
  async flush(): Promise<void> {
    const changes = this.#changes();
    if (this.#busy || changes === this.#sent) return;
    this.#busy = true;
    try {
      await this.#o.send(toReport(this.#o.tally, this.#o.calls, this.#o.pod, this.#o.namespace, this.#runId, performance.now() - this.#startedAt));
      this.#sent = changes;
      this.#warned = false;
    } catch (err) {
      if (!this.#warned) this.#o.log.warn({ err: (err as Error).message }, 'sidecar report not delivered; the next one carries the same counts');
      this.#warned = true;
    } finally {
      this.#busy = false;
    }
  }
}
