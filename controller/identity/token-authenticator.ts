// Who presents a token: the one question Certify asks before it signs anything. Local mode answers
// from the tokens it minted (local-tokens.ts); Kubernetes mode with a TokenReview of the projected
// ServiceAccount token (token-review.ts: audience qbasis.io, username system:serviceaccount:NS:SA, the
// bound pod present and not terminating) behind the same interface.

/** The pod a token belongs to, as the authenticator checked it just now. */
export interface AuthenticatedPod {
  namespace: string;
  pod: string;
  uid: string;
  serviceAccount: string;
}

export type Authentication =
  | { ok: true; pod: AuthenticatedPod }
  /**
   * QB_TOKEN_REFUSED: no such token (UNAUTHENTICATED); QB_POD_NOT_ELIGIBLE: its pod is gone or terminating
   * (PERMISSION_DENIED); QB_RATE_LIMITED: too many tokens being checked at once (RESOURCE_EXHAUSTED).
   */
  | { ok: false; code: 'QB_TOKEN_REFUSED' | 'QB_POD_NOT_ELIGIBLE' | 'QB_RATE_LIMITED'; reason: string; pod?: string };

export interface TokenAuthenticator {
  /** For logs: "local tokens", "TokenReview". */
  readonly kind: string;
  /** Never logs or returns the token. */
  authenticate(token: string): Promise<Authentication>;
}
