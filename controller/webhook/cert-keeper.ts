// Keeps the webhook's serving certificate in a Secret and the MutatingWebhookConfiguration's caBundle in
// step with it. Every replica reads the Secret (and serves what it holds); only a writer (the leader, or
// any replica when there is no leader election) creates or renews it. Writes carry resourceVersion, so two
// writers racing cannot both win: the loser re-reads and serves the winner's certificate.
import { isConflict, isNotFound, type KubeClient } from '../kube/kube-client.ts';
import { bundleProblem, createServingBundle, issueServingCert } from './certificates.ts';
import type { ServingBundle } from './certificates.ts';

export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

/** The parts of a Secret read and written here (raw JSON: the rest is passed back as read). */
interface Secret {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  type?: string;
  data?: Record<string, string>;
}

/** The parts of a MutatingWebhookConfiguration read and written here. */
interface MutatingWebhookConfiguration {
  metadata?: { name?: string; resourceVersion?: string };
  webhooks?: Array<{ clientConfig: { caBundle?: string } }>;
}

export interface CertKeeperOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** MutatingWebhookConfiguration whose caBundle follows the Secret; undefined: leave it to others. */
  webhookConfigName?: string;
  /** DNS names and IPs the serving certificate must name. */
  hosts: readonly string[];
  /** 'self': generate and renew; 'load': only read (cert-manager or a human writes the Secret). */
  mode: 'self' | 'load';
  /** True when this replica may write (leader). Default: always. */
  isWriter?: () => boolean;
  /** How often to re-check the Secret and the caBundle. */
  resyncMs?: number;
  caDays?: number;
  certDays?: number;
  onBundle: (bundle: ServingBundle) => void;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

function decode(secret: Secret | undefined): Partial<ServingBundle> {
  const d = secret?.data ?? {};
  const get = (k: string): string | undefined => (d[k] === undefined ? undefined : Buffer.from(d[k], 'base64').toString('utf8'));
  return { caCert: get(SECRET_KEYS.caCert), caKey: get(SECRET_KEYS.caKey), cert: get(SECRET_KEYS.cert), key: get(SECRET_KEYS.key) } as Partial<ServingBundle>;
}

function complete(b: Partial<ServingBundle>, mode: 'self' | 'load'): b is ServingBundle {
  return b.cert !== undefined && b.key !== undefined && b.caCert !== undefined && (mode === 'load' || b.caKey !== undefined);
}

function encode(b: ServingBundle): Record<string, string> {
  const e = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  return { [SECRET_KEYS.caCert]: e(b.caCert), [SECRET_KEYS.caKey]: e(b.caKey), [SECRET_KEYS.cert]: e(b.cert), [SECRET_KEYS.key]: e(b.key) };
}

export class CertKeeper {
  readonly #o: CertKeeperOptions;
  readonly #client: KubeClient;
  #timer: NodeJS.Timeout | undefined;
  #servedCert: string | undefined;
  #stopped = false;
  #running: Promise<void> | undefined;

  constructor(options: CertKeeperOptions) {
    this.#o = options;
    this.#client = options.client;
  }

  #log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.#o.log?.(level, msg, fields);
  }

  /** Resolves once a usable certificate is loaded (waits for the writer if this replica is not one). */
  async start(): Promise<void> {
    for (let delay = 250; !this.#stopped; delay = Math.min(delay * 2, 5_000)) {
      try {
        await this.sync();
        if (this.#servedCert !== undefined) break;
      } catch (err) {
        this.#log('warn', 'webhook certificate not ready yet', { err: (err as Error).message });
      }
      await new Promise((r) => setTimeout(r, delay));
    }
    if (this.#stopped) return;
    this.#timer = setInterval(() => {
      this.#running ??= this.sync()
        .catch((err: unknown) => this.#log('warn', 'webhook certificate resync failed', { err: (err as Error).message }))
        .finally(() => (this.#running = undefined));
    }, this.#o.resyncMs ?? 30_000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }

  #secrets(name?: string): string {
    const base = `/api/v1/namespaces/${encodeURIComponent(this.#o.namespace)}/secrets`;
    return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
  }

  /** One pass: read, (writer) create or renew, serve, (writer) align caBundle. */
  async sync(): Promise<void> {
    const o = this.#o;
    const writer = o.mode === 'self' && (o.isWriter?.() ?? true);
    let secret: Secret | undefined;
    try {
      secret = await this.#client.request<Secret>('GET', this.#secrets(o.secretName));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    let bundle = decode(secret);
    const problem = complete(bundle, o.mode) ? bundleProblem(bundle, o.mode === 'self' ? o.hosts : []) : 'the Secret holds no certificate yet';
    if (problem !== undefined && writer) {
      this.#log('info', 'issuing webhook serving certificate', { reason: problem, secret: o.secretName });
      const fresh = await this.#renew(bundle, problem);
      const data = encode(fresh);
      try {
        if (secret === undefined) {
          await this.#client.request('POST', this.#secrets(), {
            body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: o.secretName, namespace: o.namespace, labels: { 'app.kubernetes.io/managed-by': 'qbasis' } }, type: 'Opaque', data },
          });
        } else {
          // the resourceVersion read above comes back with it: a write racing ours makes this one 409
          await this.#client.request('PUT', this.#secrets(o.secretName), { body: { ...secret, data: { ...(secret.data ?? {}), ...data } } });
        }
        bundle = fresh;
      } catch (err) {
        if (!isConflict(err)) throw err;
        this.#log('info', 'another replica wrote the webhook certificate first; re-reading');
        bundle = decode(await this.#client.request<Secret>('GET', this.#secrets(o.secretName)));
      }
    } else if (problem !== undefined && o.mode === 'load' && complete(bundle, o.mode)) {
      this.#log('warn', 'webhook certificate in the Secret has a problem; serving it anyway', { reason: problem });
    }
    if (!complete(bundle, o.mode)) return;
    if (bundle.cert !== this.#servedCert) {
      this.#servedCert = bundle.cert;
      o.onBundle(bundle);
      this.#log('info', 'serving webhook certificate', { secret: o.secretName });
    }
    if (writer && o.webhookConfigName !== undefined) await this.#alignCaBundle(bundle.caCert);
  }

  /** Keep the CA when it is still good (the caBundle then never changes); otherwise start over. */
  async #renew(old: Partial<ServingBundle>, problem: string): Promise<ServingBundle> {
    const caDays = this.#o.caDays ?? 3650;
    const certDays = this.#o.certDays ?? 365;
    if (old.caCert !== undefined && old.caKey !== undefined && /certificate (is|does)/.test(problem)) {
      const probe = await issueServingCert({ cert: old.caCert, key: old.caKey }, this.#o.hosts, certDays).catch(() => undefined);
      if (probe !== undefined) {
        const b = { caCert: old.caCert, caKey: old.caKey, cert: probe.cert, key: probe.key };
        if (bundleProblem(b, this.#o.hosts) === undefined) return b;
      }
    }
    return createServingBundle(this.#o.hosts, { caDays, certDays });
  }

  async #alignCaBundle(caPem: string): Promise<void> {
    const name = this.#o.webhookConfigName as string;
    const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(name)}`;
    const want = Buffer.from(caPem, 'utf8').toString('base64');
    for (let attempt = 0; attempt < 5; attempt++) {
      let config: MutatingWebhookConfiguration;
      try {
        config = await this.#client.request<MutatingWebhookConfiguration>('GET', path);
      } catch (err) {
        if (isNotFound(err)) {
          this.#log('warn', 'MutatingWebhookConfiguration not found; caBundle not set', { name });
          return;
        }
        throw err;
      }
      const hooks = config.webhooks ?? [];
      if (hooks.every((h) => h.clientConfig.caBundle === want)) return;
      for (const h of hooks) h.clientConfig.caBundle = want;
      try {
        await this.#client.request('PUT', path, { body: config });
        this.#log('info', 'caBundle updated', { webhookConfiguration: name });
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
  }
}
