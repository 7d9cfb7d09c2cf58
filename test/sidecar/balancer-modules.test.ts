// The balancer's small modules on their own (pure logic, real objects, no sockets): failure accrual,
// peak EWMA, power of two choices.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureAccrual, FAILURES_TO_EJECT } from '../../sidecar/ejection.ts';
import { PeakEwma, WARMUP_SAMPLES } from '../../sidecar/ewma.ts';
import { pickP2C } from '../../sidecar/p2c.ts';
import { Peer } from '../../sidecar/peer.ts';

test('failure accrual ejects on the 7th consecutive failure for 0.5–1 s, then probation: one failure re-ejects for longer, one success restores', () => {
  const a = new FailureAccrual();
  let now = 1000;
  for (let i = 1; i < FAILURES_TO_EJECT; i++) assert.equal(a.failure(now), false, `failure ${i}`);
  a.success();
  for (let i = 1; i < FAILURES_TO_EJECT; i++) assert.equal(a.failure(now), false, 'a success reset the count');
  assert.equal(a.failure(now), true);
  assert.equal(a.state(now), 'ejected');
  const first = a.ejectedUntil - now;
  assert.ok(first >= 500 && first <= 1000, `first penalty ${first} ms`);
  now = a.ejectedUntil;
  assert.equal(a.state(now), 'probation');
  assert.equal(a.failure(now), true, 'one failure on probation ejects again');
  const second = a.ejectedUntil - now;
  assert.ok(second >= 1000 && second <= 2000, `second penalty ${second} ms`);
  now = a.ejectedUntil;
  a.success();
  assert.equal(a.state(now), 'active');
  for (let i = 1; i < FAILURES_TO_EJECT; i++) assert.equal(a.failure(now), false, 'restored: needs 7 again');
});

test('failure accrual penalties grow to at most one minute', () => {
  const a = new FailureAccrual();
  let now = 0;
  let last = 0;
  for (let round = 0; round < 12; round++) {
    while (!a.failure(now));
    last = a.ejectedUntil - now;
    now = a.ejectedUntil;
  }
  assert.ok(last <= 60_000 && last >= 30_000, `penalty ${last} ms`);
});

test('peak EWMA: once warm, a slower sample takes over at once, faster ones blend in, idle decays', () => {
  const e = new PeakEwma(1, 0, 10_000);
  for (let i = 0; i <= WARMUP_SAMPLES; i++) e.observe(5, 0);
  assert.equal(e.value(0), 5);
  e.observe(50, 10);
  assert.equal(e.value(10), 50, 'peak');
  e.observe(1, 1010);
  const v = e.value(1010);
  assert.ok(v < 50 && v > 40, `one fast sample 1 s later only blends: ${v}`);
  assert.ok(e.value(1010 + 30_000) < v / 10, 'idle time decays the estimate');
});

test('slow start: a cold first answer alone does not set the estimate; a slow endpoint is known by its second answer', () => {
  const cold = new PeakEwma(1, 0, 10_000);
  cold.observe(400, 0); // first call: connection setup, JIT
  assert.equal(cold.value(0), 1, 'the default stays: one cold sample would otherwise starve the endpoint');
  cold.observe(3, 5);
  assert.equal(cold.value(5), 3, 'the second sample is the estimate');
  const slow = new PeakEwma(1, 0, 10_000);
  slow.observe(150, 0);
  slow.observe(150, 1);
  assert.equal(slow.value(1), 150, 'a really slow endpoint is known after two answers');
  // During warm-up the estimate is the median of the samples after the first, so one more outlier is ignored too.
  cold.observe(300, 6);
  cold.observe(4, 7);
  assert.equal(cold.value(7), 4);
});

test('P2C picks the cheaper of two (EWMA × (in-flight + 1)), skips ejected peers, and still answers when all are out', () => {
  const now = performance.now();
  const fast = new Peer('127.0.46.1', 1, now);
  const slow = new Peer('127.0.46.2', 1, now);
  for (let i = 0; i <= WARMUP_SAMPLES; i++) {
    fast.ewma.observe(1, now);
    slow.ewma.observe(20, now);
  }
  for (let i = 0; i < 50; i++) assert.equal(pickP2C([fast, slow], now), fast);
  fast.inflight = 30; // 1 ms × 31 > 20 ms × 1
  assert.equal(pickP2C([fast, slow], now), slow);
  fast.inflight = 0;
  while (!fast.accrual.failure(now));
  for (let i = 0; i < 20; i++) assert.equal(pickP2C([fast, slow], now), slow, 'ejected peer skipped');
  while (!slow.accrual.failure(now));
  assert.ok(pickP2C([fast, slow], now) !== undefined, 'all out: still try one');
  assert.equal(pickP2C([fast, slow], now, [fast, slow]), undefined, 'all excluded: none');
  assert.equal(pickP2C([fast], now, [fast]), undefined);
  assert.equal(pickP2C([], now), undefined);
});
