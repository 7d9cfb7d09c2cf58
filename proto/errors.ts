// The one error catalogue of qbasis: every refusal has a stable code and a gRPC status.
// Codes never change meaning once published; add new ones at the end of their group.

/** gRPC status codes (numeric, as on the wire). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** Stable error codes and the gRPC status each maps to. */
export const catalogue = {
  // Frames (DESIGN.md: each bad-frame class has its own code).
  QB_FRAME_TRUNCATED: Status.DATA_LOSS,
  QB_FRAME_OVERLONG: Status.INVALID_ARGUMENT,
  QB_FRAME_BAD_MAGIC: Status.INVALID_ARGUMENT,
  QB_FRAME_UNKNOWN_CODEC: Status.UNIMPLEMENTED,
  QB_FRAME_RESERVED_BITS: Status.INVALID_ARGUMENT,
  QB_FRAME_VERSION_RANGE: Status.OUT_OF_RANGE,
  QB_FRAME_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  QB_FRAME_BAD_FIELD: Status.INVALID_ARGUMENT,
  QB_FRAME_BAD_TEXT: Status.INVALID_ARGUMENT,
  // Declarations (annotations, flags).
  QB_INVALID_ANNOTATION: Status.INVALID_ARGUMENT,
  QB_INVALID_FLAG: Status.INVALID_ARGUMENT,
  QB_INVALID_VERSION: Status.INVALID_ARGUMENT,
  QB_INVALID_RANGE: Status.INVALID_ARGUMENT,
  /** The local controller's pods file (or an entry in it) was refused: too large, not UTF-8, not YAML, a bad podIP. */
  QB_INVALID_PODS_FILE: Status.INVALID_ARGUMENT,
  /** A command line with no such command or subcommand, or operands the command does not take (flags: QB_INVALID_FLAG). */
  QB_USAGE: Status.INVALID_ARGUMENT,
  // Routing.
  QB_NO_COMPATIBLE_ENDPOINT: Status.UNAVAILABLE,
  QB_API_NOT_PROVIDED: Status.FAILED_PRECONDITION,
  QB_VERSION_INCOMPATIBLE: Status.FAILED_PRECONDITION,
  QB_CODEC_INCOMPATIBLE: Status.FAILED_PRECONDITION,
  QB_API_ID_COLLISION: Status.FAILED_PRECONDITION,
  QB_SHUTTING_DOWN: Status.UNAVAILABLE,
  QB_UPSTREAM_FAILED: Status.UNAVAILABLE,
  QB_BAD_REQUEST: Status.INVALID_ARGUMENT,
  QB_INTERNAL: Status.INTERNAL,
  /** The pod's app refused the connection: nothing reached it, so the caller may send the call elsewhere. */
  QB_APP_UNAVAILABLE: Status.UNAVAILABLE,
  /** No pod in the mesh provides the API at any version (UNAVAILABLE would tell clients to try again). */
  QB_NO_PROVIDER: Status.UNIMPLEMENTED,
  /** A gRPC message prefix that breaks the gRPC wire format (e.g. a compressed flag other than 0 or 1). */
  QB_BAD_MESSAGE: Status.INTERNAL,
  /** The call's deadline (the caller's, or a shorter BasisPolicy timeout) passed in the sidecar. */
  QB_DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  /** Every version group of the BasisPolicy's route is empty of ready, compatible endpoints. */
  QB_NO_POLICY_ENDPOINT: Status.UNAVAILABLE,
  // Control plane.
  QB_RECONCILE_TERMINAL: Status.FAILED_PRECONDITION,
  QB_KUBE_API: Status.UNAVAILABLE,
  /** A BasisPolicy that fails validation (its last accepted spec stays in force). */
  QB_INVALID_POLICY: Status.INVALID_ARGUMENT,
  // Mesh identity (mutual TLS, the controller's CA, authorization).
  /** Outbound: the peer's certificate does not name the identity discovery gave for that endpoint (nothing was sent to it). */
  QB_PEER_IDENTITY: Status.UNAVAILABLE,
  /** Inbound: the caller's certificate chains to the bundle but names no SPIFFE ID of this trust domain. */
  QB_NO_MESH_IDENTITY: Status.UNAUTHENTICATED,
  /** Inbound: the caller's identity is not in the `allow` list of the BasisPolicy in the provider's namespace. */
  QB_NOT_AUTHORIZED: Status.PERMISSION_DENIED,
  /** This sidecar has no certificate yet, or not yet the authorization policy of the API (nothing was processed). */
  QB_IDENTITY_NOT_READY: Status.UNAVAILABLE,
  /** Certify: the token is unknown, malformed or not for this audience. */
  QB_TOKEN_REFUSED: Status.UNAUTHENTICATED,
  /** Certify: the token's pod is gone or terminating. */
  QB_POD_NOT_ELIGIBLE: Status.PERMISSION_DENIED,
  /** Certify: the pod asked for certificates more often than its rate allows. */
  QB_RATE_LIMITED: Status.RESOURCE_EXHAUSTED,
  /** Certify: the CSR is not a well-signed PKCS#10 request for an ECDSA P-256 key. */
  QB_BAD_CSR: Status.INVALID_ARGUMENT,
  // The protocol gateway (app-protocol http; sidecar/gateway/README.md).
  /** --schema does not load, or lacks an API the pod provides or requires. */
  QB_INVALID_SCHEMA: Status.INVALID_ARGUMENT,
  /** A JSON request the schema cannot read: bad JSON, an unknown field, a wrong type (the message names the field). */
  QB_INVALID_JSON: Status.INVALID_ARGUMENT,
  /** An HTTP request whose path and verb name no method of the schema. */
  QB_NO_SUCH_METHOD: Status.NOT_FOUND,
  /** An HTTP request body above the limit (answered 413). */
  QB_BODY_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  /** Client and bidi streaming have no HTTP/JSON form here (answered 501). */
  QB_STREAMING_NOT_SUPPORTED: Status.UNIMPLEMENTED,
  /** The legacy app answered something that is not the method's response in JSON. */
  QB_APP_BAD_ANSWER: Status.INTERNAL,
} as const satisfies Record<string, StatusCode>;

export type ErrorCode = keyof typeof catalogue;

export interface QbasisErrorOptions {
  cause?: unknown;
  /** Machine-readable context (what was found, what was expected). Never secrets. */
  details?: Record<string, unknown>;
}

export class QbasisError extends Error {
  readonly code: ErrorCode;
  readonly grpcStatus: StatusCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: QbasisErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QbasisError';
    this.code = code;
    this.grpcStatus = catalogue[code];
    this.details = options.details;
  }
}

export function isQbasisError(err: unknown, code?: ErrorCode): err is QbasisError {
  return err instanceof QbasisError && (code === undefined || err.code === code);
}

/** Shorthand used across the code base: `fail('QB_X', 'what was wrong; expected …')`. */
export function qbError(code: ErrorCode, message: string, options?: QbasisErrorOptions): QbasisError {
  return new QbasisError(code, message, options);
}

const STATUS_BY_CODE = new Map<number, string>(Object.entries(Status).map(([name, code]) => [code, name]));

/** The name of a gRPC status code (`UNAVAILABLE`), or the number as text for one gRPC does not define. */
export function statusName(code: number): string {
  return STATUS_BY_CODE.get(code) ?? String(code);
}
