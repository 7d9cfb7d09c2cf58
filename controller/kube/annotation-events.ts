// One Warning Event per invalid qbasis annotation value on a pod (reason InvalidAnnotation), never
// one per resync: what was reported is remembered by pod uid + annotation + value, and before
// writing, the pod's existing Events are checked, so a new leader (or a restarted controller)
// does not repeat what the previous one already said. Writes go through a work queue keyed by
// pod, so failures retry with backoff and each pass re-reads the registry's rejected pods.
import type { Logger } from 'pino';
import type { AnnotationProblem } from '../../proto/annotations.ts';
import type { EndpointRegistry, RejectedPod } from '../endpoint-registry.ts';
import type { PodRef } from '../pod-source.ts';
import type { KubeClient } from './kube-client.ts';
import { WorkQueue } from './work-queue.ts';

export const INVALID_ANNOTATION_REASON = 'InvalidAnnotation';
export const REPORTING_COMPONENT = 'qbasis.io/controller';

export function eventMessage(p: AnnotationProblem): string {
  return `annotation ${p.annotation} has invalid value ${JSON.stringify(p.value)}: expected ${p.expected}; the pod is left out of qbasis discovery`;
}

function reportKey(uid: string, p: AnnotationProblem): string {
  return `${uid}\u0000${p.annotation}\u0000${p.value}`;
}

interface CoreEvent {
  message?: string;
  reason?: string;
  involvedObject?: { uid?: string };
}

export interface AnnotationEventsOptions {
  client: KubeClient;
  registry: EndpointRegistry;
  logger: Logger;
  isLeader: () => boolean;
  /** reportingInstance on the Event (the controller's identity). */
  instance: string;
  onEvent?: () => void;
}

export class AnnotationEvents {
  readonly #o: AnnotationEventsOptions;
  readonly #log: Logger;
  readonly queue: WorkQueue;
  /** uid → report keys already on the API server. */
  readonly #reported = new Map<string, Set<string>>();
  /** namespace/name → uid, to forget a pod's reports when it goes. */
  readonly #uids = new Map<string, string>();
  #started = false;

  readonly #onRejected = (p: RejectedPod): void => this.queue.add(`${p.namespace}/${p.name}`);
  // valid again or gone: forget (the API server's Events still stop a repeat for the same value)
  readonly #onAccepted = (ref: PodRef): void => this.#forgetPod(ref);

  constructor(opts: AnnotationEventsOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'annotation-events' });
    this.queue = new WorkQueue((key) => this.#pass(key), {
      workers: 2,
      baseDelayMs: 200,
      maxDelayMs: 60_000,
      onResult: (key, result, _ms, err) => {
        if (result === 'error') this.#log.warn({ key, err: err instanceof Error ? err.message : String(err) }, 'writing Event failed; will retry');
      },
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#o.registry.on('rejected', this.#onRejected);
    this.#o.registry.on('accepted', this.#onAccepted);
    this.enqueueAll();
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#o.registry.off('rejected', this.#onRejected);
    this.#o.registry.off('accepted', this.#onAccepted);
    await this.queue.stop();
  }

  /** On becoming leader: every currently rejected pod gets a pass (deduplicated against the API server). */
  enqueueAll(): void {
    for (const p of this.#o.registry.rejected()) this.queue.add(`${p.namespace}/${p.name}`);
  }

  #forgetPod(ref: PodRef): void {
    const key = `${ref.namespace}/${ref.name}`;
    const uid = this.#uids.get(key);
    if (uid === undefined) return;
    this.#uids.delete(key);
    this.#reported.delete(uid);
  }

  async #pass(key: string): Promise<void> {
    if (!this.#o.isLeader()) return;
    const i = key.indexOf('/');
    const namespace = key.slice(0, i);
    const name = key.slice(i + 1);
    const pod = this.#o.registry.rejected().find((r) => r.namespace === namespace && r.name === name);
    if (pod === undefined || pod.uid === '') return; // fixed or gone since
    let reported = this.#reported.get(pod.uid);
    const pending = pod.problems.filter((p) => !(reported?.has(reportKey(pod.uid, p)) ?? false));
    if (pending.length === 0) return;
    // What the API server already holds for this pod (a previous leader may have reported it).
    const existing = await this.#o.client.request<{ items?: CoreEvent[] }>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
      query: { fieldSelector: `involvedObject.uid=${pod.uid},reason=${INVALID_ANNOTATION_REASON}` },
    });
    const messages = new Set((existing.items ?? []).map((e) => e.message ?? ''));
    if (reported === undefined) this.#reported.set(pod.uid, (reported = new Set()));
    this.#uids.set(key, pod.uid);
    for (const p of pending) {
      const message = eventMessage(p);
      if (!messages.has(message)) {
        await this.#create(pod, message);
        this.#log.info({ pod: `${namespace}/${name}`, annotation: p.annotation, value: p.value }, 'Warning Event InvalidAnnotation written');
      }
      reported.add(reportKey(pod.uid, p));
    }
  }

  async #create(pod: RejectedPod, message: string): Promise<void> {
    const now = new Date();
    await this.#o.client.request('POST', `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`, {
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid },
        type: 'Warning',
        reason: INVALID_ANNOTATION_REASON,
        message,
        action: 'Discover',
        source: { component: 'qbasis-controller' },
        reportingComponent: REPORTING_COMPONENT,
        reportingInstance: this.#o.instance,
        firstTimestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
        lastTimestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
        count: 1,
      },
    });
    this.#o.onEvent?.();
  }
}
