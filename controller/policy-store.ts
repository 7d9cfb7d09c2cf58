// The BasisPolicies in force, whoever read them (a pods file, an informer): each one's last accepted
// spec. Discovery asks it which policy applies to a subscriber; every change bumps the API's policy
// version and emits 'change', as the endpoint registry does for endpoints.
import { EventEmitter } from 'node:events';
import type { AppliedPolicy } from '../proto/policy.ts';
import { conflicts, selectPolicy, type PolicyConflict } from './basis-policy.ts';

/** A policy whose spec is in force: valid now, or the last valid spec of one that is invalid now. */
export interface StoredPolicy extends AppliedPolicy {
  /** metadata.creationTimestamp (precedence: the oldest wins). */
  creationTimestamp: string | undefined;
}

export interface PolicyChange {
  api: string;
  version: number;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * Events:
 *  'change' (c: PolicyChange)   a policy for c.api was added, changed or removed
 */
export class PolicyStore extends EventEmitter {
  readonly #byKey = new Map<string, StoredPolicy>();
  readonly #versions = new Map<string, number>();

  /** Puts a policy in force (or replaces its spec). */
  upsert(p: StoredPolicy): void {
    const k = key(p.namespace, p.name);
    const old = this.#byKey.get(k);
    if (old !== undefined && JSON.stringify(old) === JSON.stringify(p)) return;
    this.#byKey.set(k, p);
    const apis = new Set([p.policy.api]);
    if (old !== undefined) apis.add(old.policy.api);
    this.#announce(apis);
  }

  /** The policy is gone (deleted, or never had a valid spec). */
  delete(namespace: string, name: string): void {
    const k = key(namespace, name);
    const old = this.#byKey.get(k);
    if (old === undefined) return;
    this.#byKey.delete(k);
    this.#announce(new Set([old.policy.api]));
  }

  /** The complete set in force: anything not in it is gone. */
  resync(policies: StoredPolicy[]): void {
    const keep = new Set(policies.map((p) => key(p.namespace, p.name)));
    for (const [k, p] of [...this.#byKey]) if (!keep.has(k)) this.delete(p.namespace, p.name);
    for (const p of policies) this.upsert(p);
  }

  get(namespace: string, name: string): StoredPolicy | undefined {
    return this.#byKey.get(key(namespace, name));
  }

  list(): StoredPolicy[] {
    return [...this.#byKey.values()];
  }

  /** 0 until a policy for `api` was ever seen, then +1 per change. */
  version(api: string): number {
    return this.#versions.get(api) ?? 0;
  }

  /** The policy for calls to `api` from `callerNamespace` (DESIGN.md's consumer/producer rule). */
  forCaller(api: string, callerNamespace: string, providerNamespaces: readonly string[]): StoredPolicy | undefined {
    return selectPolicy(this.#candidates(api), { api, callerNamespace, providerNamespaces });
  }

  /** Policies that lose to an older one for the same API in their namespace. */
  conflicts(): PolicyConflict[] {
    return conflicts(this.#candidates());
  }

  #candidates(api?: string): (StoredPolicy & { api: string })[] {
    const out: (StoredPolicy & { api: string })[] = [];
    for (const p of this.#byKey.values()) if (api === undefined || p.policy.api === api) out.push({ ...p, api: p.policy.api });
    return out;
  }

  #announce(apis: Set<string>): void {
    for (const api of apis) this.#versions.set(api, this.version(api) + 1);
    for (const api of apis) this.emit('change', { api, version: this.version(api) } satisfies PolicyChange);
  }
}
