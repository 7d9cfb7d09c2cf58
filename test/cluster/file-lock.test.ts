// The build lock: one holder at a time across processes, and a dead holder never blocks forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
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

test('a taker waits while another live process holds the lock, and gets it once released', { timeout: 30_000 }, async (t) => {
  const lock = join(tempDir(t), 'build.lock');
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
  t.after(() => holder.kill('SIGKILL'));
  writeFileSync(lock, String(holder.pid));
  let waitedFor: number | undefined;
  let entered = false;
  const taking = withFileLock(lock, async () => (entered = true), { onWait: (pid) => (waitedFor = pid) });
  // A second taker, started with it, that gives up after 1.2 s: its refusal names the live holder, so it kept
  // finding the lock held through several polls, and the first taker polled over the same time.
  let impatientEntered = false;
  await assert.rejects(
    withFileLock(lock, async () => (impatientEntered = true), { timeoutMs: 1200 }),
    new RegExp(`still held by pid ${holder.pid} after 1200 ms`),
  );
  assert.equal(impatientEntered, false);
  assert.equal(entered, false, 'must not enter while the holder lives');
  assert.equal(waitedFor, holder.pid);
  assert.equal(readFileSync(lock, 'utf8'), String(holder.pid), 'the holder still owns the lock file');
  unlinkSync(lock); // the holder releases
  await taking;
  assert.equal(entered, true);
});

test('the lock is released when the guarded work throws', { timeout: 10_000 }, async (t) => {
  const lock = join(tempDir(t), 'build.lock');
  await assert.rejects(withFileLock(lock, async () => Promise.reject(new Error('build failed'))), /build failed/);
  assert.equal(existsSync(lock), false);
});

test('taking a lock this process already holds fails at once instead of waiting forever', { timeout: 10_000 }, async (t) => {
  const lock = join(tempDir(t), 'build.lock');
  await withFileLock(lock, async () => {
    await assert.rejects(withFileLock(lock, async () => 'inner'), /already held by this process/);
  });
});
