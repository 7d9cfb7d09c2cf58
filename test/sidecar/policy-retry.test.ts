// BasisPolicy retries and timeouts through real sidecars in local mode: retries on the listed codes
// mask a flaky endpoint, the budget caps what a failing one receives, nothing is retried once a
// response has started, and the policy's timeout ends a call the provider sits on.
// Addresses: 127.0.91.x (controller .1; flaky 1.4.0 .11 (30 % UNAVAILABLE); steady 1.4.1 .12;
// dead 1.6.0 .13 (always UNAVAILABLE); slow 1.8.0 .14; caller .20).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { echoClient, type EchoResponse, type StatsResponse } from '../fixtures/echo-client.ts';
import { admin } from '../fixtures/echo-mesh.ts';
import { callMany, PolicyMesh, unary } from '../fixtures/policy.ts';

const NET = '127.0.91';
const DEAD = `${NET}.13`;
const SLOW = `${NET}.14`;
const mesh = new PolicyMesh(NET, [
  { name: 'flaky', ip: `${NET}.11`, version: '1.4.0', echo: { failPercent: 30 } },
  { name: 'steady', ip: `${NET}.12`, version: '1.4.1' },
  { name: 'dead', ip: DEAD, version: '1.6.0', echo: { failPercent: 100 } },
  { name: 'slow', ip: SLOW, version: '1.8.0' },
]);
const CALLER = mesh.caller;
const applyPolicy = (spec: Record<string, unknown>): Promise<void> => mesh.apply(spec);

before(async () => {
  await mesh.start();
});

after(async () => {
  await mesh.stop();
});

/** Calls the app on `ip` has received, asked directly (not through a sidecar). */
async function appCalls(ip: string): Promise<number> {
  const c = echoClient(`${ip}:50051`);
  try {
    const s = await new Promise<StatsResponse>((resolve, reject) => c.Stats({}, (e: grpc.ServiceError | null, v: StatsResponse) => (e ? reject(e) : resolve(v))));
    return Number(s.calls) - 1; // this Stats call counts too
  } finally {
    c.close();
  }
}

function only(versions: string): Record<string, unknown> {
  return { split: [{ versions, weight: 1 }] };
}

test('retries on UNAVAILABLE (attempts: 2) turn a group with an endpoint failing 30 % into >= 99 % success; without them it fails visibly', async (t) => {
  await applyPolicy({ routes: [only('~1.4.0')] });
  const without = await callMany(mesh.client, 400);
  await applyPolicy({ retry: { attempts: 2, on: ['UNAVAILABLE'], budget: { percent: 50, minPerSecond: 10 } }, routes: [only('~1.4.0')] });
  const n = 1000;
  const counts = await callMany(mesh.client, n);
  const ok = (counts.get('flaky@1.4.0') ?? 0) + (counts.get('steady@1.4.1') ?? 0);
  t.diagnostic(`without retries ${JSON.stringify(Object.fromEntries(without))}; with ${JSON.stringify(Object.fromEntries(counts))}`);
  assert.ok((without.get('!UNAVAILABLE') ?? 0) > 0, 'the flaky endpoint fails some calls when nothing retries them');
  assert.ok(ok / n >= 0.99, `success ${ok} of ${n}`);
  const metrics = (await admin(CALLER, '/metrics')).body;
  assert.match(metrics, /qbasis_sidecar_retries_total\{api="qbasis\.test\.echo\.v1\.EchoService",reason="status"\} [1-9]/);
});

test('with the budget at its minimum a provider failing every call receives no more calls than the budget allows', async (t) => {
  // percent 0, minPerSecond 1: at most 10 retries in any 10 s window, whatever the call count.
  await applyPolicy({ retry: { attempts: 5, on: ['UNAVAILABLE'], backoff: { base: '1ms', max: '2ms' }, budget: { percent: 0, minPerSecond: 1 } }, routes: [only('~1.6.0')] });
  const before = await appCalls(DEAD);
  const n = 100;
  const t0 = performance.now();
  const counts = await callMany(mesh.client, n, 4);
  const tookMs = performance.now() - t0;
  const received = (await appCalls(DEAD)) - before;
  t.diagnostic(`${JSON.stringify(Object.fromEntries(counts))}; the provider received ${received} in ${tookMs.toFixed(0)} ms`);
  assert.equal(counts.get('!UNAVAILABLE'), n);
  // Each 10 s window allows 10 retries; the calls took `tookMs`, so at most that many windows began.
  const allowed = n + 10 * Math.ceil(tookMs / 10_000 + 1);
  assert.ok(received > n, `some retries were allowed (received ${received})`);
  assert.ok(received <= allowed, `received ${received}, the budget allows at most ${allowed}`);
  const metrics = (await admin(CALLER, '/metrics')).body;
  assert.match(metrics, /qbasis_sidecar_retry_budget_exhausted_total\{api="qbasis\.test\.echo\.v1\.EchoService"\} [1-9]/);
});

test('no retry once a response has started: a stream that fails after its first message is not sent again', async () => {
  await applyPolicy({ retry: { attempts: 3, on: ['UNAVAILABLE'], budget: { percent: 100, minPerSecond: 100 } }, routes: [only('~1.8.0')] });
  const before = await appCalls(SLOW);
  const got: EchoResponse[] = [];
  const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
    const call = mesh.client.ServerStream({ text: 'gone', count: 1, fail_code: grpc.status.UNAVAILABLE }, { deadline: Date.now() + 10_000 });
    call.on('data', (m: EchoResponse) => got.push(m));
    call.on('error', resolve);
    call.on('end', () => reject(new Error('the stream ended without its error')));
  });
  assert.equal(err.code, grpc.status.UNAVAILABLE);
  assert.equal(got.length, 1, 'the message sent before the failure reached the caller');
  assert.equal((await appCalls(SLOW)) - before, 1, 'the provider saw the call once');
});

test('the policy timeout ends a call the provider sits on with DEADLINE_EXCEEDED at the timeout, and a shorter caller deadline wins', async (t) => {
  await applyPolicy({ timeout: '300ms', routes: [only('~1.8.0')] });
  const policyTimed: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await unary(mesh.client, { text: 'sleep', delay_ms: 3000 }, 10_000);
    assert.ok(!r.ok);
    assert.equal(r.err.code, grpc.status.DEADLINE_EXCEEDED, r.err.details);
    assert.match(r.err.details, /timeout of 300 ms \(BasisPolicy default\/echo\)/);
    policyTimed.push(r.ms);
  }
  const callerTimed: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await unary(mesh.client, { text: 'sleep', delay_ms: 3000 }, 150);
    assert.ok(!r.ok);
    assert.equal(r.err.code, grpc.status.DEADLINE_EXCEEDED);
    callerTimed.push(r.ms);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  t.diagnostic(`policy timeout 300 ms: ${policyTimed.map((x) => x.toFixed(0)).join(', ')} ms; caller deadline 150 ms: ${callerTimed.map((x) => x.toFixed(0)).join(', ')} ms`);
  assert.ok(Math.abs(median(policyTimed) - 300) <= 50, `median ${median(policyTimed).toFixed(0)} ms, expected 300 ± 50`);
  assert.ok(median(callerTimed) < 250, `median ${median(callerTimed).toFixed(0)} ms with a 150 ms caller deadline`);
});

test('a per-try timeout sends a call the first endpoint sits on to another try, within the whole timeout', async () => {
  // The group holds two endpoints; the request asks each app to wait 400 ms, the per-try timeout is 100 ms:
  // every try times out, and the caller gets DEADLINE_EXCEEDED naming the per-try timeout once tries run out.
  await applyPolicy({ timeout: '2s', retry: { attempts: 1, on: ['UNAVAILABLE'], perTryTimeout: '100ms', budget: { percent: 100, minPerSecond: 100 } }, routes: [only('~1.4.0')] });
  const r = await unary(mesh.client, { text: 'sleep', delay_ms: 400 }, 10_000);
  assert.ok(!r.ok);
  assert.equal(r.err.code, grpc.status.DEADLINE_EXCEEDED);
  assert.match(r.err.details, /per-try timeout of 100 ms.*no retry is left/);
  assert.ok(r.ms < 1000, `two tries of 100 ms took ${r.ms.toFixed(0)} ms`);
});
