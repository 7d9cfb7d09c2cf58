// Who may call what this pod provides (BasisPolicy `allow`, DESIGN.md): the providing pod's inbound
// sidecar enforces the policy in its own namespace. Discovery streams each provided API's policy
// (the sidecar watches its provided APIs with identity on); a policy from another namespace does not
// count here. Until a provided API's first discovery message has arrived its calls are refused as
// not ready (UNAVAILABLE, the caller sends them elsewhere): an unknown list is not an empty one.
// Verdicts are cached per policy spec and caller identity, so a call costs one map lookup.
import type { Logger } from 'pino';
import { Status, type ErrorCode } from '../../proto/errors.ts';
import { parseSpiffeId } from '../../proto/identity.ts';
import { samePolicy, type AllowedIdentity, type AppliedPolicy } from '../../proto/policy.ts';

export interface Refusal {
  status: number;
  code: ErrorCode;
  message: string;
}

const MAX_CACHED_CALLERS = 1024;

interface Entry {
  /** The policy in this pod's namespace, if any. */
  policy: AppliedPolicy | undefined;
  verdicts: Map<string, Refusal | undefined>;
}

function allows(list: readonly AllowedIdentity[], caller: string): boolean {
  const c = parseSpiffeId(caller);
  if (c === undefined) return false;
  return list.some((a) => a.trustDomain === c.trustDomain && (a.namespace === '*' || a.namespace === c.namespace) && (a.serviceAccount === '*' || a.serviceAccount === c.serviceAccount));
}

export class InboundAuthorization {
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  /** This pod's namespace, from its own certificate. */
  #namespace: string | undefined;
  /** The latest policy discovery sent per API, whatever its namespace. */
  readonly #received = new Map<string, AppliedPolicy | undefined>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The namespace of this pod's identity (known once it has a certificate). */
  setNamespace(ns: string): void {
    if (ns === this.#namespace) return;
    this.#namespace = ns;
    for (const [api, p] of this.#received) this.#apply(api, p);
  }

  /** A discovery message for a provided API: the policy that applies (any namespace), or none. */
  update(api: string, policy: AppliedPolicy | undefined): void {
    this.#received.set(api, policy);
    if (this.#namespace !== undefined) this.#apply(api, policy);
  }

  #apply(api: string, p: AppliedPolicy | undefined): void {
    const own = p !== undefined && p.namespace === this.#namespace ? p : undefined;
    const old = this.#entries.get(api);
    if (old !== undefined && samePolicy(old.policy, own)) return;
    this.#entries.set(api, { policy: own, verdicts: new Map() });
    const allow = own?.policy.allow;
    if (old === undefined && allow === undefined) return;
    const name = own === undefined ? undefined : `${own.namespace}/${own.name}`;
    this.#log.info({ api, policy: name ?? null, generation: own?.generation ?? null, allow: allow?.map((a) => a.id) ?? null },
      allow === undefined ? `inbound calls to ${api}: every mesh identity may call` : `inbound calls to ${api}: only ${allow.length} allowed identit${allow.length === 1 ? 'y' : 'ies'} may call (BasisPolicy ${name} generation ${own!.generation})`);
  }

  /** undefined: the caller may call `api`; else why not. */
  check(api: string, caller: string): Refusal | undefined {
    const e = this.#entries.get(api);
    if (e === undefined) {
      return { status: Status.UNAVAILABLE, code: 'QB_IDENTITY_NOT_READY', message: `this pod does not know yet who may call ${api} (no discovery message for it yet); nothing was processed` };
    }
    const allow = e.policy?.policy.allow;
    if (allow === undefined) return undefined;
    if (e.verdicts.has(caller)) return e.verdicts.get(caller);
    const p = e.policy!;
    const v: Refusal | undefined = allows(allow, caller) ? undefined : {
      status: Status.PERMISSION_DENIED,
      code: 'QB_NOT_AUTHORIZED',
      message: `${caller} may not call ${api}: it is not in the allow list of BasisPolicy ${p.namespace}/${p.name} (generation ${p.generation})`,
    };
    if (e.verdicts.size < MAX_CACHED_CALLERS) e.verdicts.set(caller, v);
    return v;
  }
}
