// What an attacker (or a broken peer) sends a sidecar: raw HTTP/2 sessions from a chosen source
// address, basis frames built by hand, and scrapes of the sidecar's own counters.
import http2 from 'node:http2';
import net from 'node:net';
import { apiId, encodeFrame, methodId, type BasisHeader } from '../../proto/basis/index.ts';
import { ECHO_API } from '../fixtures/echo-client.ts';
import { admin } from '../fixtures/echo-mesh.ts';

/** EchoRequest{text: "ok"} in protobuf. */
export const OK_PAYLOAD = Buffer.from([0x12, 0x02, 0x6f, 0x6b]);

export function frameHeader(over: Partial<BasisHeader> = {}, method = 'Unary'): BasisHeader {
  return { codec: 1, kind: 'request', gzip: false, encoding: 'protobuf', apiId: apiId(ECHO_API), methodId: methodId(method), major: 1, minor: 2, length: OK_PAYLOAD.length, ...over };
}

export function goodFrame(method = 'Unary'): Buffer {
  return encodeFrame(frameHeader({}, method), OK_PAYLOAD);
}

/** An HTTP/2 session to host:port whose TCP source is `from` (another "pod" on loopback). */
export function connect(host: string, port: number, from?: string): http2.ClientHttp2Session {
  const s = http2.connect(`http://${host}:${port}`, {
    createConnection: () => net.connect({ host, port, ...(from === undefined ? {} : { localAddress: from }) }),
    peerMaxConcurrentStreams: 100_000,
  });
  s.on('error', () => {});
  return s;
}

export interface Answer { status: number; message: string; code: string | undefined; data: Buffer; rstCode: number | undefined }

export function grpcHeaders(path: string, range?: string): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '20S' };
  if (range !== undefined) h['qbasis-range'] = range;
  return h;
}

/** One call with the given DATA chunks; resolves with the status, trailers and any RST_STREAM code. */
export function rawCall(session: http2.ClientHttp2Session, body: Buffer[], opts: { path?: string; range?: string; end?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = session.request(grpcHeaders(opts.path ?? `/${ECHO_API}/Unary`, opts.range));
    const chunks: Buffer[] = [];
    let meta: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (meta = { ...meta, ...h }));
    req.on('trailers', (t) => (meta = { ...meta, ...t }));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('close', () => resolve({
      status: meta['grpc-status'] === undefined ? -1 : Number(meta['grpc-status']),
      message: decodeURIComponent(String(meta['grpc-message'] ?? '')),
      code: meta['qbasis-error-code'] as string | undefined,
      data: Buffer.concat(chunks),
      rstCode: req.rstCode,
    }));
    for (const b of body) req.write(b);
    if (opts.end !== false) req.end();
  });
}

/** The value of one series in the sidecar's /metrics (0 when absent). */
export async function metric(ip: string, series: string): Promise<number> {
  const body = (await admin(ip, '/metrics')).body;
  for (const line of body.split('\n')) if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  return 0;
}

export async function metricsText(ip: string): Promise<string> {
  return (await admin(ip, '/metrics')).body;
}

/** Distinct values of `label` on the lines of `name` that also contain every `filter` pair. */
export function labelValues(text: string, name: string, label: string, filter: Record<string, string> = {}): Set<string> {
  const out = new Set<string>();
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    if (!Object.entries(filter).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    const m = re.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

/** A plain HTTP request to the admin port from a chosen source address. */
export function adminFrom(ip: string, from: string, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = net.connect({ host: ip, port: 15020, localAddress: from }, () => {
      req.write(`${method} ${path} HTTP/1.1\r\nHost: ${ip}:15020\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    let raw = '';
    req.setEncoding('utf8').on('data', (c: string) => (raw += c));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('admin request timed out')));
    req.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      resolve({ status: m ? Number(m[1]) : 0, body: raw.slice(raw.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/**
 * Rapid reset (CVE-2023-44487): on fresh sessions, streams opened and reset in the same turn, in
 * rounds of 200, until `max` resets or 20 s. Returns how many were sent and the first GOAWAY code.
 */
export async function rapidResets(open: () => http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Buffer, max: number): Promise<{ resets: number; goaway: number | undefined }> {
  let resets = 0;
  let goaway: number | undefined;
  const deadline = Date.now() + 20_000;
  while (resets < max && Date.now() < deadline) {
    const s = open();
    s.on('goaway', (code) => (goaway ??= code));
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    for (let round = 0; round < 10 && !s.destroyed && !s.closed; round++) {
      for (let i = 0; i < 200; i++) {
        try {
          const req = s.request(headers);
          req.on('error', () => {});
          req.write(body);
          req.close(http2.constants.NGHTTP2_CANCEL);
          resets++;
        } catch {
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    s.destroy();
  }
  return { resets, goaway };
}
