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
}

interface Held {
  obj: PolicyObject;
  parsed: ParsedPolicy;
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

  upsert(obj: PolicyObject): void {
    const k = key(obj.namespace, obj.name);
    const parsed = parseBasisPolicy(obj.raw);
    const held: Held = { obj, parsed, logged: this.#held.get(k)?.logged ?? '' };
    this.#held.set(k, held);
    const policy = parsed.policy;
    if (policy !== undefined) {
      this.#opts.store.upsert({ namespace: obj.namespace, name: obj.name, generation: obj.generation, creationTimestamp: obj.creationTimestamp, policy });
    }
    // Invalid: whatever spec of it is in the store stays there.
    this.#report(held);
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
