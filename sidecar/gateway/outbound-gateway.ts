// The outbound port of an app-protocol http sidecar: the legacy app sends HTTP/1.1 or h2c with JSON;
// each request is matched to a method, its JSON converted to protobuf, and the call handed to the same
// OutboundCall a gRPC app's call gets (CallerStream stands in for the app's stream). gRPC on the same
// port still works (content-type application/grpc), so an app can move over method by method.
import net from 'node:net';
import type http from 'node:http';
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { catalogue, Status, type ErrorCode } from '../../proto/errors.ts';
import { parseTimeout } from '../grpc-wire.ts';
import type { Metrics } from '../metrics.ts';
import { OutboundCall, type OutboundContext } from '../outbound/call.ts';
import type { Router } from '../outbound/router.ts';
import { CallerStream } from './caller-stream.ts';
import { h1Exchange, h2Exchange, HOP_BY_HOP, type Exchange } from './exchange.ts';
import type { Gateway } from './gateway.ts';
import { RouteError, type RouteMatch } from './http-routes.ts';
import { errorBody, httpStatusOf } from './http-status.ts';
import { JsonCodecError } from './json-codec.ts';

// Required, not imported (see admin-server.ts: an ESM import of node:http loads undici).
const { createServer } = createRequire(import.meta.url)('node:http') as typeof http;

/** HTTP/2's connection preface starts so (RFC 9113 §3.4); anything else on the port is HTTP/1.x. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/** Request headers that are not the caller's metadata (beyond the hop-by-hop ones). */
const NOT_METADATA = new Set(['content-type', 'content-length', 'accept', 'accept-encoding', 'expect', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding']);

export interface OutboundGatewayOptions {
  gateway: Gateway;
  router: Router;
  ctx: OutboundContext;
  metrics: Metrics;
  log: Logger;
  onCall(): void;
}

export class OutboundGateway {
  readonly #o: OutboundGatewayOptions;
  readonly #h1: http.Server;

  constructor(o: OutboundGatewayOptions) {
    this.#o = o;
    this.#h1 = createServer({ keepAliveTimeout: 60_000, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => this.handle(h1Exchange(req, res)));
    this.#h1.on('clientError', (_err, sock: net.Socket) => {
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else sock.destroy();
    });
  }

  /** A non-gRPC h2c stream on the outbound port. */
  h2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    this.handle(h2Exchange(stream, headers));
  }

  /**
   * Listens on host:port and hands each connection, by its first bytes, to the HTTP/2 server (prior
   * knowledge h2c, as gRPC stubs dial) or to the HTTP/1.1 server. The returned server is what drain closes.
   */
  listen(h2: Http2Server, host: string, port: number, maxConnections: number): Promise<net.Server> {
    const front = net.createServer({ noDelay: true }, (sock) => {
      sock.once('error', () => sock.destroy());
      const sniff = (): void => {
        const first = sock.read() as Buffer | null;
        if (first === null) return void sock.once('readable', sniff);
        const h2c = first.length >= H2_PREFACE.length ? first.subarray(0, H2_PREFACE.length).equals(H2_PREFACE) : H2_PREFACE.subarray(0, first.length).equals(first);
        sock.unshift(first);
        (h2c ? h2 : this.#h1).emit('connection', sock);
      };
      sock.once('readable', sniff);
    });
    front.maxConnections = maxConnections;
    // Drain closes the listener once nothing is in flight: the HTTP/1.1 keep-alive connections go with it.
    const close = front.close.bind(front);
    front.close = (cb?: (err?: Error) => void): net.Server => {
      close(cb);
      this.#h1.closeAllConnections();
      return front;
    };
    return new Promise((resolve, reject) => {
      front.once('error', reject);
      front.listen(port, host, () => {
        front.off('error', reject);
        resolve(front);
      });
    });
  }

  handle(ex: Exchange): void {
    const o = this.#o;
    o.onCall();
    let match: RouteMatch | undefined;
    try {
      match = o.gateway.routes.match(ex.verb, ex.url);
    } catch (err) {
      return this.#refuse(ex, err instanceof RouteError ? 'QB_INVALID_JSON' : 'QB_INTERNAL', `${ex.verb} ${pathOnly(ex.url)}: ${(err as Error).message}`);
    }
    if (match === undefined) {
      return this.#refuse(ex, 'QB_NO_SUCH_METHOD', `${ex.verb} ${pathOnly(ex.url)} names no method of the schema; expected POST /<package.Service>/<Method> with a JSON body, or a google.api.http route (${o.gateway.routes.describe()})`);
    }
    const m = match.method;
    if (m.streaming === 'client_streaming' || m.streaming === 'bidi_streaming') {
      const kind = m.streaming === 'client_streaming' ? 'client-streaming' : 'bidi-streaming';
      return this.#refuse(ex, 'QB_STREAMING_NOT_SUPPORTED', `${m.path} is a ${kind} method: the HTTP/JSON gateway carries unary and server-streaming calls only (one JSON request per HTTP request); call it over gRPC`);
    }
    const limit = o.gateway.maxBodyBytes;
    const declared = Number(ex.headers['content-length'] ?? 0);
    if (declared > limit) return this.#refuse(ex, 'QB_BODY_TOO_LARGE', `${m.path}: the request body of ${declared} bytes is over the limit of ${limit} bytes (--max-frame-bytes)`);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    ex.body.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        this.#refuse(ex, 'QB_BODY_TOO_LARGE', `${m.path}: the request body is over the limit of ${limit} bytes (--max-frame-bytes)`);
        return;
      }
      chunks.push(c);
    });
    ex.body.once('end', () => {
      if (over || ex.done) return;
      try {
        this.#call(ex, match, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      } catch (err) {
        // A fault of ours must cost this request only, never the sidecar.
        this.#refuse(ex, 'QB_INTERNAL', `${m.path}: the gateway failed on this request: ${(err as Error).message}`);
      }
    });
    ex.body.once('error', () => {});
  }

  #call(ex: Exchange, match: RouteMatch, body: Buffer): void {
    const o = this.#o;
    const m = match.method;
    const codec = o.gateway.codec;
    let request: Uint8Array;
    try {
      const parts: Uint8Array[] = [];
      const b = match.binding;
      const blank = isBlank(body);
      if (b === undefined || b.body === '*') parts.push(codec.jsonToBinary(m.input, blank ? '{}' : body));
      else if (b.body !== '' && !blank) {
        const f = m.input.fields.find((x) => x.name === b.body)!;
        parts.push(codec.jsonToBinary(m.input, `{${JSON.stringify(f.jsonName)}:${body.toString('utf8')}}`));
      }
      // Path and query fields after the body: in protobuf's merge the later value of a field wins.
      if (match.fields !== undefined) parts.push(codec.jsonToBinary(m.input, JSON.stringify(match.fields)));
      request = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    } catch (err) {
      if (!(err instanceof JsonCodecError)) throw err;
      return this.#refuse(ex, 'QB_INVALID_JSON', `${m.path}: the request is not a valid ${m.input.typeName} in JSON: ${err.message}`);
    }
    const route = o.router.route(m.path, 'protobuf')!;
    if (route.balancer === undefined) {
      const declared = [...o.router.balancers.keys()].join(', ') || 'none';
      route.metrics.done(Status.FAILED_PRECONDITION, 0, false);
      return this.#refuse(ex, 'QB_API_NOT_PROVIDED', `${route.api} is not declared in --requires (qbasis.io/requires); declare it with a version range, e.g. ${route.api}@^1.0 (declared: ${declared})`, Status.FAILED_PRECONDITION);
    }
    const timeoutMs = parseTimeout(ex.headers['grpc-timeout']);
    const down = new CallerStream(ex, m, codec, o.gateway.details, request, o.ctx.maxFrameBytes, timeoutMs);
    new OutboundCall(o.ctx, down as unknown as ServerHttp2Stream, route, requestHeaders(ex, m.path), timeoutMs, false);
  }

  /** The gateway's own refusal, before any call: the code's HTTP status (413 for a body over the limit), google.rpc.Status JSON. */
  #refuse(ex: Exchange, qb: ErrorCode, message: string, status: number = catalogue[qb]): void {
    const o = this.#o;
    o.metrics.refused('outbound', qb);
    o.log.warn({ direction: 'outbound', gateway: true, verb: ex.verb, path: pathOnly(ex.url), code: qb }, message);
    if (ex.done) return;
    const http = qb === 'QB_BODY_TOO_LARGE' ? 413 : httpStatusOf(status);
    if (!ex.headSent) ex.head(http, { 'content-type': 'application/json', 'grpc-status': String(status), 'qbasis-error-code': qb });
    ex.end(errorBody(status, message));
    ex.abandonRequest();
  }

}

/** Empty, or JSON whitespace only (an empty request). */
function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)).slice(0, 200);
}

/** The gRPC request headers OutboundCall passes on: the HTTP request's own headers become metadata. */
function requestHeaders(ex: Exchange, path: string): string[] {
  const h = [':method', 'POST', ':scheme', 'http', ':path', path, ':authority', String(ex.headers[':authority'] ?? ex.headers.host ?? 'localhost'), 'content-type', 'application/grpc', 'te', 'trailers'];
  const headers = ex.headers;
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || k.charCodeAt(0) === 58 || HOP_BY_HOP.has(k) || NOT_METADATA.has(k)) continue;
    if (Array.isArray(v)) for (const x of v) h.push(k, x);
    else h.push(k, v);
  }
  return h;
}
