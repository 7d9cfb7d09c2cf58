// The sidecar's view of the controller: one server stream per watched API, kept up
// forever. The request path only ever reads snapshot(api), which never waits: on
// loss the last snapshot stays in place while the stream reconnects with a
// jittered, capped backoff.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Backoff } from '../proto/backoff.ts';
import {
  DISCOVERY_KEEPALIVE,
  discoveryClientConstructor,
  endpointFromWire,
  endpointKey,
  type Endpoint,
  type GeneratedDiscoveryClient,
  type Update__Output,
} from '../proto/discovery.ts';
import type { SidecarReport } from '../proto/generated/qbasis/discovery/v1/SidecarReport.ts';
import { policyFromWire, type AppliedPolicy } from '../proto/policy.ts';

export type { Endpoint };

export interface ApiSnapshot {
  api: string;
  /** The controller's version of this API's endpoint set (see proto/discovery.proto). */
  version: number;
  /** Sorted by namespace/pod. A fresh array per snapshot: safe to hold on to. */
  endpoints: Endpoint[];
  /** The BasisPolicy that applies to this sidecar's calls to the API, if any. */
  policy: AppliedPolicy | undefined;
}

export type DiscoveryState = 'connecting' | 'connected' | 'disconnected';

export interface DiscoveryClientOptions {
  /** host:port of the controller's discovery server. */
  target: string;
  /** Only endpoints in this namespace; empty or absent = all namespaces. */
  namespace?: string;
  logger: Logger;
  /** Codec versions this sidecar speaks (sent to the controller for its logs). Default [1]. */
  codecs?: number[];
  /** This pod's name and namespace (the controller logs who subscribes). */
  pod?: string;
  podNamespace?: string;
  /** Reconnect backoff: first delay and cap, in ms (defaults 250 and 5000). */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** HTTP/2 keepalive ping interval and ack timeout, in ms (defaults 10000 and 5000): how fast a dead controller is noticed. */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** TLS to the controller (mesh identity on: its port 15012); default plain text. */
  channel?: { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions };
}

interface Watch {
  api: string;
  /** The namespace whose policy applies to this subscriber (default: the client's podNamespace). */
  subscriberNamespace: string;
  call: grpc.ClientReadableStream<Update__Output> | undefined;
  /** Endpoints of the current stream, by namespace/pod. */
  endpoints: Map<string, Endpoint>;
  /** True once the current stream delivered its snapshot. */
  live: boolean;
  /** Has this watch ever been live (distinguishes connecting from disconnected). */
  everLive: boolean;
  version: number;
  policy: AppliedPolicy | undefined;
  /** Reconnects since the stream last delivered an update. */
  backoff: Backoff;
  timer: NodeJS.Timeout | undefined;
  snapshot: ApiSnapshot | undefined;
}

export class DiscoveryClient extends EventEmitter {
  readonly #opts: DiscoveryClientOptions;
  readonly #log: Logger;
  readonly #client: GeneratedDiscoveryClient;
  readonly #watches = new Map<string, Watch>();
  #state: DiscoveryState = 'connecting';
  #closed = false;
  /** Channel connectivity, which decides state() only while no API is watched. */
  #channelState: DiscoveryState = 'connecting';

  constructor(opts: DiscoveryClientOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'discovery-client', target: opts.target });
    const Ctor = discoveryClientConstructor();
    this.#client = new Ctor(opts.target, opts.channel?.credentials ?? grpc.credentials.createInsecure(), {
      ...(opts.channel?.options ?? {}),
      ...DISCOVERY_KEEPALIVE.client,
      ...(opts.keepaliveTimeMs !== undefined ? { 'grpc.keepalive_time_ms': opts.keepaliveTimeMs } : {}),
      ...(opts.keepaliveTimeoutMs !== undefined ? { 'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs } : {}),
      'grpc.initial_reconnect_backoff_ms': opts.backoffInitialMs ?? 250,
      'grpc.max_reconnect_backoff_ms': opts.backoffMaxMs ?? 5000,
    });
    this.#followChannel();
  }

  /** A sidecar that calls nothing watches nothing; its state is then the channel's. */
  #followChannel(): void {
    const channel = this.#client.getChannel();
    const step = (): void => {
      if (this.#closed) return;
      const cs = channel.getConnectivityState(true);
      if (cs === grpc.connectivityState.READY) this.#channelState = 'connected';
      else if (cs === grpc.connectivityState.TRANSIENT_FAILURE || this.#channelState === 'connected') this.#channelState = 'disconnected';
      // IDLE/CONNECTING before the first success stays 'connecting'; after a loss stays 'disconnected'
      this.#updateState();
      if (cs === grpc.connectivityState.SHUTDOWN) return;
      channel.watchConnectivityState(cs, Infinity, () => step());
    };
    step();
  }

  /**
   * Start (once) keeping a stream for `api`. Idempotent. `subscriberNamespace`: whose policy applies
   * (an inbound sidecar asks for its provided APIs' policy as the namespace of its own identity).
   */
  watch(api: string, subscriberNamespace?: string): void {
    if (this.#closed || this.#watches.has(api)) return;
    const backoff = new Backoff({ initialMs: this.#opts.backoffInitialMs ?? 250, maxMs: this.#opts.backoffMaxMs ?? 5000, jitter: 0.5 });
    const w: Watch = { api, subscriberNamespace: subscriberNamespace ?? this.#opts.podNamespace ?? '', call: undefined, endpoints: new Map(), live: false, everLive: false, version: 0, policy: undefined, backoff, timer: undefined, snapshot: undefined };
    this.#watches.set(api, w);
    this.#open(w);
    this.#updateState();
  }

  /** The latest snapshot for `api`, or undefined if none arrived yet. Never blocks. */
  snapshot(api: string): ApiSnapshot | undefined {
    return this.#watches.get(api)?.snapshot;
  }

  /** APIs being watched. */
  apis(): string[] {
    return [...this.#watches.keys()];
  }

  /**
   * connected: every watched stream is up and delivered its snapshot (or, watching
   * nothing, the channel is ready); disconnected: some stream was lost and is
   * reconnecting; connecting: not yet connected for the first time.
   */
  state(): DiscoveryState {
    return this.#state;
  }

  /** Resolves with the first snapshot of `api` (watching it if needed); rejects after timeoutMs. */
  waitForSnapshot(api: string, timeoutMs: number): Promise<ApiSnapshot> {
    this.watch(api);
    const have = this.snapshot(api);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const onSnap = (s: ApiSnapshot): void => {
        if (s.api !== api) return;
        clearTimeout(timer);
        this.off('snapshot', onSnap);
        resolve(s);
      };
      const timer = setTimeout(() => {
        this.off('snapshot', onSnap);
        reject(new Error(`no discovery snapshot for ${api} from ${this.#opts.target} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('snapshot', onSnap);
    });
  }

  /** Delivers a mirror report (unary, 5 s deadline) on the discovery connection. */
  report(r: SidecarReport): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error('discovery client closed'));
      this.#client.report(r, { deadline: Date.now() + 5000 }, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watches.values()) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.call?.removeAllListeners();
      w.call?.on('error', () => {});
      w.call?.cancel();
      w.call = undefined;
    }
    this.#client.close();
    this.#setState('disconnected');
  }

  #open(w: Watch): void {
    if (this.#closed) return;
    w.live = false;
    w.endpoints = new Map();
    const call = this.#client.watch({
      api: w.api,
      namespace: this.#opts.namespace ?? '',
      subscriberPod: this.#opts.pod ?? '',
      subscriberNamespace: w.subscriberNamespace,
      codecs: this.#opts.codecs ?? [1],
    });
    w.call = call;
    call.on('data', (u: Update__Output) => {
      try {
        this.#apply(w, u);
      } catch (err) {
        this.#log.error({ api: w.api, err: (err as Error).message }, 'discovery stream sent an update out of order; reconnecting');
        this.#lost(w, call, (err as Error).message);
      }
    });
    call.on('error', (err: grpc.ServiceError) => this.#lost(w, call, `${grpc.status[err.code] ?? err.code}: ${err.details}`));
    call.on('end', () => this.#lost(w, call, 'stream ended by the controller'));
  }

  #apply(w: Watch, u: Update__Output): void {
    if (u.kind === 'snapshot') {
      w.endpoints = new Map((u.snapshot?.endpoints ?? []).map((e) => [endpointKey(e), endpointFromWire(e)]));
    } else {
      if (!w.live) throw new Error(`first message for ${w.api} was '${u.kind ?? 'empty'}', expected a snapshot`);
      if (u.version <= w.version) throw new Error(`update version ${u.version} for ${w.api} is not above ${w.version}`);
      if (u.kind === 'noEndpoints') {
        w.endpoints.clear();
      } else if (u.kind === 'diff' && u.diff) {
        for (const r of u.diff.removed) w.endpoints.delete(endpointKey(r));
        for (const e of u.diff.added) w.endpoints.set(endpointKey(e), endpointFromWire(e));
        for (const e of u.diff.changed) w.endpoints.set(endpointKey(e), endpointFromWire(e));
      } else {
        throw new Error(`unknown update kind '${String(u.kind)}' for ${w.api}`);
      }
    }
    // Present in a stream's first message and whenever it changed; absent: unchanged.
    if (u.policy !== null && u.policy !== undefined) w.policy = policyFromWire(w.api, u.policy);
    else if (u.kind === 'snapshot') w.policy = undefined;
    w.version = u.version;
    const firstOnStream = !w.live;
    w.live = true;
    w.everLive = true;
    w.backoff.reset();
    const endpoints = [...w.endpoints.values()].sort((a, b) => (endpointKey(a) < endpointKey(b) ? -1 : 1));
    w.snapshot = { api: w.api, version: u.version, endpoints, policy: w.policy };
    if (firstOnStream) this.#log.info({ api: w.api, version: u.version, endpoints: endpoints.length }, 'discovery stream up');
    else this.#log.debug({ api: w.api, version: u.version, kind: u.kind, endpoints: endpoints.length }, 'discovery update');
    this.#updateState();
    this.emit('snapshot', w.snapshot);
  }

  #lost(w: Watch, call: grpc.ClientReadableStream<Update__Output>, why: string): void {
    if (this.#closed || w.call !== call) return; // stale stream or already handled
    w.call = undefined;
    call.removeAllListeners();
    call.on('error', () => {});
    call.cancel();
    w.live = false;
    const delay = Math.round(w.backoff.next()); // jitter 0.5 ("equal jitter"): never 0, never above the cap
    const attempt = w.backoff.attempts;
    const lvl = attempt === 1 ? 'warn' : 'debug';
    this.#log[lvl]({ api: w.api, why, retryInMs: delay, attempt, keptVersion: w.snapshot?.version ?? null }, 'discovery stream lost; keeping last snapshot');
    w.timer = setTimeout(() => {
      w.timer = undefined;
      this.#open(w);
    }, delay);
    this.#updateState();
  }

  #updateState(): void {
    if (this.#closed) return;
    let s: DiscoveryState;
    const ws = [...this.#watches.values()];
    if (ws.length === 0) s = this.#channelState;
    else if (ws.every((w) => w.live)) s = 'connected';
    else if (ws.some((w) => !w.live && (w.everLive || w.backoff.attempts > 0))) s = 'disconnected';
    else s = 'connecting';
    this.#setState(s);
  }

  #setState(s: DiscoveryState): void {
    if (s === this.#state) return;
    this.#state = s;
    this.emit('state', s);
  }
}
