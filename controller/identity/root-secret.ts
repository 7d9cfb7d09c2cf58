// Kubernetes mode's keeper of the root: a Secret in the controller's namespace holding `tls.crt` and
// `tls.key` (PEM). Mode `self`: when the Secret is absent (create) or empty (the chart makes it empty,
// so RBAC can name it), the leader writes a new root; the write carries the resourceVersion read (or is
// a create), so two replicas racing cannot both win: the loser re-reads and uses the winner's root.
// Followers wait for it. Mode `load`: only read (the user's root, identity.issuer.existingSecret).
// A root that is there but unusable is never replaced: replacing it would cut every sidecar off; the
// reason is logged and the Secret read again until someone fixes it. An optional `ca.crt` holds the
// roots trusted beside `tls.crt` during a rotation (docs/root-rotation.md); the bundle is both.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { CertificateAuthority } from './certificate-authority.ts';
import { loadBundle } from './root-store.ts';

export const ROOT_SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', bundle: 'ca.crt' } as const;

/** What this needs of an API client (kube/kube-client.ts's KubeClient has it; not imported: it loads client-node). */
export interface SecretApi {
  request<T = unknown>(method: 'GET' | 'POST' | 'PUT', path: string, opts?: { body?: unknown; timeoutMs?: number }): Promise<T>;
}

interface Secret {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

export interface RootSecretOptions {
  api: SecretApi;
  namespace: string;
  name: string;
  mode: 'self' | 'load';
  trustDomain: string;
  /** True while this replica may write (the Lease holder). */
  isLeader: () => boolean;
  log: Logger;
  /** Between reads while waiting (for the leader, the user, or a fix). */
  retryMs?: number;
}

function statusOf(err: unknown): number | undefined {
  return (err as { status?: number }).status;
}

type Read = { state: 'usable'; ca: CertificateAuthority } | { state: 'absent' | 'empty'; secret?: Secret } | { state: 'unusable'; reason: string };

export class RootSecret {
  readonly #o: RootSecretOptions;
  readonly #path: string;

  constructor(o: RootSecretOptions) {
    this.#o = o;
    this.#path = `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/secrets/${encodeURIComponent(o.name)}`;
  }

  get where(): string {
    return `Secret ${this.#o.namespace}/${this.#o.name}`;
  }

  /** Resolves with the root once the Secret holds a usable one; rejects only when `signal` aborts. */
  async obtain(signal: AbortSignal): Promise<{ ca: CertificateAuthority; created: boolean }> {
    let said = '';
    const say = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void => {
      if (msg === said) return;
      said = msg;
      this.#o.log[level]({ secret: `${this.#o.namespace}/${this.#o.name}`, mode: this.#o.mode, ...fields }, msg);
    };
    for (;;) {
      signal.throwIfAborted();
      let r: Read;
      try {
        r = await this.#read();
      } catch (err) {
        const status = statusOf(err);
        say(status === 403 ? 'error' : 'warn', status === 403
          ? `the controller may not read ${this.where} (RBAC: get on secrets, by name, in ${this.#o.namespace}); mesh identity waits`
          : `reading ${this.where} failed: ${(err as Error).message}; retrying`);
        await delay(this.#o.retryMs ?? 1000, undefined, { signal });
        continue;
      }
      if (r.state === 'usable') return { ca: r.ca, created: false };
      if (r.state === 'unusable') {
        say('error', `${this.where} cannot be used as the mesh root: ${r.reason}. It is not replaced (every sidecar trusts it); fix or empty it`);
      } else if (this.#o.mode === 'load') {
        say('warn', `waiting for ${this.where} to hold the mesh root (tls.crt and tls.key: a self-signed ECDSA P-256 CA); it is ${r.state}`);
      } else if (!this.#o.isLeader()) {
        say('info', `waiting for the leader to write the mesh root into ${this.#o.namespace}/${this.#o.name} (it is ${r.state})`);
      } else {
        const made = await this.#write(r.secret).catch((err: unknown) => {
          const status = statusOf(err);
          // 409: another replica wrote first (its root is read next); 403: RBAC.
          if (status !== 409) say('warn', `writing the mesh root into ${this.where} failed: ${(err as Error).message}; retrying`);
          return undefined;
        });
        if (made !== undefined) {
          this.#o.log.info({ secret: `${this.#o.namespace}/${this.#o.name}`, notAfter: made.notAfter.toISOString() }, `mesh root created in ${this.where}`);
          return { ca: made, created: true };
        }
        continue;
      }
      await delay(this.#o.retryMs ?? 1000, undefined, { signal });
    }
  }

  async #read(): Promise<Read> {
    let s: Secret;
    try {
      s = await this.#o.api.request<Secret>('GET', this.#path, { timeoutMs: 10_000 });
    } catch (err) {
      if (statusOf(err) === 404) return { state: 'absent' };
      throw err;
    }
    const d = s.data ?? {};
    const cert = d[ROOT_SECRET_KEYS.cert] ?? '';
    const key = d[ROOT_SECRET_KEYS.key] ?? '';
    if (cert === '' && key === '') return { state: 'empty', secret: s };
    if (cert === '' || key === '') return { state: 'unusable', reason: `it has ${cert === '' ? 'tls.key but no tls.crt' : 'tls.crt but no tls.key'}` };
    const extra = Buffer.from(d[ROOT_SECRET_KEYS.bundle] ?? '', 'base64').toString('utf8');
    try {
      const certPem = Buffer.from(cert, 'base64').toString('utf8');
      return { state: 'usable', ca: loadBundle(certPem + extra, Buffer.from(key, 'base64').toString('utf8')) };
    } catch (err) {
      return { state: 'unusable', reason: (err as Error).message };
    }
  }

  /** A new root into the Secret: create when absent, update (with the resourceVersion read) when empty. */
  async #write(existing: Secret | undefined): Promise<CertificateAuthority> {
    const { ca, keyPem } = await CertificateAuthority.create(this.#o.trustDomain);
    const data = { [ROOT_SECRET_KEYS.cert]: Buffer.from(ca.rootPem).toString('base64'), [ROOT_SECRET_KEYS.key]: Buffer.from(keyPem).toString('base64') };
    if (existing === undefined) {
      await this.#o.api.request('POST', `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/secrets`, {
        body: {
          apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
          metadata: { name: this.#o.name, namespace: this.#o.namespace, labels: { 'app.kubernetes.io/managed-by': 'qbasis' } },
          data,
        },
        timeoutMs: 10_000,
      });
    } else {
      await this.#o.api.request('PUT', this.#path, { body: { ...existing, apiVersion: 'v1', kind: 'Secret', data }, timeoutMs: 10_000 });
    }
    return ca;
  }
}
