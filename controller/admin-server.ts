// The controller's admin HTTP endpoint: /live (process is up), /ready (every
// readiness check passes), /metrics (Prometheus text from prom-client).
import http from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from '../proto/prom.ts';

export interface ReadinessCheck {
  name: string;
  ok(): boolean;
}

export interface AdminServerOptions {
  host: string;
  port: number;
  logger: Logger;
  metrics: Registry;
  checks: ReadinessCheck[];
  /** Read-only JSON views, by path (e.g. /policies). */
  views?: Record<string, () => unknown>;
}

export class AdminServer {
  readonly #opts: AdminServerOptions;
  readonly #server: http.Server;

  constructor(opts: AdminServerOptions) {
    this.#opts = opts;
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const addr = this.#server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : this.#opts.port;
    this.#opts.logger.info({ component: 'admin', address: this.#opts.host, port }, 'admin server listening (/live /ready /metrics)');
    return port;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/live') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/ready') {
      const failing = this.#opts.checks.filter((c) => !c.ok()).map((c) => c.name);
      if (failing.length === 0) res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
      else res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${failing.join(', ')}\n`);
    } else if (url === '/metrics') {
      try {
        const body = await this.#opts.metrics.metrics();
        res.writeHead(200, { 'content-type': this.#opts.metrics.contentType }).end(body);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`);
      }
    } else if (url !== undefined && this.#opts.views?.[url] !== undefined && Object.hasOwn(this.#opts.views, url)) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.#opts.views[url]!(), null, 2) + '\n');
    } else {
      const views = Object.keys(this.#opts.views ?? {});
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; try /live, /ready, /metrics${views.map((v) => `, ${v}`).join('')}\n`);
    }
  }
}
