// The console's view of the mesh, built from the controller's own state: endpoints per API and version
// (the registry), callers per workload and range (caller-pods.ts), BasisPolicies with their conditions
// and mirror sums, traffic (call-traffic.ts) and health. Views are built per API, on demand, and only
// again after something of that API changed: the event stream asks for the dirty ones once per tick
// and serialises each once for every open page. Traffic moves the figures of an API with every report
// (every sidecar reports every 2 s), so traffic alone rebuilds a view once per 5 s bucket at most: a pod
// or policy change shows at once, the charts and shares step once per bucket.
import { EventEmitter } from 'node:events';
import semver from 'semver';
import { satisfies } from '../../proto/versions.ts';
import { apiIdHex } from '../api-id-collisions.ts';
import type { DiscoveryServer } from '../discovery-server.ts';
import type { EndpointRegistry } from '../endpoint-registry.ts';
import type { MirrorResults } from '../mirror-results.ts';
import type { PodSource } from '../pod-source.ts';
import type { PolicyIntake } from '../policy-intake.ts';
import type { PolicyStore } from '../policy-store.ts';
import { TRAFFIC_LIMITS, type CallTraffic } from './call-traffic.ts';
import type { CallerPods } from './caller-pods.ts';
import type { ApiView, BasisServicesHealth, CallerCell, IdentityHealthView, CallerRow, HealthView, MeshSnapshot, PolicyView, ReplicaView, VersionColumn, WorkloadRef } from './mesh-snapshot.ts';
import { MESH_KIND } from './mesh-snapshot.ts';
import { workloadKey } from './workload.ts';

export interface MeshSources {
  registry: EndpointRegistry;
  callers: CallerPods;
  intake: PolicyIntake;
  store: PolicyStore;
  mirror: MirrorResults;
  traffic: CallTraffic;
  discovery: DiscoveryServer;
  source: PodSource;
  mode: 'local' | 'kubernetes';
  /** Open event streams (the health block shows them). */
  clients?: () => number;
  /** Kubernetes mode: this replica and the leader (kube/kube-mode.ts). */
  replica?: () => ReplicaView;
  /** Kubernetes mode: BasisServices not Synced (undefined before the reconciler runs). */
  basisServices?: () => BasisServicesHealth | undefined;
  /** Mesh identity on: identity/identity-health.ts. */
  identity?: () => IdentityHealthView;
}

const SHOWN_REJECTED = 100;

const optional = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } => (v === undefined ? {} : ({ [k]: v } as { [P in K]: V }));
const SHOWN_NOT_CONNECTED = 50;

function compareVersions(a: string, b: string): number {
  const va = semver.valid(a);
  const vb = semver.valid(b);
  if (va !== null && vb !== null) return semver.compare(va, vb);
  if (va !== null) return -1;
  if (vb !== null) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function notServedReason(range: string, versions: readonly VersionColumn[]): string {
  const present = versions.filter((v) => v.ready + v.notReady > 0);
  if (present.length === 0) return 'no pod provides this API';
  const inRange = present.filter((v) => satisfies(v.version, range));
  if (inRange.length === 0) return `no provided version is in ${range} (provided: ${present.map((v) => v.version).join(', ')})`;
  return `${inRange.map((v) => `${v.version} (${v.notReady} not ready)`).join(', ')} in range, but no pod of ${inRange.length === 1 ? 'it' : 'them'} is ready`;
}

/**
 * Events:
 *  'dirty' (what: string, urgent: boolean)   an API's view (its name), 'policies' or 'health' may have
 *                                           changed; urgent: pods or policies did, not only traffic
 */
export class MeshView extends EventEmitter {
  readonly #s: MeshSources;
  readonly #dirty = new Set<string>();
  readonly #views = new Map<string, { view: ApiView; json: string; json0: string }>();
  #policies: PolicyView[] | undefined;
  /** The bucket each view was built in, and the one tick() last saw. */
  readonly #builtIn = new Map<string, number>();
  #tickBucket = 0;

  constructor(sources: MeshSources) {
    super();
    this.#s = sources;
  }

  /** Listens to every source; call stop() to let go. */
  start(): void {
    for (const [source, handler] of this.#listeners()) source.on('change', handler);
  }

  stop(): void {
    for (const [source, handler] of this.#listeners()) source.off('change', handler);
  }

  #listeners(): [EventEmitter, Parameters<EventEmitter['on']>[1]][] {
    const s = this.#s;
    return [
      [s.registry, this.#onApiChange],
      [s.store, this.#onApiChange],
      [s.callers, this.#onApis],
      [s.traffic, this.#onApi],
      [s.mirror, this.#onMirror],
    ];
  }

  /** Traffic: only an API's first figures mark it at once; the rest waits for the next bucket (tick). */
  readonly #onApi = (api: string): void => {
    if ((this.#views.get(api)?.view.traffic.series.length ?? 0) === 0) this.#mark(api, false);
  };
  readonly #onApis = (apis: string[]): void => apis.forEach((a) => this.#mark(a, true));
  /** A provider or a policy changed for an API: that API at once, and the policies (a policy's NoSuchAPI comes and goes with providers). */
  readonly #onApiChange = (c: { api: string }): void => {
    this.#mark(c.api, true);
    this.#policiesDirty(true);
  };
  /** Mirror sums move with every report, like traffic: they wait for the stream's next flush. */
  readonly #onMirror = (): void => this.#policiesDirty(false);

  #policiesDirty(urgent: boolean): void {
    this.#policies = undefined;
    this.emit('dirty', 'policies', urgent);
  }

  #mark(api: string, urgent: boolean): void {
    this.#dirty.add(api);
    this.emit('dirty', api, urgent);
  }

  /** At a new bucket, marks every API with traffic (their series move with the clock) and drops what aged out. */
  tick(): void {
    const b = bucketNow();
    if (b === this.#tickBucket) return;
    this.#tickBucket = b;
    for (const api of this.#s.traffic.apis()) this.#mark(api, false);
    for (const api of this.#s.traffic.gc()) this.#mark(api, false);
  }

  /** Every API anyone provides, requires or called, sorted. */
  apiNames(): string[] {
    const s = this.#s;
    return [...new Set([...s.registry.apis(), ...s.callers.apis(), ...s.traffic.apis()])].sort();
  }

  /** The view of one API (undefined: nobody provides, requires or called it). */
  api(api: string): ApiView | undefined {
    return this.#entry(api)?.view;
  }

  /** The same view as JSON, serialised once per revision (every page and the snapshot share it). */
  apiJson(api: string): string | undefined {
    return this.#entry(api)?.json;
  }

  #entry(api: string): { view: ApiView; json: string } | undefined {
    const b = bucketNow();
    // A view with traffic built in an older bucket is stale even when nothing marked it (no page open: no tick).
    const fresh = !this.#dirty.has(api) && this.#views.has(api) && (this.#builtIn.get(api) === b || !this.#s.traffic.has(api));
    if (fresh) return this.#views.get(api);
    this.#dirty.delete(api);
    this.#builtIn.set(api, b);
    const before = this.#views.get(api);
    const next = this.#build(api);
    if (next === undefined) {
      this.#views.delete(api);
      this.#builtIn.delete(api);
      return undefined;
    }
    // Compared as JSON with revision 0; the revision moves only when something else did.
    const json0 = JSON.stringify(next);
    if (before !== undefined && before.json0 === json0) return before;
    next.revision = (before?.view.revision ?? 0) + 1;
    const entry = { view: next, json: json0.replace('"revision":0,', `"revision":${next.revision},`), json0 };
    this.#views.set(api, entry);
    return entry;
  }

  policies(): PolicyView[] {
    this.#policies ??= this.#buildPolicies();
    return this.#policies;
  }

  health(): HealthView {
    const s = this.#s;
    const rejected = s.registry.rejected();
    const streams = s.discovery.subscriberNames();
    const notConnected: { namespace: string; pod: string }[] = [];
    let notConnectedTotal = 0;
    for (const p of s.callers.readyPods()) {
      if (streams.has(`${p.namespace}/${p.pod}`) || streams.has(p.pod)) continue;
      notConnectedTotal++;
      if (notConnected.length < SHOWN_NOT_CONNECTED) notConnected.push(p);
    }
    return {
      podSource: { kind: s.source.kind, synced: s.source.synced() },
      discovery: s.discovery.stats(),
      sidecarsReporting: s.traffic.reporters(),
      callersNotConnected: notConnected,
      callersNotConnectedTotal: notConnectedTotal,
      rejectedPods: rejected.slice(0, SHOWN_REJECTED).map((r) => ({ namespace: r.namespace, name: r.name, problems: r.problems.map((p) => ({ annotation: p.annotation, value: p.value, expected: p.expected })) })),
      rejectedTotal: rejected.length,
      trafficDropped: s.traffic.dropped,
      consoleClients: s.clients?.() ?? 0,
      ...(s.replica !== undefined ? { replica: s.replica() } : {}),
      ...optional('basisServices', s.basisServices?.()),
      ...optional('identity', s.identity?.()),
    };
  }

  /** The whole mesh as JSON (a MeshSnapshot), made of the views' cached JSON. */
  snapshotJson(): string {
    this.tick(); // with no page open nothing else ticks: traffic ages out here
    const apis: string[] = [];
    for (const name of this.apiNames()) {
      const j = this.apiJson(name);
      if (j !== undefined) apis.push(j);
    }
    const head: Omit<MeshSnapshot, 'apis' | 'policies' | 'health'> = { kind: MESH_KIND, generatedAt: Date.now(), mode: this.#s.mode };
    return `${JSON.stringify(head).slice(0, -1)},"apis":[${apis.join(',')}],"policies":${JSON.stringify(this.policies())},"health":${JSON.stringify(this.health())}}`;
  }

  /** With revision 0: #entry sets it (key order matters: api, apiId, revision come first). */
  #build(api: string): ApiView | undefined {
    const s = this.#s;
    const endpoints = s.registry.list(api);
    const groups = s.callers.groups(api);
    const traffic = s.traffic.forApi(api);
    if (endpoints.length === 0 && groups.length === 0 && traffic === undefined) return undefined;

    const columns = new Map<string, VersionColumn>();
    const column = (version: string): VersionColumn => {
      let c = columns.get(version);
      if (c === undefined) columns.set(version, (c = { version, ready: 0, notReady: 0 }));
      return c;
    };
    for (const e of endpoints) {
      const c = column(e.version);
      if (e.ready) c.ready++;
      else c.notReady++;
    }
    for (const x of traffic?.series ?? []) if (x.rates.some((r) => r > 0)) column(x.version);
    for (const x of traffic?.callers ?? []) column(x.version);
    const versions = [...columns.values()].sort((a, b) => compareVersions(a.version, b.version));

    // calls per caller (workload, range) and version
    const callsOf = new Map<string, Map<string, { lastMinute: number; lastCallAt: number }>>();
    const trafficOnly = new Map<string, { workload: WorkloadRef; range: string }>();
    for (const x of traffic?.callers ?? []) {
      const k = JSON.stringify([workloadKey(x.workload), x.range]);
      let m = callsOf.get(k);
      if (m === undefined) callsOf.set(k, (m = new Map()));
      m.set(x.version, { lastMinute: x.lastMinute, lastCallAt: x.lastCallAt });
      trafficOnly.set(k, { workload: x.workload, range: x.range });
    }
    const providerNamespaces = [...new Set(endpoints.map((e) => e.namespace))];
    const row = (workload: WorkloadRef, range: string, pods: string[], podsReady: number, declared: boolean): CallerRow => {
      const k = JSON.stringify([workloadKey(workload), range]);
      const calls = callsOf.get(k);
      let total = 0;
      for (const c of calls?.values() ?? []) total += c.lastMinute;
      const cells: CallerCell[] = versions.map((v) => {
        const compatible = v.version !== 'other' && satisfies(v.version, range);
        const c = calls?.get(v.version);
        return { version: v.version, compatible, ...(c === undefined ? {} : { calls: { lastMinute: c.lastMinute, lastCallAt: c.lastCallAt } }) };
      });
      const served = versions.some((v) => v.ready > 0 && v.version !== 'other' && satisfies(v.version, range));
      const policy = s.store.forCaller(api, workload.namespace, providerNamespaces);
      return {
        workload,
        range,
        pods,
        podsReady,
        declared,
        served,
        ...(served ? {} : { reason: notServedReason(range, versions) }),
        policy: policy === undefined ? null : `${policy.namespace}/${policy.name}`,
        lastMinute: Math.round(total * 100) / 100,
        cells,
      };
    };
    const callers: CallerRow[] = groups.map((g) => {
      trafficOnly.delete(JSON.stringify([workloadKey(g.workload), g.range]));
      return row(g.workload, g.range, g.pods, g.ready, true);
    });
    for (const t of trafficOnly.values()) callers.push(row(t.workload, t.range, [], 0, false));

    const policies = s.intake
      .objects()
      .filter(({ obj }) => s.store.get(obj.namespace, obj.name)?.policy.api === api)
      .map(({ obj }) => `${obj.namespace}/${obj.name}`);
    return {
      api,
      apiId: apiIdHex(api),
      revision: 0,
      versions,
      callers,
      traffic: { ...s.traffic.axis(), series: traffic?.series ?? [] },
      policies,
    };
  }

  #buildPolicies(): PolicyView[] {
    const s = this.#s;
    return s.intake.objects().map(({ obj, condition }) => {
      const stored = s.store.get(obj.namespace, obj.name);
      const m = s.mirror.forPolicy(`${obj.namespace}/${obj.name}`);
      const p = stored?.policy;
      return {
        namespace: obj.namespace,
        name: obj.name,
        generation: obj.generation,
        api: p?.api ?? null,
        accepted: { status: condition.status, reason: condition.reason, message: condition.message },
        inForce:
          stored === undefined || p === undefined
            ? null
            : {
                generation: stored.generation,
                timeoutMs: p.timeoutMs ?? null,
                retryAttempts: p.retry?.attempts ?? 0,
                routes: p.routes.map((r) => ({
                  methods: r.methods === undefined ? null : [...r.methods],
                  split: r.split === undefined ? null : r.split.map((g) => ({ versions: g.versions, weight: g.weight })),
                  mirror: r.mirror === undefined ? null : { versions: r.mirror.versions, percent: r.mirror.percent },
                })),
                allow: p.allow === undefined ? null : p.allow.map((a) => a.id),
              },
        mirror: m === undefined ? null : { compared: m.compared, matched: m.matched, mismatched: m.mismatched, shadowFailed: m.shadowFailed, dropped: m.dropped, samples: m.samples },
      };
    });
  }
}

function bucketNow(): number {
  return Math.floor(Date.now() / TRAFFIC_LIMITS.bucketMs);
}

