// A legacy caller's call, shaped as the gRPC server stream an OutboundCall relays for a gRPC app: the
// request (already converted to protobuf) is read from it as one gRPC message, and what the relay writes
// back (response headers, messages, trailers or a trailers-only status) becomes the HTTP answer: the JSON
// message with 200, NDJSON lines for server streaming, or the error's HTTP status with google.rpc.Status.
// So the legacy caller's call takes exactly the path a gRPC caller's takes (routing, versions, policy,
// retries, metrics), and only the ends are converted.
import { EventEmitter } from 'node:events';
import { gunzipSync } from 'node:zlib';
import type { OutgoingHttpHeaders } from 'node:http';
import { Status, statusName } from '../../proto/errors.ts';
import { decodeGrpcMessage, GrpcMessageReader, grpcMessage, statusTrailers } from '../grpc-wire.ts';
import type { Exchange } from './exchange.ts';
import { HOP_BY_HOP } from './exchange.ts';
import { pickResponseBody } from './http-routes.ts';
import { errorBody, httpStatusOf } from './http-status.ts';
import type { JsonCodec } from './json-codec.ts';
import type { MethodInfo } from './schema.ts';
import { omittedHeader, type StatusDetails } from './status-details.ts';

type Headers = Record<string, string | string[] | undefined>;

/** gRPC response headers and trailers that are not the app's metadata. */
const NOT_METADATA = new Set([':status', 'content-type', 'content-length', 'grpc-status', 'grpc-message', 'grpc-encoding', 'grpc-accept-encoding', 'grpc-status-details-bin', 'qbasis-error-code', 'date']);

/**
 * Only what the relay and OutboundCall use of a ServerHttp2Stream, on an EventEmitter: the request as
 * 'data' and 'end' once a 'data' listener is there (pause and resume honoured); respond, write (false
 * and then 'drain' while the caller's side is full), end (which asks for trailers: 'wantTrailers'),
 * sendTrailers, close; 'close' once. A Duplex's two stream states per call cost more than the rest.
 */
export class CallerStream extends EventEmitter {
  /** The relay reads these as it would a ServerHttp2Stream's. */
  readonly session = undefined;
  headersSent = false;
  destroyed = false;
  closed = false;
  readableEnded = false;
  writableEnded = false;
  readonly #ex: Exchange;
  readonly #method: MethodInfo;
  readonly #codec: JsonCodec;
  readonly #details: StatusDetails;
  readonly #streaming: boolean;
  #request: Buffer | undefined;
  readonly #reader: GrpcMessageReader;
  #metadata: OutgoingHttpHeaders = {};
  #answer: string | undefined;
  #messages = 0;
  #finished = false;
  #timer: NodeJS.Timeout | undefined;
  /** The last write to the caller filled its buffer: the relay's next message waits for 'drain'. */
  #blocked = false;
  #paused = false;
  #flowScheduled = false;
  /** What the caller got, for the gateway's log: HTTP status and (on errors) the gRPC code. */
  outcome: { http: number; grpc: number; qb?: string } | undefined;

  constructor(ex: Exchange, method: MethodInfo, codec: JsonCodec, details: StatusDetails, request: Uint8Array, maxMessageBytes: number, deadlineMs: number | undefined) {
    super();
    this.#ex = ex;
    this.#method = method;
    this.#codec = codec;
    this.#details = details;
    this.#streaming = method.streaming === 'server_streaming';
    this.#request = grpcMessage(false, Buffer.from(request.buffer, request.byteOffset, request.byteLength));
    this.#reader = new GrpcMessageReader(maxMessageBytes, this.#onMessage);
    this.on('newListener', onNewListener);
    ex.onGone(() => this.destroy());
    if (deadlineMs !== undefined) {
      // A gRPC client ends its own call at its deadline; for a legacy caller the gateway does.
      this.#timer = setTimeout(() => {
        this.#finish(statusTrailers(Status.DEADLINE_EXCEEDED, `${method.path}: no answer within the deadline of ${deadlineMs} ms (grpc-timeout)`, 'QB_DEADLINE_EXCEEDED'));
        this.destroy();
      }, deadlineMs);
    }
  }

  // ---- the request: one message, then the end, as a stream's 'data' and 'end' ----

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    this.#paused = false;
    this.flowSoon();
    return this;
  }

  /** @internal As a Readable does, one tick after a 'data' listener came or a resume. */
  flowSoon(): void {
    if (this.#flowScheduled || this.readableEnded) return;
    this.#flowScheduled = true;
    process.nextTick(flow, this);
  }

  /** @internal */
  flow(): void {
    this.#flowScheduled = false;
    if (this.#paused || this.destroyed || this.readableEnded) return;
    const r = this.#request;
    if (r !== undefined) {
      this.#request = undefined;
      this.emit('data', r);
      if (this.#paused || this.destroyed) return;
    }
    this.readableEnded = true;
    this.emit('end');
  }

  // ---- what the relay sends down ----

  respond(headers: Headers | string[], opts?: { endStream?: boolean; waitForTrailers?: boolean }): void {
    this.headersSent = true;
    const h = Array.isArray(headers) ? fromRaw(headers) : headers;
    if (opts?.endStream === true) {
      // Trailers-only: a status and no message.
      this.#finish(h);
      this.destroy();
      return;
    }
    this.#metadata = metadataOf(h);
  }

  /** A response message (gRPC framing): false while the caller's side is full, then 'drain'. */
  write(chunk: Buffer): boolean {
    if (this.destroyed) return true;
    try {
      this.#reader.push(chunk);
    } catch (err) {
      this.#failAnswer((err as Error).message);
      this.destroy();
      return true;
    }
    if (!this.#blocked) return true;
    this.#blocked = false;
    this.#ex.onDrain(() => this.emit('drain'));
    return false;
  }

  /** The response is complete: the relay answers 'wantTrailers' with sendTrailers, at once. */
  end(): void {
    if (this.writableEnded || this.destroyed) return;
    this.writableEnded = true;
    this.emit('wantTrailers');
  }

  sendTrailers(trailers: Headers): void {
    this.#finish(trailers);
    this.destroy();
  }

  /** RST_STREAM from the relay: the far end reset the call, or the relay ends an unread request. */
  close(code?: number): void {
    if (!this.#finished && code !== undefined && code !== 0) {
      this.#finish(statusTrailers(Status.UNAVAILABLE, `${this.#method.path}: the call was reset on the provider's side (HTTP/2 error ${code})`, 'QB_UPSTREAM_FAILED'));
    }
    this.destroy();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (!this.#finished && !this.#ex.done) {
      // Gone without a status (the relay cancelled after a failure of its own, already answered): close the answer.
      this.#finish(statusTrailers(Status.CANCELLED, `${this.#method.path}: the call was cancelled`, undefined));
    }
    process.nextTick(emitClose, this);
  }

  // ---- conversion ----

  #onMessage = (compressed: boolean, payload: Buffer): void => {
    if (this.#finished) return;
    const bytes = compressed ? gunzipSync(payload) : payload;
    let json: string;
    try {
      json = pickResponseBody(this.#method, this.#codec.binaryToJson(this.#method.output, bytes));
    } catch (err) {
      throw new Error(`the provider's answer is not a valid ${this.#method.output.typeName}: ${(err as Error).message}`);
    }
    this.#messages++;
    if (!this.#streaming) {
      if (this.#messages > 1) throw new Error(`the provider sent more than one answer to the unary method ${this.#method.path}`);
      this.#answer = json;
      return;
    }
    const ex = this.#ex;
    if (!ex.headSent) ex.head(200, { 'content-type': 'application/x-ndjson', ...this.#metadata }, { trailers: true });
    if (!ex.write(`${json}\n`)) this.#blocked = true;
  };

  #failAnswer(why: string): void {
    this.#finish(statusTrailers(Status.INTERNAL, `${this.#method.path}: ${why}`, 'QB_BAD_MESSAGE'));
  }

  /** The HTTP answer for a final gRPC status (once). */
  #finish(t: Headers): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const ex = this.#ex;
    if (ex.done) return;
    const code = Number(t['grpc-status'] ?? Status.UNKNOWN);
    const message = decodeGrpcMessage(t['grpc-message']);
    const qb = typeof t['qbasis-error-code'] === 'string' ? t['qbasis-error-code'] : undefined;
    const meta = { ...this.#metadata, ...metadataOf(t) };
    if (code === Status.OK && (this.#streaming || this.#answer !== undefined)) {
      this.outcome = { http: 200, grpc: 0 };
      if (this.#streaming) {
        if (!ex.headSent) ex.head(200, { 'content-type': 'application/x-ndjson', ...meta }, { trailers: true });
        ex.end(undefined, { 'grpc-status': '0', ...metadataOf(t) });
      } else {
        ex.head(200, { 'content-type': 'application/json', ...meta });
        ex.end(this.#answer);
      }
      return;
    }
    const [status, msg, qbCode] = code === Status.OK
      ? [Status.INTERNAL, `${this.#method.path}: the provider answered OK without a message; expected one ${this.#method.output.typeName}`, 'QB_BAD_MESSAGE']
      : [code, message, qb];
    this.outcome = { http: httpStatusOf(status), grpc: status, ...(qbCode === undefined ? {} : { qb: qbCode }) };
    const { details, omitted } = code === Status.OK ? { details: [], omitted: [] } : this.#details.fromTrailer(t['grpc-status-details-bin'], code);
    if (ex.headSent) {
      // Server streaming that already answered 200: the error is the last line, and the trailers (where the client takes them) say it too.
      ex.end(`${JSON.stringify({ error: { code: status, message: msg, details } })}\n`, { 'grpc-status': String(status), ...(qbCode === undefined ? {} : { 'qbasis-error-code': qbCode }), ...omittedHeader(omitted), ...metadataOf(t) });
      return;
    }
    const left = omittedHeader(omitted);
    // qbasis-error-code: the mesh's own refusal (a stable QB_ code); without it, the provider's app answered the error.
    ex.head(httpStatusOf(status), { 'content-type': 'application/json', 'grpc-status': String(status), ...(qbCode === undefined ? {} : { 'qbasis-error-code': qbCode }), ...left, ...meta });
    ex.end(errorBody(status, msg === '' ? statusName(status) : msg, details));
  }
}

function fromRaw(raw: string[]): Headers {
  const o: Headers = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    const prev = o[k];
    o[k] = prev === undefined ? raw[i + 1]! : [...(Array.isArray(prev) ? prev : [prev]), raw[i + 1]!];
  }
  return o;
}

function metadataOf(h: Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 58 || NOT_METADATA.has(k) || HOP_BY_HOP.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function onNewListener(this: CallerStream, event: string | symbol): void {
  if (event === 'data') this.flowSoon();
}

function flow(s: CallerStream): void {
  s.flow();
}

function emitClose(s: CallerStream): void {
  s.emit('close');
}
