// One outbound call: app (plain gRPC) → peer sidecar's inbound (basis frames), and the reply back.
// Retries only when the peer cannot have processed anything: a connect error, or a stream the peer
// refused (REFUSED_STREAM / GOAWAY) while the request bytes sent so far are still held (≤ 64 KiB).
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { FrameReader, formatText, HEADER_BYTES, writeHeader } from '../../proto/basis/index.ts';
import type { BasisHeader } from '../../proto/basis/index.ts';
import { Status, type ErrorCode, isQbasisError, QbasisError } from '../../proto/errors.ts';
import { Backoff } from '../backoff.ts';
import { decodeGrpcMessage, formatTimeout, GrpcMessageReader, grpcMessage, respondTrailersOnly, statusTrailers } from '../grpc-wire.ts';
import { sessionState, type SessionState } from '../h2-listener.ts';
import type { Metrics } from '../metrics.ts';
import type { Peer } from '../peer.ts';
import type { PathRoute } from './router.ts';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR } = http2.constants;
const REPLAY_LIMIT = 64 * 1024;
const MAX_ATTEMPTS = 4;

export interface OutboundContext {
  log: Logger;
  metrics: Metrics;
  maxFrameBytes: number;
  inflight: { outbound: number };
  onIdle(): void;
}

export class OutboundCall {
  readonly #ctx: OutboundContext;
  readonly #app: ServerHttp2Stream;
  readonly #route: PathRoute;
  readonly #started: number;
  readonly #deadlineAt: number | undefined;
  /** Request headers to pass on, minus grpc-timeout and qbasis-*; those are appended per attempt after #baseLen. */
  readonly #headers: string[];
  readonly #baseLen: number;
  readonly #tried: Peer[] = [];
  #backoff: Backoff | undefined;
  #peer: Peer | undefined;
  #up: ClientHttp2Stream | undefined;
  #sentAt = 0;
  /** Frames sent upstream, kept for a replay while nothing has come back; null once not replayable. */
  #sent: Buffer[] | null = [];
  #sentBytes = 0;
  #appEnded = false;
  #listening = false;
  #responded = false;
  #trailers: IncomingHttpHeaders | undefined;
  #done = false;
  readonly #session: SessionState | undefined;
  #reqReader: GrpcMessageReader | undefined;
  #resReader: FrameReader | undefined;

  constructor(ctx: OutboundContext, app: ServerHttp2Stream, route: PathRoute, rawHeaders: string[], timeoutMs: number | undefined, endStream: boolean) {
    this.#ctx = ctx;
    this.#app = app;
    this.#route = route;
    this.#started = performance.now();
    this.#deadlineAt = timeoutMs === undefined ? undefined : this.#started + timeoutMs;
    this.#appEnded = endStream;
    const h: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const k = rawHeaders[i]!;
      if (k === 'grpc-timeout' || k.startsWith('qbasis-')) continue;
      h.push(k, rawHeaders[i + 1]!);
    }
    this.#headers = h;
    this.#baseLen = h.length;
    ctx.inflight.outbound++;
    app.on('close', this.#onAppClose);
    app.on('wantTrailers', this.#onWantTrailers);
    app.on('error', noop);
    this.#session = app.session === undefined ? undefined : sessionState(app.session as ServerHttp2Session);
    // No 'data' listener yet: the app's request waits in the stream (flow-controlled) until a peer
    // stream exists to take it. The first attempt waits a turn, so a stream the app resets at once
    // (rapid reset) never reaches a peer: the shared connection to that peer must not pay for it.
    setImmediate(this.#first);
  }

  #first = (): void => {
    this.#attempt();
  };

  #attempt(): void {
    if (this.#done) return;
    const now = performance.now();
    if (this.#deadlineAt !== undefined && now >= this.#deadlineAt) {
      this.#refuse(Status.DEADLINE_EXCEEDED, 'QB_UPSTREAM_FAILED', `deadline exceeded in the sidecar before ${this.#route.api} could be sent to an endpoint`);
      return;
    }
    const b = this.#route.balancer!;
    let peer = b.pick(now, this.#tried);
    if (peer === undefined && this.#tried.length > 0) peer = b.pick(now, []);
    if (peer === undefined) {
      if (b.snapshot !== undefined && b.snapshot.endpoints.length === 0) {
        // Nobody provides it at all: "try again" (UNAVAILABLE) would only make clients spin.
        this.#refuse(Status.UNIMPLEMENTED, 'QB_NO_PROVIDER', `no pod in the mesh provides ${this.#route.api} at any version (required range ${b.range})`);
        return;
      }
      this.#refuse(Status.UNAVAILABLE, 'QB_NO_COMPATIBLE_ENDPOINT',
        `no compatible endpoint for ${this.#route.api} (required range ${b.range}); versions that exist: ${b.versionsPresent()}`);
      return;
    }
    this.#tried.push(peer);
    peer.acquire((err, session) => {
      if (this.#done) return;
      if (err !== undefined || session === undefined) {
        this.#connectFailed(peer, err?.message ?? 'no session');
        return;
      }
      this.#open(peer, session);
    });
  }

  #connectFailed(peer: Peer, why: string): void {
    if (peer.accrual.failure(performance.now())) this.#ejected(peer);
    this.#retry(`connect to ${peer.key} failed: ${why}`, 'connect');
  }

  #retry(why: string, reason: string): void {
    if (this.#tried.length >= MAX_ATTEMPTS) {
      this.#refuse(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `${this.#route.api}: gave up after ${this.#tried.length} attempts; last: ${why}`);
      return;
    }
    this.#ctx.metrics.retries.labels(this.#route.api, reason).inc();
    // A different endpoint first at once; repeated attempts back off.
    this.#backoff ??= new Backoff({ initialMs: 5, maxMs: 200, jitter: 0.5 });
    const delay = this.#tried.length <= 1 ? 0 : this.#backoff.next();
    if (delay === 0) queueMicrotask(() => this.#attempt());
    else setTimeout(() => this.#attempt(), delay);
  }

  #open(peer: Peer, session: ClientHttp2Session): void {
    // session.request() encodes the list synchronously, so one array serves every attempt.
    const h = this.#headers;
    h.length = this.#baseLen;
    if (this.#deadlineAt !== undefined) {
      const left = this.#deadlineAt - performance.now();
      if (left <= 0) {
        this.#refuse(Status.DEADLINE_EXCEEDED, 'QB_UPSTREAM_FAILED', `deadline exceeded in the sidecar before ${this.#route.api} could be sent`);
        return;
      }
      h.push('grpc-timeout', formatTimeout(left));
    }
    h.push('qbasis-range', this.#route.balancer!.range);
    let up: ClientHttp2Stream;
    try {
      up = session.request(h, { endStream: false });
    } catch (err) {
      this.#retry(`stream to ${peer.key} not opened: ${(err as Error).message}`, 'refused');
      return;
    }
    this.#peer = peer;
    this.#up = up;
    this.#sentAt = performance.now();
    peer.inflight++;
    up.on('response', this.#onResponse);
    up.on('data', this.#onUpData);
    up.on('trailers', this.#onUpTrailers);
    up.on('end', this.#onUpEnd);
    up.on('close', () => this.#onUpClose(up, peer, session));
    up.on('error', noop);
    if (this.#sent !== null) for (const f of this.#sent) up.write(f);
    if (!this.#listening) {
      this.#listening = true;
      this.#app.on('data', this.#onAppData);
      this.#app.on('end', this.#onAppEnd);
    } else {
      this.#app.resume(); // paused while the refused stream was being replaced
    }
    if (this.#appEnded && !up.writableEnded) up.end();
  }

  // ---- request: app → peer ----

  #onAppData = (chunk: Buffer): void => {
    this.#reqReader ??= new GrpcMessageReader(this.#ctx.maxFrameBytes, this.#onAppMessage);
    try {
      this.#reqReader.push(chunk);
    } catch (err) {
      const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', `request framing failed: ${(err as Error).message}`);
      this.#ctx.metrics.refused('outbound', q.code);
      this.#fail(q.grpcStatus, q.code, `request from the app: ${q.message}`, true);
    }
  };

  #onAppMessage = (compressed: boolean, payload: Buffer): void => {
    const h = this.#route.header;
    h.gzip = compressed;
    h.length = payload.length;
    const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
    writeHeader(h, frame, 0);
    payload.copy(frame, HEADER_BYTES);
    if (this.#sent !== null) {
      this.#sentBytes += frame.length;
      if (this.#sentBytes > REPLAY_LIMIT) this.#sent = null;
      else this.#sent.push(frame);
    }
    const up = this.#up;
    if (up === undefined) {
      // Between a refused stream and its retry: the frame waits in #sent, unless that overflowed.
      if (this.#sent === null) this.#fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `${this.#route.api}: the peer refused the stream and the request is too large to resend`, false);
      return;
    }
    if (!up.write(frame)) {
      this.#app.pause();
      up.once('drain', () => this.#app.resume());
    }
  };

  #onAppEnd = (): void => {
    this.#appEnded = true;
    if (this.#reqReader !== undefined && !this.#reqReader.idle) {
      this.#ctx.metrics.refused('outbound', 'QB_FRAME_TRUNCATED');
      this.#fail(Status.INTERNAL, 'QB_FRAME_TRUNCATED', 'the app ended its request inside a gRPC message', true);
      return;
    }
    const up = this.#up;
    if (up !== undefined && !up.writableEnded) up.end();
  };

  #onAppClose = (): void => {
    if (this.#done) return;
    // The app went away first (cancel, deadline, reset): pass the cancellation on.
    const up = this.#up;
    if (up !== undefined) this.#peer!.cancel(up);
    else if (this.#tried.length === 0) this.#session?.rapidReset(); // reset before any peer was tried
    this.#finish(Status.CANCELLED, false);
  };

  // ---- response: peer → app ----

  #onResponse = (headers: IncomingHttpHeaders, flags: number, raw: string[]): void => {
    if (this.#done) return;
    const peer = this.#peer!;
    const now = performance.now();
    const refusal = headers['qbasis-error-code'];
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0 && this.#sent !== null && (refusal === 'QB_VERSION_INCOMPATIBLE' || refusal === 'QB_API_NOT_PROVIDED')) {
      // The peer's own arrival check refused the call before its app saw anything: our snapshot is stale
      // for that endpoint (e.g. its pod was replaced). Safe to send elsewhere; keep it out for a while.
      peer.accrual.eject(now);
      this.#ejected(peer);
      this.#up = undefined;
      this.#app.pause();
      this.#retry(`${peer.key} refused on arrival: ${decodeGrpcMessage(headers['grpc-message']) || refusal}`, 'stale');
      return;
    }
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0 && this.#sent !== null && refusal === 'QB_APP_UNAVAILABLE') {
      // The peer's app is down and nothing reached it: a failure of that endpoint (not a fast answer
      // that would improve its latency score), and safe to send elsewhere.
      if (peer.accrual.failure(now)) this.#ejected(peer);
      this.#up = undefined;
      this.#app.pause();
      this.#retry(`${peer.key}: ${decodeGrpcMessage(headers['grpc-message']) || refusal}`, 'app-unavailable');
      return;
    }
    this.#sent = null;
    peer.ewma.observe(now - this.#sentAt, now);
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      // Trailers-only (a status with no messages): pass it on as such.
      respondTrailersOnly(this.#app, rawToObject(raw));
      this.#responded = true;
      this.#finish(Number(headers['grpc-status'] ?? Status.UNKNOWN), true);
      return;
    }
    try {
      this.#app.respond(raw, { waitForTrailers: true });
    } catch {
      // the app's stream went away meanwhile; its 'close' ends the call
      return;
    }
    this.#responded = true;
  };

  #onUpData = (chunk: Buffer): void => {
    this.#resReader ??= new FrameReader({ maxPayload: this.#ctx.maxFrameBytes, onFrame: this.#onFrame });
    try {
      this.#resReader.push(chunk);
    } catch (err) {
      const code: ErrorCode = isQbasisError(err) ? err.code : 'QB_INTERNAL';
      const status = isQbasisError(err) ? err.grpcStatus : Status.INTERNAL;
      this.#ctx.metrics.refused('outbound', code);
      this.#fail(status, code, `bad response frame from ${this.#peer?.key}: ${(err as Error).message}`, true);
    }
  };

  #onFrame = (h: BasisHeader, payload: Buffer): void => {
    if (h.kind !== 'response') {
      throw new QbasisError('QB_FRAME_BAD_FIELD', `frame kind '${h.kind}' on a response stream; expected 'response' (${formatText(h)})`);
    }
    const app = this.#app;
    if (app.destroyed) return;
    if (!app.write(grpcMessage(h.gzip, payload))) {
      const up = this.#up!;
      up.pause();
      app.once('drain', () => up.resume());
    }
  };

  #onUpTrailers = (trailers: IncomingHttpHeaders): void => {
    this.#trailers = trailers;
  };

  #onUpEnd = (): void => {
    if (this.#done || !this.#responded) return;
    try {
      this.#resReader?.end();
    } catch (err) {
      this.#fail(Status.DATA_LOSS, 'QB_FRAME_TRUNCATED', `response from ${this.#peer?.key}: ${(err as Error).message}`, true);
      return;
    }
    if (!this.#app.destroyed) this.#app.end();
  };

  #onWantTrailers = (): void => {
    const t = this.#trailers ?? statusTrailers(Status.INTERNAL, `peer ${this.#peer?.key} ended the call without a gRPC status`, 'QB_UPSTREAM_FAILED');
    try {
      // Trailers never hold pseudo-headers: pass the received object on as is.
      this.#app.sendTrailers(t as Record<string, string | string[]>);
    } catch {
      // the app stream went away meanwhile
    }
    this.#finish(Number(t['grpc-status'] ?? Status.UNKNOWN), true);
  };

  #onUpClose(up: ClientHttp2Stream, peer: Peer, session: ClientHttp2Session): void {
    peer.inflight--;
    if (this.#up === up && this.#done) return;
    if (this.#up !== up) return;
    if (this.#trailers !== undefined && up.rstCode === NGHTTP2_NO_ERROR) return; // normal end; trailers pending on the app side
    const code = up.rstCode ?? NGHTTP2_NO_ERROR;
    if (!this.#responded && code === NGHTTP2_REFUSED_STREAM && this.#sent !== null) {
      // The peer did not process it (GOAWAY / refused): safe to send elsewhere.
      this.#up = undefined;
      this.#app.pause();
      this.#retry(`${peer.key} refused the stream`, 'refused');
      return;
    }
    const sessionLost = session.destroyed;
    if (!sessionLost) {
      if (code === NGHTTP2_NO_ERROR) return; // ended normally; 'end' and 'wantTrailers' finish the call
      // The peer reset this one stream (e.g. its app cancelled): reset the app's stream alike.
      if (!this.#app.closed) this.#app.close(code);
      this.#finish(Status.CANCELLED, true);
      return;
    }
    if (peer.accrual.failure(performance.now())) this.#ejected(peer);
    this.#fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `connection to ${peer.key} lost after the call was sent (not retried)`, false);
  }

  #ejected(peer: Peer): void {
    this.#ctx.metrics.ejections.labels(this.#route.api).inc();
    this.#ctx.log.warn({ peer: peer.key, api: this.#route.api, failures: peer.accrual.consecutiveFailures, until_ms: Math.round(peer.accrual.ejectedUntil - performance.now()) }, 'endpoint ejected after consecutive failures');
  }

  // ---- endings ----

  /** Refused before anything was sent upstream. */
  #refuse(status: number, code: ErrorCode, message: string): void {
    this.#ctx.metrics.refused('outbound', code);
    this.#log(status, code, message);
    respondTrailersOnly(this.#app, statusTrailers(status, message, code));
    this.#finish(status, false);
  }

  /** Failed midway: status to the app (trailers-only or trailers), reset upstream if asked. */
  #fail(status: number, code: ErrorCode, message: string, resetUp: boolean): void {
    if (this.#done) return;
    this.#log(status, code, message);
    if (resetUp && this.#up !== undefined) this.#peer!.cancel(this.#up);
    if (!this.#app.headersSent) {
      respondTrailersOnly(this.#app, statusTrailers(status, message, code));
      this.#finish(status, false);
      return;
    }
    this.#trailers = statusTrailers(status, message, code);
    if (!this.#app.writableEnded && !this.#app.destroyed) this.#app.end();
    else this.#finish(status, false);
  }

  #log(status: number, code: string, message: string): void {
    const h = this.#route.header;
    h.length = 0;
    this.#ctx.log.warn({ direction: 'outbound', path: this.#route.path, status, code, frame: formatText(h), peer: this.#peer?.key }, message);
  }

  #finish(status: number, ok: boolean): void {
    if (this.#done) return;
    this.#done = true;
    const peer = this.#peer;
    if (ok && peer !== undefined) peer.accrual.success();
    this.#route.metrics.done(status, (performance.now() - this.#started) / 1000, ok);
    if (--this.#ctx.inflight.outbound === 0) this.#ctx.onIdle();
  }
}

function noop(): void {}

function rawToObject(raw: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.charCodeAt(0) === 58 && k !== ':status') continue;
    o[k] = o[k] === undefined ? raw[i + 1]! : `${o[k]}, ${raw[i + 1]!}`;
  }
  return o;
}
