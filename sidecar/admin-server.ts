// Admin port (default :15020): /live, /started, /ready, /metrics, /routes, POST /shutdown. Plain
// node:http, off the hot path. /started (a snapshot for every required API) is the native-sidecar
// startupProbe: it must not wait for the app, which Kubernetes starts only after it. /ready also needs
// the app port to accept connections when this pod provides an API.
// Who may ask what: the probes and /metrics answer anyone who reaches the pod IP (the kubelet,
// Prometheus); /routes (every endpoint's pod, IP and version) and POST /shutdown answer only callers
// inside the pod: a loopback source, or the pod's own IP as source (see fromThisPod).
import type http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.ts';

// Required, not imported: an ESM import of node:http makes Node build its ESM facade, which reads every
// export, lazy ones too, and so loads the whole undici bundle (fetch, WebSocket): +14 MB RSS per sidecar.
const { createServer } = createRequire(import.meta.url)('node:http') as typeof http;

export interface AdminOptions {
  /** The pod IP, and in pods also 127.0.0.1 (so the app's `curl -X POST localhost:15020/shutdown` works). */
  hosts: string[];
  port: number;
  log: Logger;
  metrics: Metrics;
  /** The app /ready checks accepts connections; absent: not checked (only pods that provide an API need their app reachable). */
  app: { host: string; port: number } | undefined;
  /** Required APIs that have no snapshot yet. */
  missingSnapshots(): string[];
  draining(): boolean;
  /** Mesh identity on: why this sidecar cannot serve yet (no certificate), or undefined. */
  identity?(): string | undefined;
  routes(): unknown;
  shutdown(reason: string): void;
}

const APP_PROBE_CACHE_MS = 1000;

/**
 * A caller inside this pod: a loopback source address, or the address it dialled (the pod's own IP:
 * a process in the pod that dials the pod IP). Another pod arrives from its own, different IP. In
 * local mode every "pod" is a 127.x address: the rule still holds when the caller binds its own.
 */
export function fromThisPod(sock: net.Socket): boolean {
  const remote = sock.remoteAddress;
  if (remote === undefined) return false;
  if (remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1') return true;
  return remote === sock.localAddress;
}

export interface AdminServer {
  close(): void;
}

export async function startAdmin(o: AdminOptions): Promise<AdminServer> {
  let probeAt = -Infinity;
  let probeOk = false;
  let probing: Promise<boolean> | undefined;
  const appAccepts = (): Promise<boolean> => {
    if (performance.now() - probeAt < APP_PROBE_CACHE_MS) return Promise.resolve(probeOk);
    probing ??= new Promise<boolean>((resolve) => {
      const sock = net.connect({ host: o.app!.host, port: o.app!.port });
      const done = (ok: boolean): void => {
        sock.destroy();
        probeAt = performance.now();
        probeOk = ok;
        probing = undefined;
        resolve(ok);
      };
      sock.setTimeout(1000, () => done(false));
      sock.once('connect', () => done(true));
      sock.once('error', () => done(false));
    });
    return probing;
  };

  const send = (res: http.ServerResponse, code: number, body: string, type = 'text/plain; charset=utf-8'): void => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    void (async () => {
      if (url === '/live') return send(res, 200, 'live\n');
      if (url === '/started') {
        const missing = o.missingSnapshots();
        if (missing.length > 0) return send(res, 503, `not started: no discovery snapshot yet for ${missing.join(', ')}\n`);
        const id = o.identity?.();
        if (id !== undefined) return send(res, 503, `not started: ${id}\n`);
        return send(res, 200, 'started\n');
      }
      if (url === '/ready') {
        if (o.draining()) return send(res, 503, 'not ready: shutting down\n');
        const missing = o.missingSnapshots();
        if (missing.length > 0) return send(res, 503, `not ready: no discovery snapshot yet for ${missing.join(', ')}\n`);
        const id = o.identity?.();
        if (id !== undefined) return send(res, 503, `not ready: ${id}\n`);
        if (o.app !== undefined && !(await appAccepts())) return send(res, 503, `not ready: the app at ${o.app.host}:${o.app.port} does not accept connections\n`);
        return send(res, 200, 'ready\n');
      }
      if (url === '/metrics') return send(res, 200, await o.metrics.registry.metrics(), o.metrics.registry.contentType);
      if ((url === '/routes' || url === '/shutdown') && !fromThisPod(req.socket)) {
        o.log.warn({ url, method: req.method, remote: req.socket.remoteAddress }, 'admin request from outside the pod refused');
        return send(res, 403, `${url} answers only from inside the pod (loopback); ${req.socket.remoteAddress ?? 'this caller'} is another host\n`);
      }
      if (url === '/routes') return send(res, 200, JSON.stringify(o.routes(), null, 2) + '\n', 'application/json');
      if (url === '/shutdown') {
        if (req.method !== 'POST') return send(res, 405, 'use POST /shutdown\n');
        send(res, 202, 'shutting down\n');
        o.shutdown('POST /shutdown');
        return;
      }
      send(res, 404, 'not found; try /live /started /ready /metrics /routes or POST /shutdown\n');
    })().catch((err: unknown) => {
      o.log.error({ err, url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
    });
  };
  const servers: http.Server[] = [];
  const close = (): void => {
    for (const s of servers) {
      s.close();
      s.closeAllConnections();
    }
  };
  try {
    for (const host of o.hosts) {
      const server = createServer(handle);
      server.keepAliveTimeout = 5000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
    }
  } catch (err) {
    close();
    throw err;
  }
  return { close };
}
