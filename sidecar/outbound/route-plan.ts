// The BasisPolicy's routes, resolved against one discovery snapshot: per route, the version groups of
// its split with the compatible peers in each (a group's range is intersected with the caller's by
// construction: only peers already compatible with the caller are sorted into groups) and the mirror
// group. Built when a snapshot or policy arrives, never per call; a call takes the plan of its method
// at its start, so a policy change applies to new calls only.
import type { AppliedPolicy, PolicyRoute } from '../../proto/policy.ts';
import { satisfies } from '../../proto/versions.ts';
import type { Peer } from '../peer.ts';

export interface GroupPlan {
  versions: string;
  weight: number;
  peers: Peer[];
}

export interface RoutePlan {
  /** Position in spec.routes (for logs and /routes). */
  index: number;
  methods: ReadonlySet<string> | undefined;
  /** undefined: no split, every compatible peer. */
  groups: GroupPlan[] | undefined;
  mirror: { versions: string; percent: number; peers: Peer[] } | undefined;
}

export interface PlannedPeer {
  peer: Peer;
  version: string;
}

function group(versions: string, peers: readonly PlannedPeer[]): Peer[] {
  const out: Peer[] = [];
  for (const p of peers) if (satisfies(p.version, versions) && !out.includes(p.peer)) out.push(p.peer);
  return out;
}

function planRoute(route: PolicyRoute, index: number, peers: readonly PlannedPeer[]): RoutePlan {
  return {
    index,
    methods: route.methods === undefined ? undefined : new Set(route.methods),
    groups: route.split?.map((g) => ({ versions: g.versions, weight: g.weight, peers: group(g.versions, peers) })),
    mirror: route.mirror === undefined ? undefined : { ...route.mirror, peers: group(route.mirror.versions, peers) },
  };
}

export function planRoutes(policy: AppliedPolicy | undefined, peers: readonly PlannedPeer[]): RoutePlan[] {
  return policy === undefined ? [] : policy.policy.routes.map((r, i) => planRoute(r, i, peers));
}

/** The first route that matches the method (a route without methods matches all), if any. */
export function routeFor(plans: readonly RoutePlan[], method: string): RoutePlan | undefined {
  for (const p of plans) if (p.methods === undefined || p.methods.has(method)) return p;
  return undefined;
}

/**
 * A version group by weight among those with peers: an empty group's weight goes to the others in
 * proportion; if every group with peers has weight 0, they share equally. undefined: no group has one.
 */
export function pickGroup(groups: readonly GroupPlan[], random: number = Math.random()): GroupPlan | undefined {
  let total = 0;
  let withPeers = 0;
  for (const g of groups) {
    if (g.peers.length === 0) continue;
    withPeers++;
    total += g.weight;
  }
  if (withPeers === 0) return undefined;
  let x = random * (total > 0 ? total : withPeers);
  for (const g of groups) {
    if (g.peers.length === 0) continue;
    x -= total > 0 ? g.weight : 1;
    if (x < 0) return g;
  }
  // Rounding at the top end: the last group with peers and weight.
  for (let i = groups.length - 1; i >= 0; i--) if (groups[i]!.peers.length > 0 && (total === 0 || groups[i]!.weight > 0)) return groups[i];
  return undefined;
}
