// Runtime settings the sidecar needs before V8 and the module loader start, applied by re-executing the
// process in place (process.execve: same PID and stdio, so signals and supervisors are unaffected):
// - V8 heap: SIDECAR_NODE_FLAGS, chosen by `npm run bench:heap` (latency tail, CPU and RSS together;
//   sidecar/README.md "Heap settings").
// - glibc malloc: at most MALLOC_ARENA_MAX=2 arenas. Every thread that mallocs (V8's GC helpers, libuv)
//   otherwise gets an arena of its own, which holds freed memory: ~4 MB more RSS under load, no CPU won.
// - Node's compile cache (NODE_COMPILE_CACHE): type-stripped and compiled modules are reused from disk, so
//   the TypeScript stripper is never loaded again: ~25 MB less RSS and half the start-up time.
// QBASIS_SIDECAR_REEXEC=0 turns this off; QBASIS_SIDECAR_NODE_FLAGS (space-separated) replaces the flags;
// QBASIS_COMPILE_CACHE=<dir> moves the cache (default <tmpdir>/qbasis-node-compile-cache), =off disables it.
// Settings the user already made (node flags, NODE_OPTIONS, NODE_COMPILE_CACHE, MALLOC_ARENA_MAX) win over ours.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';

export const SIDECAR_NODE_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=128'];
export const SIDECAR_MALLOC_ARENAS = '2';

/** The V8 flags the sidecar runs with: QBASIS_SIDECAR_NODE_FLAGS, or ours. */
export function sidecarNodeFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  const custom = env.QBASIS_SIDECAR_NODE_FLAGS?.trim();
  return custom ? custom.split(/\s+/) : SIDECAR_NODE_FLAGS;
}

export function reexecWithRuntimeSettings(): void {
  if (process.env.QBASIS_SIDECAR_REEXEC === '0' || typeof process.execve !== 'function') return;
  const flags = sidecarNodeFlags();
  const have = new Set([...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].map((a) => a.split('=')[0]));
  const add = flags.filter((f) => !have.has(f.split('=')[0]));
  const env: NodeJS.ProcessEnv = { ...process.env, QBASIS_SIDECAR_REEXEC: '0' };
  const wantArenas = process.env.MALLOC_ARENA_MAX === undefined;
  if (wantArenas) env.MALLOC_ARENA_MAX = SIDECAR_MALLOC_ARENAS;
  const cacheSetting = process.env.QBASIS_COMPILE_CACHE;
  let wantCache = false;
  if (!process.env.NODE_COMPILE_CACHE && cacheSetting !== 'off') {
    const dir = cacheSetting || path.join(os.tmpdir(), 'qbasis-node-compile-cache');
    wantCache = writableDir(dir);
    if (wantCache) env.NODE_COMPILE_CACHE = dir;
  }
  if (add.length === 0 && !wantCache && !wantArenas) return;
  process.execve(process.execPath, [process.execPath, ...add, ...process.execArgv, ...process.argv.slice(1)], env);
}

/** Only a directory we can write (read-only root filesystems are common for sidecars). */
function writableDir(dir: string): boolean {
  // Not recursive: Node's recursive mkdir (and the compile cache itself) can loop forever on odd
  // filesystems such as /proc; the parent must exist.
  if (path.resolve(dir).startsWith('/proc/')) return false;
  try {
    if (!fs.existsSync(dir)) fs.mkdirSync(dir, { mode: 0o700 });
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
