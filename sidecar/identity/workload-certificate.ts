// The sidecar's own certificate: a fresh P-256 key in memory (never on disk), a CSR, Certify with
// the pod's token over TLS, and renewal at half of the remaining life ±10 % (jitter, so a fleet
// started together does not renew together). Each new certificate is announced ('certificate'); the
// listeners swap it in for new handshakes without touching open connections. A failed Certify is
// retried with backoff while the current certificate stays in use; one that expires is dropped.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate, type KeyObject } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Backoff } from '../../proto/backoff.ts';
import { identityClientConstructor, meshIdentityOf, parseSpiffeId, type CertifyResponse__Output, type IdentityClient, type MeshIdentity } from '../../proto/identity.ts';
import { newKeyAndCsr } from './csr.ts';
import { pemCertificates } from '../../proto/pem-certificates.ts';
import { controllerChannel, type ControllerChannel } from './controller-channel.ts';

export interface Certificate {
  /** The SPIFFE ID the certificate names. */
  identity: string;
  parts: MeshIdentity;
  /** PKCS#8 PEM, in this process's memory only. */
  key: string;
  /** PEM, leaf first. */
  chain: string;
  notAfter: number;
  /** SHA-256 fingerprint of the bundle root that signed it (which root, during a rotation). */
  issuer: string | null;
  /** Client side of peer connections: key, chain, the trust bundle. */
  clientContext: SecureContext;
}

export interface WorkloadCertificateOptions {
  /** host:port of the controller's TLS port. */
  target: string;
  tokenFile: string;
  /** PEM roots: the controller and every peer are verified against them (setBundle changes them). */
  bundle: Buffer;
  /** The controller's TLS channel (shared with Discovery); made from `bundle` when absent. */
  channel?: ControllerChannel;
  log: Logger;
  /** For tests: the share of the remaining life to renew at (default 0.5) and the jitter (0.1). */
  renewAt?: number;
  jitter?: number;
}

const CERTIFY_DEADLINE_MS = 10_000;

/**
 * Events: 'certificate' (c: Certificate) a new certificate is in use; 'expired' the current one
 * expired without a successor; 'renewal' (ok: boolean) a Certify attempt ended.
 */
export class WorkloadCertificate extends EventEmitter {
  readonly #o: WorkloadCertificateOptions;
  readonly #log: Logger;
  readonly #client: IdentityClient;
  readonly #backoff = new Backoff({ initialMs: 250, maxMs: 10_000, jitter: 0.5 });
  #current: Certificate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #stopped = false;
  #bundle: Buffer;
  readonly #channel: ControllerChannel;
  lastError: string | undefined;

  constructor(o: WorkloadCertificateOptions) {
    super();
    this.#o = o;
    this.#log = o.log.child({ component: 'identity' });
    this.#bundle = o.bundle;
    const ch = o.channel ?? controllerChannel(o.target, o.bundle);
    this.#channel = ch;
    const Ctor = identityClientConstructor();
    this.#client = new Ctor(o.target, ch.credentials, { ...ch.options, 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 5000 });
  }

  current(): Certificate | undefined {
    return this.#current;
  }

  start(): void {
    this.#attempt();
  }

  /**
   * A new trust bundle (a root rotation): the controller channel trusts its roots too, and the
   * current certificate is announced again with a client context over it (the listeners swap theirs).
   */
  setBundle(bundle: Buffer): void {
    this.#bundle = bundle;
    this.#channel.trust(bundle);
    const c = this.#current;
    if (c === undefined) return;
    const next = { ...c, clientContext: createSecureContext({ key: c.key, cert: c.chain, ca: bundle, minVersion: 'TLSv1.3' }) };
    this.#current = next;
    this.emit('certificate', next);
  }

  bundle(): Buffer {
    return this.#bundle;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#expiry !== undefined) clearTimeout(this.#expiry);
    this.#client.close();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#attempt(), ms);
    this.#timer.unref();
  }

  #attempt(): void {
    if (this.#stopped) return;
    let token: string;
    try {
      token = fs.readFileSync(this.#o.tokenFile, 'utf8').trim(); // read each time: a projected token rotates
    } catch (err) {
      this.#failed(`cannot read the token file ${this.#o.tokenFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return;
    }
    const { privateKey, csr } = newKeyAndCsr();
    this.#client.Certify({ csr, token }, { deadline: Date.now() + CERTIFY_DEADLINE_MS }, (err, res) => {
      if (this.#stopped) return;
      if (err !== null || res === undefined) {
        const hint = err?.code === grpc.status.UNAVAILABLE || err?.code === grpc.status.UNIMPLEMENTED ? " (is --discovery the controller's TLS port, 15012, and --trust-bundle its ca.pem?)" : '';
        this.#failed(`Certify at ${this.#o.target} failed: ${grpc.status[err?.code ?? grpc.status.UNKNOWN] ?? err?.code} ${err?.details ?? 'no answer'}${hint}`);
        return;
      }
      let c: Certificate;
      try {
        c = this.#accept(res, privateKey);
      } catch (e) {
        this.#failed(`Certify at ${this.#o.target} answered with an unusable certificate: ${(e as Error).message}`);
        return;
      }
      const renewed = this.#current !== undefined;
      this.#current = c;
      this.lastError = undefined;
      this.#backoff.reset();
      const now = Date.now();
      const share = (this.#o.renewAt ?? 0.5) * (1 + (this.#o.jitter ?? 0.1) * (2 * Math.random() - 1));
      const renewIn = Math.max(1000, (c.notAfter - now) * share);
      this.#log.info({ identity: c.identity, notAfter: new Date(c.notAfter).toISOString(), issuer: c.issuer, renewInMs: Math.round(renewIn) }, renewed ? 'certificate renewed' : 'certificate issued');
      this.emit('renewal', true);
      this.emit('certificate', c);
      this.#schedule(renewIn);
      if (this.#expiry !== undefined) clearTimeout(this.#expiry);
      this.#expiry = setTimeout(() => this.#expired(c), Math.max(0, c.notAfter - now));
      this.#expiry.unref();
    });
  }

  /** Checks what Certify answered: a chain for our key, naming exactly one SPIFFE ID, valid now. */
  #accept(res: CertifyResponse__Output, key: KeyObject): Certificate {
    const chain = res.certificateChain.join('');
    const leaf = new X509Certificate(res.certificateChain[0] ?? '');
    if (!leaf.checkPrivateKey(key)) throw new Error('the certificate is not for the key this sidecar sent');
    const identity = meshIdentityOf(leaf.subjectAltName);
    const parts = identity === undefined ? undefined : parseSpiffeId(identity);
    if (identity === undefined || parts === undefined || identity !== res.identity) throw new Error(`it names ${leaf.subjectAltName ?? 'nothing'}; expected one SPIFFE ID (${res.identity})`);
    const notAfter = Date.parse(leaf.validTo);
    if (!(notAfter > Date.now())) throw new Error(`it expired at ${leaf.validTo}`);
    const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
    const clientContext = createSecureContext({ key: keyPem, cert: chain, ca: this.#bundle, minVersion: 'TLSv1.3' });
    const issuer = pemCertificates(this.#bundle.toString('utf8')).map((p) => new X509Certificate(p)).find((r) => leaf.checkIssued(r) && leaf.verify(r.publicKey));
    return { identity, parts, key: keyPem, chain, notAfter, issuer: issuer?.fingerprint256 ?? null, clientContext };
  }

  #failed(why: string): void {
    this.lastError = why;
    this.emit('renewal', false);
    const delay = Math.round(this.#backoff.next());
    const left = this.#current === undefined ? undefined : this.#current.notAfter - Date.now();
    this.#log[this.#backoff.attempts === 1 ? 'warn' : 'debug']({ retryInMs: delay, attempt: this.#backoff.attempts, certificateLeftMs: left ?? null }, `${why}; retrying`);
    this.#schedule(delay);
  }

  #expired(c: Certificate): void {
    if (this.#current !== c) return;
    this.#current = undefined;
    this.#log.error({ identity: c.identity, lastError: this.lastError ?? null }, 'the certificate expired and no new one was issued: peers will refuse this sidecar until Certify succeeds');
    this.emit('expired');
  }
}
