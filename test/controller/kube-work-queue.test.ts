// The reconcile work queue with real timers: dedup, one pass per key at a time, backoff, terminal errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkQueue, type ReconcileResult } from '../../controller/kube/work-queue.ts';
import { qbError } from '../../proto/errors.ts';
import { waitUntil } from '../fixtures/wait.ts';

/** The queue's timing is what these tests watch: look every 5 ms. */
const FAST = { intervalMs: 5 } as const;

test('a key added many times before a worker takes it runs once', async () => {
  const runs: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new WorkQueue(
    async (key) => {
      if (key === 'blocker') await gate;
      runs.push(key);
    },
    { workers: 1 },
  );
  q.add('blocker');
  for (let i = 0; i < 50; i++) q.add('ns/a.B');
  q.add('ns/c.D');
  q.add('ns/a.B');
  assert.equal(q.depth, 2);
  release();
  await q.whenIdle();
  assert.deepEqual(runs, ['blocker', 'ns/a.B', 'ns/c.D']);
});

test('a key never runs on two workers at once and runs again when added during its pass', async () => {
  let concurrent = 0;
  let maxConcurrent = 0;
  let passes = 0;
  const q = new WorkQueue(
    async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      passes++;
      await sleep(20);
      concurrent--;
    },
    { workers: 8 },
  );
  q.add('ns/x.Y');
  await waitUntil('passes === 1', () => passes === 1, { ...FAST, timeoutMs: 10_000 });
  // Added many times while running: marked dirty once, one more pass after this one.
  for (let i = 0; i < 20; i++) q.add('ns/x.Y');
  await waitUntil('passes === 2 && concurrent === 0', () => passes === 2 && concurrent === 0, { ...FAST, timeoutMs: 10_000 });
  await q.whenIdle();
  // Idle (nothing ready, running or dirty) with no timer pending: no further pass can start.
  assert.equal(q.depth, 0);
  assert.equal(q.delayed, 0);
  assert.equal(maxConcurrent, 1);
  assert.equal(passes, 2);
});

test('distinct keys run in parallel up to the worker count', async () => {
  let concurrent = 0;
  let maxConcurrent = 0;
  const q = new WorkQueue(
    async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(30);
      concurrent--;
    },
    { workers: 3 },
  );
  for (let i = 0; i < 9; i++) q.add(`ns/k${i}.S`);
  await q.whenIdle();
  assert.equal(maxConcurrent, 3);
});

test('a failing key retries with exponential backoff and stops failing once it succeeds', async () => {
  const times: number[] = [];
  const results: ReconcileResult[] = [];
  const scheduled: number[] = [];
  const q = new WorkQueue(
    async () => {
      times.push(performance.now());
      if (times.length <= 4) throw new Error('api server said no');
    },
    {
      baseDelayMs: 40,
      maxDelayMs: 10_000,
      onResult: (k, r) => {
        results.push(r);
        if (r === 'error') scheduled.push(q.nextDelayMs(k)); // the delay this failure is about to get
      },
    },
  );
  q.add('ns/a.B');
  await waitUntil('times.length === 5', () => times.length === 5, { ...FAST, timeoutMs: 20_000 });
  assert.deepEqual(results, ['error', 'error', 'error', 'error', 'success']);
  // The delays double: 40, 80, 160, 320 ms as scheduled...
  const expected = [40, 80, 160, 320];
  assert.deepEqual(scheduled, expected);
  // ...and each retry waited at least its delay (timers never fire early; a loaded machine only adds to them).
  const gaps = times.slice(1).map((t, i) => t - times[i]!);
  gaps.forEach((g, i) => assert.ok(g >= expected[i]! - 2, `gap ${i} was ${g.toFixed(1)} ms, expected ≥ ${expected[i]}`));
  assert.equal(q.failures('ns/a.B'), 0, 'success forgets the failures');
  assert.equal(q.nextDelayMs('ns/a.B'), 40);
});

test('backoff is capped at maxDelayMs', async () => {
  let runs = 0;
  const q = new WorkQueue(
    async () => {
      runs++;
      throw new Error('always');
    },
    { baseDelayMs: 1, maxDelayMs: 8 },
  );
  q.add('ns/a.B');
  await waitUntil('runs >= 8', () => runs >= 8, { ...FAST, timeoutMs: 10_000 });
  assert.ok(q.nextDelayMs('ns/a.B') <= 8);
  await q.stop();
});

test('a terminal error is reported and not retried', async () => {
  const runs = new Map<string, number>();
  const results: Array<[string, ReconcileResult]> = [];
  const q = new WorkQueue(
    async (key) => {
      runs.set(key, (runs.get(key) ?? 0) + 1);
      if (key === 'ns/terminal.B') throw qbError('QB_RECONCILE_TERMINAL', 'API id collides with another API; rename one');
      throw new Error('api server said no'); // an ordinary failure, the control: it is retried
    },
    { baseDelayMs: 5, onResult: (k, r) => results.push([k, r]) },
  );
  q.add('ns/terminal.B');
  q.add('ns/ordinary.B');
  // The ordinary key failed in the same turn and has been retried twice since (after 5 ms, then 10 ms): a retry
  // of the terminal key, due 5 ms after its own failure, would have run by now.
  await waitUntil('ns/ordinary.B to run 3 times', () => (runs.get('ns/ordinary.B') ?? 0) >= 3, { ...FAST, timeoutMs: 10_000 });
  assert.equal(runs.get('ns/terminal.B'), 1);
  assert.deepEqual(results.filter(([k]) => k === 'ns/terminal.B'), [['ns/terminal.B', 'terminal']]);
  assert.equal(q.failures('ns/terminal.B'), 0);
  await q.stop();
});

test('requeueAfterMs runs the key again after the delay', async () => {
  const times: number[] = [];
  const q = new WorkQueue(async () => {
    times.push(performance.now());
    return times.length < 2 ? { requeueAfterMs: 60 } : undefined;
  });
  q.add('ns/a.B');
  await waitUntil('times.length === 2', () => times.length === 2, { ...FAST, timeoutMs: 10_000 });
  assert.ok(times[1]! - times[0]! >= 58);
  await q.stop();
});

test('adding a key that waits on a backoff runs it at once', async () => {
  let runs = 0;
  const q = new WorkQueue(
    async () => {
      runs++;
      if (runs === 1) throw new Error('first fails');
    },
    { baseDelayMs: 60_000 },
  );
  q.add('ns/a.B');
  await waitUntil('runs === 1 && q.delayed === 1', () => runs === 1 && q.delayed === 1, { ...FAST, timeoutMs: 10_000 });
  q.add('ns/a.B');
  await waitUntil('runs === 2', () => runs === 2, { ...FAST, timeoutMs: 10_000 });
  assert.equal(q.delayed, 0);
  await q.stop();
});
