// The real node's cluster DNS: answers `<service>.<namespace>.svc.cluster.local` A queries with the Service's
// ClusterIP, read from the API server per query, on the node's bridge address (the kubelet's clusterDNS), so
// pods reach Services by name as in any cluster (the injected sidecar dials `qbasis-discovery.<ns>.svc`).
// Everything else is NXDOMAIN: nothing is forwarded off the machine. Stands in for CoreDNS, whose module is
// large to build here; UDP only, one question per query.
//   node test/cluster/cluster-dns.ts --listen 198.18.0.1 --node-dir CLUSTER_DIR/node
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { apiRequest, type ApiCredentials } from './api-client.ts';

const SUFFIX = '.svc.cluster.local';
const TYPE_A = 1;
const CLASS_IN = 1;

interface Question {
  id: number;
  rd: number;
  name: string;
  type: number;
  cls: number;
  /** The question section as sent, echoed in the answer. */
  raw: Buffer;
}

/** The header and first question of a query; undefined for anything malformed or not a query. */
export function parseQuery(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.length > 512) return undefined;
  const flags = msg.readUInt16BE(2);
  if ((flags & 0x8000) !== 0 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off]!;
    if (len === 0) break;
    if (len > 63 || off + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1').toLowerCase());
    off += 1 + len;
  }
  if (off + 5 > msg.length) return undefined;
  return { id: msg.readUInt16BE(0), rd: (flags >> 8) & 1, name: labels.join('.'), type: msg.readUInt16BE(off + 1), cls: msg.readUInt16BE(off + 3), raw: msg.subarray(12, off + 5) };
}

/** An answer to q: rcode 0 or 3 (NXDOMAIN), and one A record when ip is given. */
export function answer(q: Question, rcode: number, ip?: string): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  header.writeUInt16BE(0x8400 | (q.rd << 8) | rcode, 2); // QR, AA, RD echoed
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(ip === undefined ? 0 : 1, 6);
  if (ip === undefined) return Buffer.concat([header, q.raw]);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  rr.writeUInt16BE(TYPE_A, 2);
  rr.writeUInt16BE(CLASS_IN, 4);
  rr.writeUInt32BE(5, 6); // TTL: Services come and go in tests
  rr.writeUInt16BE(4, 10);
  ip.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
  return Buffer.concat([header, q.raw, rr]);
}

/** `<svc>.<ns>` of a cluster Service name, else undefined. */
export function serviceOf(name: string): { service: string; namespace: string } | undefined {
  if (!name.endsWith(SUFFIX)) return undefined;
  const parts = name.slice(0, -SUFFIX.length).split('.');
  if (parts.length !== 2 || !parts.every((p) => /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p))) return undefined;
  return { service: parts[0]!, namespace: parts[1]! };
}

async function clusterIP(creds: ApiCredentials, svc: { service: string; namespace: string }): Promise<string | undefined> {
  const r = await apiRequest(creds, 'GET', `/api/v1/namespaces/${svc.namespace}/services/${svc.service}`, undefined, 2_000);
  if (r.status !== 200) return undefined;
  const ip = (JSON.parse(r.body.slice(0, 1 << 20)) as { spec?: { clusterIP?: string } }).spec?.clusterIP;
  return ip !== undefined && /^\d{1,3}(\.\d{1,3}){3}$/.test(ip) ? ip : undefined;
}

function main(): void {
  const { values } = parseArgs({ options: { listen: { type: 'string' }, port: { type: 'string' }, 'node-dir': { type: 'string' } } });
  if (values['node-dir'] === undefined || values.listen === undefined) throw new Error('usage: cluster-dns.ts --listen ADDR --node-dir CLUSTER_DIR/node [--port 53]');
  const dir = dirname(values['node-dir']);
  const pki = join(dir, 'pki');
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { apiUrl: string };
  const creds: ApiCredentials = { url: state.apiUrl, ca: readFileSync(join(pki, 'ca.crt'), 'utf8'), cert: readFileSync(join(pki, 'admin.crt'), 'utf8'), key: readFileSync(join(pki, 'admin.key'), 'utf8') };
  const sock = createSocket('udp4');
  sock.on('message', (msg, from) => {
    const q = parseQuery(msg);
    if (q === undefined) return;
    const svc = serviceOf(q.name);
    const send = (b: Buffer): void => sock.send(b, from.port, from.address);
    if (svc === undefined || q.cls !== CLASS_IN) return send(answer(q, 3));
    clusterIP(creds, svc).then((ip) => {
      if (ip === undefined) send(answer(q, 3));
      else send(q.type === TYPE_A ? answer(q, 0, ip) : answer(q, 0)); // the name exists; no AAAA
    }, () => send(answer(q, 2))); // SERVFAIL: the API server did not answer
  });
  sock.bind(Number(values.port ?? '53'), values.listen, () => process.stdout.write(`cluster-dns: serving ${SUFFIX} on ${values.listen}:${values.port ?? '53'}\n`));
  process.on('SIGTERM', () => sock.close(() => process.exit(0)));
}

if (import.meta.main) main();
