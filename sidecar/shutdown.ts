// Drain on SIGTERM or POST /shutdown: refuse new peer calls at once (GOAWAY; callers route elsewhere),
// keep the outbound side open for the app, which may still be finishing its own work, and exit when
// nothing is in flight and the app has been quiet for a moment, or when the grace period ends.
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Logger } from 'pino';

export interface DrainTarget {
  log: Logger;
  graceMs: number;
  inbound: { server: Http2Server; sessions: Set<ServerHttp2Session> };
  outbound: { server: Http2Server; sessions: Set<ServerHttp2Session> };
  inflight: { outbound: number; inbound: number };
  /** performance.now() of the last outbound call. */
  lastOutboundCall(): number;
}

/** How long the app must stay quiet on the outbound side before the sidecar exits. */
export const QUIET_MS = 1000;

export async function drain(t: DrainTarget, reason: string): Promise<'drained' | 'grace-expired'> {
  const start = performance.now();
  t.log.info({ reason, inflight: { ...t.inflight }, grace_ms: t.graceMs }, 'draining: refusing new inbound calls, finishing in-flight ones');
  t.inbound.server.close();
  for (const s of t.inbound.sessions) if (!s.closed && !s.destroyed) s.close();
  const quiet = Math.min(QUIET_MS, t.graceMs);
  const outcome = await new Promise<'drained' | 'grace-expired'>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      if (t.inflight.inbound === 0 && t.inflight.outbound === 0 && now - Math.max(start, t.lastOutboundCall()) >= quiet) {
        resolve('drained');
        return;
      }
      if (now - start >= t.graceMs) {
        resolve('grace-expired');
        return;
      }
      setTimeout(tick, 25);
    };
    tick();
  });
  t.outbound.server.close();
  for (const s of [...t.outbound.sessions, ...t.inbound.sessions]) if (!s.destroyed) s.destroy();
  t.log.info({ outcome, inflight: { ...t.inflight }, took_ms: Math.round(performance.now() - start) }, 'drain finished');
  return outcome;
}
