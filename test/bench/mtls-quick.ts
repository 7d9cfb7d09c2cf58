// A quick look at what mutual TLS costs (not the benchmark: no ghz, no fixed rate, a few seconds a
// side): one plain-text pair and one mTLS pair of sidecars in front of echo apps, called one call at a
// time from a grpc-js client in interleaved rounds; the median of the rounds' p50 and p90 each side.
// Also: inbound TLS handshakes with a client certificate against plain TCP connects, and Certify
// latency. Run: node test/bench/mtls-quick.ts [rounds] [calls per round]. Addresses: 127.0.105.x.
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { ECHO_API, echoClient, type EchoClient } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { certify, identityFlags, readToken, startIdentityController } from '../fixtures/identity.ts';
import { tempDir, writePods, type TestPod } from '../fixtures/local-controller.ts';
import { unary } from '../fixtures/policy.ts';

const NET = '127.0.105';
const rounds = Number(process.argv[2] ?? 8);
const perRound = Number(process.argv[3] ?? 400);
const pods: TestPod[] = [
  { name: 'plain-p', namespace: 'plain', ip: `${NET}.11`, provides: `${ECHO_API}@1.4.0` },
  { name: 'mtls-p', namespace: 'mtls', ip: `${NET}.12`, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'plain-c', namespace: 'plain', ip: `${NET}.21` },
  { name: 'mtls-c', namespace: 'mtls', ip: `${NET}.22`, serviceAccount: 'client' },
  ...Array.from({ length: 10 }, (_, i) => ({ name: `certify-${i}`, namespace: 'mtls', serviceAccount: 'x' })),
];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const median = (xs: number[]): number => pct(xs, 50);

async function round(c: EchoClient, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await unary(c, { text: 'x', payload: Buffer.alloc(1024) });
    if (!r.ok) throw new Error(r.err.message);
    out.push(r.ms);
  }
  return out;
}

async function handshakes(host: string, n: number, creds?: { key: string; cert: string; ca: Buffer }): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const s = creds === undefined
        ? net.connect({ host, port: 15006 }, () => { s.destroy(); resolve(); })
        : tls.connect({ host, port: 15006, ...creds, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }, () => { s.destroy(); resolve(); });
      s.on('error', reject);
    });
  }
  return (performance.now() - t0) / n;
}

const podsFile = path.join(tempDir('mtls-quick'), 'pods.yaml');
writePods(podsFile, pods);
const ctl = await startIdentityController({ podsFile, host: `${NET}.1` });
try {
  await Promise.all([startEcho({ host: `${NET}.11`, port: 50051, name: 'plain', version: '1.4.0' }), startEcho({ host: `${NET}.12`, port: 50051, name: 'mtls', version: '1.4.0' })]);
  await Promise.all([
    startSidecar({ ip: `${NET}.11`, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0`, podName: 'plain-p', extra: ['--namespace', 'plain'] }),
    startSidecar({ ip: `${NET}.21`, discovery: ctl.target, appPort: 50099, requires: `${ECHO_API}@^1.2`, podName: 'plain-c', extra: ['--namespace', 'plain'] }),
    startSidecar({ ip: `${NET}.12`, discovery: ctl.identityTarget, appPort: 50051, provides: `${ECHO_API}@1.4.0`, podName: 'mtls-p', extra: ['--namespace', 'mtls', ...identityFlags(ctl, 'mtls', 'mtls-p')] }),
    startSidecar({ ip: `${NET}.22`, discovery: ctl.identityTarget, appPort: 50099, requires: `${ECHO_API}@^1.2`, podName: 'mtls-c', extra: ['--namespace', 'mtls', ...identityFlags(ctl, 'mtls', 'mtls-c')] }),
  ]);
  const clients = { plain: echoClient(`${NET}.21:15001`), mtls: echoClient(`${NET}.22:15001`) };
  await round(clients.plain, 200);
  await round(clients.mtls, 200);
  const res: Record<'plain' | 'mtls', { p50: number[]; p90: number[]; p10: number[] }> = { plain: { p50: [], p90: [], p10: [] }, mtls: { p50: [], p90: [], p10: [] } };
  for (let r = 0; r < rounds; r++) {
    const order: ('plain' | 'mtls')[] = r % 2 === 0 ? ['plain', 'mtls'] : ['mtls', 'plain'];
    for (const side of order) {
      const ms = await round(clients[side], perRound);
      res[side].p50.push(pct(ms, 50));
      res[side].p90.push(pct(ms, 90));
      res[side].p10.push(pct(ms, 10));
    }
  }
  const mine = await certify(ctl, await readToken(ctl, 'mtls', 'mtls-c'));
  if (!mine.ok) throw new Error(mine.details);
  const creds = { key: mine.key, cert: mine.res.certificateChain.join(''), ca: ctl.bundle };
  const tcp = await handshakes(`${NET}.12`, 200);
  const hs = await handshakes(`${NET}.12`, 200, creds);
  const certifyMs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const token = await readToken(ctl, 'mtls', `certify-${i}`);
    for (let j = 0; j < 5; j++) {
      const t0 = performance.now();
      const o = await certify(ctl, token);
      if (!o.ok) throw new Error(o.details);
      certifyMs.push(performance.now() - t0);
    }
  }
  const f = (x: number): string => x.toFixed(3);
  console.log(JSON.stringify({
    note: 'quick interleaved comparison, c=1 grpc-js client, 1 KiB payload; not bench:sidecar',
    rounds, perRound,
    plain: { p50: f(median(res.plain.p50)), p90: f(median(res.plain.p90)), p10: f(median(res.plain.p10)) },
    mtls: { p50: f(median(res.mtls.p50)), p90: f(median(res.mtls.p90)), p10: f(median(res.mtls.p10)) },
    addedP50Ms: f(median(res.mtls.p50) - median(res.plain.p50)),
    handshakeMs: { tcpConnect: f(tcp), tls13WithClientCert: f(hs) },
    certifyMs: { p50: f(pct(certifyMs, 50)), p90: f(pct(certifyMs, 90)), note: 'fresh grpc-js TLS channel per call (includes its handshake)' },
  }, null, 2));
  clients.plain.close();
  clients.mtls.close();
} finally {
  await stopAll();
  await ctl.stop();
}
