// The BasisPolicy mirror (parallel run) through real sidecars in local mode: unary calls are copied to
// the mirror group after the primary answered, the caller only ever sees the primary's answer, the
// sidecar compares the two and reports to the controller, which sums the reports per policy.
// Addresses: 127.0.92.x (controller .1; primary 1.4.0 .11; shadow 1.10.0 .12 (differs on every 20th
// call); slow shadow 1.12.0 .13 (answers after 600 ms); caller .20).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { admin } from '../fixtures/echo-mesh.ts';
import { PolicyMesh, unary } from '../fixtures/policy.ts';
import { waitForValue } from '../fixtures/wait.ts';

const NET = '127.0.92';
const mesh = new PolicyMesh(NET, [
  { name: 'primary', ip: `${NET}.11`, version: '1.4.0', echo: { sameAnswer: true } },
  { name: 'shadow', ip: `${NET}.12`, version: '1.10.0', echo: { sameAnswer: true, differEvery: 20 } },
  { name: 'slow-shadow', ip: `${NET}.13`, version: '1.12.0', echo: { sameAnswer: true, delayMs: 600 } },
]);
const CALLER = mesh.caller;

interface PolicyView {
  name: string;
  mirror?: { compared: number; matched: number; mismatched: number; shadowFailed: number; dropped: number; samples: { result: string; primaryVersion: string; shadowVersion: string; primaryFrame: string; shadowFrame: string }[]; methods: { method: string; payloadMismatched: number }[] };
}

async function policyView(name: string): Promise<PolicyView | undefined> {
  const r = await fetch(`${mesh.ctl.admin}/policies`);
  return ((await r.json()) as PolicyView[]).find((p) => p.name === name);
}

function applyPolicy(name: string, mirrorVersions: string): Promise<void> {
  return mesh.apply({ routes: [{ split: [{ versions: '<1.10.0', weight: 1 }], mirror: { versions: mirrorVersions, percent: 100 } }] }, mesh.pods, name);
}

before(async () => {
  await mesh.start();
});

after(async () => {
  await mesh.stop();
});

test('a shadow that differs on 1 call in 20 is reported as 5 % payload_mismatch in the policy\'s mirror status, with samples; callers get only the primary\'s answers', async (t) => {
  await applyPolicy('parallel-run', '~1.10.0');
  const n = 400;
  for (let i = 0; i < n; i++) {
    const r = await unary(mesh.client, { text: `call ${i}` });
    assert.ok(r.ok, r.ok ? '' : r.err.details);
    assert.equal(r.value.text, `call ${i}`, 'the caller gets the primary\'s answer, never the shadow\'s');
  }
  const view = await waitForValue('the controller to sum the sidecar\'s mirror report', () => policyView('parallel-run'), (v) => (v?.mirror?.compared ?? 0) + (v?.mirror?.dropped ?? 0) >= n, { timeoutMs: 15_000 });
  const m = view!.mirror!;
  t.diagnostic(JSON.stringify({ ...m, samples: m.samples.length }));
  assert.equal(m.shadowFailed, 0);
  assert.equal(m.compared + m.dropped, n);
  // Every 20th call the shadow app receives differs; dropped copies (in-flight cap) never reach it.
  const expected = Math.floor(m.compared / 20);
  assert.ok(Math.abs(m.mismatched - expected) <= 1, `mismatched ${m.mismatched} of ${m.compared}, expected ~${expected}`);
  assert.equal(m.methods.find((x) => x.method === 'Unary')?.payloadMismatched, m.mismatched);
  assert.ok(m.samples.length > 0 && m.samples.length <= 10);
  const s = m.samples.at(-1)!;
  assert.equal(s.result, 'payload_mismatch');
  assert.equal(s.primaryVersion, '1.4.0');
  assert.equal(s.shadowVersion, '1.10.0');
  assert.match(s.primaryFrame, /:/, 'the primary frame\'s header in its text form');
  assert.match(s.shadowFrame, /:/);
  const metrics = (await admin(CALLER, '/metrics')).body;
  assert.match(metrics, /qbasis_sidecar_mirror_results_total\{api="qbasis\.test\.echo\.v1\.EchoService",method="Unary",result="payload_mismatch"\} [1-9]/);
});

test('the caller never waits for a slow shadow, and copies beyond the in-flight cap are dropped and counted', async (t) => {
  await applyPolicy('slow-shadow', '~1.12.0');
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => unary(mesh.client, { text: `c${i}` })));
  const took = performance.now() - t0;
  t.diagnostic(`60 calls with a 600 ms shadow took ${took.toFixed(0)} ms`);
  assert.ok(results.every((r) => r.ok));
  // Each call answers in ms; a caller that waited for its shadow would take >= 600 ms.
  const slowest = Math.max(...results.map((r) => r.ms));
  assert.ok(slowest < 600, `slowest call ${slowest.toFixed(0)} ms`);
  const view = await waitForValue('the slow shadows to settle and be reported', () => policyView('slow-shadow'), (v) => (v?.mirror?.compared ?? 0) + (v?.mirror?.dropped ?? 0) >= 60, { timeoutMs: 20_000 });
  t.diagnostic(JSON.stringify(view!.mirror));
  assert.ok(view!.mirror!.dropped > 0, '60 concurrent copies to a 600 ms shadow exceed the cap of 16');
  assert.equal(view!.mirror!.mismatched, 0);
});
