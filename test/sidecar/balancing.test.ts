// Latency-aware balancing through real sidecars: of two compatible pods, the one answering 150 ms slower
// gets a small share of the calls (P2C over EWMA × in-flight), yet is tried again after its latency is known
// (not starved). (150 ms, not less: on a loaded machine the fast pod's own stalls reach tens of ms and the
// EWMA is peak-sensitive.)
// Addresses: 127.0.45.x (controller .1; fast pod .11; slow pod .13; caller pod .12).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { echoClient, ECHO_API, type EchoClient, type EchoResponse } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';

const NET = '127.0.45';
const FAST = `${NET}.11`;
const SLOW = `${NET}.13`;
const CALLER = `${NET}.12`;
let ctl: RunningController;
let client: EchoClient;

before(async () => {
  const podsFile = path.join(tempDir('sidecar-balancing'), 'pods.yaml');
  writePods(podsFile, [{ name: 'fast', ip: FAST, provides: `${ECHO_API}@1.4.0` }, { name: 'slow', ip: SLOW, provides: `${ECHO_API}@1.5.0` }]);
  ctl = await startController({ podsFile, host: `${NET}.1`, adminPort: 18450 });
  await Promise.all([
    startEcho({ host: FAST, port: 50051, name: 'fast', version: '1.4.0' }),
    startEcho({ host: SLOW, port: 50051, name: 'slow', version: '1.5.0', delayMs: 150 }),
  ]);
  await Promise.all([
    startSidecar({ ip: FAST, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0` }),
    startSidecar({ ip: SLOW, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.5.0` }),
    startSidecar({ ip: CALLER, discovery: ctl.target, appPort: 50051, requires: `${ECHO_API}@^1.2` }),
  ]);
  client = echoClient(`${CALLER}:15001`);
});

after(async () => {
  client?.close();
  await stopAll();
  await ctl?.stop();
});

test('the slower of two compatible pods gets a minority of the calls, and some (it is not starved)', async (t) => {
  const served = new Map<string, number>();
  const call = (): Promise<EchoResponse> =>
    new Promise<EchoResponse>((resolve, reject) =>
      client.Unary({ text: 'b' }, { deadline: Date.now() + 10_000 }, (e: grpc.ServiceError | null, v: EchoResponse) => (e ? reject(e) : resolve(v))));
  // When the caller has seen the slow pod's first answer it knows its latency (the EWMA takes each answer);
  // a call sent to it after that is a re-probe.
  let learnedAt: number | undefined;
  let reprobes = 0;
  const one = async (): Promise<void> => {
    const sentAt = performance.now();
    const r = await call();
    served.set(r.served_by, (served.get(r.served_by) ?? 0) + 1);
    if (r.served_by === 'slow@1.5.0') {
      if (learnedAt !== undefined && sentAt > learnedAt) reprobes++;
      learnedAt ??= performance.now();
    }
  };
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 100; i++) await one();
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const fast = served.get('fast@1.4.0') ?? 0;
  const slow = served.get('slow@1.5.0') ?? 0;
  t.diagnostic(`fast ${fast}, slow ${slow}`);
  assert.equal(fast + slow, 400);
  assert.ok(slow < fast / 2, `fast ${fast}, slow ${slow}`);

  // Not starved: a pod known to be slow is still tried again now and then (its idle estimate decays; the fast
  // pod's cost grows with its in-flight calls and its own stalls), which is how a pod that got fast again
  // would be noticed. At the latest when the slow pod's ≥ 150 ms estimate has decayed below the fast pod's:
  // about 10 s × ln(150 / a few ms) ≈ 40 s on an idle machine, sooner under load (the first 400 calls above
  // take well under that, so they only show the minority). Calls go on, paced, until the first re-probe.
  const started = performance.now();
  const limitMs = 120_000;
  const pacedWorker = async (): Promise<void> => {
    while (reprobes === 0 && performance.now() - started < limitMs) {
      await one();
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await Promise.all([pacedWorker(), pacedWorker(), pacedWorker(), pacedWorker()]);
  const fastAll = served.get('fast@1.4.0') ?? 0;
  const slowAll = served.get('slow@1.5.0') ?? 0;
  t.diagnostic(`paced calls for ${Math.round(performance.now() - started)} ms more, re-probes of the slow pod ${reprobes}; in all fast ${fastAll}, slow ${slowAll}`);
  assert.ok(learnedAt !== undefined, 'the slow pod answered at least once');
  assert.ok(reprobes >= 1, `the slow pod was not tried again within ${limitMs / 1000} s of calls after its latency was known`);
  assert.ok(slowAll < fastAll / 2, `still a minority in all: fast ${fastAll}, slow ${slowAll}`);
});
