// The console's data contract: what GET /api/v1/mesh answers and what the events of /api/v1/events
// carry (controller/README.md, "Console"). Types only, so the page's bundle and `qbasis plan` import
// it without pulling in anything of the controller.

export const MESH_KIND = 'qbasis.io/console-mesh/v1';

/** A root that expires sooner than this is a fault (qbasis check's ✖, the page's): rotating it takes a rollout of every injected pod. */
export const ROOT_WARN_DAYS = 90;

export interface WorkloadRef {
  namespace: string;
  name: string;
}

/** A provided version of an API: a column of the matrix. */
export interface VersionColumn {
  version: string;
  /** Pods providing it that are ready / listed but not ready (terminating, failing probes). */
  ready: number;
  notReady: number;
}

/** One caller row × one version column (kept small: a big mesh has thousands). */
export interface CallerCell {
  version: string;
  /** The version satisfies the caller's range (readiness is the column's). */
  compatible: boolean;
  /**
   * The caller's calls this version served: in the last minute, and the last one's time (unix ms).
   * Absent: none in the last 15 minutes. The cell's share is lastMinute / the row's lastMinute.
   */
  calls?: { lastMinute: number; lastCallAt: number };
}

export interface CallerRow {
  workload: WorkloadRef;
  range: string;
  /** Pods of the workload that declare this range (0: seen only in traffic, see `declared`). */
  pods: string[];
  podsReady: number;
  /** false: no pod in the pod source declares it; its sidecar reported calls (a sidecar run by hand, a pod gone). */
  declared: boolean;
  /** Some ready pod provides a version in the range. */
  served: boolean;
  /** Why not, when not served. */
  reason?: string;
  /** "namespace/name" of the BasisPolicy that applies to its calls (null: none). */
  policy: string | null;
  /** Calls in the last minute, all versions. */
  lastMinute: number;
  /** One per column of the API, same order. */
  cells: CallerCell[];
}

export interface TrafficSeries {
  version: string;
  /** calls/s per bucket, oldest first. */
  rates: number[];
}

export interface ApiView {
  api: string;
  /** The basis API id (hex), as frames carry it. */
  apiId: string;
  /** Bumps whenever anything in this object changed. */
  revision: number;
  /** Sorted by semver; versions only seen in traffic have 0 pods. */
  versions: VersionColumn[];
  callers: CallerRow[];
  /** Series share one time axis: `buckets` buckets of `bucketMs` from `startMs` (unix ms); versions with no call in it have none. */
  traffic: { startMs: number; bucketMs: number; buckets: number; series: TrafficSeries[] };
  /** "namespace/name" of every BasisPolicy object for this API (details in MeshSnapshot.policies). */
  policies: string[];
}

export interface PolicyRouteView {
  methods: string[] | null;
  split: { versions: string; weight: number }[] | null;
  mirror: { versions: string; percent: number } | null;
}

/** One mirror mismatch as the controller keeps it (controller/mirror-results.ts uses this type too). */
export interface MirrorSampleView {
  method: string;
  primaryVersion: string;
  shadowVersion: string;
  primaryStatus: number;
  shadowStatus: number;
  primaryFrame: string;
  shadowFrame: string;
  result: string;
  at: string;
  pod: string;
}

export interface MirrorView {
  compared: number;
  matched: number;
  mismatched: number;
  shadowFailed: number;
  dropped: number;
  samples: MirrorSampleView[];
}

export interface PolicyView {
  namespace: string;
  name: string;
  generation: number;
  /** The API its spec names (null: the object has no valid spec at all). */
  api: string | null;
  accepted: { status: string; reason: string; message: string };
  /** The spec in force (the last accepted one), or null. */
  inForce: { generation: number; timeoutMs: number | null; retryAttempts: number; routes: PolicyRouteView[]; allow: string[] | null } | null;
  mirror: MirrorView | null;
}

export interface RejectedPodView {
  namespace: string;
  name: string;
  problems: { annotation: string; value: string; expected: string }[];
}

export interface HealthView {
  podSource: { kind: string; synced: boolean };
  discovery: { streams: number; messagesSent: number; coalesced: number };
  /** Sidecars whose report arrived in the last 10 s. */
  sidecarsReporting: number;
  /** Caller pods (ready, declared in the pod source) with no discovery stream open (first 50). */
  callersNotConnected: { namespace: string; pod: string }[];
  callersNotConnectedTotal: number;
  /** Pods left out of discovery for invalid annotations (first 100). */
  rejectedPods: RejectedPodView[];
  rejectedTotal: number;
  /** Traffic increases not kept because a cap was reached. */
  trafficDropped: number;
  consoleClients: number;
  /** Kubernetes mode only: which replica answers, and whose sidecars its traffic figures hold. */
  replica?: ReplicaView;
  /** Kubernetes mode only: the BasisServices the leader keeps, and those not Synced. */
  basisServices?: BasisServicesHealth;
  /** When mesh identity is on: root expiry, Certify's figures, certificates overdue for renewal. */
  identity?: IdentityHealthView;
}

export interface BasisServicesHealth {
  /** This replica writes them (the leader); a standby's figures are only what it last saw. */
  writer: boolean;
  total: number;
  /** First 50. */
  notSynced: { namespace: string; name: string; api: string; why: string }[];
  notSyncedTotal: number;
}

export interface IdentityHealthView {
  /** The root that signs (Unix ms). */
  rootNotAfter: number;
  /** Every root sidecars trust (several during a rotation), Unix ms, soonest first. */
  trustedRootsNotAfter: number[];
  leafLifetimeMs: number;
  /** Certificates Certify signed since this replica started. */
  issued: number;
  /** Certify's refusals by QB_* code (a closed set). */
  refused: Record<string, number>;
  /**
   * Pods past 3/4 of their certificate's lifetime with no new one (a sidecar renews at half-life ±10 %),
   * soonest to expire first (first 50). Only certificates this replica signed.
   */
  overdue: { namespace: string; pod: string; identity: string; notAfter: number }[];
  overdueTotal: number;
  /** Of those, already expired: their calls fail at the handshake. */
  expiredTotal: number;
}

/**
 * Every replica serves the console from its own caches; sidecars report to the replica their stream
 * reached and a standby passes its reports on to the leader, so only the leader's traffic is the mesh's.
 */
export interface ReplicaView {
  /** This replica's identity in the Lease ($POD_NAME in the chart). */
  identity: string;
  /** The Lease holder last observed (null: none yet); this replica when it leads or runs without election. */
  leader: string | null;
  isLeader: boolean;
  /** 'all': the leader (every sidecar's reports reach it); 'this-replica': only sidecars connected here. */
  traffic: 'all' | 'this-replica';
  /**
   * Every replica's pod (the controller's --replica-selector in its namespace, first 20 by name), read
   * every few seconds; absent without the flag or before the first read.
   */
  replicas?: ReplicaPodView[];
  /** Why the last read of the replicas failed (the list shown is then the one before). */
  replicasError?: string;
}

export interface ReplicaPodView {
  name: string;
  /** 'ready', 'not ready', 'terminating' or the pod's phase. */
  state: string;
}

export interface MeshSnapshot {
  kind: typeof MESH_KIND;
  /** Unix ms. */
  generatedAt: number;
  mode: 'local' | 'kubernetes';
  apis: ApiView[];
  policies: PolicyView[];
  health: HealthView;
}

/** The event stream's messages (event name → data). */
export interface MeshEvents {
  /** The whole mesh: the first message, and again after the stream fell behind. */
  snapshot: MeshSnapshot;
  /** One API's view replaced (or added). */
  api: ApiView;
  /** An API is no longer known. */
  'api-removed': { api: string };
  policies: PolicyView[];
  health: HealthView;
}
