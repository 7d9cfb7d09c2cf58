// gRPC status ↔ HTTP status for the gateway. Out (to a legacy caller): google.rpc.Code's own mapping
// (googleapis google/rpc/code.proto), with the `{"code","message","details"}` body of google.rpc.Status.
// In (a legacy provider's answer): the reverse; a JSON error body with a valid "code" names the exact one.
import { Status } from '../../proto/errors.ts';

const HTTP_OF_GRPC: Record<number, number> = {
  [Status.OK]: 200,
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
};

export function httpStatusOf(grpcStatus: number): number {
  return HTTP_OF_GRPC[grpcStatus] ?? 500;
}

const GRPC_OF_HTTP: Record<number, number> = {
  400: Status.INVALID_ARGUMENT,
  401: Status.UNAUTHENTICATED,
  403: Status.PERMISSION_DENIED,
  404: Status.NOT_FOUND,
  409: Status.ABORTED,
  412: Status.FAILED_PRECONDITION,
  413: Status.RESOURCE_EXHAUSTED,
  416: Status.OUT_OF_RANGE,
  429: Status.RESOURCE_EXHAUSTED,
  499: Status.CANCELLED,
  500: Status.INTERNAL,
  501: Status.UNIMPLEMENTED,
  502: Status.UNAVAILABLE,
  503: Status.UNAVAILABLE,
  504: Status.DEADLINE_EXCEEDED,
};

/** A legacy app's non-2xx status as a gRPC code: other 4xx FAILED_PRECONDITION, other 5xx INTERNAL, anything else UNKNOWN. */
export function grpcStatusOf(httpStatus: number): number {
  const known = GRPC_OF_HTTP[httpStatus];
  if (known !== undefined) return known;
  if (httpStatus >= 400 && httpStatus < 500) return Status.FAILED_PRECONDITION;
  if (httpStatus >= 500 && httpStatus < 600) return Status.INTERNAL;
  return Status.UNKNOWN;
}

/** google.rpc.Status as proto3 JSON (`details`: each an Any in proto3 JSON). */
export function errorBody(code: number, message: string, details: readonly unknown[] = []): string {
  return `${JSON.stringify({ code, message, details })}\n`;
}

/**
 * What a legacy app's error answer says: `{"code": 1-16, "message": "…"}` (google.rpc.Status, as
 * grpc-gateway and this gateway write it) gives the exact code and message; otherwise the HTTP status's
 * code and the start of the body.
 */
export function appError(httpStatus: number, body: string): { code: number; message: string } {
  const fallback = { code: grpcStatusOf(httpStatus), message: `the app answered HTTP ${httpStatus}${body.trim() === '' ? '' : `: ${oneLine(body)}`}` };
  if (!body.trimStart().startsWith('{')) return fallback;
  try {
    const v = JSON.parse(body) as { code?: unknown; message?: unknown; error?: { code?: unknown; message?: unknown } };
    const code = typeof v.code === 'number' && Number.isInteger(v.code) && v.code >= 1 && v.code <= 16 ? v.code : undefined;
    const message = typeof v.message === 'string' ? v.message : typeof v.error?.message === 'string' ? v.error.message : undefined;
    return { code: code ?? fallback.code, message: message ?? fallback.message };
  } catch {
    return fallback;
  }
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 200 ? `${t.slice(0, 197)}...` : t;
}
