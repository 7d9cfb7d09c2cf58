// The stream pair of one proxied call: `down` is the stream that called this sidecar (a server
// stream), `up` the one the sidecar opened (a client stream). The relay moves messages both ways with
// backpressure, passes response headers, trailers and trailers-only answers, carries cancellation
// both ways and ends the call exactly once. Outbound (app → peer) and inbound (peer → app) add only
// what differs: how messages are read and re-encoded, when `up` opens, and what some answers mean.
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { isQbasisError, QbasisError, Status, type ErrorCode } from '../proto/errors.ts';
import type { Logger } from 'pino';
import { sessionState, type SessionState } from './h2-listener.ts';
import { endWithStatus, respondTrailersOnly, statusTrailers } from './grpc-wire.ts';
import type { Metrics } from './metrics.ts';

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

/** What every call of one listener shares. */
export interface CallContext {
  log: Logger;
  metrics: Metrics;
  /** Largest message accepted either way (--max-frame-bytes). */
  maxFrameBytes: number;
  /** Called when the listener's last call in flight ends (drain). */
  onIdle(): void;
}

/** How long a connection's streams wait a turn after it reset a stream before its answer (ms). */
export const DEFER_AFTER_RESET_MS = 10_000;

export abstract class CallRelay {
  protected readonly down: ServerHttp2Stream;
  /** The listener's state of the connection `down` arrived on. */
  protected readonly conn: SessionState | undefined;
  protected up: ClientHttp2Stream | undefined;
  protected readonly started = performance.now();
  protected done = false;
  /** A status of this sidecar's own replaces the far end's (bad frame, lost connection). */
  protected failed = false;
  /** Response headers were passed down (not a trailers-only answer). */
  protected responded = false;
  #trailers: IncomingHttpHeaders | Record<string, string> | undefined;

  constructor(down: ServerHttp2Stream) {
    this.down = down;
    this.conn = down.session === undefined ? undefined : sessionState(down.session as ServerHttp2Session);
    down.on('close', this.#onDownClose);
    down.on('wantTrailers', this.#onWantTrailers);
    down.on('error', noop);
  }

  // ---- what each direction adds ----

  /** Who `up` talks to, for messages: "the app at …", "peer …". */
  protected abstract upName(): string;
  /** Parses response bytes from `up` and passes messages on with sendDown (throws QbasisError on bad input). */
  protected abstract readUp(chunk: Buffer): void;
  /** Throws when `up` ended inside a message. */
  protected abstract endUpReader(): void;
  /** Cancels `up` (RST_STREAM), through its peer so its connection stays under the far end's limits. */
  protected abstract cancelUp(up: ClientHttp2Stream): void;
  /** `down` went away before `up` was opened. */
  protected abstract downGoneEarly(): void;
  protected abstract logFailure(status: number, code: ErrorCode, message: string, frame?: unknown): void;
  protected abstract finished(status: number, answered: boolean): void;
  /** Response headers from `up`: true when handled here (e.g. the call was sent elsewhere). */
  protected onUpHeaders(_headers: IncomingHttpHeaders, _endStream: boolean): boolean {
    return false;
  }
  /** `up` closed abnormally: true when handled here (e.g. a refused stream was retried). */
  protected onUpClosed(_code: number, _sessionLost: boolean): boolean {
    return false;
  }

  // ---- the shared plumbing ----

  /** Takes a newly opened `up`: response, data, trailers, end and close are relayed from here on. */
  protected attachUp(up: ClientHttp2Stream, session: ClientHttp2Session): void {
    this.up = up;
    // The body is read only once the headers were handled: Node emits 'response' a tick after the read
    // that carried it, and under TLS the DATA of that same read is pushed before that tick. Read at
    // once, a message went down before the headers (a bare :status 200, no content-type).
    up.once('response', (headers: IncomingHttpHeaders, flags: number, raw: string[]) => {
      up.on('data', this.#onUpData);
      up.on('end', this.#onUpEnd);
      this.#onUpResponse(headers, flags, raw);
    });
    up.on('trailers', this.#onUpTrailers);
    up.on('close', () => this.#onUpClose(up, session));
    up.on('error', noop);
  }

  /** Writes a request message to `up`, pausing `down` while `up` is full. */
  protected writeUp(up: ClientHttp2Stream, buf: Buffer): void {
    if (!up.write(buf)) {
      const down = this.down;
      down.pause();
      up.once('drain', () => down.resume());
    }
  }

  /** Writes a response message to `down`, pausing `up` while `down` is full. */
  protected sendDown(buf: Buffer): void {
    const down = this.down;
    if (down.destroyed) return;
    if (!down.write(buf)) {
      const up = this.up!;
      up.pause();
      down.once('drain', () => up.resume());
    }
  }

  #onUpResponse = (headers: IncomingHttpHeaders, flags: number, raw: string[]): void => {
    if (this.done) return;
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (this.onUpHeaders(headers, endStream)) return;
    if (endStream) {
      // Trailers-only (a status with no messages): pass it on as such.
      respondTrailersOnly(this.down, trailersOf(raw));
      this.finish(Number(headers['grpc-status'] ?? Status.UNKNOWN), true);
      return;
    }
    try {
      this.down.respond(raw, { waitForTrailers: true });
    } catch {
      return; // `down` went away meanwhile; its 'close' ends the call
    }
    this.responded = true;
  };

  #onUpData = (chunk: Buffer): void => {
    if (this.done) return;
    try {
      this.readUp(chunk);
    } catch (err) {
      const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', (err as Error).message);
      this.refused(q.code);
      this.fail(q.grpcStatus, q.code, `bad response from ${this.upName()}: ${q.message}`);
    }
  };

  #onUpTrailers = (trailers: IncomingHttpHeaders): void => {
    this.#trailers = trailers;
  };

  #onUpEnd = (): void => {
    if (this.done || !this.responded) return;
    try {
      this.endUpReader();
    } catch (err) {
      const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', (err as Error).message);
      this.fail(q.grpcStatus, q.code, `response from ${this.upName()}: ${q.message}`);
      return;
    }
    if (!this.down.writableEnded && !this.down.destroyed) this.down.end();
  };

  #onWantTrailers = (): void => {
    const answered = this.#trailers !== undefined && !this.failed;
    const t = this.#trailers ?? statusTrailers(Status.INTERNAL, `${this.upName()} ended the call without a gRPC status`, 'QB_UPSTREAM_FAILED');
    try {
      // Trailers never hold pseudo-headers: pass the received object on as is.
      this.down.sendTrailers(t as Record<string, string | string[]>);
    } catch {
      // `down` went away meanwhile
    }
    this.finish(Number(t['grpc-status'] ?? Status.UNKNOWN), answered);
  };

  #onUpClose(up: ClientHttp2Stream, session: ClientHttp2Session): void {
    if (this.up !== up || this.done) return;
    const code = up.rstCode ?? NGHTTP2_NO_ERROR;
    if (this.#trailers !== undefined && code === NGHTTP2_NO_ERROR) return; // normal end; trailers pending
    const sessionLost = session.destroyed;
    if (!sessionLost && code === NGHTTP2_NO_ERROR) return; // 'end' and 'wantTrailers' finish the call
    if (this.onUpClosed(code, sessionLost)) return;
    if (!sessionLost) {
      // The far end reset this one stream (e.g. its app cancelled): reset `down` alike.
      if (!this.down.closed) this.down.close(code);
      this.finish(Status.CANCELLED, true);
      return;
    }
    this.fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `connection to ${this.upName()} lost after the call was sent (not retried)`);
  }

  #onDownClose = (): void => {
    if (this.done) return;
    // The caller went away (cancel, deadline, reset): the far end must see it. Before any answer, it
    // may be a rapid reset: this connection's next streams wait a turn (actSoon) for a while.
    const conn = this.conn;
    if (conn !== undefined && !this.down.headersSent) conn.deferUntil = performance.now() + DEFER_AFTER_RESET_MS;
    const up = this.up;
    if (up !== undefined) this.cancelUp(up);
    else this.downGoneEarly();
    this.finish(Status.CANCELLED, false);
  };

  /**
   * Runs the call's first step now, or one turn later on a connection that lately reset a stream
   * before its answer: then a reset that arrives in the same read as the request is seen before
   * anything is opened, and never costs the far end. A connection that behaves pays no turn.
   */
  protected actSoon(fn: () => void): void {
    const conn = this.conn;
    if (conn !== undefined && performance.now() < conn.deferUntil) nextTurn(fn);
    else fn();
  }

  /** Counts a refusal of the sidecar's own (one per call). */
  protected abstract refused(code: ErrorCode): void;

  /** Ends the call with a status of the sidecar's own: trailers-only when nothing was answered yet. */
  protected fail(status: number, code: ErrorCode, message: string, frame?: unknown): void {
    if (this.done || this.failed) return;
    this.failed = true;
    this.logFailure(status, code, message, frame);
    const up = this.up;
    if (up !== undefined) this.cancelUp(up);
    const down = this.down;
    if (!down.headersSent) {
      endWithStatus(down, statusTrailers(status, message, code));
      this.finish(status, false);
      return;
    }
    this.#trailers = statusTrailers(status, message, code);
    if (!down.writableEnded && !down.destroyed) down.end(); // 'wantTrailers' sends them
    else this.finish(status, false);
  }

  protected finish(status: number, answered: boolean): void {
    if (this.done) return;
    this.done = true;
    this.finished(status, answered);
  }
}

let turnQueue: (() => void)[] = [];
let turnSpare: (() => void)[] = [];
let turnScheduled = false;

/**
 * Runs `fn` one event-loop turn later (after the I/O of this turn, so a reset that arrived in the
 * same read is seen first). One Immediate per turn serves every call that arrived in it.
 */
export function nextTurn(fn: () => void): void {
  turnQueue.push(fn);
  if (!turnScheduled) {
    turnScheduled = true;
    setImmediate(runTurn);
  }
}

function runTurn(): void {
  turnScheduled = false;
  const q = turnQueue;
  turnQueue = turnSpare;
  for (let i = 0; i < q.length; i++) q[i]!();
  q.length = 0;
  turnSpare = q;
}

/** A request's headers to pass on: the raw list minus our own qbasis-* (and whatever `drop` names). */
export function passHeaders(raw: string[], drop?: string): string[] {
  const h: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k === drop || k.startsWith('qbasis-')) continue;
    h.push(k, raw[i + 1]!);
  }
  return h;
}

/** A trailers-only answer's raw header list: pseudo-headers but :status dropped, repeats joined. */
function trailersOf(raw: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.charCodeAt(0) === 58 && k !== ':status') continue;
    o[k] = o[k] === undefined ? raw[i + 1]! : `${o[k]}, ${raw[i + 1]!}`;
  }
  return o;
}

function noop(): void {}
