// BasisPolicy objects in (from a pods file or an informer), policies in force out (the PolicyStore),
// with each object's Accepted condition. An object that turns invalid keeps its last accepted spec in
// force (DESIGN.md: "the last good policy stays in force"); each distinct problem is logged once.
import type { Logger } from 'pino';
import { acceptedCondition, parseBasisPolicy, type AcceptedCondition, type ParsedPolicy } from './basis-policy.ts';
import type { PolicyStore } from './policy-store.ts';

/** A BasisPolicy object as read, spec unchecked. */
export interface PolicyObject {
  namespace: string;
  name: string;
  /** metadata.generation (1 when a file leaves it out). */
  generation: number;
  creationTimestamp: string | undefined;
  /** The whole object: parseBasisPolicy reads apiVersion, kind and spec. */
  raw: unknown;
  /**
   * The spec that was in force before this process started (Kubernetes mode: the object's
   * status.lastValid, which the controller wrote), as an object parseBasisPolicy reads. Used only when
   * the object is invalid now and nothing of it is in force yet; checked like any spec.
   */
  lastValid?: { generation: number; raw: unknown } | undefined;
}

/** The object (or restored last valid spec) whose spec is in force. */
export interface AcceptedSpec {
  generation: number;
  raw: unknown;
}

interface Held {
  obj: PolicyObject;
  parsed: ParsedPolicy;
  /** Whose spec is in force: this object when valid, else the last valid one. */
  accepted: AcceptedSpec | undefined;
  /** What was last logged for it, so a reload logs only what changed. */
  logged: string;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export interface PolicyIntakeOptions {
  store: PolicyStore;
  logger: Logger;
  /** Some pod in the mesh provides the API (NoSuchAPI otherwise). */
  apiKnown(api: string): boolean;
}

export class PolicyIntake {
  readonly #opts: PolicyIntakeOptions;
  readonly #log: Logger;
  readonly #held = new Map<string, Held>();

  constructor(opts: PolicyIntakeOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'policies' });
  }

  /** The policies in force that this intake feeds. */
  get store(): PolicyStore {
    return this.#opts.store;
  }

  upsert(obj: PolicyObject): void {
    const k = key(obj.namespace, obj.name);
    const parsed = parseBasisPolicy(obj.raw);
    const before = this.#held.get(k);
    const held: Held = { obj, parsed, accepted: before?.accepted, logged: before?.logged ?? '' };
    this.#held.set(k, held);
    let policy = parsed.policy;
    let accepted: AcceptedSpec = { generation: obj.generation, raw: obj.raw };
    if (policy === undefined && this.#opts.store.get(obj.namespace, obj.name) === undefined && obj.lastValid !== undefined) {
      // Invalid, and this process never saw a valid spec of it: the one in force before it started.
      policy = parseBasisPolicy(obj.lastValid.raw).policy;
      accepted = obj.lastValid;
    }
    if (policy !== undefined) {
      held.accepted = accepted;
      this.#opts.store.upsert({ namespace: obj.namespace, name: obj.name, generation: accepted.generation, creationTimestamp: obj.creationTimestamp, policy });
    }
    // Invalid: whatever spec of it is in the store stays there.
    this.#report(held);
  }

  /** Whose spec is in force for this object (itself when valid, else its last valid spec), if any. */
  accepted(namespace: string, name: string): AcceptedSpec | undefined {
    return this.#held.get(key(namespace, name))?.accepted;
  }

  delete(namespace: string, name: string): void {
    this.#held.delete(key(namespace, name));
    this.#opts.store.delete(namespace, name);
  }

  /** The complete set of objects: anything not in it is gone. */
  resync(objs: PolicyObject[]): void {
    const keep = new Set(objs.map((o) => key(o.namespace, o.name)));
    for (const h of [...this.#held.values()]) if (!keep.has(key(h.obj.namespace, h.obj.name))) this.delete(h.obj.namespace, h.obj.name);
    for (const o of objs) this.upsert(o);
    for (const h of this.#held.values()) this.#report(h); // a conflict can appear or go with another object
  }

  /** The Accepted condition of one object now (conflicts and known APIs change with the world). */
  condition(namespace: string, name: string): AcceptedCondition | undefined {
    const h = this.#held.get(key(namespace, name));
    return h === undefined ? undefined : this.#condition(h);
  }

  /** Every object held, with its condition, sorted by namespace/name. */
  objects(): { obj: PolicyObject; condition: AcceptedCondition }[] {
    return [...this.#held.values()]
      .sort((a, b) => (key(a.obj.namespace, a.obj.name) < key(b.obj.namespace, b.obj.name) ? -1 : 1))
      .map((h) => ({ obj: h.obj, condition: this.#condition(h) }));
  }

  #condition(h: Held): AcceptedCondition {
    const { namespace, name } = h.obj;
    const lost = this.#opts.store.conflicts().find((c) => c.namespace === namespace && c.name === name);
    const api = h.parsed.policy?.api;
    return acceptedCondition({
      parsed: h.parsed,
      generation: h.obj.generation,
      ...(lost !== undefined ? { conflict: { winner: lost.winner } } : {}),
      apiKnown: api !== undefined && this.#opts.apiKnown(api),
    });
  }

  #report(h: Held): void {
    const c = this.#condition(h);
    // NoSuchAPI comes and goes with pods; logging it on every change would be noise.
    const sig = c.reason === 'NoSuchAPI' ? 'Accepted' : `${c.reason}:${c.message}`;
    if (sig === h.logged) return;
    h.logged = sig;
    const fields = { policy: `${h.obj.namespace}/${h.obj.name}`, generation: h.obj.generation, reason: c.reason };
    if (c.reason === 'Accepted' || c.reason === 'NoSuchAPI') this.#log.info(fields, `BasisPolicy ${fields.policy} ${c.message}`);
    else this.#log.error({ ...fields, code: 'QB_INVALID_POLICY' }, `BasisPolicy ${fields.policy}: ${c.message}`);
  }
}
