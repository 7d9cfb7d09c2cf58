// The sidecar runs with a small young generation and a bounded old generation
// (--max-semi-space-size=4 --max-old-space-size=128): V8 then grows its heap far less between major GCs
// (RSS under load ~115 MB instead of ~165 MB, no measurable CPU cost; see README). V8 sizes the heap at start-up, so when the flag is not
// already set (node flags or NODE_OPTIONS) the process re-executes itself in place with it
// (process.execve: same PID, so signals and supervisors are unaffected). QBASIS_SIDECAR_REEXEC=0 opts out;
// QBASIS_SIDECAR_NODE_FLAGS (space-separated) replaces the flags.
import process from 'node:process';

export const SIDECAR_NODE_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=128'];

export function reexecWithHeapFlags(): void {
  if (process.env.QBASIS_SIDECAR_REEXEC === '0' || typeof process.execve !== 'function') return;
  const custom = process.env.QBASIS_SIDECAR_NODE_FLAGS?.trim();
  const flags = custom ? custom.split(/\s+/) : SIDECAR_NODE_FLAGS;
  const have = new Set([...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].map((a) => a.split('=')[0]));
  // A flag the user already set (node flags or NODE_OPTIONS) wins over ours.
  const add = flags.filter((f) => !have.has(f.split('=')[0]));
  if (add.length === 0) return;
  process.execve(process.execPath, [process.execPath, ...add, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, QBASIS_SIDECAR_REEXEC: '0' });
}
