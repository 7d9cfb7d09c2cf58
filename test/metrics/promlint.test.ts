// Both /metrics endpoints as Prometheus users expect them: `promtool check metrics` clean (the same
// promlint package of client_golang, built from test/promlint), our series prefixed, the standard
// process_* and nodejs_* series unprefixed so stock dashboards find them.
// Addresses: 127.0.82.x (controller .1, provider .11, caller .21).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ensureTools } from '../cluster/build.ts';
import { ECHO_API, echoClient } from '../fixtures/echo-client.ts';
import { admin, startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods, type RunningController } from '../fixtures/local-controller.ts';

const NET = '127.0.82';
let ctl: RunningController;
let promlint: string;

before(async () => {
  promlint = path.join(await ensureTools({ tools: ['promlint'] }), 'promlint');
  const podsFile = path.join(tempDir('promlint'), 'pods.yaml');
  writePods(podsFile, [{ name: 'provider', ip: `${NET}.11`, provides: `${ECHO_API}@1.4.0` }]);
  ctl = await startController({ podsFile, host: `${NET}.1` });
  await startEcho({ host: `${NET}.11`, port: 50051, name: 'provider', version: '1.4.0' });
  await startSidecar({ ip: `${NET}.11`, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0` });
  await startSidecar({ ip: `${NET}.21`, discovery: ctl.target, appPort: 50099, requires: `${ECHO_API}@^1.2` });
  // A few calls so every per-call series has samples (histograms, counters with labels).
  const c = echoClient(`${NET}.21:15001`);
  for (let i = 0; i < 5; i++) {
    await new Promise<void>((resolve, reject) => c.Unary({ text: 'x' }, (err: Error | null) => (err ? reject(err) : resolve())));
  }
  c.close();
}, { timeout: 600_000 });

after(async () => {
  await stopAll();
  await ctl?.stop();
});

function lint(text: string): { code: number | null; problems: string } {
  const r = spawnSync(promlint, [], { input: text, encoding: 'utf8' });
  return { code: r.status, problems: `${r.stdout}${r.stderr}` };
}

function checkStandard(text: string, ours: RegExp, component: string): void {
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
    assert.match(text, new RegExp(`^${name} `, 'm'), `${component}: standard series ${name} unprefixed`);
  }
  assert.doesNotMatch(text, /^qbasis_(sidecar|controller)_(process|nodejs)_/m, `${component}: no prefixed copies of the standard series`);
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)![1]!;
    if (name.startsWith('process_') || name.startsWith('nodejs_')) continue;
    assert.match(name, ours, `${component}: our own series are prefixed (${name})`);
  }
}

test('the sidecar /metrics passes promtool check metrics, with our series prefixed and the standard ones standard', { timeout: 60_000 }, async () => {
  for (const ip of [`${NET}.11`, `${NET}.21`]) {
    const text = (await admin(ip, '/metrics')).body;
    assert.match(text, /^qbasis_sidecar_requests_total\{/m);
    const r = lint(text);
    assert.equal(r.code, 0, `promlint on ${ip}:\n${r.problems}`);
    checkStandard(text, /^qbasis_sidecar_/, `sidecar ${ip}`);
  }
});

test('the controller /metrics passes promtool check metrics, with our series prefixed and the standard ones standard', { timeout: 60_000 }, async () => {
  const text = await (await fetch(`${ctl.admin}/metrics`)).text();
  assert.match(text, /^qbasis_controller_/m);
  const r = lint(text);
  assert.equal(r.code, 0, `promlint on the controller:\n${r.problems}`);
  checkStandard(text, /^qbasis_controller_/, 'controller');
});
