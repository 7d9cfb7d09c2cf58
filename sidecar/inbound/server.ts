// The inbound listener (default :15006): peer sidecars open one stream per call. The path and the
// caller's range are checked before the app is bothered; frames are checked as they arrive.
import http2 from 'node:http2';
import type { Logger } from 'pino';
import { Status, type ErrorCode } from '../../proto/errors.ts';
import { createH2Listener, type H2Listener, type ListenerLimits } from '../h2-listener.ts';
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
}

export function startInbound(o: InboundOptions): Promise<H2Listener> {
  const listener = createH2Listener(o.limits);
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
