// One inbound call: peer sidecar (basis frames) → app (plain gRPC), and the reply framed back with this
// pod's provided version. Every frame is checked: well-formed, a request, for the API and method of the
// path, at a version this pod serves. A bad frame ends the call with its coded status (counted once);
// the sidecar keeps serving. The app stream opens only once a whole frame (or the end of the request)
// is there, and on a connection that lately reset streams a turn later, so a stream the peer holds on
// headers or a partial frame, or resets at once (rapid reset), never reaches the app one for one; an
// app that refuses the connection gets QB_APP_UNAVAILABLE,
// which tells the caller nothing reached the app and the call may go elsewhere.
import http2 from 'node:http2';
import type { ClientHttp2Stream, ServerHttp2Stream } from 'node:http2';
import { encodeFrame, FrameReader, formatText, HEADER_BYTES } from '../../proto/basis/index.ts';
import type { BasisHeader } from '../../proto/basis/index.ts';
import { isQbasisError, QbasisError, Status, type ErrorCode } from '../../proto/errors.ts';
import { GrpcMessageReader, grpcMessage } from '../grpc-wire.ts';
import type { H2Connection } from '../connection.ts';
import { CallRelay, passHeaders, type CallContext } from '../relay.ts';
import { frameVerdict, type ProvidedPath } from './provided.ts';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

export interface InboundContext extends CallContext {
  /** A started frame that gets no byte for this long fails the call (ms). */
  frameIdleTimeoutMs: number;
  app: AppConnection;
  inflight: { inbound: number };
}

/** The pod's app as calls reach it: a gRPC app's pooled HTTP/2 connection, or a legacy app's gateway (sidecar/gateway/http-app.ts). */
export type AppConnection = Pick<H2Connection, 'key' | 'acquire' | 'cancel' | 'destroy'>;

export class InboundCall extends CallRelay {
  readonly #ctx: InboundContext;
  readonly #e: ProvidedPath;
  readonly #range: string | undefined;
  readonly #headers: string[];
  readonly #reader: FrameReader;
  #resReader: GrpcMessageReader | undefined;
  /** Messages checked before the app stream opened. */
  #early: Buffer[] | undefined;
  #opening = false;
  #openOnFrame = false;
  #timing = false;
  #downEnded: boolean;
  #lastFrame: BasisHeader | undefined;

  constructor(ctx: InboundContext, down: ServerHttp2Stream, e: ProvidedPath, rawHeaders: string[], range: string | undefined, endStream: boolean) {
    super(down);
    this.#ctx = ctx;
    this.#e = e;
    this.#range = range;
    this.#downEnded = endStream;
    const budget = this.conn?.budget;
    this.#reader = budget === undefined ? new FrameReader({ maxPayload: ctx.maxFrameBytes, onFrame: this.#onFrame }) : new FrameReader({ maxPayload: ctx.maxFrameBytes, onFrame: this.#onFrame, budget });
    this.#headers = passHeaders(rawHeaders);
    ctx.inflight.inbound++;
    down.on('data', this.#onDownData);
    down.on('end', this.#onDownEnd);
    // On a connection that lately reset streams, resets that arrive with the request (same read) are
    // seen before the app is bothered.
    this.actSoon(this.#openApp);
  }

  #openApp = (): void => {
    if (this.done || this.up !== undefined || this.#opening) return;
    // No whole frame yet: the app sees the call once a frame completes (or the stream ends), so a
    // stream held open on headers or a partial frame never costs the app anything.
    if (this.#early === undefined && !this.#downEnded) {
      this.#openOnFrame = true;
      return;
    }
    this.#opening = true;
    const app = this.#ctx.app;
    app.acquire((err, session) => {
      if (this.done) return;
      if (err !== undefined || session === undefined) {
        this.fail(Status.UNAVAILABLE, 'QB_APP_UNAVAILABLE', `the app at ${app.key} does not accept connections (nothing was sent to it): ${err?.message ?? 'no session'}`);
        return;
      }
      let up: ClientHttp2Stream;
      try {
        up = session.request(this.#headers, { endStream: false });
      } catch (e2) {
        this.fail(Status.UNAVAILABLE, 'QB_APP_UNAVAILABLE', `the app at ${app.key} could not take the call (nothing was sent to it): ${(e2 as Error).message}`);
        return;
      }
      this.attachUp(up, session);
      const early = this.#early;
      if (early !== undefined) {
        this.#early = undefined;
        for (const m of early) up.write(m);
      }
      if (this.#downEnded) up.end();
    });
  };

  // ---- request: peer → app ----

  #onDownData = (chunk: Buffer): void => {
    if (this.done) return; // refused already: the rest is discarded, not counted again
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
      this.down.setTimeout(partial ? this.#ctx.frameIdleTimeoutMs : 0, partial ? this.#onFrameIdle : undefined);
    }
  };

  #onFrameIdle = (): void => {
    if (this.done || this.#reader.idle) return;
    const s = this.#ctx.frameIdleTimeoutMs / 1000;
    this.#refuseFrame(new QbasisError('QB_FRAME_TRUNCATED', `a frame started but no byte of it arrived for ${s} s; expected the rest of the frame (--frame-idle-timeout)`), this.#lastFrame);
  };

  #refuseFrame(err: unknown, at: BasisHeader | Uint8Array | undefined): void {
    const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', `frame handling failed: ${(err as Error).message}`);
    this.#reader.discard();
    this.refused(q.code);
    this.fail(q.grpcStatus, q.code, q.message, at);
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
    const up = this.up;
    if (up === undefined) {
      (this.#early ??= []).push(grpcMessage(h.gzip, payload));
      if (this.#openOnFrame) this.#openApp();
      return;
    }
    this.writeUp(up, grpcMessage(h.gzip, payload));
  };

  #onDownEnd = (): void => {
    this.#downEnded = true;
    if (this.done) return;
    try {
      this.#reader.end();
    } catch (err) {
      this.#refuseFrame(err, this.#lastFrame);
      return;
    }
    const up = this.up;
    if (up !== undefined && !up.writableEnded) up.end();
    else if (up === undefined && this.#openOnFrame) this.#openApp();
  };

  // ---- response: app → peer ----

  protected readUp(chunk: Buffer): void {
    (this.#resReader ??= new GrpcMessageReader(this.#ctx.maxFrameBytes, this.#onAppMessage)).push(chunk);
  }

  #onAppMessage = (compressed: boolean, payload: Buffer): void => {
    const h = this.#e.header;
    h.gzip = compressed;
    h.length = payload.length;
    this.sendDown(encodeFrame(h, payload));
  };

  protected endUpReader(): void {
    if (this.#resReader !== undefined && !this.#resReader.idle) {
      throw new QbasisError('QB_FRAME_TRUNCATED', 'the app ended its response inside a gRPC message');
    }
  }

  protected override onUpClosed(code: number): boolean {
    if (code !== NGHTTP2_REFUSED_STREAM || this.down.headersSent) return false;
    // The app did not process it (its GOAWAY raced the call): the caller may send it elsewhere.
    this.fail(Status.UNAVAILABLE, 'QB_APP_UNAVAILABLE', `the app at ${this.#ctx.app.key} refused the stream (nothing was processed)`);
    return true;
  }

  // ---- the rest of the relay's hooks ----

  protected upName(): string {
    return `the app at ${this.#ctx.app.key}`;
  }

  protected cancelUp(up: ClientHttp2Stream): void {
    this.#ctx.app.cancel(up);
  }

  protected downGoneEarly(): void {
    this.conn?.rapidReset(); // reset before the sidecar even opened the app stream
    this.#reader.discard();
  }

  protected refused(code: ErrorCode): void {
    this.#ctx.metrics.refused('inbound', code);
  }

  protected logFailure(status: number, code: ErrorCode, message: string, frame?: BasisHeader | Uint8Array): void {
    this.#ctx.log.warn({ direction: 'inbound', path: this.#e.path, status, code, frame: frame === undefined ? undefined : formatText(frame) }, message);
  }

  protected finished(status: number, answered: boolean): void {
    if (this.#timing) this.down.setTimeout(0);
    this.#reader.discard();
    this.#e.metrics.done(status, (performance.now() - this.started) / 1000, answered);
    if (--this.#ctx.inflight.inbound === 0) this.#ctx.onIdle();
  }
}
