// Kubernetes mode, assembled: the informer pod source (teed into the caller index) with the
// BasisPolicy informer beside it (feeding the PolicyIntake main.ts made), and one component that runs
// leader election, the BasisService and BasisPolicy status reconcilers and the InvalidAnnotation
// Events. main.ts uses it when no --pods-file is given. Every replica serves discovery from its
// own informer cache; only the Lease holder writes to the API server.
import type { Logger } from 'pino';
import type { Registry } from '../../proto/prom.ts';
import type { ControllerComponent } from '../component.ts';
import type { EndpointRegistry } from '../endpoint-registry.ts';
import { FlagError, type FlagValues } from '../flags.ts';
import type { MirrorResults } from '../mirror-results.ts';
import type { SidecarReport__Output } from '../../proto/generated/qbasis/discovery/v1/SidecarReport.ts';
import type { ReplicaView } from '../console/mesh-snapshot.ts';
import { REPORT_ADDRESS_ANNOTATION, ReportForwarder } from './report-forwarder.ts';
import type { PolicyIntake } from '../policy-intake.ts';
import type { PodSink, PodSource } from '../pod-source.ts';
import { AnnotationEvents } from './annotation-events.ts';
import { BasisPolicyReconciler } from './basis-policy-reconciler.ts';
import type { BasisServicesHealth } from '../console/mesh-snapshot.ts';
import { BasisServiceReconciler } from './basis-service-reconciler.ts';
import { CallerIndex } from './caller-index.ts';
import { InformerPodSource } from './informer-pod-source.ts';
import { KubeClient, loadKubeConfig } from './kube-client.ts';
import { kubeSettings, type KubeSettings } from './kube-flags.ts';
import { KubeMetrics } from './kube-metrics.ts';
import { LeaderElector } from './leader-elector.ts';
import { PolicyInformer } from './policy-informer.ts';
import { ReplicaList } from './replica-list.ts';
import { TeedPodSource } from './tee-sink.ts';

/**
 * The pods, with the BasisPolicy cache beside them: synced when both are, so discovery (which main.ts
 * starts once the source is synced) never serves a stream without the policies in force.
 */
class PodsAndPolicies implements PodSource {
  readonly kind: string;
  readonly #pods: PodSource;
  readonly #policies: PolicyInformer;

  constructor(pods: PodSource, policies: PolicyInformer) {
    this.kind = pods.kind;
    this.#pods = pods;
    this.#policies = policies;
  }

  async start(sink: PodSink): Promise<void> {
    await Promise.all([this.#pods.start(sink), this.#policies.start()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.#pods.stop(), this.#policies.stop()]);
  }

  synced(): boolean {
    return this.#pods.synced() && this.#policies.synced();
  }
}

export class KubeMode {
  readonly client: KubeClient;
  readonly #callers = new CallerIndex();
  readonly #informer: InformerPodSource;
  readonly #policyInformer: PolicyInformer;
  readonly #policies: PolicyIntake;
  readonly source: PodSource;
  readonly #settings: KubeSettings;
  readonly #log: Logger;
  readonly #metrics = new KubeMetrics();
  #elector: LeaderElector | undefined;
  #reconciler: BasisServiceReconciler | undefined;
  #policyReconciler: BasisPolicyReconciler | undefined;
  #events: AnnotationEvents | undefined;
  #reportAddress: string | undefined;
  #forwarder: ReportForwarder | undefined;
  readonly #leadingHooks: Array<() => void> = [];
  #bsvc: BasisServiceReconciler | undefined;
  readonly #replicas: ReplicaList | undefined;

  /** `policies`: the intake main.ts made; the BasisPolicy informer feeds it. */
  constructor(flags: FlagValues, logger: Logger, policies: PolicyIntake) {
    this.#log = logger;
    this.#policies = policies;
    try {
      this.client = new KubeClient(loadKubeConfig({ kubeconfig: flags.get('kubeconfig') }));
    } catch (err) {
      throw new FlagError(`cannot load Kubernetes config: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.#settings = kubeSettings(flags);
    const selector = this.#settings.replicaSelector;
    this.#replicas = selector === undefined ? undefined : new ReplicaList({ client: this.client, logger, namespace: this.#settings.replicaNamespace, selector });
    this.#informer = new InformerPodSource({
      client: this.client,
      logger,
      namespaces: this.#settings.namespaces,
      onEvent: (kind) => this.#metrics.podWatch(kind),
    });
    this.#policyInformer = new PolicyInformer({ client: this.client, logger, intake: policies, namespaces: this.#settings.namespaces });
    this.source = new PodsAndPolicies(new TeedPodSource(this.#informer, this.#callers), this.#policyInformer);
  }

  /** Discovery server hook: a pushed update's latency from the registry change. */
  onPushed = (_api: string, latencyMs: number): void => {
    this.#metrics.pushed(latencyMs);
  };

  /** Periodic re-check of what the leader keeps (--resync-ms). */
  get resyncMs(): number {
    return this.#settings.resyncMs;
  }

  /** `fn` runs each time this replica becomes leader (without leader election: never). */
  onStartedLeading(fn: () => void): void {
    this.#leadingHooks.push(fn);
  }

  isLeader(): boolean {
    return this.#elector === undefined ? this.#settings.lease === undefined : this.#elector.isLeader();
  }

  /**
   * For the console's health block: this replica and the Lease holder. Only the leader gets every
   * sidecar's reports (a standby forwards what reaches it), so only its traffic figures are the mesh's.
   */
  replica = (): ReplicaView => {
    const isLeader = this.isLeader();
    const leader = this.#elector === undefined ? (isLeader ? this.#settings.identity : null) : this.#elector.currentLeader() || null;
    const view: ReplicaView = { identity: this.#settings.identity, leader, isLeader, traffic: isLeader ? 'all' : 'this-replica' };
    const r = this.#replicas?.view();
    if (r?.pods !== undefined) view.replicas = r.pods;
    if (r?.error !== undefined) view.replicasError = r.error;
    return view;
  };

  /** For the console's health block: BasisServices not Synced (undefined until the component runs). */
  basisServices = (): BasisServicesHealth | undefined => this.#bsvc?.health();

  /** `mirror`: the sidecars' mirror reports, summed into each BasisPolicy's status.mirror. */
  component(registry: EndpointRegistry, mirror?: MirrorResults): ControllerComponent {
    const s = this.#settings;
    const reconciler = (this.#bsvc = new BasisServiceReconciler({
      client: this.client,
      registry,
      callers: this.#callers,
      policies: this.#policies.store,
      logger: this.#log,
      synced: () => this.#informer.synced(),
      isLeader: () => this.isLeader(),
      namespaces: s.namespaces,
      workers: s.reconcileWorkers,
      resyncMs: s.resyncMs,
      metrics: {
        onResult: (_key, result, ms) => this.#metrics.reconciled(result, ms),
        onWrite: (kind) => this.#metrics.wrote(kind),
      },
    }));
    const events = new AnnotationEvents({
      client: this.client,
      registry,
      logger: this.#log,
      isLeader: () => this.isLeader(),
      instance: s.identity,
      onEvent: () => this.#metrics.eventWritten('InvalidAnnotation'),
    });
    const policyReconciler = new BasisPolicyReconciler({
      client: this.client,
      informer: this.#policyInformer,
      intake: this.#policies,
      registry,
      logger: this.#log,
      synced: () => this.source.synced(),
      isLeader: () => this.isLeader(),
      onWrite: () => this.#metrics.wrote('status'),
      ...(mirror !== undefined ? { mirror } : {}),
    });
    this.#reconciler = reconciler;
    this.#policyReconciler = policyReconciler;
    this.#events = events;
    if (s.lease !== undefined) {
      this.#elector = new LeaderElector({
        client: this.client,
        logger: this.#log,
        ...s.lease,
        identity: s.identity,
        holderAnnotations: (): Record<string, string> => (this.#reportAddress === undefined ? {} : { [REPORT_ADDRESS_ANNOTATION]: this.#reportAddress }),
        onStartedLeading: () => {
          // a new leader trusts nothing it did not write itself: look at everything again
          void reconciler.resync();
          policyReconciler.enqueueAll();
          events.enqueueAll();
          for (const fn of this.#leadingHooks) fn();
        },
      });
    }
    const elector = this.#elector;
    return {
      name: 'kubernetes controller (leader election, BasisServices, BasisPolicy statuses, Events)',
      start: async () => {
        reconciler.start();
        policyReconciler.start();
        events.start();
        if (elector !== undefined) elector.start();
        else void reconciler.resync();
      },
      stop: async () => {
        // finish in-flight writes, then hand the Lease over
        await reconciler.stop();
        await policyReconciler.stop();
        await events.stop();
        await elector?.stop();
        await this.#replicas?.stop();
        this.#forwarder?.close();
      },
    };
  }

  /**
   * Where this replica's discovery server can be reached by the other replicas (POD_IP in a pod, else the
   * bound address unless it is a wildcard): the leader keeps it on the Lease for forwarded reports.
   */
  setDiscoveryAddress(host: string, port: number): void {
    const ip = process.env.POD_IP ?? (host === '0.0.0.0' || host === '::' ? undefined : host);
    this.#reportAddress = ip === undefined ? undefined : ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  }

  /** Passes a sidecar's report on to the leader when this replica is not it (only the leader writes status). */
  forwardReport(r: SidecarReport__Output): void {
    this.#forwarder ??= new ReportForwarder({
      logger: this.#log,
      isLeader: () => this.isLeader(),
      leaderAddress: () => this.#elector?.holderAnnotation(REPORT_ADDRESS_ANNOTATION),
      ownAddress: () => this.#reportAddress,
    });
    this.#forwarder.forward(r);
  }

  registerMetrics(reg: Registry): void {
    this.#metrics.register(reg, {
      queues: () => ({ basisservices: this.#reconciler?.queue, basispolicies: this.#policyReconciler?.queue, events: this.#events?.queue }),
      isLeader: () => this.isLeader(),
    });
  }
}
