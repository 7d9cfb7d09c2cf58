// The floor for the sidecar benchmark: the leanest HTTP/2 pass-through Node can be, one process per hop.
//   node --max-semi-space-size=4 --max-old-space-size=128 test/bench/lean-proxy.ts --listen 127.0.9.12:15001 --upstream 127.0.9.11:15006
// Each incoming stream becomes a stream on one pooled h2c session to --upstream: request headers passed
// as the raw list, request and response data passed chunk by chunk with backpressure, response headers,
// trailers and trailers-only answers passed, a reset passed either way. No codec, no routing, no metrics,
// no limits. Transport settings are the sidecar's (sidecar/h2-listener.ts, sidecar/connection.ts): 1 MiB
// stream windows, 16 MiB session windows, no push, Nagle off, 1000 streams per connection, so the
// difference to a qbasis pair is what qbasis does per call, not tuning. Prints `listening <host>:<port>`.
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import module from 'node:module';
import net from 'node:net';
import process from 'node:process';
import { parseArgs } from 'node:util';

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;
const STREAM_WINDOW = 1024 * 1024;
const SESSION_WINDOW = 16 * 1024 * 1024;

function hostPort(s: string | undefined, flag: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(s ?? '');
  if (!m) {
    process.stderr.write(`lean-proxy: ${flag} host:port is required (got ${s ?? 'nothing'})\n`);
    process.exit(2);
  }
  return { host: m[1]!, port: Number(m[2]) };
}

const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' } } });
const listen = hostPort(values.listen, '--listen');
const upstream = hostPort(values.upstream, '--upstream');

let pooled: ClientHttp2Session | undefined;
function session(): ClientHttp2Session {
  if (pooled !== undefined && !pooled.closed && !pooled.destroyed) return pooled;
  const s = http2.connect(`http://${upstream.host}:${upstream.port}`, {
    createConnection: () => net.connect({ host: upstream.host, port: upstream.port, noDelay: true }),
    settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
    maxSessionMemory: 64,
  });
  const drop = (): void => {
    if (pooled === s) pooled = undefined;
  };
  s.on('error', drop);
  s.once('goaway', drop);
  s.once('close', drop);
  s.once('connect', () => {
    try {
      s.setLocalWindowSize(SESSION_WINDOW);
    } catch {
      // only an optimisation
    }
  });
  pooled = s;
  return s;
}

function relay(down: ServerHttp2Stream, flags: number, raw: string[]): void {
  down.on('error', noop);
  let up: ClientHttp2Stream;
  const requestEnded = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
  try {
    up = session().request(raw, { endStream: requestEnded });
  } catch {
    down.close(NGHTTP2_REFUSED_STREAM);
    return;
  }
  up.on('error', noop);
  let upDone = false;
  let trailers: IncomingHttpHeaders | undefined;

  // request: down → up
  if (!requestEnded) {
    down.on('data', (chunk: Buffer) => {
      if (!up.write(chunk)) {
        down.pause();
        up.once('drain', () => down.resume());
      }
    });
    down.on('end', () => up.end());
  }

  // response: up → down
  up.on('response', (_h, f: number, rawResponse: string[]) => {
    if (down.destroyed) return;
    try {
      if ((f & NGHTTP2_FLAG_END_STREAM) !== 0) {
        upDone = true;
        down.respond(rawResponse, { endStream: true }); // trailers-only
      } else down.respond(rawResponse, { waitForTrailers: true });
    } catch {
      // down went away meanwhile
    }
  });
  up.on('data', (chunk: Buffer) => {
    if (down.destroyed) return;
    if (!down.write(chunk)) {
      up.pause();
      down.once('drain', () => up.resume());
    }
  });
  up.on('trailers', (t: IncomingHttpHeaders) => {
    trailers = t;
  });
  up.on('end', () => {
    upDone = true;
    if (down.headersSent && !down.writableEnded && !down.destroyed) down.end();
  });
  down.on('wantTrailers', () => {
    try {
      if (trailers !== undefined) down.sendTrailers(trailers as Record<string, string | string[]>);
      else down.close(NGHTTP2_NO_ERROR);
    } catch {
      // down went away meanwhile
    }
  });

  // resets, either way
  up.on('close', () => {
    if (down.closed || down.destroyed) return;
    const code = up.rstCode ?? NGHTTP2_NO_ERROR;
    if (code !== NGHTTP2_NO_ERROR || !upDone) {
      if (!down.headersSent) {
        try {
          down.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'upstream stream closed' }, { endStream: true });
          return;
        } catch {
          // fall through to the reset
        }
      }
      down.close(code === NGHTTP2_NO_ERROR ? NGHTTP2_CANCEL : code);
    }
  });
  down.on('close', () => {
    if (upDone || up.closed || up.destroyed) return;
    up.close(NGHTTP2_CANCEL);
  });
}

const server = http2.createServer({
  settings: { enablePush: false, initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: 1000 },
  maxSessionMemory: 32,
});
server.on('session', (s) => {
  s.on('error', noop);
  s.once('connect', () => {
    try {
      s.setLocalWindowSize(SESSION_WINDOW);
    } catch {
      // only an optimisation
    }
  });
});
server.on('connection', (sock: net.Socket) => sock.setNoDelay(true));
server.on('stream', (stream: ServerHttp2Stream, _headers: IncomingHttpHeaders, flags: number, raw: string[]) => relay(stream, flags, raw));
server.on('error', (err: Error) => {
  process.stderr.write(`lean-proxy: ${err.message}\n`);
  process.exit(1);
});
server.listen(listen.port, listen.host, () => {
  process.stdout.write(`listening ${listen.host}:${listen.port}\n`);
  module.flushCompileCache?.();
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => process.exit(0));

function noop(): void {}
