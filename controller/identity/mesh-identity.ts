// Mesh identity in local mode, wired: the root from --identity-dir, a token per pod of the pods
// file, Certify and Discovery on the TLS port. main.ts tees the pod source into `tokens` and runs
// `component` after discovery. Kubernetes mode will swap the root store (a Secret) and the
// authenticator (TokenReview); the CA, Certify and the server stay.
import path from 'node:path';
import type { Logger } from 'pino';
import type { ControllerComponent } from '../component.ts';
import type { DiscoveryServer } from '../discovery-server.ts';
import type { Registry } from '../../proto/prom.ts';
import { spiffeId } from '../../proto/identity.ts';
import { CertifyService } from './certify-service.ts';
import { IdentityMetrics } from './identity-metrics.ts';
import { IdentityServer } from './identity-server.ts';
import type { IdentitySettings } from './identity-settings.ts';
import { LocalTokens } from './local-tokens.ts';
import { PerKeyRate } from './rate-limit.ts';
import { loadOrCreateRoot, ROOT_CERT_FILE } from './root-store.ts';
import { ServingCertificate } from './serving-certificate.ts';

/** A pod may ask this many times at once, then at the steady rate below. */
const CERTIFY_BURST = 10;

export class MeshIdentity {
  readonly tokens: LocalTokens;
  readonly component: ControllerComponent;
  readonly #metrics: IdentityMetrics;

  private constructor(tokens: LocalTokens, server: IdentityServer, metrics: IdentityMetrics) {
    this.tokens = tokens;
    this.#metrics = metrics;
    let up = false;
    this.component = {
      name: 'identity server',
      start: async () => {
        await server.start();
        up = true;
      },
      stop: () => server.stop(),
      ready: () => up,
    };
  }

  static async create(s: IdentitySettings, deps: { logger: Logger; discovery: DiscoveryServer }): Promise<MeshIdentity> {
    const log = deps.logger.child({ component: 'identity' });
    const { ca, created } = await loadOrCreateRoot(s.dir, s.trustDomain);
    log.info({ dir: s.dir, bundle: path.join(s.dir, ROOT_CERT_FILE), created, notAfter: ca.notAfter.toISOString(), trustDomain: s.trustDomain },
      created ? 'mesh root created' : 'mesh root loaded');
    const tokens = new LocalTokens(s.dir, deps.logger);
    const metrics = new IdentityMetrics();
    metrics.rootExpires(ca.notAfter);
    // Steady rate: at least one a minute, and four per certificate lifetime (sidecars renew at half).
    const perSecond = Math.max(1 / 60, 4 / (s.lifetimeMs / 1000));
    const certify = new CertifyService({ ca, authenticator: tokens, trustDomain: s.trustDomain, lifetimeMs: s.lifetimeMs, rate: new PerKeyRate(CERTIFY_BURST, perSecond), metrics, log });
    const serving = new ServingCertificate({ ca, hosts: s.hosts, spiffeId: spiffeId({ trustDomain: s.trustDomain, namespace: s.namespace, serviceAccount: 'qbasis-controller' }), lifetimeMs: s.lifetimeMs, log });
    const server = new IdentityServer({ host: s.host, port: s.port, certify, discovery: deps.discovery, serving, log });
    return new MeshIdentity(tokens, server, metrics);
  }

  registerMetrics(reg: Registry): void {
    this.#metrics.register(reg);
  }
}
