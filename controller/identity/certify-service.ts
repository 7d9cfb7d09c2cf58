// qbasis.identity.v1.Identity/Certify: authenticate the token, rate-limit per pod, check the CSR
// (its key and proof of possession only), sign a workload certificate for the authenticated
// identity. Every refusal is a gRPC status whose message starts with its QB_* code, a
// `qbasis-error-code` trailer, a count by reason and one log line — never the token, a key or a
// certificate body. The order is chosen for hostile callers: nothing is parsed for a caller that
// has not authenticated.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { isQbasisError, QbasisError, type ErrorCode } from '../../proto/errors.ts';
import { MAX_TOKEN_BYTES, spiffeId, type CertifyRequest__Output, type CertifyResponse } from '../../proto/identity.ts';
import type { CertificateAuthority } from './certificate-authority.ts';
import { csrRequest } from './certificate-request.ts';
import type { IdentityHealth } from './identity-health.ts';
import type { IdentityMetrics } from './identity-metrics.ts';
import type { PerKeyRate } from './rate-limit.ts';
import type { TokenAuthenticator } from './token-authenticator.ts';

export interface CertifyOptions {
  ca: CertificateAuthority;
  authenticator: TokenAuthenticator;
  trustDomain: string;
  /** Workload certificate lifetime (ms); never past the root's expiry. */
  lifetimeMs: number;
  rate: PerKeyRate;
  metrics: IdentityMetrics;
  /** The console's health block: each pod's latest certificate, refusals. */
  health?: IdentityHealth;
  log: Logger;
}

/** Refusal log lines per second; beyond, they are counted and summed up in one line. */
const REFUSAL_LINES_PER_SECOND = 20;

export class CertifyService {
  readonly #o: CertifyOptions;
  readonly #log: Logger;
  #logSecond = 0;
  #logged = 0;
  #suppressed = 0;

  constructor(o: CertifyOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'certify' });
  }

  /** The grpc-js handler (the Identity service's Certify). */
  readonly handler: grpc.handleUnaryCall<CertifyRequest__Output, CertifyResponse> = (call, cb) => {
    const started = performance.now();
    const peer = call.getPeer();
    this.certify(call.request, peer).then(
      (res) => {
        this.#o.metrics.issued(performance.now() - started);
        cb(null, res);
      },
      (err: unknown) => {
        const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', `signing failed: ${(err as Error).message}`);
        this.#refused(q, peer);
        const md = new grpc.Metadata();
        md.set('qbasis-error-code', q.code);
        cb({ code: q.grpcStatus, details: `${q.code}: ${q.message}`, metadata: md });
      },
    );
  };

  async certify(req: CertifyRequest__Output, peer: string): Promise<CertifyResponse> {
    const token = typeof req.token === 'string' ? req.token.trim() : '';
    if (token === '') throw new QbasisError('QB_TOKEN_REFUSED', 'no token; expected the pod\'s token (the sidecar\'s --token-file)');
    if (token.length > MAX_TOKEN_BYTES) throw new QbasisError('QB_TOKEN_REFUSED', `the token is ${token.length} bytes, more than ${MAX_TOKEN_BYTES}`);
    const auth = await this.#o.authenticator.authenticate(token);
    if (!auth.ok) throw new QbasisError(auth.code, auth.reason, auth.pod === undefined ? {} : { details: { pod: auth.pod } });
    const p = auth.pod;
    const who = `${p.namespace}/${p.pod}`;
    const wait = this.#o.rate.take(who);
    if (wait > 0) throw new QbasisError('QB_RATE_LIMITED', `pod ${who} asked for certificates too often; try again in ${Math.ceil(wait / 1000)} s`, { details: { pod: who } });
    const { key, uris } = await csrRequest(Buffer.isBuffer(req.csr) ? req.csr : Buffer.from(req.csr ?? []));
    const id = spiffeId({ trustDomain: this.#o.trustDomain, namespace: p.namespace, serviceAccount: p.serviceAccount });
    const other = uris.find((u) => u !== id);
    if (other !== undefined) {
      throw new QbasisError('QB_BAD_CSR', `the CSR asks for ${other}, but the token is of ${id}; a certificate names only the identity the token authenticates (send a CSR with no URI, or that one)`, { details: { pod: who } });
    }
    const issued = await this.#o.ca.signWorkload(key, id, this.#o.lifetimeMs);
    this.#log.info({ identity: id, pod: who, peer, serial: issued.serial, notAfter: issued.notAfter.toISOString() }, `certificate issued for ${id}`);
    this.#o.health?.issued(p.namespace, p.pod, id, issued.notAfter);
    return {
      identity: id,
      certificateChain: [issued.cert],
      trustBundle: this.#o.ca.trustBundlePem,
      notBeforeUnixMs: issued.notBefore.getTime(),
      notAfterUnixMs: issued.notAfter.getTime(),
    };
  }

  #refused(q: QbasisError, peer: string): void {
    this.#o.metrics.refused(q.code);
    this.#o.health?.refused(q.code);
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#logSecond) {
      if (this.#suppressed > 0) this.#log.warn({ suppressed: this.#suppressed }, `${this.#suppressed} more Certify refusals in the last second (not logged one by one)`);
      this.#logSecond = second;
      this.#logged = 0;
      this.#suppressed = 0;
    }
    if (this.#logged++ >= REFUSAL_LINES_PER_SECOND) {
      this.#suppressed++;
      return;
    }
    const pod = q.details?.pod;
    this.#log.warn({ code: q.code as ErrorCode, peer, ...(typeof pod === 'string' ? { pod } : {}) }, `Certify refused: ${q.message}`);
  }
}
