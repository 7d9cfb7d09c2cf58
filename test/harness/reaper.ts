// A detached watcher: when the owning process is gone (finished, crashed, killed -9), stop the cluster and remove its dirs.
// Usage (internal): node test/harness/reaper.ts <owner-pid> <cluster-dir> <remove-dir>
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { down } from '../cluster/cluster.ts';
import { isAlive } from '../cluster/processes.ts';

export function startReaper(ownerPid: number, clusterDir: string, removeDir: string): number {
  const child = spawn(process.execPath, [import.meta.filename, String(ownerPid), clusterDir, removeDir], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid ?? -1;
}

async function watch(ownerPid: number, clusterDir: string, removeDir: string): Promise<void> {
  while (isAlive(ownerPid)) await sleep(1_000);
  await down({ dir: clusterDir, log: () => {} });
  rmSync(removeDir, { recursive: true, force: true });
}

if (import.meta.main) {
  const [owner, clusterDir, removeDir] = process.argv.slice(2);
  if (owner === undefined || clusterDir === undefined || removeDir === undefined) {
    process.stderr.write('reaper: expected <owner-pid> <cluster-dir> <remove-dir>\n');
    process.exitCode = 2;
  } else {
    // Ignore the terminal's Ctrl-C: the owner's death is the only signal that counts.
    process.on('SIGINT', () => {});
    void watch(Number(owner), clusterDir, removeDir);
  }
}
