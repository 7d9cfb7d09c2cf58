// Discovery can lag behind the pods (a pod replaced, an IP handed on). The receiving sidecar checks the
// call again on arrival and refuses it before its app sees anything; the calling sidecar then sends the
// call to another compatible endpoint and keeps the stale one out. Real processes on loopback.
// Addresses: 127.0.47.x (controller .1; genuine 2.1.0 pod .11; stale pod .12 that really runs 1.4.0; caller .13).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { echoClient, ECHO_API, type EchoClient, type EchoResponse, type StatsResponse } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';

const NET = '127.0.47';
const GENUINE = `${NET}.11`;
const STALE = `${NET}.12`;
const CALLER = `${NET}.13`;
const APP_PORT = 50051;
let ctl: RunningController;
let podsFile: string;
let client: EchoClient;
let staleApp: EchoClient;

before(async () => {
  podsFile = path.join(tempDir('sidecar-stale'), 'pods.yaml');
  // The pods file (discovery) says both pods serve 2.1.0; the pod at STALE really serves 1.4.0.
  writePods(podsFile, [
    { name: 'echo-genuine', ip: GENUINE, provides: `${ECHO_API}@2.1.0` },
    { name: 'echo-stale', ip: STALE, provides: `${ECHO_API}@2.1.0` },
  ]);
  ctl = await startController({ podsFile, host: `${NET}.1`, adminPort: 18470 });
  await Promise.all([
    startEcho({ host: GENUINE, port: APP_PORT, name: 'echo-genuine', version: '2.1.0' }),
    startEcho({ host: STALE, port: APP_PORT, name: 'echo-stale', version: '1.4.0' }),
  ]);
  await Promise.all([
    startSidecar({ ip: GENUINE, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@2.1.0`, podName: 'echo-genuine' }),
    startSidecar({ ip: STALE, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@1.4.0`, podName: 'echo-stale' }),
    startSidecar({ ip: CALLER, discovery: ctl.target, appPort: APP_PORT, requires: `${ECHO_API}@^2.0`, podName: 'caller' }),
  ]);
  client = echoClient(`${CALLER}:15001`);
  staleApp = echoClient(`${STALE}:${APP_PORT}`);
});

after(async () => {
  client?.close();
  staleApp?.close();
  await stopAll();
  await ctl?.stop();
});

interface RouteEndpoint { pod: string; address: string; version: string; ejection: string; ejections: number }

async function callerEndpoints(): Promise<RouteEndpoint[]> {
  const routes = (await (await fetch(`http://${CALLER}:15020/routes`)).json()) as { requires: Record<string, { endpoints: RouteEndpoint[] }> };
  return routes.requires[ECHO_API]?.endpoints ?? [];
}

function unary(c: EchoClient, text: string): Promise<EchoResponse> {
  return new Promise((resolve, reject) =>
    c.Unary({ text }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: EchoResponse) => (err ? reject(err) : resolve(res))),
  );
}

test('calls refused on arrival by a stale endpoint are sent to a compatible one: no failure, and the stale app never sees a call', async () => {
  const served = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const res = await unary(client, `call-${i}`);
    served.set(res.served_by, (served.get(res.served_by) ?? 0) + 1);
  }
  assert.deepEqual([...served.keys()], ['echo-genuine@2.1.0']);
  const stats = await new Promise<StatsResponse>((resolve, reject) => staleApp.Stats({}, (e: Error | null, r: StatsResponse) => (e ? reject(e) : resolve(r))));
  assert.equal(Number(stats.calls ?? 0), 0, 'the stale pod\'s app was never called');
  // The caller's own view: the stale endpoint was refused on arrival (at least one ejection) and is still kept
  // out (ejected, or on probation: one more refusal ejects it again), the genuine one was never ejected.
  const eps = await callerEndpoints();
  const stale = eps.find((e) => e.address === STALE);
  const genuine = eps.find((e) => e.address === GENUINE);
  assert.ok(stale && genuine, `both endpoints in /routes: ${JSON.stringify(eps)}`);
  assert.ok(stale.ejections >= 1, `the stale endpoint was ejected at least once: ${JSON.stringify(stale)}`);
  assert.ok(stale.ejection === 'ejected' || stale.ejection === 'probation', `the stale endpoint is kept out: ${JSON.stringify(stale)}`);
  assert.equal(genuine.ejection, 'active', `the genuine endpoint serves: ${JSON.stringify(genuine)}`);
  assert.equal(genuine.ejections, 0, `the genuine endpoint was never ejected: ${JSON.stringify(genuine)}`);
  // and each refused call was sent on, counted as a retry for a stale endpoint
  const metrics = await (await fetch(`http://${CALLER}:15020/metrics`)).text();
  const retried = Number(new RegExp(`qbasis_sidecar_retries_total\\{api="${ECHO_API.replaceAll('.', '\\.')}",reason="stale"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
  assert.ok(retried >= stale.ejections, `stale retries ${retried} ≥ ejections ${stale.ejections}`);
});

test('with only the stale endpoint left the caller gets UNAVAILABLE naming the range, never FAILED_PRECONDITION from the wrong pod', async () => {
  writePods(podsFile, [{ name: 'echo-stale', ip: STALE, provides: `${ECHO_API}@2.1.0` }]);
  // wait until the caller's snapshot has dropped the genuine pod (and fail if it never does)
  const deadline = Date.now() + 20_000;
  for (;;) {
    const eps = await callerEndpoints();
    if (eps.length === 1 && eps[0]!.address === STALE) break;
    if (Date.now() > deadline) assert.fail(`the caller still knows ${JSON.stringify(eps)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const err = await unary(client, 'only-stale').then(
    () => assert.fail('expected a refusal'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(err.code, grpc.status.UNAVAILABLE, err.details);
  assert.match(err.details, /\^2\.0/);
});
