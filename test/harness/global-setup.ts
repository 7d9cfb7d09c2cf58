// node --test --test-global-setup: gives the run one directory for its cluster and stops that cluster at the end,
// also when tests fail or the run is interrupted (a reaper process covers kill -9).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { down } from '../cluster/cluster.ts';

let runDir: string | undefined;

export async function globalSetup(): Promise<void> {
  runDir = mkdtempSync(join(tmpdir(), 'qbasis-test-run-'));
  // Test files are child processes of this one and inherit these.
  process.env['QBASIS_TEST_RUN_DIR'] = runDir;
  process.env['QBASIS_TEST_OWNER_PID'] = String(process.pid);
}

export async function globalTeardown(): Promise<void> {
  if (runDir === undefined) return;
  const stopped = await down({ dir: join(runDir, 'cluster'), log: () => {} });
  if (stopped) process.stderr.write('qbasis: stopped the test cluster\n');
  rmSync(runDir, { recursive: true, force: true });
}
