// `qbasis cluster up|env|status|down` through the real CLI: idempotent up, a working env, and a down that leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readState, COMPONENTS } from './cluster.ts';
import { isAlive } from './processes.ts';
import { ensureTools } from './build.ts';
import { CLUSTER_START_TIMEOUT_MS } from '../harness/use-cluster.ts';

const execFileP = promisify(execFile);
const QBASIS = join(import.meta.dirname, '..', '..', 'bin', 'qbasis.ts');

async function qbasis(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return execFileP(process.execPath, [QBASIS, ...args], { env, maxBuffer: 16 << 20, timeout: 10 * 60_000 });
}

test('qbasis cluster up starts a cluster once, env gives a working kubectl, and down stops every process it started', { timeout: CLUSTER_START_TIMEOUT_MS + 10 * 60_000 }, async (t) => {
  // The first build may happen here; it is not what this test measures.
  await ensureTools();
  const root = mkdtempSync(join(tmpdir(), 'qbasis-cli-test-'));
  const dir = join(root, 'cluster');
  const env = { ...process.env, QBASIS_CLUSTER_DIR: dir };
  let pids: number[] = [];
  t.after(async () => {
    // Clean up even when an assertion failed half-way.
    await qbasis(['cluster', 'down'], env).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  // The real node is one per machine; real-node.test.ts covers it.
  const first = await qbasis(['cluster', 'up', '--real-node=false'], env);
  assert.match(first.stderr, /cluster default up in/);
  const state = readState(dir);
  assert.ok(state !== undefined, `state.json in ${dir}`);
  pids = COMPONENTS.map((c) => state.pids[c]!);
  assert.equal(pids.length, 5);
  for (const pid of pids) assert.ok(isAlive(pid), `pid ${pid} alive after up`);

  const second = await qbasis(['cluster', 'up', '--real-node=false'], env);
  assert.match(second.stderr, /already running/);
  assert.deepEqual(COMPONENTS.map((c) => readState(dir)!.pids[c]), pids, 'a second up starts nothing new');

  const status = await qbasis(['cluster', 'status'], env);
  for (const c of COMPONENTS) assert.match(status.stdout, new RegExp(`${c}\\s+pid \\d+\\s+alive`));

  const exports = (await qbasis(['cluster', 'env'], env)).stdout;
  assert.match(exports, /^export KUBECONFIG=.*\nexport PATH=.*:"\$PATH"\n$/);
  const shell = await execFileP('bash', ['-c', 'eval "$QBASIS_ENV" && command -v kubectl && command -v helm && kubectl get nodes --no-headers'], {
    env: { ...process.env, QBASIS_ENV: exports, KUBECONFIG: '' },
  });
  assert.match(shell.stdout, /kwok-node-0\s+Ready/);

  await qbasis(['cluster', 'down'], env);
  for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} must be gone after down`);
  assert.equal(existsSync(dir), false, 'the state dir is removed');
});
