// The HTTP/2 server both listeners use: large windows (1 KiB messages at high rates would otherwise
// stall on WINDOW_UPDATEs), no push, Nagle off, the set of open sessions for draining, and the limits
// that keep one peer from taking the sidecar down: streams per connection, connections, memory per
// connection, resets per second, bytes of partial frames held, and idle connections closed.
// With mesh identity on (inbound only) the server is TLS 1.3 with ALPN h2 and requires a client
// certificate chained to the trust bundle; the caller's SPIFFE ID is read once per connection.
import http2 from 'node:http2';
import type { Http2SecureServer, Http2Server, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ByteBudget } from '../proto/basis/index.ts';
import { meshIdentityOf } from '../proto/identity.ts';

export interface ListenerLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised and enforced per connection. */
  maxConcurrentStreams: number;
  /** Open connections; more are closed at once. */
  maxConnections: number;
  /** A connection with no open stream for this long is closed with GOAWAY (ms). */
  idleTimeoutMs: number;
  /** Bytes of partial (incomplete) frames one connection may hold. */
  partialFrameBytes: number;
  /** RST_STREAMs a peer may send (nghttp2's limit): a burst, then this many per second; beyond, GOAWAY. */
  resetBurst: number;
  resetRate: number;
  /** Streams reset before the sidecar acted on them (rapid reset): a burst, then per second; beyond, GOAWAY ENHANCE_YOUR_CALM. */
  rapidResetBurst: number;
  rapidResetRate: number;
}

/** Per-connection state the calls share. */
export interface SessionState {
  streams: number;
  /** performance.now() when the last stream closed, or when the connection opened. */
  idleSince: number;
  budget: ByteBudget;
  /** A stream was reset before it was acted on; past the limit the connection is closed. */
  rapidReset(): void;
  /**
   * Until then (performance.now() ms) new streams of this connection wait one event-loop turn before
   * they are acted on: the peer lately reset a stream before its answer (see relay.ts actSoon).
   */
  deferUntil: number;
  /** TLS: the SPIFFE ID the caller's certificate names (undefined: none, or plain text). */
  peer: string | undefined;
}

/** Mutual TLS for a listener: peers must present a certificate chained to `ca`. */
export interface ListenerTls {
  /** PEM roots (the trust bundle). */
  ca: Buffer;
  /** A handshake failed (no certificate, an unknown issuer, plain text on the TLS port): counted. */
  onHandshakeError(err: Error): void;
}

export interface H2Listener {
  /** Http2SecureServer with TLS: the same events ('session', 'stream'), listen and close. */
  server: Http2Server;
  sessions: Set<ServerHttp2Session>;
  /** Stops the idle sweep (at shutdown). */
  stopSweep(): void;
  /** TLS only: the certificate new handshakes present (open connections keep theirs). */
  /** New handshakes use this certificate, and verify clients against `ca` when given (a new trust bundle). */
  setCertificate?(key: string, chain: string, ca?: Buffer): void;
}

const SESSION_WINDOW = 16 * 1024 * 1024;
/** nghttp2's own memory for one connection (MB): headers, queued frames, HPACK tables. */
const MAX_SESSION_MEMORY_MB = 32;
const states = new WeakMap<ServerHttp2Session, SessionState>();

export function sessionState(s: ServerHttp2Session): SessionState | undefined {
  return states.get(s);
}

export function createH2Listener(limits: ListenerLimits, tls?: ListenerTls): H2Listener {
  const options = {
    settings: { enablePush: false, initialWindowSize: 1024 * 1024, maxConcurrentStreams: limits.maxConcurrentStreams },
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    streamResetBurst: limits.resetBurst,
    streamResetRate: limits.resetRate,
  };
  // Without a certificate yet, every handshake fails until setCertificate (the sidecar is not ready then).
  const secure = tls === undefined ? undefined
    : http2.createSecureServer({ ...options, ca: tls.ca, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'], minVersion: 'TLSv1.3', allowHTTP1: false });
  const server = secure === undefined ? http2.createServer(options) : (secure as unknown as Http2Server);
  secure?.on('tlsClientError', (err: Error) => tls!.onHandshakeError(err));
  // TLS without ALPN h2 (Node would hold the socket for 10 s first): closed at once, counted.
  secure?.on('unknownProtocol', (sock: Socket) => {
    tls!.onHandshakeError(new Error(`the client negotiated no h2 (ALPN ${(sock as TLSSocket).alpnProtocol || 'none'})`));
    sock.destroy();
  });
  server.maxConnections = limits.maxConnections;
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s: ServerHttp2Session) => {
    sessions.add(s);
    let held = 0;
    let tokens = limits.rapidResetBurst;
    let refilledAt = performance.now();
    const state: SessionState = {
      streams: 0,
      deferUntil: 0,
      peer: tls === undefined ? undefined : meshIdentityOf((s.socket as TLSSocket).getPeerCertificate?.()?.subjectaltname),
      idleSince: performance.now(),
      budget: {
        take(n) {
          if (held + n > limits.partialFrameBytes) return false;
          held += n;
          return true;
        },
        give(n) {
          held -= n;
        },
      },
      rapidReset() {
        const now = performance.now();
        tokens = Math.min(limits.rapidResetBurst, tokens + ((now - refilledAt) / 1000) * limits.rapidResetRate);
        refilledAt = now;
        if (--tokens >= 0 || s.destroyed) return;
        // CVE-2023-44487: the answer HTTP/2 servers give; nothing of these streams reached the app.
        s.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        s.destroy();
      },
    };
    states.set(s, state);
    s.on('stream', (stream) => {
      state.streams++;
      stream.once('close', () => {
        if (--state.streams === 0) state.idleSince = performance.now();
      });
    });
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
    s.once('connect', () => {
      try {
        s.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // only an optimisation
      }
    });
  });
  server.on('connection', (sock: Socket) => sock.setNoDelay(true));
  // One sweep per listener instead of a timer per connection.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const s of sessions) {
      const st = states.get(s);
      if (st === undefined || st.streams > 0 || now - st.idleSince < limits.idleTimeoutMs) continue;
      if (s.closed) s.destroy();
      else s.close(); // GOAWAY: the peer reconnects when it has a call to make
    }
  }, Math.max(50, Math.min(5000, limits.idleTimeoutMs / 4)));
  sweep.unref();
  const listener: H2Listener = { server, sessions, stopSweep: () => clearInterval(sweep) };
  let ca = tls?.ca;
  if (secure !== undefined) {
    listener.setCertificate = (key, chain, next) => {
      if (next !== undefined) ca = next;
      secure.setSecureContext({ key, cert: chain, ca, minVersion: 'TLSv1.3' });
    };
  }
  return listener;
}
