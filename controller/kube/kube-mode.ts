// Kubernetes mode, assembled: the informer pod source (teed into the caller index), and one
// component that runs leader election, the BasisService reconciler and the InvalidAnnotation
// Events. main.ts uses it when no --pods-file is given. Every replica serves discovery from its
// own informer cache; only the Lease holder writes to the API server.
import os from 'node:os';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ControllerComponent } from '../component.ts';
import type { EndpointRegistry } from '../endpoint-registry.ts';
import { FlagError, type FlagValues } from '../flags.ts';
export { KUBE_FLAG_SPECS } from './kube-flags.ts';
import type { PodSink, PodSource } from '../pod-source.ts';
import { AnnotationEvents } from './annotation-events.ts';
import { BasisServiceReconciler } from './basis-service-reconciler.ts';
import { CallerIndex, teeSink } from './caller-index.ts';
import { InformerPodSource } from './informer-pod-source.ts';
import { KubeClient, loadKubeConfig } from './kube-client.ts';
import { LeaderElector } from './leader-elector.ts';
import type { ReconcileResult } from './work-queue.ts';


/** Forwards to the informer but tees pods into the caller index too. */
class TeedSource implements PodSource {
  readonly kind: string;
  readonly inner: InformerPodSource;
  readonly #also: PodSink;
  constructor(inner: InformerPodSource, also: PodSink) {
    this.inner = inner;
    this.kind = inner.kind;
    this.#also = also;
  }
  start(sink: PodSink): Promise<void> {
    return this.inner.start(teeSink(sink, this.#also));
  }
  stop(): Promise<void> {
    return this.inner.stop();
  }
  synced(): boolean {
    return this.inner.synced();
  }
}

function positive(flags: FlagValues, name: string): number {
  const n = Number(flags.get(name));
  if (!(n > 0)) throw new FlagError(`--${name} '${flags.get(name)}' is invalid: expected a positive integer`);
  return n;
}

export class KubeMode {
  readonly client: KubeClient;
  readonly callers = new CallerIndex();
  readonly informer: InformerPodSource;
  readonly source: PodSource;
  readonly identity: string;
  readonly #flags: FlagValues;
  readonly #log: Logger;
  #elector: LeaderElector | undefined;
  #reconciler: BasisServiceReconciler | undefined;
  #events: AnnotationEvents | undefined;
  readonly #m = {
    reconciles: undefined as Counter<'result'> | undefined,
    duration: undefined as Histogram<'result'> | undefined,
    writes: undefined as Counter<'kind'> | undefined,
    events: undefined as Counter<'reason'> | undefined,
    push: undefined as Histogram | undefined,
    watch: undefined as Counter<'event'> | undefined,
  };

  constructor(flags: FlagValues, logger: Logger) {
    this.#flags = flags;
    this.#log = logger;
    try {
      this.client = new KubeClient(loadKubeConfig({ kubeconfig: flags.get('kubeconfig') }));
    } catch (err) {
      throw new FlagError(`cannot load Kubernetes config: ${err instanceof Error ? err.message : String(err)}`);
    }
    const namespaces = (flags.get('namespaces') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const ns of namespaces) {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns) || ns.length > 63) {
        throw new FlagError(`--namespaces '${flags.get('namespaces')}' is invalid: '${ns}' is not a namespace name (RFC 1123 label)`);
      }
    }
    this.identity = flags.get('identity') ?? process.env.POD_NAME ?? `${os.hostname()}_${process.pid}`;
    this.informer = new InformerPodSource({
      client: this.client,
      logger,
      namespaces,
      onEvent: (kind) => this.#m.watch?.inc({ event: kind }),
    });
    this.source = new TeedSource(this.informer, this.callers);
  }

  /** Discovery server hook: a pushed update's latency from the registry change. */
  onPushed = (_api: string, latencyMs: number): void => {
    this.#m.push?.observe(latencyMs / 1000);
  };

  isLeader(): boolean {
    return this.#elector === undefined ? this.#flags.get('leader-elect') === 'false' : this.#elector.isLeader();
  }

  component(registry: EndpointRegistry): ControllerComponent {
    const flags = this.#flags;
    const leaderElect = flags.get('leader-elect') !== 'false';
    const namespaces = (flags.get('namespaces') ?? '').split(',').filter((s) => s.trim() !== '');
    const reconciler = new BasisServiceReconciler({
      client: this.client,
      registry,
      callers: this.callers,
      logger: this.#log,
      synced: () => this.informer.synced(),
      isLeader: () => this.isLeader(),
      namespaces,
      workers: positive(flags, 'reconcile-workers'),
      resyncMs: Number(flags.get('resync-ms') ?? '60000'),
      metrics: {
        onResult: (_key: string, result: ReconcileResult, ms: number) => {
          this.#m.reconciles?.inc({ result });
          this.#m.duration?.observe({ result }, ms / 1000);
        },
        onWrite: (kind) => this.#m.writes?.inc({ kind }),
      },
    });
    const events = new AnnotationEvents({
      client: this.client,
      registry,
      logger: this.#log,
      isLeader: () => this.isLeader(),
      instance: this.identity,
      onEvent: () => this.#m.events?.inc({ reason: 'InvalidAnnotation' }),
    });
    this.#reconciler = reconciler;
    this.#events = events;
    if (leaderElect) {
      this.#elector = new LeaderElector({
        client: this.client,
        logger: this.#log,
        namespace: flags.get('lease-namespace') ?? process.env.POD_NAMESPACE ?? 'default',
        name: flags.get('lease-name') ?? 'qbasis-controller',
        identity: this.identity,
        leaseDurationMs: positive(flags, 'lease-duration-ms'),
        renewDeadlineMs: positive(flags, 'renew-deadline-ms'),
        retryPeriodMs: positive(flags, 'retry-period-ms'),
        onStartedLeading: () => {
          // a new leader trusts nothing it did not write itself: look at everything again
          void reconciler.resync();
          events.enqueueAll();
        },
      });
    }
    const elector = this.#elector;
    return {
      name: 'kubernetes controller (leader election, BasisServices, Events)',
      start: async () => {
        reconciler.start();
        events.start();
        if (elector !== undefined) elector.start();
        else void reconciler.resync();
      },
      stop: async () => {
        // finish in-flight writes, then hand the Lease over
        await reconciler.stop();
        await events.stop();
        await elector?.stop();
      },
    };
  }

  registerMetrics(reg: Registry): void {
    const results: ReconcileResult[] = ['success', 'requeue', 'error', 'terminal'];
    this.#m.reconciles = new Counter({ name: 'qbasis_controller_reconcile_total', help: 'BasisService reconcile passes by result', labelNames: ['result'], registers: [reg] });
    this.#m.duration = new Histogram({
      name: 'qbasis_controller_reconcile_duration_seconds',
      help: 'BasisService reconcile pass duration',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [reg],
    });
    for (const r of results) this.#m.reconciles.inc({ result: r }, 0); // pre-set to 0, as controller-runtime does
    this.#m.writes = new Counter({ name: 'qbasis_controller_kube_writes_total', help: 'Writes to the API server by kind', labelNames: ['kind'], registers: [reg] });
    for (const k of ['apply', 'status', 'delete']) this.#m.writes.inc({ kind: k }, 0);
    this.#m.events = new Counter({ name: 'qbasis_controller_events_total', help: 'Kubernetes Events written, by reason', labelNames: ['reason'], registers: [reg] });
    this.#m.events.inc({ reason: 'InvalidAnnotation' }, 0);
    this.#m.push = new Histogram({
      name: 'qbasis_discovery_push_latency_seconds',
      help: 'From a pod change reaching the registry to the update written on a subscribed stream',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [reg],
    });
    this.#m.watch = new Counter({ name: 'qbasis_controller_pod_watch_total', help: 'Pod list/watch lifecycle: list, relist, watch-start, watch-end, error', labelNames: ['event'], registers: [reg] });
    for (const e of ['list', 'relist', 'watch-start', 'watch-end', 'error']) this.#m.watch.inc({ event: e }, 0);
    const self = this;
    new Gauge({
      name: 'qbasis_controller_workqueue_depth',
      help: 'Keys waiting for a worker',
      labelNames: ['queue'],
      registers: [reg],
      collect() {
        this.set({ queue: 'basisservices' }, self.#reconciler?.queue.depth ?? 0);
        this.set({ queue: 'events' }, self.#events?.queue.depth ?? 0);
      },
    });
    new Gauge({
      name: 'qbasis_controller_workqueue_delayed',
      help: 'Keys waiting on a retry backoff or requeue timer',
      labelNames: ['queue'],
      registers: [reg],
      collect() {
        this.set({ queue: 'basisservices' }, self.#reconciler?.queue.delayed ?? 0);
        this.set({ queue: 'events' }, self.#events?.queue.delayed ?? 0);
      },
    });
    new Gauge({
      name: 'qbasis_controller_is_leader',
      help: '1 while this replica holds the Lease (writes statuses and Events)',
      registers: [reg],
      collect() {
        this.set(self.isLeader() ? 1 : 0);
      },
    });
  }
}
