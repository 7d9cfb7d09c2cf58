// The controller's own certificate for its TLS port (15012), from the mesh CA: a grpc-js
// CertificateProvider that issues one at start and a new one at half its life, so new connections
// get the new one and open ones are untouched.
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { CertificateAuthority } from './certificate-authority.ts';

type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type CaListener = grpc.experimental.CaCertificateUpdateListener;

export class ServingCertificate implements grpc.experimental.CertificateProvider {
  readonly #ca: CertificateAuthority;
  readonly #hosts: readonly string[];
  readonly #spiffeId: string;
  readonly #lifetimeMs: number;
  readonly #log: Logger;
  readonly #listeners = new Set<IdentityListener>();
  #latest: grpc.experimental.IdentityCertificateUpdate | null = null;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  notAfter: Date | undefined;

  constructor(o: { ca: CertificateAuthority; hosts: readonly string[]; spiffeId: string; lifetimeMs: number; log: Logger }) {
    this.#ca = o.ca;
    this.#hosts = o.hosts;
    this.#spiffeId = o.spiffeId;
    this.#lifetimeMs = o.lifetimeMs;
    this.#log = o.log;
  }

  /** Issues the first certificate (before the port is bound) and keeps renewing. */
  async start(): Promise<void> {
    await this.#issue();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  async #issue(): Promise<void> {
    const now = new Date();
    const c = await this.#ca.issueServing(this.#hosts, this.#spiffeId, this.#lifetimeMs, now);
    this.#latest = { certificate: Buffer.from(c.cert + this.#ca.rootPem), privateKey: Buffer.from(c.key) };
    this.notAfter = c.notAfter;
    for (const l of this.#listeners) l(this.#latest);
    this.#log.info({ hosts: this.#hosts, identity: this.#spiffeId, notAfter: c.notAfter.toISOString() }, 'controller serving certificate issued');
    if (this.#stopped) return;
    const renewIn = Math.max(1000, (c.notAfter.getTime() - now.getTime()) / 2);
    this.#timer = setTimeout(() => {
      this.#issue().catch((err: Error) => {
        this.#log.error({ err: err.message }, 'renewing the controller serving certificate failed; retrying in 5 s');
        if (!this.#stopped) this.#timer = setTimeout(() => void this.#issue().catch(() => {}), 5000).unref();
      });
    }, renewIn);
    this.#timer.unref();
  }

  addIdentityCertificateListener(l: IdentityListener): void {
    this.#listeners.add(l);
    // Later, not now: grpc-js adds its own watcher only after this returns, and would miss the update.
    queueMicrotask(() => {
      if (this.#latest !== null && this.#listeners.has(l)) l(this.#latest);
    });
  }

  removeIdentityCertificateListener(l: IdentityListener): void {
    this.#listeners.delete(l);
  }

  // The server asks no client certificate here (Certify authenticates by token): no CA updates.
  addCaCertificateListener(_l: CaListener): void {}
  removeCaCertificateListener(_l: CaListener): void {}
}
