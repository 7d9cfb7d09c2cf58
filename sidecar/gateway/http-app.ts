// The legacy provider, as InboundCall sees its app: `acquire` gives a "session" whose `request` opens a
// ProviderStream, which looks like the client stream to a gRPC app but makes an HTTP/1.1 request with
// JSON (by the method's route rule) on a bounded keep-alive pool, and turns the answer back into gRPC:
// the JSON converted to protobuf, the app's HTTP status to a gRPC code, a body that is not the method's
// response in JSON to INTERNAL naming the field or byte offset (QB_APP_BAD_ANSWER).
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import { gunzipSync } from 'node:zlib';
import type { Dispatcher, Pool } from 'undici';
import { Status, type ErrorCode } from '../../proto/errors.ts';
import { invalidUtf8Offset } from '../../proto/utf8.ts';
import type { Acquired } from '../connection.ts';
import { encodeGrpcMessage, GrpcMessageReader, grpcMessage, parseTimeout } from '../grpc-wire.ts';
import { HOP_BY_HOP } from './exchange.ts';
import type { Gateway } from './gateway.ts';
import { omittedHeader } from './status-details.ts';
import { appRequest, wrapResponseBody, type AppRequest } from './http-routes.ts';
import { appError } from './http-status.ts';
import { JsonCodecError, jsonSyntaxOffset } from './json-codec.ts';
import type { MethodInfo } from './schema.ts';

type Controller = Dispatcher.DispatchController;

/** Connections to the app at most; more calls wait in the pool's queue. */
export const APP_MAX_SOCKETS = 128;
const END_STREAM = 0x1;
const IDLE_SOCKET_MS = 4000;

/** gRPC request headers that are not the caller's metadata (undici refuses `expect`). */
const NOT_METADATA = new Set(['content-type', 'content-length', 'user-agent', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'expect']);
/** The app's response headers that are not metadata for the caller. */
const NOT_APP_METADATA = new Set(['content-type', 'content-length', 'content-encoding', 'date', 'server', 'etag', 'last-modified', 'vary', 'cache-control', 'expires', 'age', 'accept-ranges']);

/** Why a request was aborted on our side (its onResponseError is then ignored). */
const CANCELLED = new Error('the call ended on the caller\'s side');

export class HttpApp {
  readonly key: string;
  readonly #gateway: Gateway;
  readonly #pool: Pool;
  readonly #session: ClientHttp2Session;

  constructor(host: string, port: number, gateway: Gateway) {
    this.key = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.#gateway = gateway;
    // undici's pool (its dispatch API: no stream or request objects per call) costs about half of
    // node:http's client per request here. Only the pool's module is loaded: undici's index also
    // loads fetch, WebSocket and the caches, which a sidecar never uses.
    const PoolClass = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof Pool;
    // Idle connections are dropped after 4 s, before common servers' keep-alive timeouts (Node's 5 s)
    // close them under a request; an app's shorter `keep-alive: timeout=` is honoured too. No timeouts
    // of the pool's own: the call's deadline (grpc-timeout) bounds a request.
    this.#pool = new PoolClass(`http://${this.key}`, { connections: APP_MAX_SOCKETS, pipelining: 1, keepAliveTimeout: IDLE_SOCKET_MS, keepAliveMaxTimeout: IDLE_SOCKET_MS, headersTimeout: 0, bodyTimeout: 0 });
    const session = { destroyed: false, request: (headers: string[]) => new ProviderStream(this, headers) };
    this.#session = session as unknown as ClientHttp2Session;
  }

  /** Always at once: the HTTP pool connects per request (a refused connection is QB_APP_UNAVAILABLE then). */
  acquire(cb: Acquired): void {
    cb(undefined, this.#session);
  }

  cancel(stream: ClientHttp2Stream): void {
    stream.close();
  }

  destroy(): void {
    this.#pool.destroy().catch(() => {});
  }

  /** @internal for ProviderStream */
  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.#pool.dispatch(opts, handler);
  }

  get gateway(): Gateway {
    return this.#gateway;
  }
}

/**
 * One call: the "client stream" InboundCall relays, and the undici handler of its HTTP request. Only what
 * the relay uses of a ClientHttp2Stream (write, end, pause, resume, close; 'response', 'data', 'trailers',
 * 'end', 'close'), on an EventEmitter: a Duplex's two stream states per call cost more than the rest.
 */
class ProviderStream extends EventEmitter implements Dispatcher.DispatchHandler {
  rstCode = 0;
  writableEnded = false;
  destroyed = false;
  readonly #app: HttpApp;
  readonly #headers: string[];
  readonly #method: MethodInfo | undefined;
  readonly #path: string;
  readonly #reader: GrpcMessageReader;
  #message: Buffer | undefined;
  #messages = 0;
  #request: { r: AppRequest; headers: string[]; again: boolean } | undefined;
  #ctl: Controller | undefined;
  /** The app's answer: status and headers once they arrived. */
  #code = 0;
  #resHeaders: IncomingHttpHeaders = {};
  #chunks: Buffer[] = [];
  #size = 0;
  #lines = 0;
  /** The response message has a field named `error` (then `{"error":…}` lines are messages): looked up once. */
  #errorField: boolean | undefined;
  #responded = false;
  /** The call's answer is decided (a status, or the last message): nothing more is taken from the app. */
  #ended = false;
  /** undici is done with the request (answered, failed or aborted). */
  #httpDone = false;
  #timer: NodeJS.Timeout | undefined;
  /** Messages held while the relay paused this stream; then 'end', once they are out. */
  #held: Buffer[] = [];
  #paused = false;
  #last = false;
  #endEmitted = false;

  constructor(app: HttpApp, headers: string[]) {
    super();
    this.#app = app;
    this.#headers = headers;
    this.#path = headerOf(headers, ':path') ?? '';
    this.#method = app.gateway.schema.methods.get(this.#path);
    this.#reader = new GrpcMessageReader(app.gateway.maxBodyBytes, (compressed, payload) => {
      this.#messages++;
      this.#message = compressed ? gunzipSync(payload) : payload;
    });
    const m = this.#method;
    if (m === undefined) setImmediate(() => this.#status(Status.UNIMPLEMENTED, `${this.#path}: the schema of this pod's gateway has no such method (--schema)`, 'QB_NO_SUCH_METHOD'));
    else if (m.streaming === 'client_streaming' || m.streaming === 'bidi_streaming') {
      setImmediate(() => this.#status(Status.UNIMPLEMENTED, `${m.path} is ${m.streaming === 'client_streaming' ? 'client' : 'bidi'}-streaming: a legacy HTTP/JSON app serves unary and server-streaming methods only`, 'QB_STREAMING_NOT_SUPPORTED'));
    }
  }

  // ---- what the relay calls ----

  /** The request, as gRPC messages: never pushes back (a message is bounded by the reader). */
  write(chunk: Buffer): boolean {
    if (this.#ended) return true;
    try {
      this.#reader.push(chunk);
    } catch (err) {
      this.#status(Status.RESOURCE_EXHAUSTED, (err as Error).message, 'QB_FRAME_TOO_LARGE');
    }
    return true;
  }

  /** The request is complete: the HTTP request goes out. */
  end(): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    if (this.#ended || this.#method === undefined) return;
    if (this.#messages > 1) return this.#status(Status.INVALID_ARGUMENT, `${this.#path} takes one request message; got ${this.#messages}`, 'QB_BAD_MESSAGE');
    this.#send(this.#method, this.#message ?? Buffer.alloc(0));
  }

  pause(): void {
    this.#paused = true;
    if (!this.#httpDone) this.#ctl?.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    while (this.#held.length > 0 && !this.#paused) this.emit('data', this.#held.shift()!);
    if (this.#paused) return;
    if (this.#last) this.#emitEnd();
    else if (!this.#httpDone) this.#ctl?.resume();
  }

  /** RST_STREAM, as the relay cancels: abort the HTTP request. */
  close(): void {
    this.rstCode = 8; // NGHTTP2_CANCEL
    this.#ended = true;
    this.#destroy();
  }

  /** A response message to the relay, or held while it paused this stream. */
  #push(message: Buffer): void {
    if (this.#paused || this.#held.length > 0) this.#held.push(message);
    else this.emit('data', message);
  }

  /** The last message was pushed: 'end' once the held ones are out. */
  #pushEnd(): void {
    this.#last = true;
    if (!this.#paused && this.#held.length === 0) this.#emitEnd();
  }

  #emitEnd(): void {
    if (this.#endEmitted) return;
    this.#endEmitted = true;
    this.emit('end');
    this.#destroy();
  }

  #destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.#ended = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (!this.#httpDone) {
      this.#httpDone = true;
      this.#ctl?.abort(CANCELLED);
    }
    process.nextTick(emitClose, this);
  }

  #send(m: MethodInfo, bytes: Buffer): void {
    const gw = this.#app.gateway;
    let json: string;
    try {
      json = gw.codec.binaryToJson(m.input, bytes);
    } catch (err) {
      return this.#status(Status.INVALID_ARGUMENT, `${m.path}: the request is not a valid ${m.input.typeName}: ${(err as Error).message}`, 'QB_BAD_MESSAGE');
    }
    const r = appRequest(m, json);
    const headers = ['accept', m.streaming === 'server_streaming' ? 'application/x-ndjson' : 'application/json'];
    for (let i = 0; i < this.#headers.length; i += 2) {
      const k = this.#headers[i]!;
      if (k.charCodeAt(0) === 58 || HOP_BY_HOP.has(k) || NOT_METADATA.has(k)) continue;
      headers.push(k, this.#headers[i + 1]!);
    }
    if (r.body !== undefined) headers.push('content-type', 'application/json');
    const timeout = parseTimeout(headerOf(this.#headers, 'grpc-timeout'));
    if (timeout !== undefined) {
      this.#timer = setTimeout(() => {
        this.#ctl?.abort(CANCELLED);
        this.#status(Status.DEADLINE_EXCEEDED, `${m.path}: the app at ${this.#app.key} gave no answer within the deadline of ${Math.round(timeout)} ms`, 'QB_DEADLINE_EXCEEDED');
      }, timeout);
    }
    this.#request = { r, headers, again: false };
    this.#app.dispatch({ method: r.method, path: r.path, headers, body: r.body ?? null }, this);
  }

  // ---- the HTTP request's handler (undici's dispatch API) ----

  onRequestStart(ctl: Controller): void {
    if (this.#ended) return ctl.abort(CANCELLED);
    this.#ctl = ctl;
    if (this.#paused) ctl.pause();
  }

  onResponseStart(ctl: Controller, code: number, headers: IncomingHttpHeaders): void {
    if (this.#ended) return ctl.abort(CANCELLED);
    if (code < 200) return; // 1xx: the answer follows
    this.#code = code;
    this.#resHeaders = headers;
  }

  onResponseData(ctl: Controller, chunk: Buffer): void {
    if (this.#ended) return ctl.abort(CANCELLED);
    const m = this.#method!;
    const limit = this.#app.gateway.maxBodyBytes;
    if (m.streaming === 'server_streaming' && this.#ok()) return this.#lineData(ctl, m, chunk, limit);
    this.#size += chunk.length;
    if (this.#size > limit) {
      ctl.abort(CANCELLED);
      return this.#status(Status.RESOURCE_EXHAUSTED, `${m.path}: the app's answer is over the limit of ${limit} bytes (--max-frame-bytes)`, 'QB_APP_BAD_ANSWER');
    }
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.#httpDone = true;
    if (this.#ended) return;
    const m = this.#method!;
    const chunks = this.#chunks;
    const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
    this.#chunks = [];
    // An error's text is only a message; an answer must be UTF-8, or JSON text it is not.
    const body = this.#ok() ? this.#utf8(m, raw, m.streaming === 'server_streaming' ? `line ${this.#lines + 1} of its answer` : 'its answer') : raw.toString('utf8');
    if (body === undefined) return;
    if (m.streaming === 'server_streaming' && this.#ok()) {
      if (body !== '' && !this.#line(m, body)) return;
      this.#respond();
      return this.#finishOk();
    }
    if (!this.#ok()) {
      const e = appError(this.#code, body);
      const d = this.#app.gateway.details.toTrailer(body, e.code, e.message);
      const extra = { ...(d.bin === undefined ? {} : { 'grpc-status-details-bin': d.bin }), ...omittedHeader(d.omitted) };
      return this.#status(e.code, e.message, undefined, metadataOf(this.#resHeaders), extra);
    }
    const bytes = this.#convert(m, body.trim() === '' ? '{}' : body, 'its answer');
    if (bytes === undefined) return;
    this.#respond();
    this.#push(grpcMessage(false, asBuffer(bytes)));
    this.#finishOk();
  }

  onResponseError(_ctl: Controller | null, err: Error & { code?: string; socket?: { bytesRead?: number } }): void {
    this.#httpDone = true;
    if (this.#ended || err === CANCELLED) return;
    const m = this.#method!;
    const req = this.#request!;
    const code = err.code ?? '';
    if (this.#code === 0) {
      // Before any answer. A connection the app closed as idle just as the request went out: it reset it
      // with the request unread (ECONNRESET, EPIPE), or closed one it had answered on before (its bytes
      // read > 0). The app never took this request, so it is sent once more, on another connection.
      const reused = code === 'UND_ERR_SOCKET' && (err.socket?.bytesRead ?? 0) > 0;
      if (!req.again && (code === 'ECONNRESET' || code === 'EPIPE' || reused)) {
        req.again = true;
        this.#ctl = undefined;
        this.#httpDone = false;
        return this.#app.dispatch({ method: req.r.method, path: req.r.path, headers: req.headers, body: req.r.body ?? null }, this);
      }
      if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT') {
        // Nothing reached the app: the caller's sidecar may send the call to another endpoint.
        return this.#status(Status.UNAVAILABLE, `the app at ${this.#app.key} does not accept connections (nothing was sent to it): ${err.message}`, 'QB_APP_UNAVAILABLE');
      }
      if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
        return this.#status(Status.INTERNAL, `${m.path}: the HTTP request to the app could not be built: ${err.message}`, 'QB_INTERNAL');
      }
      return this.#status(Status.UNAVAILABLE, `${m.path}: the HTTP request to the app at ${this.#app.key} failed: ${err.message}`, 'QB_UPSTREAM_FAILED');
    }
    const streamed = m.streaming === 'server_streaming' ? ' streamed' : '';
    this.#status(Status.UNAVAILABLE, `${m.path}: the app at ${this.#app.key} broke off its${streamed} answer: ${err.message}`, 'QB_UPSTREAM_FAILED');
  }

  #ok(): boolean {
    return this.#code >= 200 && this.#code < 300;
  }

  /** Server streaming: one JSON message per line (NDJSON), each sent on as it completes. */
  #lineData(ctl: Controller, m: MethodInfo, chunk: Buffer, limit: number): void {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(0x0a, start)) !== -1) {
      // A newline byte is never inside a UTF-8 sequence: each line decodes on its own.
      const part = chunk.subarray(start, nl);
      const text = this.#utf8(m, this.#chunks.length === 0 ? part : Buffer.concat([...this.#chunks, part]), `line ${this.#lines + 1} of its answer`);
      this.#chunks = [];
      this.#size = 0;
      start = nl + 1;
      if (text === undefined || !this.#line(m, text)) return ctl.abort(CANCELLED);
      if (this.#ended) return;
    }
    if (start < chunk.length) {
      this.#size += chunk.length - start;
      if (this.#size > limit) {
        ctl.abort(CANCELLED);
        return this.#status(Status.RESOURCE_EXHAUSTED, `${m.path}: line ${this.#lines + 1} of the app's answer is over the limit of ${limit} bytes`, 'QB_APP_BAD_ANSWER');
      }
      this.#chunks.push(start === 0 ? chunk : chunk.subarray(start));
    }
  }

  /** One line of a streamed answer: false after it ended the call. */
  #line(m: MethodInfo, text: string): boolean {
    this.#lines++;
    if (text.trim() === '') return true;
    if (text.startsWith('{"error"') && !(this.#errorField ??= m.output.fields.some((f) => f.jsonName === 'error'))) {
      // The app's stream ends with an error, as this gateway writes it to legacy callers.
      try {
        const e = (JSON.parse(text) as { error: { code: number; message: string } }).error;
        this.#status(Number.isInteger(e.code) && e.code >= 1 && e.code <= 16 ? e.code : Status.UNKNOWN, String(e.message ?? ''), undefined);
        return false;
      } catch {
        // not the error line: converted (and refused) as a message below
      }
    }
    const bytes = this.#convert(m, text, `line ${this.#lines} of its answer`);
    if (bytes === undefined) return false;
    this.#respond();
    this.#push(grpcMessage(false, asBuffer(bytes)));
    return true;
  }

  /** The app's answer as text; undefined after answering INTERNAL (QB_APP_BAD_ANSWER) for bytes that are not UTF-8. */
  #utf8(m: MethodInfo, bytes: Buffer, what: string): string | undefined {
    if (isUtf8(bytes)) return bytes.toString('utf8');
    const type = String(this.#resHeaders['content-type'] ?? 'none');
    this.#status(Status.INTERNAL, `${m.path}: the app at ${this.#app.key} answered HTTP ${this.#code}, and ${what} is not valid UTF-8 (content-type ${type}; at byte ${invalidUtf8Offset(bytes)}); JSON text must be UTF-8`, 'QB_APP_BAD_ANSWER');
    return undefined;
  }

  /** The app's JSON as the method's response in protobuf; undefined after answering INTERNAL (QB_APP_BAD_ANSWER). */
  #convert(m: MethodInfo, text: string, what: string): Uint8Array | undefined {
    const codec = this.#app.gateway.codec;
    try {
      return codec.jsonToBinary(m.output, wrapResponseBody(m, text));
    } catch (err) {
      if (!(err instanceof JsonCodecError)) {
        this.#status(Status.INTERNAL, `${m.path}: converting the app's answer failed: ${(err as Error).message}`, 'QB_INTERNAL');
        return undefined;
      }
      const type = String(this.#resHeaders['content-type'] ?? 'none');
      const why = err.path === '' && /^invalid JSON/.test(err.message)
        ? `is not JSON (content-type ${type}; invalid at byte ${jsonSyntaxOffset(text)}: ${JSON.stringify(text.slice(0, 40))})`
        : `is not a valid ${m.output.typeName}: ${err.message}`;
      this.#status(Status.INTERNAL, `${m.path}: the app at ${this.#app.key} answered HTTP ${this.#code}, and ${what} ${why}`, 'QB_APP_BAD_ANSWER');
      return undefined;
    }
  }

  #respond(): void {
    if (this.#responded) return;
    this.#responded = true;
    const raw = [':status', '200', 'content-type', 'application/grpc'];
    const h = this.#resHeaders;
    for (const k in h) {
      const v = h[k];
      if (v === undefined || !isAppMetadata(k)) continue;
      if (Array.isArray(v)) for (const x of v) raw.push(k, x);
      else raw.push(k, v);
    }
    this.emit('response', rawToObject(raw), 0, raw);
  }

  #finishOk(): void {
    this.#ended = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.emit('trailers', { 'grpc-status': '0' });
    this.#pushEnd();
  }

  /** A final status: trailers-only before any message, else trailers. */
  #status(code: number, message: string, qb: ErrorCode | undefined, metadata: OutgoingHttpHeaders = {}, extra: Record<string, string> = {}): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const t: Record<string, string> = { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message), ...extra };
    if (qb !== undefined) t['qbasis-error-code'] = qb;
    if (this.#responded) {
      this.emit('trailers', t);
      this.#pushEnd();
      return;
    }
    this.#responded = true;
    const raw = [':status', '200', 'content-type', 'application/grpc'];
    for (const [k, v] of Object.entries(metadata)) if (typeof v === 'string') raw.push(k, v);
    for (const [k, v] of Object.entries(t)) raw.push(k, v);
    this.emit('response', rawToObject(raw), END_STREAM, raw);
    this.#pushEnd();
  }
}

function emitClose(s: ProviderStream): void {
  s.emit('close');
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function headerOf(raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
  return undefined;
}

function rawToObject(raw: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) o[raw[i]!] = o[raw[i]!] === undefined ? raw[i + 1]! : `${o[raw[i]!]}, ${raw[i + 1]!}`;
  return o;
}

/** The app's response headers that are metadata for the caller (the rest describe the HTTP exchange). */
function metadataOf(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined && isAppMetadata(k)) out[k] = v;
  }
  return out;
}

function isAppMetadata(k: string): boolean {
  return !HOP_BY_HOP.has(k) && !NOT_APP_METADATA.has(k) && !k.startsWith('grpc-') && !k.startsWith('qbasis-');
}
