// One inbound call: peer sidecar (basis frames) → app (plain gRPC), and the reply framed back with this
// pod's provided version. Every frame is checked: well-formed, a request, for the API and method of the
// path, at a version this pod serves. A bad frame ends the call with its coded status; the sidecar
// keeps serving.
import http2 from 'node:http2';
import type { ClientHttp2Stream, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import { FrameReader, formatText, HEADER_BYTES, writeHeader } from '../../proto/basis/index.ts';
import type { BasisHeader } from '../../proto/basis/index.ts';
import { isQbasisError, QbasisError, Status, type ErrorCode } from '../../proto/errors.ts';
import { GrpcMessageReader, grpcMessage, MessageTooLarge, respondTrailersOnly, statusTrailers } from '../grpc-wire.ts';
import type { Metrics } from '../metrics.ts';
import type { Peer } from '../peer.ts';
import { frameVerdict, type ProvidedPath } from './provided.ts';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

export interface InboundContext {
  log: Logger;
  metrics: Metrics;
  maxFrameBytes: number;
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
  #app: ClientHttp2Stream | undefined;
  #reader: FrameReader;
  #resReader: GrpcMessageReader | undefined;
  #trailers: IncomingHttpHeaders | Record<string, string> | undefined;
  #done = false;
  #downEnded: boolean;
  #lastFrame: BasisHeader | undefined;

  constructor(ctx: InboundContext, down: ServerHttp2Stream, e: ProvidedPath, rawHeaders: string[], range: string | undefined, endStream: boolean) {
    this.#ctx = ctx;
    this.#down = down;
    this.#e = e;
    this.#range = range;
    this.#downEnded = endStream;
    this.#reader = new FrameReader({ maxPayload: ctx.maxFrameBytes, onFrame: this.#onFrame });
    ctx.inflight.inbound++;
    const h: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const k = rawHeaders[i]!;
      if (k.startsWith('qbasis-')) continue;
      h.push(k, rawHeaders[i + 1]!);
    }
    down.on('close', this.#onDownClose);
    down.on('wantTrailers', this.#onWantTrailers);
    down.on('error', noop);
    ctx.app.acquire((err, session) => {
      if (this.#done) return;
      if (err !== undefined || session === undefined) {
        this.#fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `the app at ${ctx.app.key} does not accept connections: ${err?.message ?? 'no session'}`);
        return;
      }
      let app: ClientHttp2Stream;
      try {
        app = session.request(h, { endStream: false });
      } catch (e2) {
        this.#fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `the app at ${ctx.app.key} refused the call: ${(e2 as Error).message}`);
        return;
      }
      this.#app = app;
      app.on('response', this.#onResponse);
      app.on('data', this.#onAppData);
      app.on('trailers', this.#onAppTrailers);
      app.on('end', this.#onAppEnd);
      app.on('close', () => this.#onAppClose(app, session.destroyed));
      app.on('error', noop);
      down.on('data', this.#onDownData);
      down.on('end', this.#onDownEnd);
      if (this.#downEnded) app.end();
    });
  }

  // ---- request: peer → app ----

  #onDownData = (chunk: Buffer): void => {
    try {
      this.#reader.push(chunk);
    } catch (err) {
      const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', `frame handling failed: ${(err as Error).message}`);
      this.#ctx.metrics.refused('inbound', q.code);
      const at = this.#lastFrame ?? (chunk.length >= HEADER_BYTES ? chunk.subarray(0, HEADER_BYTES) : undefined);
      this.#fail(q.grpcStatus, q.code, q.message, at);
    }
  };

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
    const app = this.#app!;
    if (!app.write(grpcMessage(h.gzip, payload))) {
      this.#down.pause();
      app.once('drain', () => this.#down.resume());
    }
  };

  #onDownEnd = (): void => {
    this.#downEnded = true;
    try {
      this.#reader.end();
    } catch (err) {
      const q = err as QbasisError;
      this.#ctx.metrics.refused('inbound', q.code);
      this.#fail(q.grpcStatus, q.code, q.message, this.#lastFrame);
      return;
    }
    const app = this.#app;
    if (app !== undefined && !app.writableEnded) app.end();
  };

  #onDownClose = (): void => {
    if (this.#done) return;
    // The caller went away (cancel, deadline, reset): the app must see it.
    const app = this.#app;
    if (app !== undefined && !app.closed) app.close(NGHTTP2_CANCEL);
    this.#finish(Status.CANCELLED);
  };

  // ---- response: app → peer ----

  #onResponse = (headers: IncomingHttpHeaders, flags: number, raw: string[]): void => {
    if (this.#done) return;
    if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) {
      const t: Record<string, string> = {};
      for (let i = 0; i < raw.length; i += 2) if (raw[i] !== ':status') t[raw[i]!] = raw[i + 1]!;
      respondTrailersOnly(this.#down, t);
      this.#finish(Number(headers['grpc-status'] ?? Status.UNKNOWN));
      return;
    }
    this.#down.respond(raw, { waitForTrailers: true });
  };

  #onAppData = (chunk: Buffer): void => {
    this.#resReader ??= new GrpcMessageReader(this.#ctx.maxFrameBytes, this.#onAppMessage);
    try {
      this.#resReader.push(chunk);
    } catch (err) {
      const tooLarge = err instanceof MessageTooLarge;
      this.#fail(tooLarge ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL, tooLarge ? 'QB_FRAME_TOO_LARGE' : 'QB_INTERNAL', `app response: ${(err as Error).message}`);
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
    const t = this.#trailers ?? statusTrailers(Status.INTERNAL, `the app at ${this.#ctx.app.key} ended the call without a gRPC status`, 'QB_UPSTREAM_FAILED');
    try {
      // Trailers never hold pseudo-headers: pass the received object on as is.
      this.#down.sendTrailers(t as Record<string, string | string[]>);
    } catch {
      // the caller went away meanwhile
    }
    this.#finish(Number(t['grpc-status'] ?? Status.UNKNOWN));
  };

  #onAppClose(app: ClientHttp2Stream, sessionLost: boolean): void {
    if (this.#done || this.#trailers !== undefined) return;
    const code = app.rstCode ?? NGHTTP2_NO_ERROR;
    if (!sessionLost && code === NGHTTP2_NO_ERROR) return;
    if (!sessionLost) {
      // The app reset the stream: reset the caller's stream alike so its app sees it.
      if (!this.#down.closed) this.#down.close(code);
      this.#finish(Status.CANCELLED);
      return;
    }
    this.#fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `connection to the app at ${this.#ctx.app.key} lost during the call`);
  }

  // ---- endings ----

  #fail(status: number, code: ErrorCode, message: string, frame?: BasisHeader | Uint8Array): void {
    if (this.#done) return;
    this.#ctx.log.warn({ direction: 'inbound', path: this.#e.path, status, code, frame: frame === undefined ? undefined : formatText(frame) }, message);
    const app = this.#app;
    if (app !== undefined && !app.closed) app.close(NGHTTP2_CANCEL);
    const down = this.#down;
    if (!down.headersSent) {
      respondTrailersOnly(down, statusTrailers(status, message, code));
      this.#finish(status);
      return;
    }
    this.#trailers = statusTrailers(status, message, code);
    if (!down.writableEnded && !down.destroyed) down.end();
    else this.#finish(status);
  }

  #finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#e.metrics.done(status, (performance.now() - this.#started) / 1000);
    if (--this.#ctx.inflight.inbound === 0) this.#ctx.onIdle();
  }
}

function noop(): void {}
