// A pooled HTTP/2 client connection to one address (a peer sidecar's inbound port, or the pod's own
// app): connected on first use, dropped on GOAWAY or loss, reconnected with backoff, kept alive by
// PING, and rotated before the far end's reset limit would close it with every call on it.
// With mesh identity on, a peer connection is TLS 1.3 (ALPN h2) with this sidecar's certificate, and
// the peer's certificate must name exactly the identity discovery gave for the endpoint: a handshake
// that fails that check sends nothing, so the call may go to another endpoint.
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import net from 'node:net';
import tls, { type PeerCertificate, type SecureContext } from 'node:tls';
import { Backoff } from '../proto/backoff.ts';
import { QbasisError } from '../proto/errors.ts';
import { uriSans } from '../proto/identity.ts';

/** Mutual TLS toward peers: the current client context, and who hears about a peer that failed the check. */
export interface PeerTls {
  /** undefined while this sidecar has no certificate. */
  context(): SecureContext | undefined;
  /** Once per failed handshake: the endpoint, the identity expected, what the certificate named. */
  onIdentityMismatch(key: string, expected: string, named: string): void;
}

export type Acquired = (err: Error | undefined, session: ClientHttp2Session | undefined) => void;

const SESSION_WINDOW = 16 * 1024 * 1024;
/** A session whose PING stays unanswered this long is dead (peer host gone without a reset). */
const PING_INTERVAL_MS = 15_000;
/**
 * The far end's limit on RST_STREAMs per connection (nghttp2's CVE-2023-44487 default, which Node
 * servers, grpc-js apps and peer sidecars all have): a burst, then a rate. Cancels are legitimate,
 * but one connection that carries many would be closed with every call on it, so past half the
 * burst new calls go on a fresh connection and the old one finishes its streams.
 */
const PEER_RESET_BURST = 1000;
const PEER_RESET_RATE = 33;

export type ConnState = 'idle' | 'connecting' | 'ready' | 'backoff';

export class H2Connection {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  #session: ClientHttp2Session | undefined;
  #ready = false;
  #waiting: Acquired[] = [];
  readonly #reconnect = new Backoff({ initialMs: 100, maxMs: 5000, jitter: 0.5 });
  #retryAt = 0;
  #closed = false;
  #resetTokens = PEER_RESET_BURST;
  #resetAt = 0;
  lastError: string | undefined;

  readonly #keepalive: boolean;
  readonly #tls: PeerTls | undefined;
  /** With TLS: the SPIFFE ID the peer's certificate must name (from discovery). */
  #expected = '';

  /**
   * `keepalive: false` for the pod's own app: loopback needs no dead-peer detection (a dead app closes
   * the socket), and gRPC servers with default keepalive policy (grpc-go, grpc-java) answer PINGs
   * every 15 s on a quiet connection with GOAWAY too_many_pings, failing every call on it.
   */
  constructor(address: string, port: number, opts: { keepalive?: boolean; tls?: PeerTls } = {}) {
    this.address = address;
    this.port = port;
    this.key = peerKey(address, port);
    this.#keepalive = opts.keepalive ?? true;
    this.#tls = opts.tls;
  }

  /**
   * The identity discovery gives for this address. A change (the address now belongs to another pod)
   * retires the open connection: new calls connect again and check the new name.
   */
  expect(identity: string): void {
    if (identity === this.#expected) return;
    this.#expected = identity;
    const s = this.#session;
    if (s === undefined || this.#tls === undefined) return;
    this.#session = undefined;
    this.#ready = false;
    if (!s.closed && !s.destroyed) s.close();
  }

  connState(now: number): ConnState {
    if (this.#session && this.#ready) return 'ready';
    if (this.#session) return 'connecting';
    return now < this.#retryAt ? 'backoff' : 'idle';
  }

  /** Cancels a stream of ours (RST_STREAM CANCEL), keeping the connection under the far end's reset limit. */
  cancel(stream: ClientHttp2Stream): void {
    if (stream.closed || stream.destroyed) return;
    stream.close(http2.constants.NGHTTP2_CANCEL);
    const s = this.#session;
    if (s === undefined || stream.session !== s) return;
    const now = performance.now();
    this.#resetTokens = Math.min(PEER_RESET_BURST, this.#resetTokens + ((now - this.#resetAt) / 1000) * PEER_RESET_RATE);
    this.#resetAt = now;
    if (--this.#resetTokens >= PEER_RESET_BURST / 2) return;
    // Retire this connection: its open streams finish, new calls get a new one.
    this.#session = undefined;
    this.#ready = false;
    this.#resetTokens = PEER_RESET_BURST;
    this.retired++;
    if (!s.closed && !s.destroyed) s.close();
  }

  /** Connections retired because they carried many cancels. */
  retired = 0;

  /** Calls back with a connected session (at once when one is up). */
  acquire(cb: Acquired): void {
    const s = this.#session;
    if (s !== undefined && this.#ready && !s.closed && !s.destroyed) {
      cb(undefined, s);
      return;
    }
    if (this.#closed) {
      cb(new Error(`${this.key} was closed (removed from discovery)`), undefined);
      return;
    }
    this.#waiting.push(cb);
    if (s === undefined) this.#connect();
  }

  #connect(): void {
    const host = this.address;
    const port = this.port;
    let createConnection: () => net.Socket;
    let scheme = 'http';
    if (this.#tls === undefined) {
      createConnection = () => net.connect({ host, port, noDelay: true });
    } else {
      const secureContext = this.#tls.context();
      if (secureContext === undefined) {
        this.#flush(new QbasisError('QB_IDENTITY_NOT_READY', 'this sidecar has no certificate yet (Certify has not answered); nothing was sent'), undefined);
        return;
      }
      scheme = 'https';
      const expected = this.#expected;
      const peerTls = this.#tls;
      const key = this.key;
      createConnection = () => {
        const sock = tls.connect({ host, port, secureContext, ALPNProtocols: ['h2'], checkServerIdentity: (_h, cert) => identityProblem(peerTls, key, expected, cert) });
        sock.setNoDelay(true);
        sock.once('error', (err: NodeJS.ErrnoException) => {
          if (err.code !== undefined && CHAIN_ERRORS.has(err.code)) peerTls.onIdentityMismatch(key, expected, `a certificate that does not chain to the trust bundle (${err.code})`);
        });
        return sock;
      };
    }
    const authority = net.isIPv6(host) ? `${scheme}://[${host}]:${port}` : `${scheme}://${host}:${port}`;
    const session = http2.connect(authority, {
      createConnection,
      settings: { enablePush: false, initialWindowSize: 1024 * 1024 },
      maxSessionMemory: 64,
    });
    this.#session = session;
    this.#ready = false;
    session.once('connect', () => {
      if (this.#session !== session) return;
      if (this.#keepalive) this.#ping(session);
      this.#ready = true;
      this.#reconnect.reset();
      try {
        session.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // only an optimisation
      }
      this.#flush(undefined, session);
    });
    session.on('error', (err: Error) => {
      this.lastError = err.message;
      this.#drop(session, err);
    });
    session.once('goaway', () => this.#drop(session, new Error(`${this.key} sent GOAWAY`)));
    session.once('close', () => this.#drop(session, new Error(`connection to ${this.key} closed`)));
  }

  #ping(session: ClientHttp2Session): void {
    let outstanding = false;
    const timer = setInterval(() => {
      if (session.destroyed || session.closed) {
        clearInterval(timer);
        return;
      }
      if (outstanding) {
        this.lastError = `no PING answer from ${this.key} within ${PING_INTERVAL_MS} ms`;
        session.destroy(new Error(this.lastError));
        clearInterval(timer);
        return;
      }
      outstanding = true;
      try {
        session.ping((err) => {
          if (err === null) outstanding = false;
        });
      } catch {
        // session closing
      }
    }, PING_INTERVAL_MS);
    timer.unref();
    session.once('close', () => clearInterval(timer));
  }

  #drop(session: ClientHttp2Session, err: Error): void {
    if (this.#session !== session) return;
    const wasReady = this.#ready;
    this.#session = undefined;
    this.#ready = false;
    if (!wasReady) {
      // Never connected: wait before the balancer may pick this peer again.
      this.#retryAt = performance.now() + this.#reconnect.next();
      this.lastError = err.message;
    }
    // A GOAWAY'd session keeps serving its open streams; close() lets them finish.
    if (!session.closed && !session.destroyed) session.close();
    this.#flush(err, undefined);
  }

  #flush(err: Error | undefined, session: ClientHttp2Session | undefined): void {
    const w = this.#waiting;
    if (w.length === 0) return;
    this.#waiting = [];
    for (const cb of w) cb(err, session);
  }

  /** Until when a failed connect keeps this address out of rotation (reconnect backoff). */
  get retryAt(): number {
    return this.#retryAt;
  }

  /** Graceful: open streams finish, no new ones. */
  close(): void {
    this.#closed = true;
    const s = this.#session;
    this.#session = undefined;
    if (s && !s.closed && !s.destroyed) s.close();
    this.#flush(new Error(`${this.key} was closed (removed from discovery)`), undefined);
  }

  destroy(): void {
    this.#closed = true;
    this.#session?.destroy();
    this.#session = undefined;
  }
}

/** OpenSSL's verdicts on a peer's chain (the peer is no mesh member, or its certificate expired). */
const CHAIN_ERRORS = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'INVALID_PURPOSE', 'CERT_REJECTED']);

/** The peer is not the mesh member discovery named (its name, or its chain): nothing was sent to it. */
export function isPeerCertificateError(err: unknown): boolean {
  if (err instanceof QbasisError) return err.code === 'QB_PEER_IDENTITY';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && CHAIN_ERRORS.has(code);
}

/** The peer check: its certificate (already chained to the bundle) names exactly `expected`. */
function identityProblem(t: PeerTls, key: string, expected: string, cert: PeerCertificate): Error | undefined {
  const uris = uriSans(cert.subjectaltname);
  if (expected !== '' && uris.length === 1 && uris[0] === expected) return undefined;
  const named = uris.length === 0 ? 'no URI name' : uris.join(', ');
  t.onIdentityMismatch(key, expected, named);
  const want = expected === '' ? 'discovery gave no identity for this endpoint' : `expected exactly ${expected}, the identity discovery gave for this endpoint`;
  return new QbasisError('QB_PEER_IDENTITY', `peer ${key} presented a certificate naming ${named}; ${want} (nothing was sent to it)`);
}

export function peerKey(address: string, port: number): string {
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
