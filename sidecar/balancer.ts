// The concrete balancer of one required API: the compatible endpoints of the latest discovery snapshot
// (recomputed when a snapshot arrives, never per call) and P2C among them.
import { CODEC_VERSION } from '../proto/basis/index.ts';
import type { ApiSnapshot, Endpoint } from './discovery-client.ts';
import { compatible } from '../proto/versions.ts';
import type { AppliedPolicy } from '../proto/policy.ts';
import { planRoutes, routeFor, type PlannedPeer, type RoutePlan } from './outbound/route-plan.ts';
import { pickP2C } from './p2c.ts';
import { RetryBudget } from './retry-budget.ts';
import type { Peer } from './peer.ts';
import { ApiCallCounts, type VersionCalls } from './outbound/call-counts.ts';

export const SIDECAR_CODECS: readonly number[] = [CODEC_VERSION];

export interface EndpointView {
  pod: string;
  namespace: string;
  address: string;
  port: number;
  version: string;
  ready: boolean;
  codecs: number[];
  /** The SPIFFE ID a TLS peer must name. */
  identity: string;
  compatible: boolean;
  reason?: string;
}

export class Balancer {
  readonly api: string;
  readonly range: string;
  snapshot: ApiSnapshot | undefined;
  peers: Peer[] = [];
  views: EndpointView[] = [];
  /** The BasisPolicy in force for this API (from discovery), its routes resolved against the peers. */
  policy: AppliedPolicy | undefined;
  plans: RoutePlan[] = [];
  /** Per policy (a new spec starts a new budget). */
  budget: RetryBudget | undefined;
  /** Calls per provided version, cumulative (reported to the controller). */
  readonly calls: ApiCallCounts;
  /** Each compatible peer's version counter, rebuilt per snapshot so a call finds it without a search. */
  #counters = new Map<Peer, VersionCalls>();

  constructor(api: string, range: string) {
    this.api = api;
    this.range = range;
    this.calls = new ApiCallCounts(api, range);
  }

  /** Applies a snapshot; `peerFor` returns the pooled peer of an address. */
  update(snap: ApiSnapshot, peerFor: (ep: Endpoint) => Peer): void {
    const peers = new Set<Peer>();
    const planned: PlannedPeer[] = [];
    const views: EndpointView[] = [];
    const counters = new Map<Peer, VersionCalls>();
    for (const ep of snap.endpoints) {
      const c = compatible({ version: ep.version, codecs: ep.codecs, ready: ep.ready }, { range: this.range, codecs: SIDECAR_CODECS });
      views.push({ pod: ep.pod, namespace: ep.namespace, address: ep.address, port: ep.port, version: ep.version, ready: ep.ready, codecs: ep.codecs, identity: ep.identity, compatible: c.ok, ...(c.ok ? {} : { reason: c.reason }) });
      if (c.ok) {
        const peer = peerFor(ep);
        peers.add(peer);
        planned.push({ peer, version: ep.version });
        counters.set(peer, this.calls.counter(ep.version));
      }
    }
    const policy = snap.policy;
    if (policy === undefined) this.budget = undefined;
    else if (this.policy === undefined || this.policy.name !== policy.name || this.policy.namespace !== policy.namespace || this.policy.generation !== policy.generation) {
      const r = policy.policy.retry;
      this.budget = r === undefined ? undefined : new RetryBudget(r.budget.percent, r.budget.minPerSecond, performance.now());
    }
    this.policy = policy;
    this.plans = planRoutes(policy, planned);
    this.snapshot = snap;
    this.peers = [...peers];
    this.views = views;
    this.#counters = counters;
  }

  /** The version counter of a peer in the current snapshot (undefined: not a compatible endpoint now). */
  counterFor(peer: Peer): VersionCalls | undefined {
    return this.#counters.get(peer);
  }

  /** The policy's route for a method, if a policy with a matching route applies. */
  routeFor(method: string): RoutePlan | undefined {
    return this.plans.length === 0 ? undefined : routeFor(this.plans, method);
  }

  pick(now: number, exclude: readonly Peer[]): Peer | undefined {
    return pickP2C(this.peers, now, exclude);
  }

  /** For the no-compatible-endpoint message: the versions that exist (ready or not). */
  versionsPresent(): string {
    if (this.snapshot === undefined) return 'none known yet (no discovery snapshot)';
    const vs = [...new Set(this.views.map((v) => (v.ready ? v.version : `${v.version} (not ready)`)))];
    return vs.length === 0 ? 'none (no endpoints)' : vs.join(', ');
  }
}
