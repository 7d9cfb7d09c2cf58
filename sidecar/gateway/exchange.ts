// One HTTP request and its response, the same whether it came over HTTP/1.1 (node:http) or h2c
// (a node:http2 stream): what the gateway needs of either, and no more.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';

export interface Exchange {
  readonly verb: string;
  /** Path and query, as sent. */
  readonly url: string;
  /** Lower-case names. */
  readonly headers: IncomingHttpHeaders;
  readonly body: Readable;
  /** The response head was sent. */
  readonly headSent: boolean;
  /** The response is complete, or the exchange is gone. */
  readonly done: boolean;
  /** `trailers`: the response may end with trailers (a stream: its trailing metadata and grpc-status). */
  head(status: number, headers: OutgoingHttpHeaders, opts?: { trailers?: boolean }): void;
  write(chunk: string): boolean;
  /** `trailers` reach an h2c client, and an HTTP/1.1 client that sent `TE: trailers` (chunked answers only). */
  end(chunk?: string, trailers?: OutgoingHttpHeaders): void;
  onDrain(fn: () => void): void;
  /** The client went away before the response was complete. */
  onGone(fn: () => void): void;
  /** After an answer sent before the request was read (413, 501): stop reading it (HTTP/1.1 closes the connection). */
  abandonRequest(): void;
}

/** Headers that belong to one hop (RFC 9110 §7.6.1, RFC 9113 §8.2.2), never passed on. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'http2-settings']);

export function h1Exchange(req: IncomingMessage, res: ServerResponse): Exchange {
  let gone: (() => void) | undefined;
  res.once('close', () => {
    if (!res.writableFinished) gone?.();
  });
  return {
    verb: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    body: req,
    get headSent() {
      return res.headersSent;
    },
    get done() {
      return res.writableEnded || res.destroyed;
    },
    head: (status, headers) => {
      res.writeHead(status, headers);
    },
    write: (chunk) => res.write(chunk),
    end: (chunk, trailers) => {
      const te = req.headers.te;
      if (trailers !== undefined && Object.keys(trailers).length > 0 && typeof te === 'string' && /(^|,)\s*trailers\s*(;|,|$)/i.test(te)) res.addTrailers(trailers as Record<string, string>);
      if (chunk === undefined) res.end();
      else res.end(chunk);
    },
    onDrain: (fn) => res.once('drain', fn),
    onGone: (fn) => {
      gone = fn;
    },
    abandonRequest: () => {
      if (req.complete) return;
      res.shouldKeepAlive = false; // Connection: close, and the socket goes once the answer is out
      req.resume();
    },
  };
}

export function h2Exchange(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Exchange {
  return new H2Exchange(stream, headers);
}

/** A class, not closures: one object per call instead of a dozen functions. */
class H2Exchange implements Exchange {
  readonly verb: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly #stream: ServerHttp2Stream;
  #gone: (() => void) | undefined;
  #ended = false;
  #trailers: OutgoingHttpHeaders | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders) {
    this.#stream = stream;
    this.headers = headers;
    this.verb = String(headers[':method'] ?? 'GET');
    this.url = String(headers[':path'] ?? '/');
    stream.once('close', this.#onClose);
  }

  get body(): Readable {
    return this.#stream;
  }

  get headSent(): boolean {
    return this.#stream.headersSent;
  }

  get done(): boolean {
    return this.#ended || this.#stream.destroyed || this.#stream.closed;
  }

  head(status: number, h: OutgoingHttpHeaders): void {
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    const out: OutgoingHttpHeaders = { ':status': status };
    for (const k in h) if (!HOP_BY_HOP.has(k)) out[k] = h[k];
    // Always waits for trailers: a stream ended by its last DATA frame closes before that write's
    // callback runs, and node:http2 then builds an ERR_STREAM_DESTROYED for it (~10 µs per answer).
    // With none to send, node:http2 ends the stream with an empty DATA frame.
    stream.once('wantTrailers', this.#onWantTrailers);
    stream.respond(out, { waitForTrailers: true });
  }

  write(chunk: string): boolean {
    return this.#stream.destroyed ? true : this.#stream.write(chunk);
  }

  end(chunk?: string, trailers?: OutgoingHttpHeaders): void {
    this.#ended = true;
    const stream = this.#stream;
    if (stream.destroyed) return;
    this.#trailers = trailers;
    if (chunk === undefined) stream.end();
    else stream.end(chunk);
  }

  onDrain(fn: () => void): void {
    this.#stream.once('drain', fn);
  }

  onGone(fn: () => void): void {
    this.#gone = fn;
  }

  abandonRequest(): void {
    this.#stream.resume(); // node:http2 resets an unread stream once the answer is sent
  }

  #onClose = (): void => {
    if (!this.#ended) this.#gone?.();
  };

  #onWantTrailers = (): void => {
    this.#stream.sendTrailers(this.#trailers ?? {});
  };
}
