// The sidecar runs with a small young generation (--max-semi-space-size=4): about a third less RSS at no
// measured cost in CPU or latency (see README). V8 sizes the heap at start-up, so when the flag is not
// already set (node flags or NODE_OPTIONS) the process re-executes itself in place with it
// (process.execve: same PID, so signals and supervisors are unaffected). QBASIS_SIDECAR_REEXEC=0 opts out;
// QBASIS_SIDECAR_NODE_FLAGS (space-separated) replaces the flags.
import process from 'node:process';

export const SIDECAR_NODE_FLAGS = ['--max-semi-space-size=4'];

export function reexecWithHeapFlags(): void {
  if (process.env.QBASIS_SIDECAR_REEXEC === '0' || typeof process.execve !== 'function') return;
  const custom = process.env.QBASIS_SIDECAR_NODE_FLAGS?.trim();
  const flags = custom ? custom.split(/\s+/) : SIDECAR_NODE_FLAGS;
  const have = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (flags.every((f) => have.some((a) => a.split('=')[0] === f.split('=')[0]))) return;
  process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, QBASIS_SIDECAR_REEXEC: '0' });
}
