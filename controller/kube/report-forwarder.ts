// Sidecars report to whichever controller replica their discovery connection reached, but only the
// leader writes status.mirror: a standby passes each report on to the leader, found by the address the
// leader keeps on the Lease. Reports are cumulative per sidecar run, so a lost or repeated forward costs
// nothing; a forwarded report is marked and never forwarded again (no loops while leadership moves).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { discoveryClientConstructor, type GeneratedDiscoveryClient } from '../../proto/discovery.ts';
import type { SidecarReport__Output } from '../../proto/generated/qbasis/discovery/v1/SidecarReport.ts';

/** Where the Lease holder takes forwarded reports (host:port of its discovery server). */
export const REPORT_ADDRESS_ANNOTATION = 'qbasis.io/report-address';

export interface ReportForwarderOptions {
  logger: Logger;
  isLeader(): boolean;
  /** The leader's address as the Lease says, if a leader holds it. */
  leaderAddress(): string | undefined;
  /** This replica's own address (never forward to ourselves). */
  ownAddress(): string | undefined;
}

export class ReportForwarder {
  readonly #o: ReportForwarderOptions;
  readonly #log: Logger;
  #client: { address: string; client: GeneratedDiscoveryClient } | undefined;
  #warned = false;
  #closed = false;

  constructor(o: ReportForwarderOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'report-forwarder' });
  }

  forward(r: SidecarReport__Output): void {
    if (this.#closed || r.forwarded || this.#o.isLeader()) return;
    const address = this.#o.leaderAddress();
    if (address === undefined || address === this.#o.ownAddress()) {
      this.#warnOnce(`no leader address on the Lease; the report of ${r.namespace}/${r.pod} stays here until the sidecar reports again`);
      return;
    }
    if (this.#client?.address !== address) {
      this.#client?.client.close();
      const Ctor = discoveryClientConstructor();
      this.#client = { address, client: new Ctor(address, grpc.credentials.createInsecure()) };
    }
    this.#client.client.report({ ...r, forwarded: true }, { deadline: Date.now() + 5000 }, (err) => {
      if (err) this.#warnOnce(`forwarding a mirror report to the leader at ${address} failed: ${err.message}`);
      else this.#warned = false;
    });
  }

  close(): void {
    this.#closed = true;
    this.#client?.client.close();
    this.#client = undefined;
  }

  #warnOnce(msg: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#log.warn(msg);
  }
}
