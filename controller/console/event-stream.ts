// GET /api/v1/events: Server-Sent Events of the mesh's changes (mesh-snapshot.ts, MeshEvents).
//   - First a `snapshot` (the whole mesh), then `api` (one API's view replaced), `api-removed`,
//     `policies` and `health`, each only when it changed.
//   - Coalesced: changes mark names dirty; at most one flush per `intervalMs` (500 ms), and each dirty
//     view is serialised once per flush for every client. A change of pods or policies (not traffic) is
//     urgent: it has its own budget of one flush per `intervalMs`, so a rollout step shows at once
//     even while traffic keeps the stream flushing every 500 ms, and a storm of changes still coalesces.
//   - Bounded per client: a client whose socket holds more than `maxBufferedBytes` unsent gets nothing
//     more until it drains; what changed meanwhile stays marked (at most one entry per API), so on
//     'drain' it gets the latest state, never a backlog. One stuck for `stuckMs` is closed (its
//     EventSource reconnects and starts again from a snapshot). At most `maxClients` streams.
import type { ServerResponse } from 'node:http';
import type { MeshView } from './mesh-view.ts';

export interface EventStreamOptions {
  view: MeshView;
  maxClients?: number;
  intervalMs?: number;
  maxBufferedBytes?: number;
  stuckMs?: number;
  heartbeatMs?: number;
}

export const EVENT_STREAM_DEFAULTS = { maxClients: 32, intervalMs: 500, maxBufferedBytes: 1 << 20, stuckMs: 30_000, heartbeatMs: 15_000, tickMs: 1000 } as const;

const SNAPSHOT = '*';
const POLICIES = 'policies';
const HEALTH = 'health';

interface Client {
  res: ServerResponse;
  pending: Set<string>;
  blockedSince: number;
  /** API → revision of the view it last got (an unchanged view is not sent again). */
  sent: Map<string, number>;
  /** The policies and health events it last got, likewise. */
  sentText: Map<string, string>;
}

interface Built {
  text: string;
  /** For an API's view: its revision (-1: removed). */
  revision?: number;
}

export class EventStream {
  readonly #o: Required<EventStreamOptions>;
  readonly #clients = new Set<Client>();
  #seq = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushDue = 0;
  #urgentPending = false;
  #lastUrgentFlush = -Infinity;
  #lastFlush = 0;
  #tick: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #health = '';
  readonly #onDirty = (what: string, urgent = false): void => {
    for (const c of this.#clients) c.pending.add(what);
    this.#schedule(urgent);
  };

  constructor(o: EventStreamOptions) {
    this.#o = { ...EVENT_STREAM_DEFAULTS, ...o } as Required<EventStreamOptions>;
  }

  start(): void {
    this.#o.view.on('dirty', this.#onDirty);
    this.#tick = setInterval(() => {
      if (this.#clients.size === 0) return;
      this.#o.view.tick();
      const h = JSON.stringify(this.#o.view.health());
      if (h !== this.#health) this.#onDirty(HEALTH);
    }, EVENT_STREAM_DEFAULTS.tickMs);
    this.#heartbeat = setInterval(() => {
      for (const c of this.#clients) {
        if (c.blockedSince === 0) c.res.write(': keepalive\n\n');
        else if (performance.now() - c.blockedSince > this.#o.stuckMs) this.#drop(c);
      }
    }, this.#o.heartbeatMs);
  }

  stop(): void {
    this.#o.view.off('dirty', this.#onDirty);
    clearInterval(this.#tick);
    clearInterval(this.#heartbeat);
    clearTimeout(this.#flushTimer);
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Takes a request for the stream; false when the limit of streams is reached (the caller answers 503). */
  accept(res: ServerResponse, headers: Record<string, string>): boolean {
    if (this.#clients.size >= this.#o.maxClients) return false;
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    const c: Client = { res, pending: new Set([SNAPSHOT]), blockedSince: 0, sent: new Map(), sentText: new Map() };
    this.#clients.add(c);
    res.socket?.setNoDelay(true);
    res.on('drain', () => {
      c.blockedSince = 0;
      this.#write(c, new Map());
    });
    res.on('close', () => this.#clients.delete(c));
    this.#o.view.emit('dirty', HEALTH); // the client count moved
    this.#write(c, new Map());
    return true;
  }

  #schedule(urgent: boolean): void {
    const now = performance.now();
    if (urgent) this.#urgentPending = true;
    const due = Math.max(now, (urgent ? this.#lastUrgentFlush : this.#lastFlush) + this.#o.intervalMs);
    if (this.#flushTimer !== undefined) {
      if (this.#flushDue <= due) return;
      clearTimeout(this.#flushTimer);
    }
    this.#flushDue = due;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#lastFlush = performance.now();
      if (this.#urgentPending) this.#lastUrgentFlush = this.#lastFlush;
      this.#urgentPending = false;
      const shared = new Map<string, Built>();
      for (const c of this.#clients) this.#write(c, shared);
    }, due - now);
  }

  /** The event for one name, built once per flush (`shared`) for every client. */
  #event(name: string, shared: Map<string, Built>): Built {
    const hit = shared.get(name);
    if (hit !== undefined) return hit;
    const view = this.#o.view;
    let built: Built;
    if (name === SNAPSHOT) {
      built = { text: frame('snapshot', view.snapshotJson()) };
      this.#health = JSON.stringify(view.health());
    } else if (name === POLICIES) built = { text: frame('policies', JSON.stringify(view.policies())) };
    else if (name === HEALTH) {
      this.#health = JSON.stringify(view.health());
      built = { text: frame('health', this.#health) };
    } else {
      const v = view.api(name);
      built = v === undefined ? { text: frame('api-removed', JSON.stringify({ api: name })), revision: -1 } : { text: frame('api', view.apiJson(name)!), revision: v.revision };
    }
    shared.set(name, built);
    return built;
  }

  #drop(c: Client): void {
    this.#clients.delete(c);
    c.res.destroy();
  }

  #write(c: Client, shared: Map<string, Built>): void {
    if (c.pending.size === 0) return;
    if (c.blockedSince !== 0) {
      if (performance.now() - c.blockedSince > this.#o.stuckMs) this.#drop(c);
      return;
    }
    // A snapshot covers everything else that is pending.
    const view = this.#o.view;
    const names = c.pending.has(SNAPSHOT) ? [SNAPSHOT] : [...c.pending];
    c.pending.clear();
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const e = this.#event(name, shared);
      if (name === SNAPSHOT) {
        c.sent.clear();
        for (const a of view.apiNames()) c.sent.set(a, view.api(a)?.revision ?? -1);
        // the snapshot carried both
        c.sentText.set(POLICIES, this.#event(POLICIES, shared).text);
        c.sentText.set(HEALTH, this.#event(HEALTH, shared).text);
      } else if (e.revision === undefined) {
        if (c.sentText.get(name) === e.text) continue; // policies or health as it has them
        c.sentText.set(name, e.text);
      } else {
        if (c.sent.get(name) === e.revision || (e.revision === -1 && !c.sent.has(name))) continue; // it has this one
        if (e.revision === -1) c.sent.delete(name);
        else c.sent.set(name, e.revision);
      }
      const ok = c.res.write(`id: ${++this.#seq}\n${e.text}`);
      if (!ok && c.res.writableLength > this.#o.maxBufferedBytes) {
        for (const rest of names.slice(i + 1)) c.pending.add(rest);
        c.blockedSince = performance.now();
        return;
      }
    }
  }
}

function frame(event: string, json: string): string {
  // JSON.stringify never emits a raw newline, so the data is one `data:` line.
  return `event: ${event}\ndata: ${json}\n\n`;
}
