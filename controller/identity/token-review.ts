// Kubernetes mode's TokenAuthenticator: a TokenReview of the sidecar's projected ServiceAccount token
// (audience qbasis.io), then a read of the pod the token is bound to. Accepted only when the API server
// authenticated the token for this audience, the username is system:serviceaccount:NS:SA, the token is
// bound to a pod (its name and uid in the review's extra), and that pod still exists with that uid, is
// not being deleted, and runs as that service account. Not wired into Kubernetes mode yet (the root in
// a Secret and the trust-bundle ConfigMap come first); tested against the real API server.
import { QbasisError } from '../../proto/errors.ts';
import { TOKEN_AUDIENCE } from '../../proto/identity.ts';
import type { Authentication, TokenAuthenticator } from './token-authenticator.ts';

/** What this needs of an API client (controller/kube/kube-client.ts's KubeClient has it). */
export interface ApiRequester {
  request<T = unknown>(method: 'GET' | 'POST', path: string, opts?: { body?: unknown; timeoutMs?: number }): Promise<T>;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; uid?: string; extra?: Record<string, string[]> };
}

interface PodShape {
  metadata?: { uid?: string; deletionTimestamp?: string | null };
  spec?: { serviceAccountName?: string };
}

const SA_USER = /^system:serviceaccount:([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?):([a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)$/;
/** A JWT: three base64url parts. Anything else is not sent to the API server. */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';

export class TokenReviewAuthenticator implements TokenAuthenticator {
  readonly kind = 'TokenReview';
  readonly #api: ApiRequester;
  readonly #audience: string;

  constructor(api: ApiRequester, audience = TOKEN_AUDIENCE) {
    this.#api = api;
    this.#audience = audience;
  }

  async authenticate(token: string): Promise<Authentication> {
    if (!JWT.test(token)) return refused('the token is not a JWT (expected the projected ServiceAccount token the pod mounts)');
    const review = await this.#api.request<{ status?: TokenReviewStatus }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [this.#audience] } },
      timeoutMs: 10_000,
    });
    const st = review?.status ?? {};
    if (st.authenticated !== true) {
      // The API server's reason names no token bytes (e.g. "token audiences … is invalid", "pod … not found").
      return refused(`the API server did not authenticate the token${st.error ? `: ${st.error.slice(0, 300)}` : ''} (expected a ServiceAccount token for audience ${this.#audience})`);
    }
    if (!(st.audiences ?? []).includes(this.#audience)) return refused(`the token is not for audience ${this.#audience}`);
    const m = SA_USER.exec(st.user?.username ?? '');
    if (m === null) return refused(`the token's user '${(st.user?.username ?? '').slice(0, 120)}' is not a ServiceAccount (expected system:serviceaccount:NS:SA)`);
    const [namespace, serviceAccount] = [m[1]!, m[2]!];
    const pod = st.user?.extra?.[POD_NAME]?.[0];
    const uid = st.user?.extra?.[POD_UID]?.[0];
    if (pod === undefined || uid === undefined) return refused(`the token of ${namespace}/${serviceAccount} is not bound to a pod (expected the pod's projected token)`);
    const who = `${namespace}/${pod}`;
    let obj: PodShape;
    try {
      obj = await this.#api.request<PodShape>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`, { timeoutMs: 10_000 });
    } catch (err) {
      if ((err as { status?: number }).status === 404) return notEligible(who, `pod ${who} no longer exists`);
      throw err instanceof QbasisError ? err : new QbasisError('QB_KUBE_API', `reading pod ${who}: ${(err as Error).message}`);
    }
    if (obj.metadata?.uid !== uid) return notEligible(who, `pod ${who} was replaced (the token is bound to uid ${uid})`);
    if (obj.metadata?.deletionTimestamp) return notEligible(who, `pod ${who} is terminating (deletionTimestamp is set)`);
    if ((obj.spec?.serviceAccountName || 'default') !== serviceAccount) return notEligible(who, `pod ${who} does not run as ServiceAccount ${serviceAccount}`);
    return { ok: true, pod: { namespace, pod, uid, serviceAccount } };
  }
}

function refused(reason: string): Authentication {
  return { ok: false, code: 'QB_TOKEN_REFUSED', reason };
}

function notEligible(pod: string, reason: string): Authentication {
  return { ok: false, code: 'QB_POD_NOT_ELIGIBLE', reason, pod };
}
