// Writes each BasisPolicy's status (Accepted, the ROUTES/MIRROR columns, the last valid spec) in the
// controller-runtime manner: changes only enqueue keys `namespace/name`; each pass re-reads the object
// from the informer cache and the intake's view of it, computes the status (basis-policy-status.ts)
// and writes it through the status subresource only when it differs. Only the leader writes; on
// becoming leader every key is enqueued. A key is enqueued when its object changes, when another
// policy in its namespace changes (Conflict comes and goes with it), and when the API it names gains
// its first providing pod or loses its last (NoSuchAPI).
import type { Logger } from 'pino';
import type { ApiChange, EndpointRegistry } from '../endpoint-registry.ts';
import type { MirrorResults } from '../mirror-results.ts';
import type { PolicyIntake } from '../policy-intake.ts';
import { computePolicyStatus, policyStatusPatch, samePolicyStatus, BPOL_PLURAL, type BasisPolicyStatus } from './basis-policy-status.ts';
import { GROUP, VERSION } from './basis-service-status.ts';
import { isConflict, isNotFound, type KubeClient } from './kube-client.ts';
import type { PolicyInformer } from './policy-informer.ts';
import { logResults, WorkQueue } from './work-queue.ts';

export interface BasisPolicyReconcilerOptions {
  client: KubeClient;
  informer: PolicyInformer;
  intake: PolicyIntake;
  registry: EndpointRegistry;
  logger: Logger;
  /** The pod and policy caches are synced (writes wait for them). */
  synced: () => boolean;
  /** Only the leader writes. */
  isLeader: () => boolean;
  workers?: number;
  onWrite?: () => void;
  /** The sidecars' mirror reports; their sums go to status.mirror, written at most every MIRROR_WRITE_MS per policy. */
  mirror?: MirrorResults;
}

/** Sidecars report every 2 s each: the status follows at most this often, not per report. */
export const MIRROR_WRITE_MS = 5000;

function splitPolicyKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export class BasisPolicyReconciler {
  readonly #o: BasisPolicyReconcilerOptions;
  readonly #log: Logger;
  readonly queue: WorkQueue;
  /** api → whether some pod provided it at the last registry change. */
  readonly #provided = new Map<string, boolean>();
  #started = false;

  // Conflict is decided among the policies of one namespace: a change to one is a change to each.
  readonly #onPolicyChange = (keys: string[]): void => {
    const namespaces = new Set(keys.map((k) => splitPolicyKey(k).namespace));
    for (const k of keys) this.queue.add(k);
    for (const k of this.#o.informer.keys()) if (namespaces.has(splitPolicyKey(k).namespace)) this.queue.add(k);
  };

  readonly #onMirrorChange = (key: string): void => {
    this.queue.addAfter(key, MIRROR_WRITE_MS);
  };

  readonly #onRegistryChange = (c: ApiChange): void => {
    const provided = this.#o.registry.list(c.api).length > 0;
    if (this.#provided.get(c.api) === provided) return;
    if (provided) this.#provided.set(c.api, true);
    else this.#provided.delete(c.api);
    for (const k of this.#o.informer.keysForApi(c.api)) this.queue.add(k);
  };

  constructor(opts: BasisPolicyReconcilerOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'bpol-reconciler' });
    this.queue = new WorkQueue((key) => this.reconcile(key), {
      workers: opts.workers ?? 2,
      baseDelayMs: 50,
      maxDelayMs: 30_000,
      onResult: logResults(this.#log),
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#o.informer.on('change', this.#onPolicyChange);
    this.#o.registry.on('change', this.#onRegistryChange);
    this.#o.mirror?.on('change', this.#onMirrorChange);
    for (const api of this.#o.registry.apis()) this.#provided.set(api, this.#o.registry.list(api).length > 0);
    this.enqueueAll();
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#o.informer.off('change', this.#onPolicyChange);
    this.#o.registry.off('change', this.#onRegistryChange);
    this.#o.mirror?.off('change', this.#onMirrorChange);
    await this.queue.stop();
  }

  /** On becoming leader: every policy gets a pass (each writes only what differs from its cached status). */
  enqueueAll(): void {
    for (const k of this.#o.informer.keys()) this.queue.add(k);
  }

  /** One pass for `namespace/name`. Public for tests. */
  async reconcile(key: string): Promise<void> {
    if (!this.#o.isLeader() || !this.#o.synced()) return;
    const { namespace, name } = splitPolicyKey(key);
    const obj = this.#o.informer.get(namespace, name);
    const condition = this.#o.intake.condition(namespace, name);
    if (obj === undefined || condition === undefined) return; // deleted since
    const previous = obj.status as Partial<BasisPolicyStatus> | undefined;
    const status = computePolicyStatus(
      {
        condition,
        generation: condition.observedGeneration,
        inForce: this.#o.intake.store.get(namespace, name)?.policy,
        accepted: this.#o.intake.accepted(namespace, name),
        mirror: this.#o.mirror?.forPolicy(key),
      },
      previous,
      new Date(),
    );
    if (samePolicyStatus(previous, status)) return;
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${BPOL_PLURAL}/${encodeURIComponent(name)}/status`;
    try {
      // The resourceVersion read makes it a compare-and-swap: a status computed from an older object
      // (say, one deleted and created again under the name) is never written over a newer one.
      await this.#o.client.request('PATCH', path, {
        body: { metadata: { resourceVersion: obj.metadata.resourceVersion }, ...policyStatusPatch(status) },
        contentType: 'application/merge-patch+json',
      });
    } catch (err) {
      if (isNotFound(err)) return; // deleted: nothing to say
      if (isConflict(err)) {
        // the cache is behind the object; its watch event enqueues the key again, this retry is a backstop
        this.queue.addAfter(key, 1000);
        return;
      }
      throw err;
    }
    this.#o.onWrite?.();
    this.#log.info(
      { key, generation: status.observedGeneration, reason: condition.reason, inForce: this.#o.intake.store.get(namespace, name)?.generation },
      'BasisPolicy status written',
    );
  }
}
