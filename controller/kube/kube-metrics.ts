// Kubernetes mode's Prometheus metrics: reconcile passes, API writes, Events, discovery push
// latency, the pod list/watch lifecycle, work-queue depths and leadership. The hooks are no-ops
// until register() is given the admin server's registry (main.ts creates it after the source).
import { Counter, Gauge, Histogram, type Registry } from '../../proto/prom.ts';
import type { ReconcileResult, WorkQueue } from './work-queue.ts';

export type PodWatchEvent = 'list' | 'relist' | 'watch-start' | 'watch-end' | 'error';

/** What the gauges read when scraped. */
export interface KubeMetricsSources {
  /** The work queues by the `queue` label (undefined until the components exist). */
  queues: () => { basisservices: WorkQueue | undefined; basispolicies: WorkQueue | undefined; events: WorkQueue | undefined };
  isLeader: () => boolean;
}

export class KubeMetrics {
  #reconciles: Counter<'result'> | undefined;
  #duration: Histogram<'result'> | undefined;
  #writes: Counter<'kind'> | undefined;
  #events: Counter<'reason'> | undefined;
  #push: Histogram | undefined;
  #watch: Counter<'event'> | undefined;

  reconciled(result: ReconcileResult, ms: number): void {
    this.#reconciles?.inc({ result });
    this.#duration?.observe({ result }, ms / 1000);
  }

  wrote(kind: 'apply' | 'status' | 'delete'): void {
    this.#writes?.inc({ kind });
  }

  eventWritten(reason: 'InvalidAnnotation'): void {
    this.#events?.inc({ reason });
  }

  /** A discovery update written on a stream, `latencyMs` after the registry change. */
  pushed(latencyMs: number): void {
    this.#push?.observe(latencyMs / 1000);
  }

  podWatch(event: PodWatchEvent): void {
    this.#watch?.inc({ event });
  }

  register(reg: Registry, sources: KubeMetricsSources): void {
    const results: ReconcileResult[] = ['success', 'requeue', 'error', 'terminal'];
    this.#reconciles = new Counter({ name: 'qbasis_controller_reconcile_total', help: 'BasisService reconcile passes by result', labelNames: ['result'], registers: [reg] });
    this.#duration = new Histogram({
      name: 'qbasis_controller_reconcile_duration_seconds',
      help: 'BasisService reconcile pass duration',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [reg],
    });
    for (const r of results) this.#reconciles.inc({ result: r }, 0); // pre-set to 0, as controller-runtime does
    this.#writes = new Counter({ name: 'qbasis_controller_kube_writes_total', help: 'Writes to the API server by kind', labelNames: ['kind'], registers: [reg] });
    for (const k of ['apply', 'status', 'delete']) this.#writes.inc({ kind: k }, 0);
    this.#events = new Counter({ name: 'qbasis_controller_events_total', help: 'Kubernetes Events written, by reason', labelNames: ['reason'], registers: [reg] });
    this.#events.inc({ reason: 'InvalidAnnotation' }, 0);
    this.#push = new Histogram({
      name: 'qbasis_controller_discovery_push_latency_seconds',
      help: 'From a pod change reaching the registry to the update written on a subscribed stream',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [reg],
    });
    this.#watch = new Counter({ name: 'qbasis_controller_pod_watch_total', help: 'Pod list/watch lifecycle: list, relist, watch-start, watch-end, error', labelNames: ['event'], registers: [reg] });
    for (const e of ['list', 'relist', 'watch-start', 'watch-end', 'error']) this.#watch.inc({ event: e }, 0);
    const queueGauge = (name: string, help: string, read: (q: WorkQueue) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['queue'],
        registers: [reg],
        collect() {
          for (const [queue, q] of Object.entries(sources.queues())) this.set({ queue }, q === undefined ? 0 : read(q));
        },
      });
    };
    queueGauge('qbasis_controller_workqueue_depth', 'Keys waiting for a worker', (q) => q.depth);
    queueGauge('qbasis_controller_workqueue_delayed', 'Keys waiting on a retry backoff or requeue timer', (q) => q.delayed);
    new Gauge({
      name: 'qbasis_controller_is_leader',
      help: '1 while this replica holds the Lease (writes statuses and Events)',
      registers: [reg],
      collect() {
        this.set(sources.isLeader() ? 1 : 0);
      },
    });
  }
}
