// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package:
// candidates retry every retryPeriod; a holder's claim is trusted for leaseDuration from when
// WE last saw it change (our clock, never the holder's timestamps, so clock skew cannot matter);
// the leader renews every retryPeriod and steps down if it could not renew for renewDeadline.
// stop() releases the Lease (holderIdentity cleared), so a standby takes over on its next retry
// instead of waiting for the lease to expire.
import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient } from './kube-client.ts';

export interface LeaderElectorOptions {
  client: KubeClient;
  logger: Logger;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
  /** Annotations the holder keeps on the Lease (read at each acquire and renew), e.g. where it can be reached. */
  holderAnnotations?: () => Record<string, string>;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; annotations?: Record<string, string> };
  spec?: LeaseSpec;
}

/** metav1.MicroTime wants exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectorOptions, 'onStartedLeading' | 'onStoppedLeading' | 'onNewLeader' | 'holderAnnotations'>> &
    Pick<LeaderElectorOptions, 'onStartedLeading' | 'onStoppedLeading' | 'onNewLeader' | 'holderAnnotations'>;
  readonly #log: Logger;
  #leader = false;
  #observedHolder = '';
  #observedAnnotations: Record<string, string> = {};
  #observedRv = '';
  #observedAt = 0;
  #lastRenew = 0;
  #stopped = true;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #transitions = 0;

  constructor(opts: LeaderElectorOptions) {
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...opts,
    };
    if (!(this.#o.leaseDurationMs > this.#o.renewDeadlineMs && this.#o.renewDeadlineMs > this.#o.retryPeriodMs)) {
      throw new Error('leader election: expected leaseDuration > renewDeadline > retryPeriod');
    }
    this.#log = opts.logger.child({ component: 'leader-election', lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  get identity(): string {
    return this.#o.identity;
  }

  isLeader(): boolean {
    return this.#leader;
  }

  /** An annotation of the Lease as last observed, if a holder holds it (see holderAnnotations). */
  holderAnnotation(key: string): string | undefined {
    return this.#observedHolder === '' ? undefined : this.#observedAnnotations[key];
  }

  /** The holder we last observed (ourselves when leading). */
  currentLeader(): string {
    return this.#leader ? this.#o.identity : this.#observedHolder;
  }

  /** Times this process became leader. */
  get acquisitions(): number {
    return this.#transitions;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /** Stop campaigning; a leader releases the Lease first so a standby takes over at once. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    if (this.#leader) {
      this.#setLeader(false);
      await this.#release();
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const attempt = Date.now();
      let ok = false;
      try {
        ok = await this.#tryAcquireOrRenew();
      } catch (err) {
        this.#log.warn({ err: err instanceof Error ? err.message : String(err) }, this.#leader ? 'lease renew failed' : 'lease acquire failed');
      }
      if (this.#stopped) break;
      if (ok) {
        this.#lastRenew = attempt;
        if (!this.#leader) this.#setLeader(true);
      } else if (this.#leader && Date.now() - this.#lastRenew > this.#o.renewDeadlineMs) {
        this.#log.error({ renewDeadlineMs: this.#o.renewDeadlineMs }, 'could not renew the lease in time; stepping down');
        this.#setLeader(false);
      }
      // candidates jitter (client-go: JitterFactor 1.2) so they do not collide on every retry
      const wait = this.#leader ? this.#o.retryPeriodMs : this.#o.retryPeriodMs * (1 + Math.random() * 0.2);
      await this.#sleep(wait);
    }
  }

  #setLeader(v: boolean): void {
    if (this.#leader === v) return;
    this.#leader = v;
    if (v) {
      this.#transitions++;
      this.#log.info('became leader');
      this.#o.onNewLeader?.(this.#o.identity);
      this.#o.onStartedLeading?.();
    } else {
      this.#log.info('stopped leading');
      this.#o.onStoppedLeading?.();
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      this.#wake = done;
      function done(): void {
        clearTimeout(t);
        resolve();
      }
    });
  }

  #path(withName: boolean): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/leases`;
    return withName ? `${base}/${encodeURIComponent(this.#o.name)}` : base;
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    // like client-go, an attempt may take up to the renew deadline (a loaded API server is slow, not gone)
    const timeoutMs = this.#o.renewDeadlineMs;
    const now = new Date();
    let lease: Lease;
    try {
      lease = await this.#o.client.request<Lease>('GET', this.#path(true), { timeoutMs });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const created: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.#o.name, namespace: this.#o.namespace, annotations: this.#o.holderAnnotations?.() ?? {} },
        spec: {
          holderIdentity: this.#o.identity,
          leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      };
      try {
        const got = await this.#o.client.request<Lease>('POST', this.#path(false), { body: created, timeoutMs });
        this.#observe(got, Date.now());
        return true;
      } catch (e) {
        if (isConflict(e)) return false; // another candidate created it first
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const rv = lease.metadata.resourceVersion ?? '';
    if (rv !== this.#observedRv) this.#observe(lease, Date.now());
    if (holder !== '' && holder !== this.#o.identity && this.#observedAt + this.#o.leaseDurationMs > Date.now()) {
      return false; // someone else holds an unexpired lease
    }
    const mine = holder === this.#o.identity;
    const next: Lease = {
      ...lease,
      metadata: { ...lease.metadata, annotations: { ...(lease.metadata.annotations ?? {}), ...(this.#o.holderAnnotations?.() ?? {}) } },
      spec: {
        ...spec,
        holderIdentity: this.#o.identity,
        leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      const got = await this.#o.client.request<Lease>('PUT', this.#path(true), { body: next, timeoutMs });
      this.#observe(got, Date.now());
      return true;
    } catch (err) {
      if (isConflict(err)) return false; // someone wrote it between our read and write
      throw err;
    }
  }

  #observe(lease: Lease, at: number): void {
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.#observedHolder) {
      this.#log.info({ holder: holder || '(none)' }, 'lease holder changed');
      if (holder !== '' && holder !== this.#o.identity) this.#o.onNewLeader?.(holder);
    }
    this.#observedHolder = holder;
    this.#observedAnnotations = lease.metadata.annotations ?? {};
    this.#observedRv = lease.metadata.resourceVersion ?? '';
    this.#observedAt = at;
  }

  async #release(): Promise<void> {
    try {
      const lease = await this.#o.client.request<Lease>('GET', this.#path(true), { timeoutMs: 3000 });
      if ((lease.spec?.holderIdentity ?? '') !== this.#o.identity) return;
      const now = microTime(new Date());
      const next: Lease = {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
      };
      await this.#o.client.request('PUT', this.#path(true), { body: next, timeoutMs: 3000 });
      this.#log.info('released the lease');
    } catch (err) {
      this.#log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not release the lease; others take over when it expires');
    }
  }
}
