// Mesh identity, wired for either mode: the root (local mode: --identity-dir; Kubernetes mode: a
// Secret, root-secret.ts), the authenticator (local mode: a token per pod of the pods file; Kubernetes
// mode: TokenReview with the informer's pods), Certify and Discovery on the TLS port, and in
// Kubernetes mode the trust-bundle ConfigMaps. main.ts tees the pod source into `sink` and runs
// `component` (in Kubernetes mode after leader election has started: only the leader makes a root).
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ControllerComponent } from '../component.ts';
import type { DiscoveryServer } from '../discovery-server.ts';
import type { PodSink } from '../pod-source.ts';
import type { Registry } from '../../proto/prom.ts';
import { spiffeId } from '../../proto/identity.ts';
import { pemCertificates } from '../../proto/pem-certificates.ts';
import { teeSink } from '../kube/tee-sink.ts';
import type { CertificateAuthority } from './certificate-authority.ts';
import { CertifyService } from './certify-service.ts';
import { IdentityHealth } from './identity-health.ts';
import { IdentityMetrics } from './identity-metrics.ts';
import { IdentityServer } from './identity-server.ts';
import type { IdentitySettings } from './identity-settings.ts';
import { LocalTokens } from './local-tokens.ts';
import { MeshPods } from './mesh-pods.ts';
import { PerKeyRate } from './rate-limit.ts';
import { RootSecret, type SecretApi } from './root-secret.ts';
import { loadOrCreateRoot, ROOT_CERT_FILE } from './root-store.ts';
import { ServingCertificate } from './serving-certificate.ts';
import type { TokenAuthenticator } from './token-authenticator.ts';
import { TokenReviewAuthenticator, type ApiRequester } from './token-review.ts';
import { TrustBundleReconciler, type ConfigMapApi } from './trust-bundle.ts';

/** A pod may ask this many times at once, then at the steady rate below. */
const CERTIFY_BURST = 10;

/** What Kubernetes mode gives: its API client, who leads, and a way to hear of a new leadership. */
export interface KubeIdentityDeps {
  api: SecretApi & ConfigMapApi & ApiRequester;
  isLeader: () => boolean;
  onStartedLeading: (fn: () => void) => void;
  resyncMs: number;
}

export class MeshIdentity {
  /** The pods the authenticator needs (tee it beside the registry). */
  readonly sink: PodSink;
  readonly component: ControllerComponent;
  readonly #metrics = new IdentityMetrics();
  /** For the console's health block. */
  readonly health: IdentityHealth;

  private constructor(sink: PodSink, component: (m: IdentityMetrics, h: IdentityHealth) => ControllerComponent) {
    this.health = new IdentityHealth();
    this.sink = teeSink(sink, this.health);
    this.component = component(this.#metrics, this.health);
  }

  static async create(s: IdentitySettings, deps: { logger: Logger; discovery: DiscoveryServer; kube?: KubeIdentityDeps }): Promise<MeshIdentity> {
    const log = deps.logger.child({ component: 'identity' });
    const root = s.root;
    if (root.kind === 'dir') {
      const { ca, created } = await loadOrCreateRoot(root.dir, s.trustDomain);
      log.info({ dir: root.dir, bundle: path.join(root.dir, ROOT_CERT_FILE), created, notAfter: ca.notAfter.toISOString(), trustDomain: s.trustDomain },
        created ? 'mesh root created' : 'mesh root loaded');
      const tokens = new LocalTokens(root.dir, deps.logger);
      return new MeshIdentity(tokens, (metrics, health) => {
        const server = serve(s, ca, tokens, metrics, health, deps.discovery, log);
        let up = false;
        return {
          name: 'identity server',
          start: async () => {
            await server.start();
            up = true;
          },
          stop: () => server.stop(),
          ready: () => up,
        };
      });
    }
    const kube = deps.kube;
    if (kube === undefined) throw new Error('the root in a Secret needs Kubernetes mode');
    const pods = new MeshPods();
    const secret = new RootSecret({ api: kube.api, namespace: root.namespace, name: root.name, mode: root.mode, trustDomain: s.trustDomain, isLeader: kube.isLeader, log });
    const authenticator = new TokenReviewAuthenticator(kube.api, pods);
    return new MeshIdentity(pods, (metrics, health) => {
      const abort = new AbortController();
      let server: IdentityServer | undefined;
      let bundles: TrustBundleReconciler | undefined;
      let up = false;
      let starting: Promise<void> | undefined;
      return {
        name: `mesh identity (root in ${secret.where}, Certify and Discovery over TLS, trust bundles)`,
        // Returns at once: a standby waits for the leader's root; /ready says so until it is there.
        start: async () => {
          starting = (async () => {
            const { ca, created } = await secret.obtain(abort.signal);
            log.info({ secret: `${root.namespace}/${root.name}`, created, notAfter: ca.notAfter.toISOString(), trustDomain: s.trustDomain }, created ? 'mesh root created' : 'mesh root loaded');
            bundles = new TrustBundleReconciler({ api: kube.api, pods, bundle: () => ca.trustBundlePem, isLeader: kube.isLeader, log, resyncMs: kube.resyncMs });
            kube.onStartedLeading(() => bundles?.enqueueAll());
            bundles.start();
            server = serve(s, ca, authenticator, metrics, health, deps.discovery, log);
            await server.start();
            up = true;
          })().catch((err: unknown) => {
            if (!abort.signal.aborted) log.error({ err: (err as Error).message }, 'mesh identity failed to start');
          });
        },
        stop: async () => {
          abort.abort();
          await starting;
          await bundles?.stop();
          await server?.stop();
        },
        ready: () => up,
      };
    });
  }

  registerMetrics(reg: Registry): void {
    this.#metrics.register(reg);
  }
}

/** Certify and Discovery on the TLS port, for the root `ca`. */
function serve(s: IdentitySettings, ca: CertificateAuthority, authenticator: TokenAuthenticator, metrics: IdentityMetrics, health: IdentityHealth, discovery: DiscoveryServer, log: Logger): IdentityServer {
  metrics.rootExpires(ca.notAfter);
  health.roots(ca.notAfter, pemCertificates(ca.trustBundlePem).map((pem) => new Date(new X509Certificate(pem).validTo)), s.lifetimeMs);
  // Steady rate: at least one a minute, and four per certificate lifetime (sidecars renew at half).
  const perSecond = Math.max(1 / 60, 4 / (s.lifetimeMs / 1000));
  const certify = new CertifyService({ ca, authenticator, trustDomain: s.trustDomain, lifetimeMs: s.lifetimeMs, rate: new PerKeyRate(CERTIFY_BURST, perSecond), metrics, health, log });
  const serving = new ServingCertificate({ ca, hosts: s.hosts, spiffeId: spiffeId({ trustDomain: s.trustDomain, namespace: s.namespace, serviceAccount: s.serviceAccount }), lifetimeMs: s.lifetimeMs, log });
  return new IdentityServer({ host: s.host, port: s.port, certify, discovery, serving, log });
}
