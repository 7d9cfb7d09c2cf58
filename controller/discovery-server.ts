// Serves qbasis.discovery.v1.Discovery/Watch from the registry. Each stream holds
// what it last sent and a dirty flag; at most one message is in flight per stream,
// and when it is written (HTTP/2 flow control permitting) the next message is a
// diff from what the subscriber has to the registry's CURRENT state. A slow
// subscriber therefore gets the latest state, never a backlog.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  DISCOVERY_KEEPALIVE,
  discoveryServiceDefinition,
  endpointChanged,
  endpointKey,
  endpointToWire,
  type Endpoint,
  type Update,
  type WatchRequest__Output,
} from '../proto/discovery.ts';
import { isApiName } from '../proto/annotations.ts';
import { policyToWire, samePolicy, type AppliedPolicy } from '../proto/policy.ts';
import type { ApiChange, EndpointRegistry } from './endpoint-registry.ts';
import type { PolicyStore } from './policy-store.ts';
import type { MirrorResults } from './mirror-results.ts';
import type { SidecarReport__Output } from '../proto/generated/qbasis/discovery/v1/SidecarReport.ts';
import type { ReportAck } from '../proto/generated/qbasis/discovery/v1/ReportAck.ts';

export interface DiscoveryServerOptions {
  registry: EndpointRegistry;
  /** BasisPolicies in force; absent: no policy ever applies. */
  policies?: PolicyStore;
  /** Where sidecars' mirror reports go (Discovery/Report); absent: reports are refused. */
  mirrorResults?: MirrorResults;
  /** Called with each report taken (Kubernetes mode passes it on to the leader). */
  onReport?: (r: SidecarReport__Output) => void;
  /** Where the reports' call counts go too (the console's traffic); absent: they are ignored. */
  callTraffic?: { report(r: SidecarReport__Output): string | undefined };
  logger: Logger;
  host: string;
  port: number;
  /** After an update (not the first snapshot) is written: ms from the registry change that made the stream dirty. */
  onPushed?: (api: string, latencyMs: number) => void;
}

interface Subscriber {
  id: number;
  api: string;
  namespace: string;
  /** The subscriber's own namespace: its namespace's policy applies first. */
  callerNamespace: string;
  who: string;
  call: grpc.ServerWritableStream<WatchRequest__Output, Update>;
  /** What the subscriber holds (undefined until the snapshot is written). */
  sent: Map<string, Endpoint> | undefined;
  sentVersion: number;
  /** The policy the subscriber holds (undefined: none, or not sent yet). */
  sentPolicy: AppliedPolicy | undefined;
  inFlight: boolean;
  dirty: boolean;
  /** performance.now() when the stream last went from clean to dirty (0: snapshot pending or clean). */
  dirtyAt: number;
  closed: boolean;
  messages: number;
}

export interface DiscoveryServerStats {
  streams: number;
  messagesSent: number;
  /** Registry changes folded into a later message because the stream was still busy. */
  coalesced: number;
}

export class DiscoveryServer {
  readonly #opts: DiscoveryServerOptions;
  readonly #log: Logger;
  readonly #server: grpc.Server;
  readonly #subs = new Map<string, Set<Subscriber>>();
  #nextId = 1;
  #stats: DiscoveryServerStats = { streams: 0, messagesSent: 0, coalesced: 0 };
  #boundPort = 0;
  readonly #onChange = (c: ApiChange): void => {
    for (const s of this.#subs.get(c.api) ?? []) this.#markDirty(s);
  };

  constructor(opts: DiscoveryServerOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'discovery-server' });
    this.#server = new grpc.Server({ ...DISCOVERY_KEEPALIVE.server });
    this.addTo(this.#server);
  }

  /** Serves Discovery on another server too (the TLS port with identity on); the streams are one set. */
  addTo(server: grpc.Server): void {
    server.addService(discoveryServiceDefinition(), {
      Watch: (call: grpc.ServerWritableStream<WatchRequest__Output, Update>) => this.#watch(call),
      Report: (call: grpc.ServerUnaryCall<SidecarReport__Output, ReportAck>, cb: grpc.sendUnaryData<ReportAck>) => this.#report(call, cb),
    });
  }

  /** Binds and serves; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    const hostPort = this.#opts.host.includes(':') ? `[${this.#opts.host}]:${this.#opts.port}` : `${this.#opts.host}:${this.#opts.port}`;
    this.#boundPort = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(hostPort, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
    this.#opts.registry.on('change', this.#onChange);
    this.#opts.policies?.on('change', this.#onChange);
    this.#log.info({ address: hostPort, port: this.#boundPort }, 'discovery server listening');
    return this.#boundPort;
  }

  port(): number {
    return this.#boundPort;
  }

  stats(): DiscoveryServerStats {
    return { ...this.#stats, streams: [...this.#subs.values()].reduce((n, s) => n + s.size, 0) };
  }

  /** Who holds a stream now: "namespace/pod" as each subscriber named itself (else its peer address). */
  subscriberNames(): Set<string> {
    const out = new Set<string>();
    for (const set of this.#subs.values()) for (const s of set) out.add(s.who);
    return out;
  }

  /** Ends every stream (subscribers reconnect elsewhere) and stops listening. */
  async stop(graceMs = 2000): Promise<void> {
    this.#opts.registry.off('change', this.#onChange);
    this.#opts.policies?.off('change', this.#onChange);
    this.endStreams();
    await shutdownServer(this.#server, graceMs);
  }

  /** Ends every stream cleanly (subscribers reconnect elsewhere): at shutdown, before the servers stop. */
  endStreams(): void {
    for (const set of this.#subs.values()) for (const s of set) s.call.end();
  }

  #watch(call: grpc.ServerWritableStream<WatchRequest__Output, Update>): void {
    const req = call.request;
    const who = [req.subscriberNamespace, req.subscriberPod].filter((s) => s !== '').join('/') || call.getPeer();
    if (!isApiName(req.api)) {
      call.emit('error', {
        code: grpc.status.INVALID_ARGUMENT,
        details: `QB_BAD_REQUEST: api '${req.api}' is not a fully-qualified gRPC service name; expected e.g. shop.orders.v1.OrderService`,
      });
      return;
    }
    const s: Subscriber = {
      id: this.#nextId++,
      api: req.api,
      namespace: req.namespace,
      callerNamespace: req.subscriberNamespace,
      who,
      call,
      sent: undefined,
      sentVersion: 0,
      sentPolicy: undefined,
      inFlight: false,
      dirty: true,
      dirtyAt: 0,
      closed: false,
      messages: 0,
    };
    let set = this.#subs.get(s.api);
    if (set === undefined) {
      set = new Set();
      this.#subs.set(s.api, set);
    }
    set.add(s);
    const log = this.#log.child({ stream: s.id, api: s.api, subscriber: who, namespace: s.namespace || '*' });
    log.info({ codecs: req.codecs }, 'subscriber connected');
    const done = (why: string): void => {
      if (s.closed) return;
      s.closed = true;
      this.#subs.get(s.api)?.delete(s);
      if (this.#subs.get(s.api)?.size === 0) this.#subs.delete(s.api);
      log.info({ why, messages: s.messages }, 'subscriber gone');
    };
    call.on('cancelled', () => done('cancelled'));
    call.on('close', () => done('closed'));
    call.on('error', (err: Error) => done(`error: ${err.message}`));
    call.on('finish', () => done('finished'));
    this.#flush(s);
  }

  /** Precedence needs the namespaces of every provider, not only those the subscriber sees. */
  #policyFor(s: Subscriber): AppliedPolicy | undefined {
    const store = this.#opts.policies;
    if (store === undefined) return undefined;
    const providers = [...new Set(this.#opts.registry.list(s.api).map((e) => e.namespace))];
    const p = store.forCaller(s.api, s.callerNamespace, providers);
    return p === undefined ? undefined : { namespace: p.namespace, name: p.name, generation: p.generation, policy: p.policy };
  }

  #report(call: grpc.ServerUnaryCall<SidecarReport__Output, ReportAck>, cb: grpc.sendUnaryData<ReportAck>): void {
    const results = this.#opts.mirrorResults;
    const refused = results === undefined ? 'this controller takes no mirror reports' : (this.#opts.callTraffic?.report(call.request) ?? results.report(call.request));
    if (refused === undefined) {
      this.#opts.onReport?.(call.request);
      return cb(null, {});
    }
    this.#log.warn({ code: 'QB_BAD_REQUEST', peer: call.getPeer() }, `sidecar report refused: ${refused}`);
    cb({ code: grpc.status.INVALID_ARGUMENT, details: `QB_BAD_REQUEST: sidecar report refused: ${refused}` });
  }

  #markDirty(s: Subscriber): void {
    if (s.closed) return;
    if (!s.dirty && s.sent !== undefined) s.dirtyAt = performance.now();
    if (s.inFlight) {
      if (s.dirty) this.#stats.coalesced++;
      s.dirty = true;
      return;
    }
    s.dirty = true;
    // At the end of this turn: the changes one event makes (a file's pods and its policies, say)
    // reach the subscriber in one message, never half of them.
    queueMicrotask(() => this.#flush(s));
  }

  #flush(s: Subscriber): void {
    if (s.closed || s.inFlight || !s.dirty) return;
    s.dirty = false;
    const dirtyAt = s.dirtyAt;
    s.dirtyAt = 0;
    const reg = this.#opts.registry;
    // Both counters only grow and each change bumps one, so their sum orders the stream's messages.
    const version = reg.version(s.api) + (this.#opts.policies?.version(s.api) ?? 0);
    const current = new Map(reg.list(s.api, s.namespace).map((e) => [endpointKey(e), e]));
    const policy = this.#policyFor(s);
    const policyChanged = s.sent === undefined || !samePolicy(s.sentPolicy, policy);
    let msg: Update;
    if (s.sent === undefined) {
      msg = { api: s.api, version, snapshot: { endpoints: [...current.values()].map(endpointToWire) } };
    } else if (current.size === 0) {
      if (s.sent.size === 0 && !policyChanged) return; // nothing the subscriber can see changed
      msg = { api: s.api, version, noEndpoints: { existsElsewhere: reg.list(s.api).length > 0 } };
    } else {
      const added: Endpoint[] = [];
      const changed: Endpoint[] = [];
      const removed: { pod: string; namespace: string }[] = [];
      for (const [k, e] of current) {
        const old = s.sent.get(k);
        if (old === undefined) added.push(e);
        else if (endpointChanged(old, e)) changed.push(e);
      }
      for (const [k, e] of s.sent) if (!current.has(k)) removed.push({ pod: e.pod, namespace: e.namespace });
      if (added.length + changed.length + removed.length === 0 && !policyChanged) return;
      msg = { api: s.api, version, diff: { added: added.map(endpointToWire), changed: changed.map(endpointToWire), removed } };
    }
    if (policyChanged) msg.policy = policyToWire(policy);
    // A stream's versions must strictly increase; the sum above already does, except a
    // snapshot of a never-seen API (version 0), which is the first message anyway.
    s.sent = current;
    s.sentVersion = version;
    s.sentPolicy = policy;
    s.inFlight = true;
    s.messages++;
    this.#stats.messagesSent++;
    s.call.write(msg, () => {
      if (dirtyAt > 0) this.#opts.onPushed?.(s.api, performance.now() - dirtyAt);
      s.inFlight = false;
      this.#flush(s);
    });
  }
}

/** Stops a grpc-js server: open calls get `graceMs` to finish, then it is forced. */
export function shutdownServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
