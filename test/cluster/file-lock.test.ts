// The build lock: one holder at a time across processes, and a dead holder never blocks forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withFileLock } from './file-lock.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'qbasis-lock-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a lock left by a process that died is taken over', { timeout: 10_000 }, async (t) => {
  const lock = join(tempDir(t), 'build.lock');
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  writeFileSync(lock, String(child.pid));
  const got = await withFileLock(lock, async () => 'ran');
  assert.equal(got, 'ran');
  assert.equal(existsSync(lock), false, 'released after use');
});

test('a second taker waits until the live holder releases the lock', { timeout: 10_000 }, async (t) => {
  const lock = join(tempDir(t), 'build.lock');
  const order: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const first = withFileLock(lock, async () => {
    order.push('first in');
    await held;
    order.push('first out');
  });
  await new Promise((r) => setTimeout(r, 50));
  let waitedFor: number | undefined;
  const second = withFileLock(lock, async () => order.push('second in'), { onWait: (pid) => (waitedFor = pid) });
  await new Promise((r) => setTimeout(r, 700));
  assert.deepEqual(order, ['first in']);
  assert.equal(waitedFor, process.pid);
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first in', 'first out', 'second in']);
});

test('the lock is released when the guarded work throws', { timeout: 10_000 }, async (t) => {
  const lock = join(tempDir(t), 'build.lock');
  await assert.rejects(withFileLock(lock, async () => Promise.reject(new Error('build failed'))), /build failed/);
  assert.equal(existsSync(lock), false);
});
