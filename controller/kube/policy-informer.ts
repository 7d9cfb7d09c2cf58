// Kubernetes mode's BasisPolicy informer: list then watch basispolicies.qbasis.io/v1alpha1 (all
// namespaces, or each configured one; reflector.ts does the list/watch/relist/backoff), keep the
// objects as read (the status reconciler re-reads them from here, never from the API server), and feed
// the PolicyIntake, which puts the valid specs in force. Emits 'change' with the keys (namespace/name)
// of objects added, changed or removed. If the CRD is not installed there are simply no policies (the
// informer counts as synced and looks again every 5 s).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { PolicyIntake, PolicyObject } from '../policy-intake.ts';
import { BPOL_KIND, BPOL_PLURAL } from './basis-policy-status.ts';
import { GROUP, VERSION } from './basis-service-status.ts';
import type { KubeClient } from './kube-client.ts';
import { Reflector, type WatchEventType } from './reflector.ts';

/** A BasisPolicy as the API server returns it; spec and status unchecked. */
export interface BasisPolicyObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; uid?: string; generation?: number; creationTimestamp?: string; resourceVersion?: string };
  spec?: unknown;
  status?: Record<string, unknown>;
}

export interface PolicyInformerOptions {
  client: KubeClient;
  logger: Logger;
  intake: PolicyIntake;
  /** Namespaces to watch; empty or undefined: all namespaces. */
  namespaces?: readonly string[];
}

export function policyKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function asObject(v: unknown): BasisPolicyObject | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const m = (v as { metadata?: unknown }).metadata;
  if (m === null || typeof m !== 'object') return undefined;
  const { name, namespace } = m as { name?: unknown; namespace?: unknown };
  return typeof name === 'string' && typeof namespace === 'string' ? (v as BasisPolicyObject) : undefined;
}

/** status.lastValid as the controller wrote it, if it has that shape (status is input too). */
function lastValid(obj: BasisPolicyObject): PolicyObject['lastValid'] {
  const lv = obj.status?.['lastValid'];
  if (lv === null || typeof lv !== 'object') return undefined;
  const { generation, spec } = lv as { generation?: unknown; spec?: unknown };
  if (typeof generation !== 'number' || !Number.isInteger(generation) || generation < 1) return undefined;
  if (spec === null || typeof spec !== 'object') return undefined;
  return { generation, raw: { apiVersion: `${GROUP}/${VERSION}`, kind: BPOL_KIND, spec } };
}

/** What the intake reads. The whole object goes in as `raw`: parseBasisPolicy checks apiVersion, kind and spec. */
export function policyObject(obj: BasisPolicyObject): PolicyObject {
  const m = obj.metadata;
  return {
    namespace: m.namespace,
    name: m.name,
    generation: typeof m.generation === 'number' ? m.generation : 1,
    creationTimestamp: m.creationTimestamp,
    // list items come without apiVersion and kind
    raw: { ...obj, apiVersion: obj.apiVersion ?? `${GROUP}/${VERSION}`, kind: obj.kind ?? BPOL_KIND },
    lastValid: lastValid(obj),
  };
}

/**
 * Events:
 *  'change' (keys: string[])   these objects were added, changed or removed
 */
export class PolicyInformer extends EventEmitter {
  readonly #o: PolicyInformerOptions;
  readonly #log: Logger;
  readonly #reflector: Reflector;
  /** Objects by scope, then by namespace/name. */
  readonly #store = new Map<string, Map<string, BasisPolicyObject>>();

  constructor(opts: PolicyInformerOptions) {
    super();
    this.#o = opts;
    this.#log = opts.logger.child({ component: 'policy-informer' });
    this.#reflector = new Reflector({
      client: opts.client,
      logger: this.#log,
      what: BPOL_KIND,
      path: (scope) => `/apis/${GROUP}/${VERSION}/${scope === '' ? '' : `namespaces/${encodeURIComponent(scope)}/`}${BPOL_PLURAL}`,
      namespaces: opts.namespaces,
      notServedIsEmpty: true,
      onSynced: () => this.#log.info({ policies: this.keys().length }, 'BasisPolicy cache synced'),
      handler: {
        listed: (scope, items) => this.#listed(scope, items),
        event: (scope, type, obj) => this.#apply(scope, type, obj),
      },
    });
    for (const scope of this.#reflector.scopes) this.#store.set(scope, new Map());
  }

  synced(): boolean {
    return this.#reflector.synced();
  }

  start(): Promise<void> {
    return this.#reflector.start();
  }

  stop(): Promise<void> {
    return this.#reflector.stop();
  }

  get(namespace: string, name: string): BasisPolicyObject | undefined {
    const k = policyKey(namespace, name);
    for (const m of this.#store.values()) {
      const o = m.get(k);
      if (o !== undefined) return o;
    }
    return undefined;
  }

  /** Every object held, as namespace/name. */
  keys(): string[] {
    const out: string[] = [];
    for (const m of this.#store.values()) out.push(...m.keys());
    return out;
  }

  /** The objects held whose spec.api (as written, valid or not) is `api`. */
  keysForApi(api: string): string[] {
    const out: string[] = [];
    for (const m of this.#store.values()) {
      for (const [k, o] of m) if ((o.spec as { api?: unknown } | undefined)?.api === api) out.push(k);
    }
    return out;
  }

  #listed(scope: string, items: unknown[]): void {
    const before = this.#store.get(scope) ?? new Map<string, BasisPolicyObject>();
    const fresh = new Map<string, BasisPolicyObject>();
    for (const item of items) {
      const o = asObject(item);
      if (o !== undefined) fresh.set(policyKey(o.metadata.namespace, o.metadata.name), o);
    }
    this.#store.set(scope, fresh);
    // The intake's resync takes the complete set across scopes: anything else is gone.
    const all: PolicyObject[] = [];
    for (const m of this.#store.values()) for (const o of m.values()) all.push(policyObject(o));
    this.#o.intake.resync(all);
    const touched = new Set([...before.keys(), ...fresh.keys()]);
    if (touched.size > 0) this.emit('change', [...touched]);
  }

  #apply(scope: string, type: WatchEventType, obj: unknown): void {
    const o = asObject(obj);
    const store = this.#store.get(scope);
    if (o === undefined || store === undefined) return;
    const { namespace, name } = o.metadata;
    const k = policyKey(namespace, name);
    if (type === 'DELETED') {
      if (!store.delete(k)) return;
      this.#o.intake.delete(namespace, name);
    } else {
      if (store.get(k)?.metadata.resourceVersion === o.metadata.resourceVersion && o.metadata.resourceVersion !== undefined) return;
      store.set(k, o);
      this.#o.intake.upsert(policyObject(o));
    }
    this.emit('change', [k]);
  }
}
