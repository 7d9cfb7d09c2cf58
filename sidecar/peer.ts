// One peer sidecar as the balancer sees it: its pooled connection plus the load signals P2C reads
// (latency EWMA, in-flight calls, failure accrual). The pod's own app uses a bare H2Connection.
import type { ClientHttp2Stream } from 'node:http2';
import { H2Connection, peerKey, type Acquired, type ConnState, type PeerTls } from './connection.ts';
import { FailureAccrual } from './ejection.ts';
import { PeakEwma } from './ewma.ts';

export { peerKey };

/** RTT assumed for a peer before its first response (ms). */
const DEFAULT_RTT_MS = 1;

export class Peer {
  readonly conn: H2Connection;
  readonly ewma: PeakEwma;
  readonly accrual = new FailureAccrual();
  inflight = 0;

  constructor(address: string, port: number, now: number, tls?: PeerTls) {
    this.conn = new H2Connection(address, port, tls === undefined ? {} : { tls });
    this.ewma = new PeakEwma(DEFAULT_RTT_MS, now);
  }

  get key(): string {
    return this.conn.key;
  }

  get address(): string {
    return this.conn.address;
  }

  get port(): number {
    return this.conn.port;
  }

  get lastError(): string | undefined {
    return this.conn.lastError;
  }

  /** May the balancer send a new call here? (not ejected, not waiting out a reconnect backoff) */
  available(now: number): boolean {
    return now >= this.conn.retryAt && !this.accrual.isEjected(now);
  }

  cost(now: number): number {
    return this.ewma.value(now) * (this.inflight + 1);
  }

  connState(now: number): ConnState {
    return this.conn.connState(now);
  }

  acquire(cb: Acquired): void {
    this.conn.acquire(cb);
  }

  cancel(stream: ClientHttp2Stream): void {
    this.conn.cancel(stream);
  }

  close(): void {
    this.conn.close();
  }

  destroy(): void {
    this.conn.destroy();
  }
}
