// The console's health block with mesh identity on (local mode, --identity-dir): the root's expiry,
// what Certify signed and refused, and a pod whose certificate was not renewed listed as overdue, then
// expired, and gone once the pod leaves the pods file. The pure rules of identity-health.ts alone too.
// Addresses: 127.0.111.x (controller .1; pod IPs .11-.12 are never dialed).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { MeshSnapshot } from '../../controller/console/mesh-snapshot.ts';
import { IdentityHealth, MAX_TRACKED_PODS } from '../../controller/identity/identity-health.ts';
import { chromium } from 'playwright-core';
import { buildConsolePage } from '../../controller/console/build-page.ts';
import { newKeyAndCsr } from '../../sidecar/identity/csr.ts';
import { certify, readToken, startIdentityController, type IdentityController } from '../fixtures/identity.ts';
import { replacePods, tempDir, type TestPod } from '../fixtures/local-controller.ts';
import { waitForValue } from '../fixtures/wait.ts';

const NET = '127.0.111';
const LIFETIME_S = 10;
const pods: TestPod[] = [
  { name: 'orders-1', namespace: 'shop', ip: `${NET}.11`, serviceAccount: 'orders' },
  { name: 'billing-1', namespace: 'shop', ip: `${NET}.12`, serviceAccount: 'billing' },
];
let ctl: IdentityController;
let podsFile: string;
let base: string;

before(async () => {
  await buildConsolePage();
  podsFile = path.join(tempDir('console-health'), 'pods.yaml');
  replacePods(podsFile, pods);
  ctl = await startIdentityController({ podsFile, host: `${NET}.1`, lifetimeS: LIFETIME_S, args: ['--console', `${NET}.1:0`] });
  base = String(ctl.logs.find((l) => l.msg === 'console listening')?.url).replace(/\/$/, '');
});

after(async () => {
  await ctl.stop();
});

const health = async (): Promise<NonNullable<MeshSnapshot['health']['identity']>> => {
  const m = (await (await fetch(`${base}/api/v1/mesh`)).json()) as MeshSnapshot;
  assert.ok(m.health.identity !== undefined, 'identity health is in the snapshot when identity is on');
  return m.health.identity;
};

test('the health block: root expiry, certificates issued and refused by code, a certificate not renewed listed as overdue then expired, and dropped with its pod', { timeout: 60_000 }, async () => {
  const before = await health();
  assert.ok(before.rootNotAfter > Date.now() + 3000 * 86_400_000, 'a new root is valid for years');
  assert.deepEqual(before.trustedRootsNotAfter, [before.rootNotAfter]);
  assert.equal(before.leafLifetimeMs, LIFETIME_S * 1000);
  assert.deepEqual([before.issued, before.overdueTotal], [0, 0]);

  const { csr } = newKeyAndCsr();
  const issuedAt = Date.now();
  const got = await certify(ctl, await readToken(ctl, 'shop', 'orders-1'), csr);
  assert.ok(got.ok, 'certified');
  const wrong = await certify(ctl, 'not-a-token', csr);
  assert.equal(wrong.ok, false);
  const now = await waitForValue('the issue and the refusal counted', health, (h) => h.issued === 1 && Object.values(h.refused).reduce((a, b) => a + b, 0) === 1);
  assert.deepEqual(Object.keys(now.refused), ['QB_TOKEN_REFUSED']);
  assert.equal(now.overdueTotal, 0, 'a fresh certificate is not overdue');

  // Nobody renews it: at 3/4 of its 10 s it is overdue, at 10 s expired.
  const overdue = await waitForValue('the certificate overdue', health, (h) => h.overdueTotal === 1, { timeoutMs: 20_000 });
  // (notAfter is in whole seconds: up to 1 s of the 10 is cut)
  assert.ok(Date.now() - issuedAt >= 0.6 * LIFETIME_S * 1000, `listed ${Date.now() - issuedAt} ms after issue`);
  assert.deepEqual(overdue.overdue.map((o) => [o.namespace, o.pod, o.identity]), [['shop', 'orders-1', 'spiffe://cluster.local/ns/shop/sa/orders']]);
  await waitForValue('the certificate expired', health, (h) => h.expiredTotal === 1, { timeoutMs: 20_000 });

  // The page says it in words (Debian's chromium, as console-browser.test.ts).
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${base}/`);
    const certs = page.locator('section.health dd[data-overdue="1"]');
    await certs.waitFor({ timeout: 15_000 });
    assert.match(await certs.innerText(), /^1 issued here \(10 s each\), refused: QB_TOKEN_REFUSED 1; ✖ 1 not renewed by three quarters of their lifetime \(1 expired: their calls fail\)[\s\S]*shop\/orders-1 \(spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders\) expired /);
    assert.match(await page.locator('section.health dd[data-root-days]').innerText(), /^✔ expires \d{4}-\d\d-\d\d \(\d+ days\)$/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }

  replacePods(podsFile, pods.slice(1));
  await waitForValue('the removed pod off the list', health, (h) => h.overdueTotal === 0, { timeoutMs: 20_000 });
});

test('identity health alone: a renewed certificate is no longer overdue, a deleting pod is dropped, and at most MAX_TRACKED_PODS pods are kept', () => {
  const h = new IdentityHealth();
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  const at = (ms: number): Date => new Date(t0 + ms);
  h.issued('shop', 'a', 'spiffe://x/ns/shop/sa/a', at(1000), t0);
  h.issued('shop', 'b', 'spiffe://x/ns/shop/sa/b', at(1000), t0);
  assert.equal(h.view(t0 + 749).overdueTotal, 0);
  assert.deepEqual(h.view(t0 + 750).overdue.map((o) => o.pod), ['a', 'b']);
  h.issued('shop', 'a', 'spiffe://x/ns/shop/sa/a', at(1500), t0 + 500);
  assert.deepEqual(h.view(t0 + 800).overdue.map((o) => o.pod), ['b'], 'a renewed');
  assert.equal(h.view(t0 + 1000).expiredTotal, 1);
  h.upsert({ namespace: 'shop', name: 'b', uid: '', ready: true, annotations: {}, labels: {}, deleting: true, serviceAccount: 'b' });
  assert.equal(h.view(t0 + 1000).overdueTotal, 0, 'a terminating pod is not a fault');
  for (let i = 0; i < MAX_TRACKED_PODS + 10; i++) h.issued('ns', `p${i}`, 'id', at(1000), t0);
  const v = h.view(t0 + 2000);
  assert.equal(v.overdueTotal, MAX_TRACKED_PODS, 'bounded');
  assert.equal(v.overdue.length, 50, 'the first 50 shown');
  assert.equal(v.issued, MAX_TRACKED_PODS + 13);
});
