// The outbound listener (default :15001): the app's gRPC stubs dial it in h2c. Each stream becomes an
// OutboundCall unless it is refused up front (bad path, API not in --requires, draining).
import http2 from 'node:http2';
import type { Http2Server } from 'node:http2';
import type { Logger } from 'pino';
import { apiId, formatText, methodId } from '../../proto/basis/index.ts';
import { Status } from '../../proto/errors.ts';
import { createH2Listener, type H2Listener, type ListenerLimits } from '../h2-listener.ts';
import { parseTimeout, respondNotGrpc, respondTrailersOnly, statusTrailers } from '../grpc-wire.ts';
import type { Metrics } from '../metrics.ts';
import { OutboundCall, type OutboundContext } from './call.ts';
import type { Mirrors } from './mirror.ts';
import type { OutboundGateway } from '../gateway/outbound-gateway.ts';
import { encodingOf, type Router } from './router.ts';

export interface OutboundOptions {
  host: string;
  port: number;
  router: Router;
  log: Logger;
  metrics: Metrics;
  maxFrameBytes: number;
  inflight: { outbound: number };
  limits: ListenerLimits;
  onIdle(): void;
  onCall(): void;
  mirrors: Mirrors;
  /** app-protocol http: HTTP/1.1 and non-gRPC h2c requests go to the protocol gateway. */
  gateway?: (ctx: OutboundContext) => OutboundGateway;
}

export function startOutbound(o: OutboundOptions): Promise<H2Listener> {
  const ctx: OutboundContext = { log: o.log, metrics: o.metrics, maxFrameBytes: o.maxFrameBytes, inflight: o.inflight, onIdle: o.onIdle, mirrors: o.mirrors };
  const listener = createH2Listener(o.limits);
  const { server } = listener;
  const gateway = o.gateway?.(ctx);
  server.on('stream', (stream, headers, flags, rawHeaders) => {
    stream.on('error', () => {});
    const path = headers[':path'];
    const encoding = encodingOf(headers['content-type']);
    if (encoding === undefined) {
      if (gateway !== undefined) gateway.h2(stream, headers);
      else {
        o.onCall();
        respondNotGrpc(stream, headers['content-type']);
      }
      return;
    }
    o.onCall();
    const route = o.router.route(path, encoding);
    if (route === undefined) {
      const msg = `path '${String(path)}' is not a gRPC method path; expected /package.Service/Method`;
      o.metrics.refused('outbound', 'QB_BAD_REQUEST');
      o.log.warn({ direction: 'outbound', path, code: 'QB_BAD_REQUEST' }, msg);
      respondTrailersOnly(stream, statusTrailers(Status.UNIMPLEMENTED, msg, 'QB_BAD_REQUEST'));
      return;
    }
    if (route.balancer === undefined) {
      const declared = [...o.router.balancers.keys()].join(', ') || 'none';
      const msg = `${route.api} is not declared in --requires (qbasis.io/requires); declare it with a version range, e.g. ${route.api}@^1.0 (declared: ${declared})`;
      o.metrics.refused('outbound', 'QB_API_NOT_PROVIDED');
      o.log.warn({ direction: 'outbound', path, code: 'QB_API_NOT_PROVIDED', frame: formatText({ ...route.header, apiId: apiId(route.api), methodId: methodId(route.method) }) }, msg);
      respondTrailersOnly(stream, statusTrailers(Status.FAILED_PRECONDITION, msg, 'QB_API_NOT_PROVIDED'));
      route.metrics.done(Status.FAILED_PRECONDITION, 0, false);
      return;
    }
    new OutboundCall(ctx, stream, route, rawHeaders as unknown as string[], parseTimeout(headers['grpc-timeout']), (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  });
  if (gateway !== undefined) {
    return gateway.listen(server, o.host, o.port, o.limits.maxConnections).then((front) => ({ ...listener, server: front as unknown as Http2Server }));
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve(listener);
    });
  });
}
