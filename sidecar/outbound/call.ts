// One outbound call: app (plain gRPC) → peer sidecar's inbound (basis frames), and the reply back.
// Resends, always, when the peer cannot have processed anything: a connect error, a stream the peer
// refused (REFUSED_STREAM / GOAWAY), a refusal on arrival (stale snapshot) or a provider whose app is
// down (QB_APP_UNAVAILABLE). A BasisPolicy adds its version split, its timeout, and retries on its
// codes and per-try timeout, within its budget. Every retry needs the request bytes sent so far
// still held (≤ 64 KiB) and no response started.
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { encodeFrame, FrameReader, formatText } from '../../proto/basis/index.ts';
import type { BasisHeader } from '../../proto/basis/index.ts';
import { isQbasisError, QbasisError, Status, type ErrorCode } from '../../proto/errors.ts';
import { Backoff } from '../../proto/backoff.ts';
import { decodeGrpcMessage, formatTimeout, GrpcMessageReader, grpcMessage } from '../grpc-wire.ts';
import type { Peer } from '../peer.ts';
import { isPeerCertificateError } from '../connection.ts';
import { pickP2C } from '../p2c.ts';
import { CallRelay, passHeaders, type CallContext } from '../relay.ts';
import type { AppliedPolicy, RetryPolicy } from '../../proto/policy.ts';
import type { RetryBudget } from '../retry-budget.ts';
import type { Mirrors } from './mirror.ts';
import { pickGroup, type RoutePlan } from './route-plan.ts';
import type { PathRoute } from './router.ts';
import type { VersionCalls } from './call-counts.ts';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;
const REPLAY_LIMIT = 64 * 1024;
const MAX_ATTEMPTS = 4;

export interface OutboundContext extends CallContext {
  inflight: { outbound: number };
  mirrors: Mirrors;
}

export class OutboundCall extends CallRelay {
  readonly #ctx: OutboundContext;
  readonly #route: PathRoute;
  readonly #deadlineAt: number | undefined;
  /** Request headers to pass on, minus grpc-timeout and qbasis-*; those are appended per attempt after #baseLen. */
  readonly #headers: string[];
  readonly #baseLen: number;
  readonly #tried: Peer[] = [];
  #backoff: Backoff | undefined;
  #peer: Peer | undefined;
  /** The calls counter of #peer's provided version, taken when the stream was opened. */
  #counter: VersionCalls | undefined;
  #sentAt = 0;
  /** Frames sent upstream, kept for a replay while nothing has come back; null once not replayable. */
  #sent: Buffer[] | null = [];
  #sentBytes = 0;
  #appEnded = false;
  #listening = false;
  #reqReader: GrpcMessageReader | undefined;
  #resReader: FrameReader | undefined;
  // The BasisPolicy as it was when the call started: a change applies to new calls only.
  readonly #policy: AppliedPolicy | undefined;
  readonly #plan: RoutePlan | undefined;
  readonly #retryPolicy: RetryPolicy | undefined;
  readonly #budget: RetryBudget | undefined;
  #policyRetries = 0;
  #policyBackoff: Backoff | undefined;
  /** Fires at the policy's timeout (a caller's own deadline is the caller's to keep). */
  #deadlineTimer: NodeJS.Timeout | undefined;
  #tryTimer: NodeJS.Timeout | undefined;
  /** This call is copied to the mirror group once it has finished (decided at its start). */
  #mirrored = false;
  #requestFrames = 0;
  #firstRequest: Buffer | undefined;
  #responseFrames = 0;
  #firstResponse: Buffer | undefined;
  #responseFrame = '';

  constructor(ctx: OutboundContext, app: ServerHttp2Stream, route: PathRoute, rawHeaders: string[], timeoutMs: number | undefined, endStream: boolean) {
    super(app);
    this.#ctx = ctx;
    this.#route = route;
    const b = route.balancer!;
    this.#policy = b.policy;
    this.#plan = b.routeFor(route.method);
    this.#retryPolicy = b.policy?.policy.retry;
    this.#budget = b.budget;
    this.#budget?.call(this.started);
    const mirror = this.#plan?.mirror;
    this.#mirrored = mirror !== undefined && mirror.peers.length > 0 && Math.random() * 100 < mirror.percent;
    const policyMs = b.policy?.policy.timeoutMs;
    const deadlineMs = policyMs !== undefined && (timeoutMs === undefined || policyMs < timeoutMs) ? policyMs : timeoutMs;
    this.#deadlineAt = deadlineMs === undefined ? undefined : this.started + deadlineMs;
    if (deadlineMs !== undefined && deadlineMs === policyMs) this.#deadlineTimer = setTimeout(this.#onPolicyDeadline, deadlineMs);
    this.#appEnded = endStream;
    this.#headers = passHeaders(rawHeaders, 'grpc-timeout');
    this.#baseLen = this.#headers.length;
    ctx.inflight.outbound++;
    // No 'data' listener yet: the app's request waits in the stream (flow-controlled) until a peer
    // stream exists to take it. On a connection that lately reset streams the first attempt waits a
    // turn, so a rapid reset never reaches a peer: the shared connection to it must not pay for it.
    this.actSoon(this.#first);
  }

  #first = (): void => {
    this.#attempt();
  };

  #attempt(): void {
    if (this.done) return;
    const now = performance.now();
    if (this.#deadlineAt !== undefined && now >= this.#deadlineAt) {
      this.#refuse(Status.DEADLINE_EXCEEDED, 'QB_UPSTREAM_FAILED', `deadline exceeded in the sidecar before ${this.#route.api} could be sent to an endpoint`);
      return;
    }
    const b = this.#route.balancer!;
    let peer: Peer | undefined;
    const groups = this.#plan?.groups;
    if (groups !== undefined) {
      const g = pickGroup(groups);
      if (g === undefined) {
        const p = this.#policy!;
        this.#refuse(Status.UNAVAILABLE, 'QB_NO_POLICY_ENDPOINT',
          `no ready endpoint for ${this.#route.api} in any version group of BasisPolicy ${p.namespace}/${p.name} route ${this.#plan!.index} (${groups.map((x) => x.versions).join('; ')}) within the required range ${b.range}; versions that exist: ${b.versionsPresent()}`);
        return;
      }
      this.#ctx.metrics.splitDecisions.labels(this.#route.api, String(this.#plan!.index), g.versions).inc();
      peer = pickP2C(g.peers, now, this.#tried) ?? pickP2C(g.peers, now, []);
    } else {
      peer = b.pick(now, this.#tried);
      if (peer === undefined && this.#tried.length > 0) peer = b.pick(now, []);
    }
    if (peer === undefined) {
      if (b.snapshot !== undefined && b.snapshot.endpoints.length === 0) {
        // Nobody provides it at all: "try again" (UNAVAILABLE) would only make clients spin.
        this.#refuse(Status.UNIMPLEMENTED, 'QB_NO_PROVIDER', `no pod in the mesh provides ${this.#route.api} at any version (required range ${b.range})`);
        return;
      }
      this.#refuse(Status.UNAVAILABLE, 'QB_NO_COMPATIBLE_ENDPOINT',
        `no compatible endpoint for ${this.#route.api} (required range ${b.range}); versions that exist: ${b.versionsPresent()}`);
      return;
    }
    this.#tried.push(peer);
    peer.acquire((err, session) => {
      if (this.done) return;
      if (err !== undefined || session === undefined) {
        this.#connectFailed(peer, err);
        return;
      }
      this.#open(peer, session);
    });
  }

  #connectFailed(peer: Peer, err: Error | undefined): void {
    if (isQbasisError(err, 'QB_IDENTITY_NOT_READY')) {
      // This sidecar's own state, not the peer's: no other endpoint would do better.
      this.#refuse(Status.UNAVAILABLE, 'QB_IDENTITY_NOT_READY', `${this.#route.api}: ${err.message}`);
      return;
    }
    if (peer.accrual.failure(performance.now())) this.#ejected(peer);
    const why = err?.message ?? 'no session';
    // The peer is not who discovery named (mutual TLS): nothing was sent, another endpoint may answer.
    if (isPeerCertificateError(err)) this.#retry(`${peer.key} failed the identity check: ${why}`, 'peer-identity');
    else this.#retry(`connect to ${peer.key} failed: ${why}`, 'connect');
  }

  #retry(why: string, reason: string): void {
    if (this.#tried.length >= MAX_ATTEMPTS + this.#policyRetries) {
      this.#refuse(Status.UNAVAILABLE, reason === 'peer-identity' ? 'QB_PEER_IDENTITY' : 'QB_UPSTREAM_FAILED', `${this.#route.api}: gave up after ${this.#tried.length} attempts; last: ${why}`);
      return;
    }
    this.#ctx.metrics.retries.labels(this.#route.api, reason).inc();
    let delay: number;
    if (reason === 'status' || reason === 'per-try-timeout') {
      const r = this.#retryPolicy!;
      this.#policyBackoff ??= new Backoff({ initialMs: r.backoff.baseMs, maxMs: r.backoff.maxMs, jitter: 0.5 });
      delay = this.#policyBackoff.next();
    } else {
      // A different endpoint first at once; repeated attempts back off.
      this.#backoff ??= new Backoff({ initialMs: 5, maxMs: 200, jitter: 0.5 });
      delay = this.#tried.length <= 1 ? 0 : this.#backoff.next();
    }
    if (delay === 0) queueMicrotask(() => this.#attempt());
    else setTimeout(() => this.#attempt(), delay);
  }

  /** The peer did not process the stream: drop it and send the call elsewhere (the app waits, paused). */
  #resend(why: string, reason: string): void {
    this.#clearTryTimer();
    this.up = undefined;
    this.down.pause();
    this.#retry(why, reason);
  }

  #open(peer: Peer, session: ClientHttp2Session): void {
    // session.request() encodes the list synchronously, so one array serves every attempt.
    const h = this.#headers;
    h.length = this.#baseLen;
    if (this.#deadlineAt !== undefined) {
      const left = this.#deadlineAt - performance.now();
      if (left <= 0) {
        this.#refuse(Status.DEADLINE_EXCEEDED, 'QB_UPSTREAM_FAILED', `deadline exceeded in the sidecar before ${this.#route.api} could be sent`);
        return;
      }
      h.push('grpc-timeout', formatTimeout(left));
    }
    h.push('qbasis-range', this.#route.balancer!.range);
    let up: ClientHttp2Stream;
    try {
      up = session.request(h, { endStream: false });
    } catch (err) {
      this.#retry(`stream to ${peer.key} not opened: ${(err as Error).message}`, 'refused');
      return;
    }
    this.#peer = peer;
    this.#counter = this.#route.balancer!.counterFor(peer);
    this.#sentAt = performance.now();
    const perTry = this.#retryPolicy?.perTryTimeoutMs;
    if (perTry !== undefined) this.#tryTimer = setTimeout(this.#onTryTimeout, perTry, up);
    peer.inflight++;
    up.once('close', () => peer.inflight--);
    this.attachUp(up, session);
    if (this.#sent !== null) for (const f of this.#sent) up.write(f);
    const app = this.down;
    if (!this.#listening) {
      this.#listening = true;
      app.on('data', this.#onAppData);
      app.on('end', this.#onAppEnd);
    } else {
      app.resume(); // paused while the refused stream was being replaced
    }
    // A request that ended within the first turn (END_STREAM on an empty DATA frame) may have emitted
    // 'end' before anyone listened.
    if (app.readableEnded) this.#appEnded = true;
    if (this.#appEnded && !up.writableEnded) up.end();
  }

  // ---- request: app → peer ----

  #onAppData = (chunk: Buffer): void => {
    if (this.done) return;
    try {
      (this.#reqReader ??= new GrpcMessageReader(this.#ctx.maxFrameBytes, this.#onAppMessage)).push(chunk);
    } catch (err) {
      const q = isQbasisError(err) ? err : new QbasisError('QB_INTERNAL', `request framing failed: ${(err as Error).message}`);
      this.refused(q.code);
      this.fail(q.grpcStatus, q.code, `request from the app: ${q.message}`);
    }
  };

  #onAppMessage = (compressed: boolean, payload: Buffer): void => {
    const h = this.#route.header;
    h.gzip = compressed;
    h.length = payload.length;
    const frame = encodeFrame(h, payload);
    if (this.#mirrored && this.#requestFrames++ === 0) this.#firstRequest = frame;
    if (this.#sent !== null) {
      this.#sentBytes += frame.length;
      if (this.#sentBytes > REPLAY_LIMIT) this.#sent = null;
      else this.#sent.push(frame);
    }
    const up = this.up;
    if (up === undefined) {
      // Between a refused stream and its retry: the frame waits in #sent, unless that overflowed.
      if (this.#sent === null) this.fail(Status.UNAVAILABLE, 'QB_UPSTREAM_FAILED', `${this.#route.api}: the peer refused the stream and the request is too large to resend`);
      return;
    }
    this.writeUp(up, frame);
  };

  #onAppEnd = (): void => {
    this.#appEnded = true;
    if (this.done) return;
    if (this.#reqReader !== undefined && !this.#reqReader.idle) {
      this.refused('QB_FRAME_TRUNCATED');
      this.fail(Status.INTERNAL, 'QB_FRAME_TRUNCATED', 'the app ended its request inside a gRPC message');
      return;
    }
    const up = this.up;
    if (up !== undefined && !up.writableEnded) up.end();
  };

  // ---- response: peer → app ----

  protected override onUpHeaders(headers: IncomingHttpHeaders, endStream: boolean): boolean {
    const peer = this.#peer!;
    const now = performance.now();
    this.#clearTryTimer();
    if (endStream && this.#sent !== null) {
      const refusal = headers['qbasis-error-code'];
      if (refusal === 'QB_VERSION_INCOMPATIBLE' || refusal === 'QB_API_NOT_PROVIDED') {
        // The peer's own arrival check refused the call before its app saw anything: our snapshot is
        // stale for that endpoint (e.g. its pod was replaced). Safe to send elsewhere; keep it out a while.
        peer.accrual.eject(now);
        this.#ejected(peer);
        this.#resend(`${peer.key} refused on arrival: ${decodeGrpcMessage(headers['grpc-message']) || refusal}`, 'stale');
        return true;
      }
      if (refusal === 'QB_APP_UNAVAILABLE' || refusal === 'QB_IDENTITY_NOT_READY') {
        // The peer's app is down and nothing reached it: a failure of that endpoint (not a fast answer
        // that would improve its latency score), and safe to send elsewhere.
        if (peer.accrual.failure(now)) this.#ejected(peer);
        this.#resend(`${peer.key}: ${decodeGrpcMessage(headers['grpc-message']) || refusal}`, refusal === 'QB_APP_UNAVAILABLE' ? 'app-unavailable' : 'not-ready');
        return true;
      }
      const code = Number(headers['grpc-status']);
      if (this.#retryPolicy?.on.some((c) => Status[c] === code) === true && this.#mayRetry(now)) {
        // A trailers-only answer: nothing was passed to the caller, so the policy may try again.
        peer.ewma.observe(now - this.#sentAt, now);
        this.#resend(`${peer.key} answered ${decodeGrpcMessage(headers['grpc-message']) || `status ${code}`}`, 'status');
        return true;
      }
    }
    this.#sent = null;
    peer.ewma.observe(now - this.#sentAt, now);
    return false;
  }

  protected readUp(chunk: Buffer): void {
    (this.#resReader ??= new FrameReader({ maxPayload: this.#ctx.maxFrameBytes, onFrame: this.#onFrame })).push(chunk);
  }

  #onFrame = (h: BasisHeader, payload: Buffer): void => {
    if (h.kind !== 'response') {
      throw new QbasisError('QB_FRAME_BAD_FIELD', `frame kind '${h.kind}' on a response stream; expected 'response' (${formatText(h)})`);
    }
    if (this.#mirrored && this.#responseFrames++ === 0) {
      this.#firstResponse = Buffer.from(payload);
      this.#responseFrame = formatText({ ...h, length: payload.length });
    }
    this.sendDown(grpcMessage(h.gzip, payload));
  };

  protected endUpReader(): void {
    this.#resReader?.end();
  }

  protected override onUpClosed(code: number, sessionLost: boolean): boolean {
    const peer = this.#peer!;
    if (!this.responded && code === NGHTTP2_REFUSED_STREAM && this.#sent !== null) {
      // The peer did not process it (GOAWAY / refused): safe to send elsewhere.
      this.#resend(`${peer.key} refused the stream`, 'refused');
      return true;
    }
    if (sessionLost && peer.accrual.failure(performance.now())) this.#ejected(peer);
    return false;
  }

  /** One more policy retry: attempts left, the budget has one, the request still held. */
  #mayRetry(now: number): boolean {
    const r = this.#retryPolicy;
    if (r === undefined || this.#sent === null || this.#policyRetries >= r.attempts) return false;
    if (this.#budget !== undefined && !this.#budget.tryRetry(now)) {
      this.#ctx.metrics.retryBudgetExhausted.labels(this.#route.api).inc();
      return false;
    }
    this.#policyRetries++;
    return true;
  }

  #onTryTimeout = (up: ClientHttp2Stream): void => {
    this.#tryTimer = undefined;
    if (this.done || this.up !== up || this.responded) return;
    const ms = this.#retryPolicy!.perTryTimeoutMs!;
    const peer = this.#peer!;
    peer.ewma.observe(ms, performance.now());
    if (this.#mayRetry(performance.now())) {
      this.cancelUp(up);
      this.#resend(`${peer.key} gave no answer within the per-try timeout of ${ms} ms`, 'per-try-timeout');
      return;
    }
    const p = this.#policy!;
    this.fail(Status.DEADLINE_EXCEEDED, 'QB_DEADLINE_EXCEEDED', `${this.#route.api}: ${peer.key} gave no answer within the per-try timeout of ${ms} ms (BasisPolicy ${p.namespace}/${p.name}), and no retry is left`);
  };

  #onPolicyDeadline = (): void => {
    this.#deadlineTimer = undefined;
    if (this.done) return;
    const p = this.#policy!;
    this.fail(Status.DEADLINE_EXCEEDED, 'QB_DEADLINE_EXCEEDED', `${this.#route.api}: no answer within the timeout of ${p.policy.timeoutMs} ms (BasisPolicy ${p.namespace}/${p.name}), retries included`);
  };

  #clearTryTimer(): void {
    if (this.#tryTimer !== undefined) {
      clearTimeout(this.#tryTimer);
      this.#tryTimer = undefined;
    }
  }

  #ejected(peer: Peer): void {
    this.#ctx.metrics.ejections.labels(this.#route.api).inc();
    this.#ctx.log.warn({ peer: peer.key, api: this.#route.api, failures: peer.accrual.consecutiveFailures, until_ms: Math.round(peer.accrual.ejectedUntil - performance.now()) }, 'endpoint ejected after consecutive failures');
  }

  // ---- the rest of the relay's hooks ----

  /** Refused before anything was sent upstream. */
  #refuse(status: number, code: ErrorCode, message: string): void {
    this.refused(code);
    this.fail(status, code, message);
  }

  protected upName(): string {
    return this.#peer?.key ?? 'the peer';
  }

  protected cancelUp(up: ClientHttp2Stream): void {
    this.#peer!.cancel(up);
  }

  protected downGoneEarly(): void {
    if (this.#tried.length === 0) this.conn?.rapidReset(); // reset before any peer was tried
  }

  protected refused(code: ErrorCode): void {
    this.#ctx.metrics.refused('outbound', code);
  }

  protected logFailure(status: number, code: ErrorCode, message: string): void {
    const h = this.#route.header;
    h.length = 0;
    this.#ctx.log.warn({ direction: 'outbound', path: this.#route.path, status, code, frame: formatText(h), peer: this.#peer?.key }, message);
  }

  protected finished(status: number, answered: boolean): void {
    this.#clearTryTimer();
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    const peer = this.#peer;
    if (answered && peer !== undefined) peer.accrual.success();
    this.#route.metrics.done(status, (performance.now() - this.started) / 1000, answered);
    if (this.#counter !== undefined) this.#route.balancer!.calls.count(this.#counter, status);
    if (this.#mirrored) this.#shadow(status, answered);
    if (--this.#ctx.inflight.outbound === 0) this.#ctx.onIdle();
  }

  /** Unary-shaped calls only (one message each way at most), answered by the far end, not cancelled. */
  #shadow(status: number, answered: boolean): void {
    const mirror = this.#plan!.mirror!;
    const request = this.#firstRequest;
    if (!answered || request === undefined || this.#requestFrames !== 1 || this.#responseFrames > 1 || this.#peer === undefined) return;
    const b = this.#route.balancer!;
    const versionOf = (p: Peer): string => b.views.find((v) => v.address === p.address && v.port === p.port)?.version ?? 'unknown';
    const p = this.#policy!;
    this.#ctx.mirrors.shadow(
      {
        policy: { namespace: p.namespace, name: p.name },
        api: this.#route.api,
        method: this.#route.metrics.methodLabel,
        headers: this.#headers.slice(0, this.#baseLen),
        range: b.range,
        request,
        status,
        version: versionOf(this.#peer),
        payload: this.#firstResponse,
        frame: this.#responseFrame,
      },
      { peers: mirror.peers, versionOf },
    );
  }
}
