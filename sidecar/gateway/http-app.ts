// The legacy provider, as InboundCall sees its app: `acquire` gives a "session" whose `request` opens a
// ProviderStream, which looks like the client stream to a gRPC app but makes an HTTP/1.1 request with
// JSON (by the method's route rule) on a bounded keep-alive pool, and turns the answer back into gRPC:
// the JSON converted to protobuf, the app's HTTP status to a gRPC code, a body that is not the method's
// response in JSON to INTERNAL naming the field or byte offset (QB_APP_BAD_ANSWER).
import type http from 'node:http';
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import { createRequire } from 'node:module';
import { Duplex } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { Status, type ErrorCode } from '../../proto/errors.ts';
import type { Acquired } from '../connection.ts';
import { encodeGrpcMessage, GrpcMessageReader, grpcMessage, parseTimeout } from '../grpc-wire.ts';
import { HOP_BY_HOP } from './exchange.ts';
import type { Gateway } from './gateway.ts';
import { omittedHeader } from './status-details.ts';
import { appRequest, wrapResponseBody, type AppRequest } from './http-routes.ts';
import { appError } from './http-status.ts';
import { JsonCodecError, jsonSyntaxOffset } from './json-codec.ts';
import type { MethodInfo } from './schema.ts';

const { Agent, request } = createRequire(import.meta.url)('node:http') as typeof http;

/** Connections to the app at most; more calls wait in the pool's queue. */
export const APP_MAX_SOCKETS = 128;
const END_STREAM = 0x1;
const IDLE_SOCKET_MS = 4000;

/** gRPC request headers that are not the caller's metadata. */
const NOT_METADATA = new Set(['content-type', 'content-length', 'user-agent', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding']);
/** The app's response headers that are not metadata for the caller. */
const NOT_APP_METADATA = new Set(['content-type', 'content-length', 'content-encoding', 'date', 'server', 'etag', 'last-modified', 'vary', 'cache-control', 'expires', 'age', 'accept-ranges']);

export class HttpApp {
  readonly key: string;
  readonly #gateway: Gateway;
  readonly #agent: http.Agent;
  readonly #host: string;
  readonly #port: number;
  readonly #session: ClientHttp2Session;

  constructor(host: string, port: number, gateway: Gateway) {
    this.#host = host;
    this.#port = port;
    this.key = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.#gateway = gateway;
    // Idle connections are dropped after 4 s, before common servers' keep-alive timeouts (Node's 5 s) close them under a request.
    this.#agent = new Agent({ keepAlive: true, maxSockets: APP_MAX_SOCKETS, maxFreeSockets: 32, scheduling: 'lifo', timeout: IDLE_SOCKET_MS });
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
    this.#agent.destroy();
  }

  /** @internal for ProviderStream */
  send(opts: http.RequestOptions): http.ClientRequest {
    return request({ ...opts, host: this.#host, port: this.#port, agent: this.#agent });
  }

  get gateway(): Gateway {
    return this.#gateway;
  }
}

class ProviderStream extends Duplex {
  rstCode = 0;
  readonly #app: HttpApp;
  readonly #headers: string[];
  readonly #method: MethodInfo | undefined;
  readonly #path: string;
  readonly #reader: GrpcMessageReader;
  #message: Buffer | undefined;
  #messages = 0;
  #req: http.ClientRequest | undefined;
  #res: http.IncomingMessage | undefined;
  #responded = false;
  #ended = false;
  #timer: NodeJS.Timeout | undefined;
  #line = '';
  #lines = 0;

  constructor(app: HttpApp, headers: string[]) {
    super({ allowHalfOpen: true });
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

  override _read(): void {
    this.#res?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      this.#reader.push(chunk);
    } catch (err) {
      this.#status(Status.RESOURCE_EXHAUSTED, (err as Error).message, 'QB_FRAME_TOO_LARGE');
    }
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
    if (this.#ended || this.#method === undefined) return;
    if (this.#messages > 1) return this.#status(Status.INVALID_ARGUMENT, `${this.#path} takes one request message; got ${this.#messages}`, 'QB_BAD_MESSAGE');
    this.#send(this.#method, this.#message ?? Buffer.alloc(0));
  }

  /** RST_STREAM, as the relay cancels: abort the HTTP request. */
  close(): void {
    this.rstCode = 8; // NGHTTP2_CANCEL
    this.#ended = true;
    this.#req?.destroy();
    this.destroy();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#req?.destroy();
    cb(err);
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
    const headers: OutgoingHttpHeaders = { accept: m.streaming === 'server_streaming' ? 'application/x-ndjson' : 'application/json' };
    for (let i = 0; i < this.#headers.length; i += 2) {
      const k = this.#headers[i]!;
      if (k.charCodeAt(0) === 58 || HOP_BY_HOP.has(k) || NOT_METADATA.has(k)) continue;
      const prev = headers[k];
      headers[k] = prev === undefined ? this.#headers[i + 1]! : [...(Array.isArray(prev) ? prev : [String(prev)]), this.#headers[i + 1]!];
    }
    if (r.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(r.body);
    }
    const timeout = parseTimeout(headerOf(this.#headers, 'grpc-timeout'));
    if (timeout !== undefined) {
      this.#timer = setTimeout(() => {
        this.#req?.destroy();
        this.#status(Status.DEADLINE_EXCEEDED, `${m.path}: the app at ${this.#app.key} gave no answer within the deadline of ${Math.round(timeout)} ms`, 'QB_DEADLINE_EXCEEDED');
      }, timeout);
    }
    this.#attempt(m, r, headers, false);
  }

  #attempt(m: MethodInfo, r: AppRequest, headers: OutgoingHttpHeaders, again: boolean): void {
    let req: http.ClientRequest;
    try {
      req = this.#app.send({ method: r.method, path: r.path, headers });
    } catch (err) {
      return this.#status(Status.INTERNAL, `${m.path}: the HTTP request to the app could not be built: ${(err as Error).message}`, 'QB_INTERNAL');
    }
    this.#req = req;
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#ended) return;
      if (!again && req.reusedSocket && this.#res === undefined && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        // A kept-alive connection the app closed as idle just as the request went out: the app never read
        // it (a server closes only connections with no request in progress), so it is sent once more.
        return this.#attempt(m, r, headers, true);
      }
      if (err.code === 'ECONNREFUSED') {
        // Nothing reached the app: the caller's sidecar may send the call to another endpoint.
        this.#status(Status.UNAVAILABLE, `the app at ${this.#app.key} does not accept connections (nothing was sent to it): ${err.message}`, 'QB_APP_UNAVAILABLE');
      } else {
        this.#status(Status.UNAVAILABLE, `${m.path}: the HTTP request to the app at ${this.#app.key} failed: ${err.message}`, 'QB_UPSTREAM_FAILED');
      }
    });
    req.on('response', (res) => this.#onResponse(m, res));
    req.end(r.body);
  }

  #onResponse(m: MethodInfo, res: http.IncomingMessage): void {
    if (this.#ended) return void res.resume();
    this.#res = res;
    const status = res.statusCode ?? 0;
    const limit = this.#app.gateway.maxBodyBytes;
    const ok = status >= 200 && status < 300;
    if (ok && m.streaming === 'server_streaming') return this.#streamLines(m, res);
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        res.destroy();
        this.#status(Status.RESOURCE_EXHAUSTED, `${m.path}: the app's answer is over the limit of ${limit} bytes (--max-frame-bytes)`, 'QB_APP_BAD_ANSWER');
        return;
      }
      chunks.push(c);
    });
    res.on('error', () => this.#status(Status.UNAVAILABLE, `${m.path}: the app at ${this.#app.key} broke off its answer`, 'QB_UPSTREAM_FAILED'));
    res.on('end', () => {
      if (this.#ended) return;
      const body = Buffer.concat(chunks, size).toString('utf8');
      if (!ok) {
        const e = appError(status, body);
        const d = this.#app.gateway.details.toTrailer(body, e.code, e.message);
        const extra = { ...(d.bin === undefined ? {} : { 'grpc-status-details-bin': d.bin }), ...omittedHeader(d.omitted) };
        return this.#status(e.code, e.message, undefined, metadataOf(res), extra);
      }
      const bytes = this.#convert(m, body.trim() === '' ? '{}' : body, res, 'its answer');
      if (bytes === undefined) return;
      this.#respond(res);
      this.push(grpcMessage(false, asBuffer(bytes)));
      this.#ok();
    });
  }

  /** Server streaming: one JSON message per line (NDJSON), each sent on as it completes. */
  #streamLines(m: MethodInfo, res: http.IncomingMessage): void {
    const limit = this.#app.gateway.maxBodyBytes;
    const errorField = m.output.fields.some((f) => f.jsonName === 'error');
    res.setEncoding('utf8');
    const line = (text: string): boolean => {
      this.#lines++;
      if (text.trim() === '') return true;
      if (!errorField && text.startsWith('{"error"')) {
        // The app's stream ends with an error, as this gateway writes it to legacy callers.
        try {
          const e = (JSON.parse(text) as { error: { code: number; message: string } }).error;
          this.#status(Number.isInteger(e.code) && e.code >= 1 && e.code <= 16 ? e.code : Status.UNKNOWN, String(e.message ?? ''), undefined);
          return false;
        } catch {
          // not the error line: converted (and refused) as a message below
        }
      }
      const bytes = this.#convert(m, text, res, `line ${this.#lines} of its answer`);
      if (bytes === undefined) return false;
      this.#respond(res);
      if (!this.push(grpcMessage(false, asBuffer(bytes)))) res.pause();
      return true;
    };
    res.on('data', (c: string) => {
      if (this.#ended) return;
      let text = this.#line + c;
      let nl: number;
      while ((nl = text.indexOf('\n')) !== -1) {
        if (!line(text.slice(0, nl))) return void res.destroy();
        text = text.slice(nl + 1);
      }
      if (text.length > limit) {
        res.destroy();
        return this.#status(Status.RESOURCE_EXHAUSTED, `${m.path}: line ${this.#lines + 1} of the app's answer is over the limit of ${limit} bytes`, 'QB_APP_BAD_ANSWER');
      }
      this.#line = text;
    });
    res.on('error', () => this.#status(Status.UNAVAILABLE, `${m.path}: the app at ${this.#app.key} broke off its streamed answer`, 'QB_UPSTREAM_FAILED'));
    res.on('end', () => {
      if (this.#ended) return;
      if (this.#line !== '' && !line(this.#line)) return;
      this.#respond(res);
      this.#ok();
    });
  }

  /** The app's JSON as the method's response in protobuf; undefined after answering INTERNAL (QB_APP_BAD_ANSWER). */
  #convert(m: MethodInfo, text: string, res: http.IncomingMessage, what: string): Uint8Array | undefined {
    const codec = this.#app.gateway.codec;
    try {
      return codec.jsonToBinary(m.output, wrapResponseBody(m, text));
    } catch (err) {
      if (!(err instanceof JsonCodecError)) {
        this.#status(Status.INTERNAL, `${m.path}: converting the app's answer failed: ${(err as Error).message}`, 'QB_INTERNAL');
        return undefined;
      }
      const type = String(res.headers['content-type'] ?? 'none');
      const why = err.path === '' && /^invalid JSON/.test(err.message)
        ? `is not JSON (content-type ${type}; invalid at byte ${jsonSyntaxOffset(text)}: ${JSON.stringify(text.slice(0, 40))})`
        : `is not a valid ${m.output.typeName}: ${err.message}`;
      this.#status(Status.INTERNAL, `${m.path}: the app at ${this.#app.key} answered HTTP ${res.statusCode}, and ${what} ${why}`, 'QB_APP_BAD_ANSWER');
      return undefined;
    }
  }

  #respond(res: http.IncomingMessage): void {
    if (this.#responded) return;
    this.#responded = true;
    const raw = [':status', '200', 'content-type', 'application/grpc'];
    for (const [k, v] of Object.entries(metadataOf(res))) {
      if (Array.isArray(v)) for (const x of v) raw.push(k, x);
      else raw.push(k, String(v));
    }
    this.emit('response', rawToObject(raw), 0, raw);
  }

  #ok(): void {
    this.#ended = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.emit('trailers', { 'grpc-status': '0' });
    this.push(null);
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
      this.push(null);
      return;
    }
    this.#responded = true;
    const raw = [':status', '200', 'content-type', 'application/grpc'];
    for (const [k, v] of Object.entries(metadata)) if (typeof v === 'string') raw.push(k, v);
    for (const [k, v] of Object.entries(t)) raw.push(k, v);
    this.emit('response', rawToObject(raw), END_STREAM, raw);
    this.push(null);
  }
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
function metadataOf(res: http.IncomingMessage): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || NOT_APP_METADATA.has(k) || k.startsWith('grpc-') || k.startsWith('qbasis-')) continue;
    out[k] = v;
  }
  return out;
}
