// One inbound call: peer sidecar (basis frames) → app (plain gRPC), and the reply framed back with this
// pod's provided version. Every frame is checked: well-formed, a request, for the API and method of the
// path, at a version this pod serves. A bad frame ends the call with its coded status (counted once);
// the sidecar keeps serving. The app stream opens a turn after the call arrives, so a stream the peer
// resets at once (rapid reset) never reaches the app; an app that refuses the connection gets
// QB_APP_UNAVAILABLE, which tells the caller nothing reached the app and the call may go elsewhere.
import http2 from 'node:http2';
import type { ClientHttp2Stream, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { FrameReader, formatText, HEADER_BYTES, writeHeader } from '../../proto/basis/index.ts';
import type { BasisHeader } from '../../proto/basis/index.ts';
import { isQbasisError, QbasisError, Status, type ErrorCode } from '../../proto/errors.ts';
import { endWithStatus, GrpcMessageReader, grpcMessage, respondTrailersOnly, statusTrailers } from '../grpc-wire.ts';
import type { Metrics } from '../metrics.ts';
import type { Peer } from '../peer.ts';
import { sessionState, type SessionState } from '../h2-listener.ts';
import { frameVerdict, type ProvidedPath } from './provided.ts';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

export interface InboundContext {
  log: Logger;
  metrics: Metrics;
  maxFrameBytes: number;
  /** A started frame that gets no byte for this long fails the call (ms). */
  frameIdleTimeoutMs: number;
  app: Peer;
  inflight: { inbound: number };
  onIdle(): void;
}

export class InboundCall {
  readonly #ctx: InboundContext;
  readonly #down: ServerHttp2Stream;
  readonly #e: ProvidedPath;
  readonly #range: string | undefined;
  readonly #started = performance.now();
  readonly #headers: string[];
  #app: ClientHttp2Stream | undefined;
  #reader: FrameReader;
  #timing = false;
  readonly #state: SessionState | undefined;
  /** Messages checked before the app stream opened (the first turn). */
  #early: Buffer[] | undefined;
  #opening = false;
  #openOnFrame = false;
  #resReader: GrpcMessageReader | undefined;
  #trailers: IncomingHttpHeaders | Record<string, string> | undefined;
  #done = false;
  /** A status of this sidecar's own replaces the app's (bad frame, lost app). */
  #failed = false;
  #downEnded: boolean;
  #lastFrame: BasisHeader | undefined;

  constructor(ctx: InboundContext, down: ServerHttp2Stream, e: ProvidedPath, rawHeaders: string[], range: string | undefined, endStream: boolean) {
    this.#ctx = ctx;
    this.#down = down;
    this.#e = e;
    this.#range = range;
    this.#downEnded = endStream;
    this.#state = down.session === undefined ? undefined : sessionState(down.session as http2.ServerHttp2Session);
    const budget = this.#state?.budget;
    this.#reader = new FrameReader({ maxPayload: ctx.maxFrameBytes, onFrame: this.#onFrame, ...(budget === undefined ? {} : { budget }) });
    ctx.inflight.inbound++;
    const h: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const k = rawHeaders[i]!;
      if (k.startsWith('qbasis-')) continue;
      h.push(k, rawHeaders[i + 1]!);
    }
    this.#headers = h;
    down.on('close', this.#onDownClose);
    down.on('wantTrailers', this.#onWantTrailers);
    down.on('error', noop);
    down.on('data', this.#onDownData);
    down.on('end', this.#onDownEnd);
    // Resets that arrive with the request (same read) are seen before the app is bothered.
    setImmediate(this.#openApp);
  }

  #openApp = (): void => {
    if (this.#done || this.#app !== undefined || this.#opening) return;
    // Part of a frame but no whole one yet: the app sees the call once a frame completes (or the
    // stream ends), so a stream held open on a partial frame never costs the app anything.
    if (this.#early === undefined && !this.#reader.idle && !this.#downEnded) {
      this.#openOnFrame = true;
      return;
    }
    this.#opening = true;
    const ctx = this.#ctx;
    ctx.app.acquire((err, session) => {
      if (this.#done) return;
      if (err !== undefined || session === undefined) {
        this.#fail(Status.UNAVAILABLE, 'QB_APP_UNAVAILABLE', `the app at ${ctx.app.key} does not accept connections (nothing was sent to it): ${err?.message ?? 'no session'}`);
        return;
      }
      let app: ClientHttp2Stream;
      try {
        app = session.request(this.#headers, { endStream: false });
      } catch (e2) {
        this.#fail(Status.UNAVAILABLE, 'QB_APP_UNAVAILABLE', `the app at ${ctx.app.key} could not take the call (nothing was sent to it): ${(e2 as Error).message}`);
        return;
      }
      this.#app = app;
      app.on('response', this.#onResponse);
      app.on('data', this.#onAppData);
      app.on('trailers', this.#onAppTrailers);
      app.on('end', this.#onAppEnd);
      app.on('close', () => this.#onAppClose(app, session.destroyed));
      app.on('error', noop);
      const early = this.#early;
      if (early !== undefined) {
        this.#early = undefined;
        for (const m of early) app.write(m);
      }
      if (this.#downEnded) app.end();
    });
  };

  // ---- request: peer → app ----

  #onDownData = (chunk: Buffer): void => {
    if (this.#done) return; // refused already: the rest is discarded, not counted again
    const reader = this.#reader;
    try {
      reader.push(chunk);
    } catch (err) {
      this.#refuseFrame(err, this.#lastFrame ?? (chunk.length >= HEADER_BYTES ? chunk.subarray(0, HEADER_BYTES) : undefined));
      return;
    }
    // A frame left incomplete must not hold its bytes for ever.
    const partial = !reader.idle;
    if (partial !== this.#timing) {
      this.#timing = partial;
      this.#down.setTimeout(partial ? this.#ctx.frameIdleTimeoutMs : 0, partial ? this.#onFrameIdle : undefined);
    }
  };

  #onFrameIdle = (): void => {
    if (this.#done || this.#reader.idle) return;
    const s = this.#ctx.frameIdleTimeoutMs / 1000;
    this.#refuseFrame(new QbasisError('QB_FRAME_TRUNCATED', `a frame started but no byte of it arrived for ${s} s; expected the rest of the frame (--frame-idle-timeout)`), this.#lastFrame);
  };

  #refuseFrame(err: unknown, at: BasisHeader | Uint8Array | undefined): void {
    const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', `frame handling failed: ${(err as Error).message}`);
    this.#reader.discard();
    this.#ctx.metrics.refused('inbound', q.code);
    this.#fail(q.grpcStatus, q.code, q.message, at);
  }

  #onFrame = (h: BasisHeader, payload: Buffer): void => {
    this.#lastFrame = h;
    const e = this.#e;
    if (h.kind !== 'request') {
      throw new QbasisError('QB_FRAME_BAD_FIELD', `frame ${formatText(h)} is a ${h.kind}; expected a request frame on a call to ${e.path}`);
    }
    if (h.apiId !== e.apiId || h.methodId !== e.methodId) {
      throw new QbasisError('QB_FRAME_BAD_FIELD',
        `frame ${formatText(h)} names API id 0x${h.apiId.toString(16)} method id 0x${h.methodId.toString(16)}; expected 0x${e.apiId.toString(16)} and 0x${e.methodId.toString(16)} for ${e.path}`);
    }
    const v = frameVerdict(e, h.major, h.minor, this.#range);
    if (!v.ok) throw new QbasisError('QB_VERSION_INCOMPATIBLE', v.reason);
    const app = this.#app;
    if (app === undefined) {
      (this.#early ??= []).push(grpcMessage(h.gzip, payload));
      if (this.#openOnFrame) this.#openApp();
      return;
    }
    if (!app.write(grpcMessage(h.gzip, payload))) {
      this.#down.pause();
      app.once('drain', () => this.#down.resume());
    }
  };

  #onDownEnd = (): void => {
    this.#downEnded = true;
    if (this.#done) return;
    try {
      this.#reader.end();
    } catch (err) {
      this.#refuseFrame(err, this.#lastFrame);
      return;
    }
    const app = this.#app;
    if (app !== undefined && !app.writableEnded) app.end();
    else if (app === undefined && this.#openOnFrame) this.#openApp();
  };

  #onDownClose = (): void => {
    if (this.#done) return;
    // The caller went away (cancel, deadline, reset): the app must see it.
    const app = this.#app;
    if (app !== undefined) this.#ctx.app.cancel(app);
    else this.#state?.rapidReset(); // reset before the sidecar even opened the app stream
    this.#reader.discard();
    this.#finish(Status.CANCELLED, false);
  };

  // ---- response: app → peer ----

  #onResponse = (headers: IncomingHttpHeaders, flags: number, raw: string[]): void => {
    if (this.#done) return;
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      const t: Record<string, string> = {};
      for (let i = 0; i < raw.length; i += 2) if (raw[i] !== ':status') t[raw[i]!] = raw[i + 1]!;
      respondTrailersOnly(this.#down, t);
      this.#finish(Number(headers['grpc-status'] ?? Status.UNKNOWN), true);
      return;
    }
    this.#down.respond(raw, { waitForTrailers: true });
  };

  #onAppData = (chunk: Buffer): void => {
    this.#resReader ??= new GrpcMessageReader(this.#ctx.maxFrameBytes, this.#onAppMessage);
    try {
      this.#resReader.push(chunk);
    } catch (err) {
      const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', (err as Error).message);
      this.#ctx.metrics.refused('inbound', q.code);
      this.#fail(q.grpcStatus, q.code, `app response: ${q.message}`);
    }
  };

  #onAppMessage = (compressed: boolean, payload: Buffer): void => {
    const h = this.#e.header;
    h.gzip = compressed;
    h.length = payload.length;
    const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
    writeHeader(h, frame, 0);
    payload.copy(frame, HEADER_BYTES);
    const down = this.#down;
    if (down.destroyed) return;
    if (!down.write(frame)) {
      const app = this.#app!;
      app.pause();
      down.once('drain', () => app.resume());
    }
  };

  #onAppTrailers = (trailers: IncomingHttpHeaders): void => {
    this.#trailers = trailers;
  };

  #onAppEnd = (): void => {
    if (this.#done || !this.#down.headersSent) return;
    if (this.#resReader !== undefined && !this.#resReader.idle) {
      this.#fail(Status.INTERNAL, 'QB_FRAME_TRUNCATED', 'the app ended its response inside a gRPC message');
      return;
    }
    if (!this.#down.writableEnded) this.#down.end();
  };

  #onWantTrailers = (): void => {
    const fromApp = this.#trailers !== undefined && !this.#failed;
    const t = this.#trailers ?? statusTrailers(Status.INTERNAL, `the app at ${this.#ctx.app.key} ended the call without a gRPC status`, 'QB_UPSTREAM_FAILED');
    try {
      // Trailers never hold pseudo-headers: pass the received object on as is.
      this.#down.sendTrailers(t as Record<string, string | string[]>);
    } catch {
      // the caller went away meanwhile
    }
    this.#finish(Number(t['grpc-status'] ?? Status.UNKNOWN), fromApp);
  };

  #onAppClose(app: ClientHttp2Stream, sessionLost: boolean): void {
    if (this.#done || this.#trailers !== undefined) return;
    const code = app.rstCode ?? NGHTTP2_NO_ERROR;
    if (!sessionLost && code === NGHTTP2_NO_ERROR) return;
    if (code === NGHTTP2_REFUSED_STREAM && !this.#down.headersSent) {
      // The app did not process it (its GOAWAY raced the call): the caller may send it elsewhere.
      this.#fail(Status.UNAVAILABLE, 'QB_APP_UNAVAILABLE', `the app at ${this.#ctx.app.key} refused the stream (nothing was processed)`);
      return;
    }
    if (!sessionLost) {
      // The app reset the stream: reset the caller's stream alike so its app sees it.
      if (!this.#down.closed) this.#down.close(code);
      this.#finish(Status.CANCELLED, false);
      return;
    }
    this.#fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `connection to the app at ${this.#ctx.app.key} lost during the call`);
  }

  // ---- endings ----

  #fail(status: number, code: ErrorCode, message: string, frame?: BasisHeader | Uint8Array): void {
    if (this.#done || this.#failed) return;
    this.#failed = true;
    this.#ctx.log.warn({ direction: 'inbound', path: this.#e.path, status, code, frame: frame === undefined ? undefined : formatText(frame) }, message);
    const app = this.#app;
    if (app !== undefined) this.#ctx.app.cancel(app);
    const down = this.#down;
    if (!down.headersSent) {
      endWithStatus(down, statusTrailers(status, message, code));
      this.#finish(status, false);
      return;
    }
    this.#trailers = statusTrailers(status, message, code);
    if (!down.writableEnded && !down.destroyed) down.end();
    else this.#finish(status, false);
  }

  #finish(status: number, answered: boolean): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timing) this.#down.setTimeout(0);
    this.#e.metrics.done(status, (performance.now() - this.#started) / 1000, answered);
    if (--this.#ctx.inflight.inbound === 0) this.#ctx.onIdle();
  }
}

function noop(): void {}
