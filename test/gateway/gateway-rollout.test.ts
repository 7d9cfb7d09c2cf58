// A rolling upgrade where the providers are legacy HTTP/JSON apps behind their gateways, under load from a
// legacy HTTP caller and a gRPC caller (both require ^2.0): the 2.0.0 pods are replaced by 2.1.0 pods one
// by one (new pod listed, started, Ready; old pod terminating, removed, drained), while a 3.0.0 legacy pod
// is up all along. Every call must succeed and land on a version in ^2.0.
// Addresses: 127.0.122.x (controller .1; legacy providers .11-.15; legacy caller .21; gRPC caller .22).
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { echoClient, ECHO_API, type EchoClient, type EchoResponse } from '../fixtures/echo-client.ts';
import { startLegacyEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { REPO, replacePods, startController, tempDir, writePods, type RunningController, type TestPod } from '../fixtures/local-controller.ts';
import { satisfies } from '../../proto/versions.ts';

const NET = '127.0.122';
const SCHEMA = path.join(REPO, 'test/fixtures/legacy/echo-http.proto');
const HTTP_SIDECAR = ['--app-protocol', 'http', '--schema', SCHEMA];
const APP_PORT = 50051;
const RANGE = '^2.0';
const LEGACY = { 'qbasis.io/app-protocol': 'http', 'qbasis.io/schema': 'echo-schema' };
let ctl: RunningController;
let podsFile: string;
let grpcCaller: EchoClient;

interface Pod extends TestPod { version: string; sidecar?: Proc; app?: Proc; deleting?: boolean }

const pods: Pod[] = [];
const listed = (): TestPod[] => pods.map((p) => ({ name: p.name, ip: p.ip!, provides: `${ECHO_API}@${p.version}`, annotations: LEGACY, ready: p.ready ?? true, ...(p.deleting ? { deleting: true } : {}) }));

async function startPod(p: Pod): Promise<void> {
  p.app = await startLegacyEcho({ host: p.ip!, port: APP_PORT, name: p.name, version: p.version });
  p.sidecar = await startSidecar({ ip: p.ip!, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@${p.version}`, podName: p.name, extra: HTTP_SIDECAR, readyTimeoutMs: 90_000 });
}

before(async () => {
  podsFile = path.join(tempDir('gateway-rollout'), 'pods.yaml');
  pods.push({ name: 'legacy-a', ip: `${NET}.11`, version: '2.0.0' }, { name: 'legacy-b', ip: `${NET}.12`, version: '2.0.0' }, { name: 'legacy-next', ip: `${NET}.15`, version: '3.0.0' });
  writePods(podsFile, listed());
  ctl = await startController({ podsFile, host: `${NET}.1` });
  await Promise.all(pods.map(startPod));
  await Promise.all([
    startSidecar({ ip: `${NET}.21`, discovery: ctl.target, appPort: 1, requires: `${ECHO_API}@${RANGE}`, podName: 'legacy-caller', extra: HTTP_SIDECAR }),
    startSidecar({ ip: `${NET}.22`, discovery: ctl.target, appPort: 1, requires: `${ECHO_API}@${RANGE}`, podName: 'grpc-caller' }),
  ]);
  grpcCaller = echoClient(`${NET}.22:15001`);
});

after(async () => {
  grpcCaller?.close();
  await stopAll();
  await ctl?.stop();
});

interface Counts { calls: number; failed: number; misrouted: number; byVersion: Map<string, number>; errors: Map<string, number> }

function tally(c: Counts, servedBy: string | undefined, error: string | undefined): void {
  c.calls++;
  if (error !== undefined) {
    c.failed++;
    c.errors.set(error, (c.errors.get(error) ?? 0) + 1);
    return;
  }
  const version = servedBy?.split('@')[1] ?? 'none';
  c.byVersion.set(version, (c.byVersion.get(version) ?? 0) + 1);
  if (!satisfies(version, RANGE)) c.misrouted++;
}

/** Both callers at `rps` each until stopped. */
function startLoad(rps: number): { counts: { http: Counts; grpc: Counts }; stop: () => Promise<void> } {
  const fresh = (): Counts => ({ calls: 0, failed: 0, misrouted: 0, byVersion: new Map(), errors: new Map() });
  const counts = { http: fresh(), grpc: fresh() };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>): void => {
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };
  const httpCall = (): Promise<void> => new Promise((resolve) => {
    const req = http.request({ host: `${NET}.21`, port: 15001, method: 'POST', path: '/v1/echo', agent, headers: { 'content-type': 'application/json', 'grpc-timeout': '5S' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
        if (res.statusCode !== 200) tally(counts.http, undefined, `HTTP ${res.statusCode} ${body.slice(0, 200)}`);
        else tally(counts.http, (JSON.parse(body) as { servedBy?: string }).servedBy, undefined);
        resolve();
      });
    });
    req.on('error', (e) => {
      tally(counts.http, undefined, e.message);
      resolve();
    });
    req.end(JSON.stringify({ text: 'rollout' }));
  });
  const grpcCall = (): Promise<void> => new Promise((resolve) => {
    grpcCaller.Unary({ text: 'rollout' }, { deadline: Date.now() + 5000 }, (err: Error | null, res: EchoResponse) => {
      tally(counts.grpc, res?.served_by, err === null ? undefined : err.message);
      resolve();
    });
  });
  const timer = setInterval(() => {
    track(httpCall());
    track(grpcCall());
  }, 1000 / rps);
  return {
    counts,
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...pending]);
      agent.destroy();
    },
  };
}

test('a rolling upgrade of legacy HTTP providers under load: 0 failed, 0 misrouted, for a legacy and a gRPC caller', async () => {
  const load = startLoad(40);
  const propagate = 1500;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  await sleep(2000);
  const replacements: Pod[] = [{ name: 'legacy-c', ip: `${NET}.13`, version: '2.1.0' }, { name: 'legacy-d', ip: `${NET}.14`, version: '2.1.0' }];
  for (const [i, next] of replacements.entries()) {
    const old = pods[i === 0 ? pods.findIndex((p) => p.name === 'legacy-a') : pods.findIndex((p) => p.name === 'legacy-b')]!;
    // The new pod: listed (not Ready), started, then Ready.
    next.ready = false;
    pods.push(next);
    replacePods(podsFile, listed());
    await startPod(next);
    next.ready = true;
    replacePods(podsFile, listed());
    await sleep(propagate);
    // The old one: terminating, then gone; its sidecar drains before its app stops, as the kubelet does it.
    old.deleting = true;
    replacePods(podsFile, listed());
    await sleep(propagate);
    pods.splice(pods.indexOf(old), 1);
    replacePods(podsFile, listed());
    await old.sidecar!.stop();
    await old.app!.stop();
    await sleep(1000);
  }
  await sleep(2000);
  await load.stop();
  for (const [who, c] of Object.entries(load.counts)) {
    process.stdout.write(`# ${who} caller: ${c.calls} calls, ${c.failed} failed, ${c.misrouted} misrouted, by version ${JSON.stringify(Object.fromEntries(c.byVersion))}\n`);
    assert.ok(c.calls > 100, `${who} made ${c.calls} calls`);
    assert.equal(c.failed, 0, `${who}: ${JSON.stringify(Object.fromEntries(c.errors))}`);
    assert.equal(c.misrouted, 0, `${who}: ${JSON.stringify(Object.fromEntries(c.byVersion))}`);
    assert.ok((c.byVersion.get('2.1.0') ?? 0) > 0, `${who}: 2.1.0 served calls: ${JSON.stringify(Object.fromEntries(c.byVersion))}`);
    assert.ok((c.byVersion.get('2.0.0') ?? 0) > 0, `${who}: 2.0.0 served calls before it went`);
    assert.equal(c.byVersion.get('3.0.0') ?? 0, 0, `${who}: never 3.0.0`);
  }
});
