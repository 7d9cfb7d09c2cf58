// The controller's one way to the API server (informer, BasisServices, Leases, Events, the webhook's
// Secret and caBundle): a thin JSON client built on client-node's auth (kubeconfig or in-cluster)
// and its HTTP library. Raw JSON instead of the generated model classes: no (de)serialization
// cost on 5,000-pod lists, no MicroTime/Date reformatting on Leases, server-side apply is one call
// with the right content type, and watches are client-node's Watch with our inactivity timeout.
import { HttpMethod, IsomorphicFetchHttpLibrary, KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
import { QbasisError } from '../../proto/errors.ts';

export interface KubeConfigOptions {
  /** Path to a kubeconfig; empty: in-cluster config if present, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
}

export function loadKubeConfig(opts: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig !== undefined && opts.kubeconfig !== '') kc.loadFromFile(opts.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST !== undefined && process.env.KUBECONFIG === undefined) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (kc.getCurrentCluster() === null) {
    throw new QbasisError('QB_INVALID_FLAG', 'no current cluster in the kubeconfig; expected --kubeconfig <file>, $KUBECONFIG, or in-cluster service account');
  }
  return kc;
}

/** An API server answered with a non-2xx status. `status` is the HTTP code; `reason` the Status reason. */
export class KubeApiError extends QbasisError {
  readonly status: number;
  readonly reason: string;
  constructor(method: string, path: string, status: number, body: string) {
    let reason = '';
    let message = body.slice(0, 500);
    try {
      const s = JSON.parse(body) as { reason?: string; message?: string };
      reason = s.reason ?? '';
      message = s.message ?? message;
    } catch {
      // not a Status object
    }
    super('QB_KUBE_API', `${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`, { details: { status, reason } });
    this.status = status;
    this.reason = reason;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

export class KubeClient {
  readonly #config: KubeConfig;
  readonly #http = new IsomorphicFetchHttpLibrary();
  readonly #server: string;

  constructor(config: KubeConfig) {
    this.#config = config;
    const cluster = config.getCurrentCluster();
    if (cluster === null) throw new QbasisError('QB_INVALID_FLAG', 'kubeconfig has no current cluster');
    this.#server = cluster.server.replace(/\/+$/, '');
  }

  /** One request; resolves with the parsed JSON body, throws KubeApiError on non-2xx. */
  async request<T = unknown>(method: keyof typeof HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = new URL(this.#server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), HttpMethod[method]);
    await this.#config.applySecurityAuthentication(ctx);
    ctx.setHeaderParam('Accept', 'application/json');
    if (opts.body !== undefined) {
      ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
      ctx.setBody(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
    }
    ctx.setSignal(AbortSignal.timeout(opts.timeoutMs ?? 30_000));
    let resp;
    try {
      resp = await this.#http.send(ctx).toPromise();
    } catch (err) {
      throw new QbasisError('QB_KUBE_API', `${method} ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const text = await resp.body.text();
    if (resp.httpStatusCode < 200 || resp.httpStatusCode >= 300) throw new KubeApiError(method, path, resp.httpStatusCode, text);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** A client-node Watch sharing this config (streams newline-delimited watch events). */
  watcher(inactivityTimeoutMs: number): Watch {
    const w = new Watch(this.#config);
    // private in the typings, but it is the knob for the inactivity timeout (default 30 s)
    (w as unknown as { requestTimeoutMs: number }).requestTimeoutMs = inactivityTimeoutMs;
    return w;
  }
}
