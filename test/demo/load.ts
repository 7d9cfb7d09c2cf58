// The load the demos drive through the caller's sidecar: OrderService Create calls at a fixed rate (at most
// 64 in flight), each reply counted by the version and pod that served it; a reply from a version outside
// `range` is misrouted. Used by `qbasis demo` (demo.ts) and, in a pod, by test/node/caller-app.ts.
import * as grpc from '@grpc/grpc-js';
import { satisfies } from '../../proto/versions.ts';
import { waitUntil, type WaitOptions } from '../fixtures/wait.ts';
import { orderClient } from './order-app.ts';

export interface Counts {
  calls: number;
  ok: number;
  failed: number;
  misrouted: number;
  byVersion: Map<string, number>;
  /** first10s: calls the pod served in the 10 s from its first (slow start: a new pod is not starved). */
  byPod: Map<string, { version: string; calls: number; firstAt: number; first10s: number }>;
  /** `CODE: details` → how many calls failed so. */
  errors: Map<string, number>;
}

export function newCounts(): Counts {
  return { calls: 0, ok: 0, failed: 0, misrouted: 0, byVersion: new Map(), byPod: new Map(), errors: new Map() };
}

const MAX_IN_FLIGHT = 64;
const CALL_DEADLINE_MS = 5000;

type Done = () => void;

/**
 * Calls `call(index, done)` at `rps` per second (at most MAX_IN_FLIGHT unfinished), until stop(), which waits
 * for the calls in flight and then runs `close`.
 */
function paced(rps: number, tickMs: number, call: (index: number, done: Done) => void, close: () => void): { stop: () => Promise<void> } {
  let inFlight = 0;
  let started = 0;
  let stopping = false;
  const t0 = Date.now();
  const idle: Array<() => void> = [];
  const done = (): void => {
    inFlight--;
    if (inFlight === 0) for (const f of idle.splice(0)) f();
  };
  const timer = setInterval(() => {
    if (stopping) return;
    const due = Math.floor(((Date.now() - t0) / 1000) * rps) - started;
    for (let i = 0; i < due && inFlight < MAX_IN_FLIGHT; i++) {
      started++;
      inFlight++;
      call(started, done);
    }
  }, tickMs);
  return {
    async stop() {
      stopping = true;
      clearInterval(timer);
      if (inFlight > 0) await new Promise<void>((r) => idle.push(r));
      close();
    },
  };
}

function countError(counts: Pick<Counts, 'failed' | 'errors'>, err: grpc.ServiceError | null): void {
  counts.failed++;
  const key = err ? `${grpc.status[err.code] ?? err.code}: ${err.details}` : 'empty reply';
  counts.errors.set(key, (counts.errors.get(key) ?? 0) + 1);
}

/** Starts `rps` calls/s to `target` (a caller sidecar's outbound port) into `counts`; `stop()` waits for the calls in flight. */
export function startLoad(target: string, rps: number, range: string, counts: Counts, opts: { tickMs?: number } = {}): { stop: () => Promise<void> } {
  const client = orderClient(target);
  return paced(rps, opts.tickMs ?? 10, (_i, done) => {
    client.create({ item: 'book', quantity: 1 }, { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) => {
      counts.calls++;
      if (err || res === undefined) {
        countError(counts, err);
      } else {
        counts.ok++;
        const v = res.servedByVersion;
        counts.byVersion.set(v, (counts.byVersion.get(v) ?? 0) + 1);
        const now = Date.now();
        const p = counts.byPod.get(res.servedByPod) ?? { version: v, calls: 0, firstAt: now, first10s: 0 };
        p.calls++;
        if (now - p.firstAt <= 10_000) p.first10s++;
        counts.byPod.set(res.servedByPod, p);
        if (!satisfies(v, range)) counts.misrouted++;
      }
      done();
    });
  }, () => client.close());
}

/** Quote calls at `rps` for the parallel run (quantities 1-40 in turn); counts answers and failures. */
export function startQuoteLoad(target: string, rps: number, counts: Pick<Counts, 'calls' | 'failed' | 'errors'>): { stop: () => Promise<void> } {
  const client = orderClient(target);
  return paced(rps, 10, (i, done) => {
    client.quote({ item: 'book', quantity: (i % 40) + 1 }, { deadline: Date.now() + CALL_DEADLINE_MS }, (err) => {
      counts.calls++;
      if (err) countError(counts, err);
      done();
    });
  }, () => client.close());
}

/** Waits until one call through `target` succeeds: the caller sidecar has its routes. */
export async function waitFirstCall(target: string, opts: WaitOptions & { beforeEach?: () => void }): Promise<void> {
  const probe = orderClient(target);
  try {
    await waitUntil(`a first call routed through the client sidecar at ${target}`, () => {
      opts.beforeEach?.();
      return new Promise<boolean>((r) => probe.create({ item: 'probe', quantity: 1 }, { deadline: Date.now() + 2000 }, (err) => r(err === null)));
    }, { intervalMs: 200, ...opts });
  } finally {
    probe.close();
  }
}

