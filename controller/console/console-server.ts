// The read-only web console (DESIGN.md "Console"): `/` the page, `/api/v1/mesh` one JSON snapshot,
// `/api/v1/events` Server-Sent Events of changes (event-stream.ts). GET and HEAD only.
// Security: a strict Content-Security-Policy (scripts and styles from this origin only, no inline
// code, nothing framed), every name rendered as text by the page (never as HTML), no secrets in any
// response, and requests whose Host is not this console's own address are refused with 421 (a DNS-
// rebinding page on another origin cannot read the mesh through the victim's browser).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ControllerComponent } from '../component.ts';
import { shown } from '../../cli/flags.ts';
import { EventStream } from './event-stream.ts';
import type { MeshView } from './mesh-view.ts';

/** Where `npm run build:console` writes the page's bundle (page/build.ts). */
export const PAGE_DIST = path.join(import.meta.dirname, 'page', 'dist');
export const DEFAULT_CONSOLE_PORT = 15014;

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const FAVICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0072b2"/><path d="M4 8a4 4 0 1 1 6.5 3.1L12 13" stroke="#fff" stroke-width="2" fill="none"/></svg>';

export interface ConsoleAddress {
  host: string;
  port: number;
}

/** `HOST:PORT` with HOST an IP literal (`[v6]:port` for IPv6); why not, or the parts. */
export function parseConsoleAddress(text: string): ConsoleAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || net.isIP(host) === 0 || (m[1] !== undefined && net.isIP(host) !== 6) || !(port >= 0 && port <= 65535)) {
    return 'expected HOST:PORT with an IP address, e.g. 127.0.0.1:15014 or [::1]:15014 (port 0: any free port)';
  }
  return { host, port };
}

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

const WILDCARD = new Set(['0.0.0.0', '::']);

function isLoopback(ip: string): boolean {
  return net.isIPv4(ip) ? ip.startsWith('127.') : ip === '::1';
}

/**
 * The Host values this console answers: its bound `host:port`; on a loopback bind also `localhost` and
 * any loopback IP literal, with any port (a port-forward's local port is not the bound one: `qbasis
 * console`); on a wildcard bind any IP literal with the port. What defends against DNS rebinding is the
 * name: a rebinding page's requests carry its own DNS name, never `localhost` or an IP literal. Plus
 * the extra ones given (`--console-allowed-hosts`).
 */
export function hostAllowed(hostHeader: string | undefined, bound: ConsoleAddress, extra: readonly string[]): boolean {
  if (hostHeader === undefined) return false;
  const h = hostHeader.toLowerCase();
  if (h === hostPort(bound.host, bound.port) || extra.includes(h)) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(h);
  const name = m?.[1] ?? m?.[2];
  if (name === undefined) return false;
  if (isLoopback(bound.host)) return name === 'localhost' || (net.isIP(name) !== 0 && isLoopback(name));
  if (WILDCARD.has(bound.host)) return net.isIP(name) !== 0 && Number(m![3]) === bound.port;
  return false;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function asset(body: Buffer | string, type: string): Asset {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return { body: b, type, etag: `"${createHash('sha256').update(b).digest('base64url').slice(0, 22)}"` };
}

function indexHtml(js: Asset, css: Asset): string {
  const v = (a: Asset): string => encodeURIComponent(a.etag.slice(1, 9));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qbasis console</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/console.css?v=${v(css)}">
<script type="module" src="/console.js?v=${v(js)}"></script>
</head>
<body>
<noscript>The qbasis console needs JavaScript. The same data is at <a href="/api/v1/mesh">/api/v1/mesh</a>.</noscript>
<div id="app"><p class="loading">Loading the mesh…</p></div>
</body>
</html>
`;
}

export interface ConsoleServerOptions {
  view: MeshView;
  address: ConsoleAddress;
  /** Further Host values to answer (lower case host:port). */
  allowedHosts?: readonly string[];
  logger: Logger;
  maxClients?: number;
  /** Where the page's bundle is (default PAGE_DIST). */
  distDir?: string;
}

export class ConsoleServer implements ControllerComponent {
  readonly name = 'console';
  readonly #o: ConsoleServerOptions;
  readonly #log: Logger;
  readonly #server: http.Server;
  readonly #events: EventStream;
  #bound: ConsoleAddress;
  #assets = new Map<string, Asset>();
  #missing: string | undefined;
  #listening = false;

  constructor(o: ConsoleServerOptions) {
    this.#o = o;
    this.#log = o.logger.child({ component: 'console' });
    this.#bound = { ...o.address };
    this.#events = new EventStream({ view: o.view, ...(o.maxClients !== undefined ? { maxClients: o.maxClients } : {}) });
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.maxConnections = 256;
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
  }

  /** Open event streams. */
  get clients(): number {
    return this.#events.clients;
  }

  url(): string {
    return `http://${hostPort(this.#bound.host, this.#bound.port)}/`;
  }

  ready(): boolean {
    return this.#listening;
  }

  async start(): Promise<void> {
    this.#loadAssets();
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.address.port, this.#o.address.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    }).catch((err: Error) => {
      throw new Error(`cannot serve the console on ${hostPort(this.#o.address.host, this.#o.address.port)}: ${err.message}`);
    });
    const a = this.#server.address() as net.AddressInfo;
    this.#bound = { host: this.#o.address.host, port: a.port };
    this.#listening = true;
    this.#events.start();
    this.#log.info({ url: this.url(), port: a.port, page: this.#missing === undefined ? 'built' : 'missing' }, 'console listening');
  }

  async stop(): Promise<void> {
    this.#events.stop();
    this.#listening = false;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #loadAssets(): void {
    const dir = this.#o.distDir ?? PAGE_DIST;
    try {
      const js = asset(fs.readFileSync(path.join(dir, 'console.js')), 'text/javascript; charset=utf-8');
      const css = asset(fs.readFileSync(path.join(dir, 'console.css')), 'text/css; charset=utf-8');
      this.#assets.set('/console.js', js);
      this.#assets.set('/console.css', css);
      this.#assets.set('/', asset(indexHtml(js, css), 'text/html; charset=utf-8'));
      this.#missing = undefined;
    } catch (err) {
      this.#missing = `the console's page is not built (${(err as NodeJS.ErrnoException).code ?? (err as Error).message} in ${dir}): run 'npm run build:console'; /api/v1/mesh and /api/v1/events work without it`;
      this.#log.warn({ code: 'QB_CONSOLE_PAGE_MISSING' }, this.#missing);
    }
    this.#assets.set('/favicon.svg', asset(FAVICON, 'image/svg+xml'));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const text = (status: number, body: string, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body + '\n');
    };
    if (!hostAllowed(req.headers.host, this.#bound, this.#o.allowedHosts ?? [])) {
      this.#log.warn({ host: req.headers.host ?? null, remote: req.socket.remoteAddress }, 'console request refused: foreign Host header');
      return text(421, `qbasis console: refused: the Host header ${req.headers.host === undefined ? 'is missing' : shown(req.headers.host)}; expected this console's own address, ${hostPort(this.#bound.host, this.#bound.port)} (open ${this.url()}). Requests naming another host are refused so that a page elsewhere cannot read the mesh through a DNS name pointed at this address.`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, `qbasis console: ${shown(req.method ?? '')} is not allowed: the console is read-only; expected GET or HEAD`, { allow: 'GET, HEAD' });
    const pathname = (req.url ?? '/').split('?')[0]!;
    if (pathname === '/api/v1/mesh') {
      const body = this.#o.view.snapshotJson();
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (pathname === '/api/v1/events') {
      if (req.method === 'HEAD') return text(200, '', { 'content-type': 'text/event-stream' });
      if (!this.#events.accept(res, SECURITY_HEADERS)) text(503, `qbasis console: too many open event streams (${this.#events.clients}); close a page and reload`, { 'retry-after': '5' });
      return;
    }
    if (pathname === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS);
      res.end();
      return;
    }
    if (pathname === '/' && this.#missing !== undefined) return text(503, `qbasis console: ${this.#missing}`);
    const a = this.#assets.get(pathname);
    if (a === undefined) return text(404, `qbasis console: no such page ${shown(pathname)}; the console serves /, /api/v1/mesh and /api/v1/events`);
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, { ...SECURITY_HEADERS, etag: a.etag });
      res.end();
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': a.type, 'content-length': a.body.length, etag: a.etag, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  }
}
