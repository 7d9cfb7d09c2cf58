// The parallel run (DESIGN.md "Mirror"): a share of unary calls is sent again, after the caller has
// its answer, to an endpoint of the policy's mirror group, and the two answers are compared (gRPC
// status, then payload bytes). The caller never waits for a shadow: it starts when the primary call
// has finished. Shadows in flight are capped; beyond the cap a copy is dropped and counted.
import http2 from 'node:http2';
import type { ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import { FrameReader, formatText, type BasisHeader } from '../../proto/basis/index.ts';
import { Status } from '../../proto/errors.ts';
import { formatTimeout } from '../grpc-wire.ts';
import type { Metrics } from '../metrics.ts';
import { pickP2C } from '../p2c.ts';
import type { Peer } from '../peer.ts';

const { NGHTTP2_FLAG_END_STREAM } = http2.constants;

export type MirrorResult = 'match' | 'status_mismatch' | 'payload_mismatch' | 'shadow_failed' | 'dropped';
export const MIRROR_RESULTS: readonly MirrorResult[] = ['match', 'status_mismatch', 'payload_mismatch', 'shadow_failed', 'dropped'];

/** Shadows in flight per sidecar; a copy beyond it is `dropped`. */
export const MAX_SHADOWS_IN_FLIGHT = 16;
const SHADOW_TIMEOUT_MS = 10_000;
/** Mismatches kept per (policy, API, method). */
export const MAX_SAMPLES = 5;
/** (policy, API, method) entries kept; beyond it new methods count as `other`. */
const MAX_ENTRIES = 256;

export interface MirrorSample {
  method: string;
  primaryVersion: string;
  shadowVersion: string;
  primaryStatus: number;
  shadowStatus: number;
  primaryFrame: string;
  shadowFrame: string;
  result: 'status_mismatch' | 'payload_mismatch';
  atUnixMs: number;
}

export interface MirrorEntry {
  policyNamespace: string;
  policyName: string;
  api: string;
  method: string;
  counts: Record<MirrorResult, number>;
  samples: MirrorSample[];
}

/** What one finished primary call hands over. */
export interface PrimaryOutcome {
  policy: { namespace: string; name: string };
  api: string;
  /** A label: a method the app answered, or `other` (see CallMetrics). */
  method: string;
  /** The request's headers to pass on (qbasis-* and grpc-timeout already removed). */
  headers: readonly string[];
  range: string;
  request: Buffer;
  status: number;
  version: string;
  /** The response frame's payload (undefined: none) and header text form. */
  payload: Buffer | undefined;
  frame: string;
}

export interface ShadowTarget {
  peers: readonly Peer[];
  versionOf(peer: Peer): string;
}

/** Counts and samples of this sidecar since it started; read by the reporter. */
export class MirrorTally {
  readonly #entries = new Map<string, MirrorEntry>();
  /** Bumped on every change, so the reporter sends only when something happened. */
  changes = 0;

  count(o: Pick<PrimaryOutcome, 'policy' | 'api' | 'method'>, result: MirrorResult, sample?: MirrorSample): void {
    let key = JSON.stringify([o.policy.namespace, o.policy.name, o.api, o.method]);
    let e = this.#entries.get(key);
    if (e === undefined) {
      const method = this.#entries.size < MAX_ENTRIES ? o.method : 'other';
      key = JSON.stringify([o.policy.namespace, o.policy.name, o.api, method]);
      e = this.#entries.get(key);
      if (e === undefined) {
        e = { policyNamespace: o.policy.namespace, policyName: o.policy.name, api: o.api, method, counts: { match: 0, status_mismatch: 0, payload_mismatch: 0, shadow_failed: 0, dropped: 0 }, samples: [] };
        this.#entries.set(key, e);
      }
    }
    e.counts[result]++;
    if (sample !== undefined) {
      e.samples.push(sample);
      if (e.samples.length > MAX_SAMPLES) e.samples.shift();
    }
    this.changes++;
  }

  entries(): MirrorEntry[] {
    return [...this.#entries.values()];
  }
}

export class Mirrors {
  readonly tally = new MirrorTally();
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #maxFrameBytes: number;
  #inflight = 0;

  constructor(metrics: Metrics, log: Logger, maxFrameBytes: number) {
    this.#metrics = metrics;
    this.#log = log.child({ component: 'mirror' });
    this.#maxFrameBytes = maxFrameBytes;
  }

  get inflight(): number {
    return this.#inflight;
  }

  /** Sends the shadow of a finished primary call and counts how the two compare. */
  shadow(primary: PrimaryOutcome, target: ShadowTarget): void {
    if (this.#inflight >= MAX_SHADOWS_IN_FLIGHT) {
      this.#record(primary, 'dropped');
      return;
    }
    const peer = pickP2C(target.peers, performance.now());
    if (peer === undefined) {
      this.#record(primary, 'shadow_failed');
      return;
    }
    this.#inflight++;
    let settled = false;
    const settle = (result: MirrorResult, shadowStatus = -1, shadowFrame = ''): void => {
      if (settled) return;
      settled = true;
      this.#inflight--;
      clearTimeout(timer);
      const sample: MirrorSample | undefined =
        result === 'status_mismatch' || result === 'payload_mismatch'
          ? { method: primary.method, primaryVersion: primary.version, shadowVersion: target.versionOf(peer), primaryStatus: primary.status, shadowStatus, primaryFrame: primary.frame, shadowFrame, result, atUnixMs: Date.now() }
          : undefined;
      this.#record(primary, result, sample);
    };
    let stream: ClientHttp2Stream | undefined;
    const timer = setTimeout(() => {
      if (stream !== undefined) peer.cancel(stream);
      settle('shadow_failed');
    }, SHADOW_TIMEOUT_MS);
    peer.acquire((err, session) => {
      if (settled) return;
      if (err !== undefined || session === undefined) return settle('shadow_failed');
      const h = [...primary.headers, 'grpc-timeout', formatTimeout(SHADOW_TIMEOUT_MS), 'qbasis-range', primary.range, 'qbasis-mirror', '1'];
      try {
        stream = session.request(h, { endStream: false });
      } catch {
        return settle('shadow_failed');
      }
      this.#read(stream, (status, refused, payloads, frame) => {
        if (refused || status < 0) return settle('shadow_failed', status, frame);
        if (status !== primary.status) return settle('status_mismatch', status, frame);
        const same = payloads.length === (primary.payload === undefined ? 0 : 1) && (primary.payload === undefined || primary.payload.equals(payloads[0]!));
        settle(same ? 'match' : 'payload_mismatch', status, frame);
      });
      stream.end(primary.request);
    });
  }

  /** Reads a shadow's answer: status (-1: none), whether a sidecar refused it (qbasis-error-code), payloads, first frame. */
  #read(stream: ClientHttp2Stream, done: (status: number, refused: boolean, payloads: Buffer[], frame: string) => void): void {
    const payloads: Buffer[] = [];
    let frame = '';
    let failed = false;
    const reader = new FrameReader({
      maxPayload: this.#maxFrameBytes,
      onFrame: (h: BasisHeader, payload: Buffer) => {
        if (frame === '') frame = formatText({ ...h, length: payload.length });
        if (payloads.length < 2) payloads.push(Buffer.from(payload));
      },
    });
    let trailers: IncomingHttpHeaders | undefined;
    const statusOf = (t: IncomingHttpHeaders): number => {
      const n = Number(t['grpc-status']);
      return Number.isInteger(n) ? n : -1;
    };
    stream.on('error', () => {});
    stream.on('response', (headers: IncomingHttpHeaders, flags: number) => {
      if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) trailers = headers;
    });
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        reader.push(chunk);
      } catch {
        failed = true;
      }
    });
    stream.on('trailers', (t: IncomingHttpHeaders) => (trailers = t));
    stream.on('close', () => {
      if (failed || trailers === undefined) return done(-1, true, payloads, frame);
      done(statusOf(trailers), trailers['qbasis-error-code'] !== undefined && statusOf(trailers) !== Status.OK, payloads, frame);
    });
    stream.resume();
  }

  #record(o: PrimaryOutcome, result: MirrorResult, sample?: MirrorSample): void {
    this.tally.count(o, result, sample);
    this.#metrics.mirrorResults.labels(o.api, o.method, result).inc();
    if (sample !== undefined) {
      this.#log.info(
        { api: o.api, method: o.method, result, primary: { version: sample.primaryVersion, status: sample.primaryStatus, frame: sample.primaryFrame }, shadow: { version: sample.shadowVersion, status: sample.shadowStatus, frame: sample.shadowFrame } },
        `mirror ${result} for ${o.api}/${o.method}: primary ${sample.primaryVersion} answered ${sample.primaryStatus}, shadow ${sample.shadowVersion} answered ${sample.shadowStatus}`,
      );
    }
  }
}
