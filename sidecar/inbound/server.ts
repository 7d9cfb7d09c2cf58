// The inbound listener (default :15006): peer sidecars open one stream per call. The path and the
// caller's range are checked before the app is bothered; frames are checked as they arrive. With mesh
// identity on it is mutual TLS: the caller's SPIFFE ID must be there, and allowed by the API's policy.
import http2 from 'node:http2';
import type { Logger } from 'pino';
import { Status, type ErrorCode } from '../../proto/errors.ts';
import { createH2Listener, sessionState, type H2Listener, type ListenerLimits, type ListenerTls } from '../h2-listener.ts';
import type { InboundAuthorization } from './authorization.ts';
import { endWithStatus, respondNotGrpc, statusTrailers } from '../grpc-wire.ts';
import type { Metrics } from '../metrics.ts';
import { InboundCall, type InboundContext } from './call.ts';
import { rangeVerdict, type Provided } from './provided.ts';

export interface InboundOptions extends InboundContext {
  host: string;
  port: number;
  provided: Provided;
  metrics: Metrics;
  log: Logger;
  limits: ListenerLimits;
  onCall(): void;
  /** Mesh identity on: mutual TLS, and who may call what. */
  identity?: { tls: ListenerTls; authz: InboundAuthorization };
}

export function startInbound(o: InboundOptions): Promise<H2Listener> {
  const listener = createH2Listener(o.limits, o.identity?.tls);
  const authz = o.identity?.authz;
  const { server } = listener;
  const refuse = (stream: http2.ServerHttp2Stream, status: number, code: ErrorCode, msg: string, path: unknown): void => {
    o.metrics.refused('inbound', code);
    o.log.warn({ direction: 'inbound', path, status, code }, msg);
    endWithStatus(stream, statusTrailers(status, msg, code));
  };
  server.on('stream', (stream, headers, flags, rawHeaders) => {
    o.onCall();
    stream.on('error', () => {});
    const ct = headers['content-type'];
    if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) {
      respondNotGrpc(stream, ct);
      return;
    }
    const path = headers[':path'];
    const e = o.provided.lookup(path);
    if (e === 'bad-path') {
      refuse(stream, Status.UNIMPLEMENTED, 'QB_BAD_REQUEST', `path '${String(path)}' is not a gRPC method path; expected /package.Service/Method`, path);
      return;
    }
    if (authz !== undefined) {
      // The TLS handshake already required a certificate chained to the bundle.
      const caller = sessionState(stream.session as http2.ServerHttp2Session)?.peer;
      if (caller === undefined) {
        refuse(stream, Status.UNAUTHENTICATED, 'QB_NO_MESH_IDENTITY', "the caller's certificate names no SPIFFE ID (spiffe://<trust domain>/ns/NS/sa/SA); expected a mesh workload certificate from the controller", path);
        return;
      }
      if (!('notProvided' in e)) {
        const no = authz.check(e.api, caller);
        if (no !== undefined) {
          refuse(stream, no.status, no.code, no.message, path);
          return;
        }
      }
    }
    if ('notProvided' in e) {
      refuse(stream, Status.FAILED_PRECONDITION, 'QB_API_NOT_PROVIDED', `${e.notProvided} is not provided by this pod; it provides ${o.provided.describe()}`, path);
      return;
    }
    const r = headers['qbasis-range'];
    const range = typeof r === 'string' ? r : undefined;
    if (range !== undefined) {
      const v = rangeVerdict(e, range);
      if (!v.ok) {
        refuse(stream, v.malformed ? Status.INVALID_ARGUMENT : Status.FAILED_PRECONDITION, v.malformed ? 'QB_INVALID_RANGE' : 'QB_VERSION_INCOMPATIBLE', v.reason, path);
        return;
      }
    }
    new InboundCall(o, stream, e, rawHeaders as unknown as string[], range, (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve(listener);
    });
  });
}
