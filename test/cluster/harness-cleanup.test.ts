// The harness leaves nothing behind even when the process that started the cluster is killed outright.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureTools } from './build.ts';
import { isAlive } from './processes.ts';
import { CLUSTER_START_TIMEOUT_MS } from '../harness/use-cluster.ts';
import { waitUntil } from '../fixtures/wait.ts';

const HARNESS = pathToFileURL(join(import.meta.dirname, '..', 'harness', 'use-cluster.ts')).href;

test('a cluster started by a test process that is killed with SIGKILL is stopped and its temp dir removed', { timeout: CLUSTER_START_TIMEOUT_MS + 5 * 60_000 }, async () => {
  await ensureTools();
  const script = `
    const { useCluster } = await import(${JSON.stringify(HARNESS)});
    const { readState } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, 'cluster.ts')).href)});
    const c = await useCluster();
    process.stdout.write(JSON.stringify({ dir: c.stateDir, pids: Object.values(readState(c.stateDir).pids) }) + '\\n');
    setInterval(() => {}, 1000);
  `;
  // No global setup in the child's env: it owns a private cluster, as a test file run on its own does.
  const env = { ...process.env };
  delete env['QBASIS_TEST_RUN_DIR'];
  delete env['QBASIS_TEST_OWNER_PID'];
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const info = await new Promise<{ dir: string; pids: number[] }>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(JSON.parse(out) as { dir: string; pids: number[] });
    });
    child.on('exit', (code) => reject(new Error(`child exited (${code}) before reporting its cluster: ${out}`)));
  });
  try {
    assert.equal(info.pids.length, 5);
    for (const pid of info.pids) assert.ok(isAlive(pid), `component pid ${pid} runs`);
  } finally {
    child.kill('SIGKILL');
  }
  await waitUntil('every component stopped and the state dir removed', () => !info.pids.some(isAlive) && !existsSync(info.dir), {
    timeoutMs: 60_000,
    intervalMs: 250,
    detail: () => `still alive: ${info.pids.filter(isAlive).join(', ')}; dir exists: ${existsSync(info.dir)}`,
  });
  assert.equal(existsSync(join(info.dir, '..')), false, 'the private temp dir is removed too');
});
