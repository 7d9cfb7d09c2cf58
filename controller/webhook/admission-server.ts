// The HTTPS admission endpoint (POST /mutate). The certificate can be swapped while serving: renewals
// reach every replica through the Secret without a restart.
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { admit } from './admission.ts';
import type { AdmissionOutcome } from './admission.ts';
import type { InjectionConfig } from './injection-config.ts';

export interface AdmissionServerOptions {
  host: string;
  port: number;
  cert: string;
  key: string;
  config: InjectionConfig;
  /** Largest request body accepted (the API server sends the whole pod). */
  maxBodyBytes?: number;
  onDecision?: (outcome: AdmissionOutcome, req: { namespace?: string; name?: string; durationMs: number }) => void;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export class AdmissionServer {
  readonly #o: AdmissionServerOptions;
  readonly #server: Server;

  constructor(options: AdmissionServerOptions) {
    this.#o = options;
    this.#server = createServer({ cert: options.cert, key: options.key, minVersion: 'TLSv1.2' }, (req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 30_000;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port, this.#o.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  setCertificate(cert: string, key: string): void {
    this.#server.setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const reply = (code: number, body: unknown) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/live') return reply(200, 'ok\n');
    if (path !== '/mutate') return reply(404, 'not found; the admission endpoint is POST /mutate\n');
    if (req.method !== 'POST') return reply(405, 'POST an AdmissionReview to /mutate\n');
    const max = this.#o.maxBodyBytes ?? 8 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reply(413, `AdmissionReview larger than ${max} bytes\n`);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size > max) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, 'body is not JSON; expected an admission.k8s.io/v1 AdmissionReview\n');
      }
      let outcome: AdmissionOutcome;
      try {
        outcome = admit(body, this.#o.config);
      } catch (err) {
        return reply(400, `${(err as Error).message}\n`);
      }
      const r = (body as { request?: { namespace?: string; name?: string; object?: { metadata?: { name?: string; generateName?: string } } } }).request;
      const name = r?.name ?? r?.object?.metadata?.name ?? r?.object?.metadata?.generateName;
      this.#o.onDecision?.(outcome, { namespace: r?.namespace, name, durationMs: performance.now() - started });
      reply(200, outcome.review);
    });
    req.on('error', (err) => this.#o.log?.('warn', 'admission request failed', { err: err.message }));
  }
}
