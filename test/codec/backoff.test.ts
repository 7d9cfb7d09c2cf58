// The one retry backoff (proto/backoff.ts): doubling from initialMs, capped, jittered downwards only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, backoffDelayMs } from '../../proto/backoff.ts';

test('delays double from initialMs up to maxMs; jitter only takes away', () => {
  const o = { initialMs: 100, maxMs: 5000, jitter: 0.5 };
  assert.deepEqual([0, 1, 2, 5, 6, 100, 5000].map((n) => backoffDelayMs(n, o, () => 0)), [100, 200, 400, 3200, 5000, 5000, 5000]);
  assert.equal(backoffDelayMs(0, o, () => 0.999999), 100 * (1 - 0.5 * 0.999999));
  assert.equal(backoffDelayMs(3, { initialMs: 5, maxMs: 60_000, jitter: 0 }, () => 0.7), 40, 'no jitter: exact');
  assert.equal(backoffDelayMs(1e6, { initialMs: 0, maxMs: 10, jitter: 0 }), 0, 'a huge attempt count stays a number');
});

test('Backoff counts attempts and starts over on reset', () => {
  const b = new Backoff({ initialMs: 10, maxMs: 1000, jitter: 0.25 });
  for (let i = 0; i < 50; i++) {
    const d = b.next();
    const base = Math.min(1000, 10 * 2 ** i);
    assert.ok(d <= base && d >= base * 0.75, `attempt ${i}: ${d} within [${base * 0.75}, ${base}]`);
  }
  assert.equal(b.attempts, 50);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.ok(b.next() <= 10);
});
