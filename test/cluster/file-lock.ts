// A cross-process lock: a file created with O_EXCL holding the owner's pid; a dead owner's lock is taken over.
import { openSync, closeSync, writeSync, readFileSync, unlinkSync, statSync, constants } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from './processes.ts';

export interface LockOptions {
  /** Called once when the lock is held by another live process. */
  onWait?: (ownerPid: number) => void;
  timeoutMs?: number;
}

export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60 * 60_000);
  let told = false;
  for (;;) {
    if (tryAcquire(path)) break;
    const owner = readOwner(path);
    if (owner === process.pid) {
      throw new Error(`lock ${path} is already held by this process (pid ${process.pid}); expected a lock that is not taken twice by one process`);
    }
    if ((owner !== undefined && !isAlive(owner)) || (owner === undefined && ageMs(path) > 10_000)) {
      // Stale: its owner died. Remove and retry; a racing taker is fine, O_EXCL picks one.
      try {
        unlinkSync(path);
      } catch {}
      continue;
    }
    if (!told && owner !== undefined) {
      opts.onWait?.(owner);
      told = true;
    }
    if (Date.now() > deadline) {
      throw new Error(`lock ${path} still held by pid ${owner ?? '?'} after ${opts.timeoutMs ?? 3_600_000} ms; expected it to be released`);
    }
    await sleep(500);
  }
  try {
    return await fn();
  } finally {
    try {
      if (readOwner(path) === process.pid) unlinkSync(path);
    } catch {}
  }
}

function tryAcquire(path: string): boolean {
  try {
    const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function readOwner(path: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
