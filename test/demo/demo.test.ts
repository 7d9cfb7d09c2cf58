// A shortened `qbasis demo` run end to end (controller, apps, sidecars, rollout),
// plus Ctrl-C: no process may be left behind.
// Addresses: the demo runs with --ip-prefix 127.0.35 (full run) and 127.0.36 (interrupted run).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { QBASIS_BIN, REPO } from '../fixtures/local-controller.ts';
import { waitUntil } from '../fixtures/wait.ts';

/** Processes (of anyone) whose command line mentions the prefix: the demo's pods and controller. */
function processesUsing(prefix: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(` ${prefix}.`)) out.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

test('a 15 s demo run with mutual TLS on makes calls with 0 failed and 0 misrouted, canaries and rolls to 1.5.0, never reaches 2.0.0, reports the 1.6.0 rewrite\'s mismatches, carries a legacy HTTP caller\'s calls to a legacy HTTP provider, and leaves no process', async () => {
  const prefix = '127.0.35';
  const child = spawn(process.execPath, [QBASIS_BIN, 'demo', '--duration', '15', '--ip-prefix', prefix, '--json', '--quiet'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const last = out.trim().split('\n').at(-1) ?? '';
  let result: { calls: number; failed: number; misrouted: number; byVersion: Record<string, number>; errors: Record<string, number>; mirror: { compared: number; mismatched: number } | null; mtls: boolean; legacy: { calls: number; failed: number; errors: Record<string, number> } };
  try {
    result = JSON.parse(last);
  } catch {
    assert.fail(`no JSON result line; exit ${code}; stdout: ${out.slice(-2000)}; stderr: ${err.slice(-2000)}`);
  }
  assert.ok(result.calls > 0, `calls made: ${result.calls}`);
  assert.equal(result.mtls, true, 'the demo runs with mutual TLS on');
  assert.equal(result.failed, 0, `failed calls: ${JSON.stringify(result.errors)}`);
  assert.equal(result.misrouted, 0);
  assert.ok((result.byVersion['1.5.0'] ?? 0) > 0, `the rollout to 1.5.0 served calls: ${JSON.stringify(result.byVersion)}`);
  assert.equal(result.byVersion['2.0.0'] ?? 0, 0);
  assert.equal(result.byVersion['1.6.0'] ?? 0, 0, 'the 1.6.0 rewrite only ever gets mirrored copies');
  assert.ok((result.mirror?.compared ?? 0) > 0, `the parallel run compared answers: ${JSON.stringify(result.mirror)}`);
  assert.ok((result.mirror?.mismatched ?? 0) > 0, `the rewrite's bulk-quote bug shows as mismatches: ${JSON.stringify(result.mirror)}`);
  assert.match(out, /parallel run of Quote, 1\.5\.0 vs the 1\.6\.0 rewrite: \d+ compared/);
  assert.ok(result.legacy.calls > 0, 'the legacy HTTP caller made calls');
  assert.equal(result.legacy.failed, 0, `legacy HTTP calls failed: ${JSON.stringify(result.legacy.errors)}`);
  assert.match(out, /legacy HTTP\/JSON apps, warehouse-legacy → stock-legacy through both gateways .*: \d+ calls, 0 failed/);
  assert.match(out, /GET \/v1\/stock\/book → \{"sku":"book","units":"28","servedBy":"stock-legacy@1\.0\.0"\}/);
  assert.match(out, /calls made\s+\d+/);
  assert.match(out, /misrouted\s+0/);
  assert.equal(code, 0, `exit code; stderr: ${err}`);
  assert.deepEqual(processesUsing(prefix), []);
});

test('Ctrl-C (SIGINT) during the demo stops every process it started', async () => {
  const prefix = '127.0.36';
  const child = spawn(process.execPath, [QBASIS_BIN, 'demo', '--duration', '120', '--ip-prefix', prefix], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  try {
    await waitUntil('the load to start', () => /calls\s+\d+\s+failed/.test(out), { timeoutMs: 120_000 });
    assert.ok(processesUsing(prefix).length >= 4, 'controller, apps and sidecars are running');
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130, `exit code after SIGINT; output: ${out.slice(-1500)}`);
    await waitUntil('no processes left', () => processesUsing(prefix).length === 0, { timeoutMs: 10_000, detail: () => processesUsing(prefix).join('\n') });
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('demo refuses a bad flag with one line and exit 2', () => {
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'demo', '--duration', 'soon'], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /^qbasis demo: QB_INVALID_FLAG: --duration 'soon' is invalid: expected seconds from 10 to 3600/);
});
