// Kubernetes mode's TokenAuthenticator: a TokenReview of the sidecar's projected ServiceAccount token
// (audience qbasis.io), then the pod the token is bound to, looked up in the informer's cache (no API
// read per Certify). Accepted only when the API server authenticated the token for this audience, the
// username is system:serviceaccount:NS:SA, the token is bound to a pod (its name and uid in the
// review's extra), and that pod is in the cache with that uid, not being deleted, and runs as that
// service account. TokenReviews in flight are bounded, so a flood of JWT-shaped garbage cannot turn
// into a flood on the API server.
import { TOKEN_AUDIENCE } from '../../proto/identity.ts';
import type { MeshPod } from './mesh-pods.ts';
import type { Authentication, TokenAuthenticator } from './token-authenticator.ts';

/** What this needs of an API client (controller/kube/kube-client.ts's KubeClient has it). */
export interface ApiRequester {
  request<T = unknown>(method: 'POST', path: string, opts?: { body?: unknown; timeoutMs?: number }): Promise<T>;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; uid?: string; extra?: Record<string, string[]> };
}

/** The informer's pods (mesh-pods.ts). */
export interface PodLookup {
  get(namespace: string, name: string): MeshPod | undefined;
}

/** TokenReviews in flight at once; more Certify calls are refused RESOURCE_EXHAUSTED and retried by the sidecar. */
const MAX_REVIEWS_IN_FLIGHT = 32;

const SA_USER = /^system:serviceaccount:([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?):([a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?)$/;
/** A JWT: three base64url parts. Anything else is not sent to the API server. */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';

export class TokenReviewAuthenticator implements TokenAuthenticator {
  readonly kind = 'TokenReview';
  readonly #api: ApiRequester;
  readonly #audience: string;
  readonly #pods: PodLookup;
  #inFlight = 0;

  constructor(api: ApiRequester, pods: PodLookup, audience = TOKEN_AUDIENCE) {
    this.#api = api;
    this.#pods = pods;
    this.#audience = audience;
  }

  async authenticate(token: string): Promise<Authentication> {
    if (!JWT.test(token)) return refused('the token is not a JWT (expected the projected ServiceAccount token the pod mounts)');
    if (this.#inFlight >= MAX_REVIEWS_IN_FLIGHT) return { ok: false, code: 'QB_RATE_LIMITED', reason: `${MAX_REVIEWS_IN_FLIGHT} tokens are being reviewed already; try again shortly` };
    this.#inFlight++;
    let review: { status?: TokenReviewStatus };
    try {
      review = await this.#api.request<{ status?: TokenReviewStatus }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [this.#audience] } },
        timeoutMs: 10_000,
      });
    } finally {
      this.#inFlight--;
    }
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
    const obj = this.#pods.get(namespace, pod);
    if (obj === undefined) return notEligible(who, `pod ${who} is not in the controller's pod cache (deleted, not yet seen, outside --namespaces, or without qbasis annotations)`);
    if (obj.uid !== uid) return notEligible(who, `pod ${who} was replaced (the token is bound to uid ${uid})`);
    if (obj.deleting) return notEligible(who, `pod ${who} is terminating (deletionTimestamp is set)`);
    if (obj.serviceAccount !== serviceAccount) return notEligible(who, `pod ${who} does not run as ServiceAccount ${serviceAccount}`);
    return { ok: true, pod: { namespace, pod, uid, serviceAccount } };
  }
}

function refused(reason: string): Authentication {
  return { ok: false, code: 'QB_TOKEN_REFUSED', reason };
}

function notEligible(pod: string, reason: string): Authentication {
  return { ok: false, code: 'QB_POD_NOT_ELIGIBLE', reason, pod };
}
