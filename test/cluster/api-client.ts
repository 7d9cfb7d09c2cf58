// Just enough HTTPS client to bring the cluster up (health checks, the fake node) with the admin certificate.
import { request } from 'node:https';

export interface ApiCredentials {
  url: string;
  ca: string;
  cert: string;
  key: string;
}

export interface ApiResponse {
  status: number;
  body: string;
}

export function apiRequest(creds: ApiCredentials, method: string, path: string, body?: unknown, timeoutMs = 5_000): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, creds.url);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        ca: creds.ca,
        cert: creds.cert,
        key: creds.key,
        timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.href} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
