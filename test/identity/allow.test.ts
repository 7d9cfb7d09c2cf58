// BasisPolicy `allow`, enforced by the providing pod's inbound sidecar with the policy in its own
// namespace: listed callers pass, others get PERMISSION_DENIED (QB_NOT_AUTHORIZED) naming their
// identity and the policy, a change applies within a second, and the app never sees a refused call.
// With identity off the controller says, once per policy spec, that allow is not enforced.
// Addresses: 127.0.103.x (controller .1; provider shop/orders .11; callers shop/checkout .21,
// shop/rogue .22, billing/invoices .23; a controller without identity .2).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ECHO_API, echoClient, type EchoClient, type StatsResponse } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { identityFlags, startIdentityController, type IdentityController } from '../fixtures/identity.ts';
import { replacePods, startController, tempDir, type TestPod } from '../fixtures/local-controller.ts';
import { basisPolicy, unary } from '../fixtures/policy.ts';

const NET = '127.0.103';
const PROVIDER = `${NET}.11`;
const callers = { checkout: `${NET}.21`, rogue: `${NET}.22`, invoices: `${NET}.23` } as const;
type Caller = keyof typeof callers;
let ctl: IdentityController;
let podsFile: string;
const clients = {} as Record<Caller, EchoClient>;
let app: EchoClient;

const pods: TestPod[] = [
  { name: 'orders', namespace: 'shop', ip: PROVIDER, provides: `${ECHO_API}@1.4.0`, serviceAccount: 'orders' },
  { name: 'checkout', namespace: 'shop', ip: callers.checkout, serviceAccount: 'checkout' },
  { name: 'rogue', namespace: 'shop', ip: callers.rogue, serviceAccount: 'rogue' },
  { name: 'invoices', namespace: 'billing', ip: callers.invoices, serviceAccount: 'invoices' },
];
// billing's own policy for the API says allow: [] — it is not the provider's namespace, so it does not count.
const billingPolicy = basisPolicy('echo', 1, { api: ECHO_API, allow: [] }, 'billing');
const shopPolicy = (generation: number, allow: string[] | undefined): object => basisPolicy('echo', generation, { api: ECHO_API, ...(allow === undefined ? {} : { allow }) }, 'shop');

before(async () => {
  podsFile = path.join(tempDir('identity-allow'), 'pods.yaml');
  replacePods(podsFile, pods, [shopPolicy(1, ['spiffe://cluster.local/ns/shop/sa/checkout', 'spiffe://cluster.local/ns/billing/sa/*']), billingPolicy]);
  ctl = await startIdentityController({ podsFile, host: `${NET}.1` });
  await startEcho({ host: PROVIDER, port: 50051, name: 'orders', version: '1.4.0' });
  await Promise.all([
    startSidecar({ ip: PROVIDER, discovery: ctl.identityTarget, appPort: 50051, provides: `${ECHO_API}@1.4.0`, podName: 'orders', extra: identityFlags(ctl, 'shop', 'orders') }),
    ...(Object.entries(callers) as [Caller, string][]).map(([name, ip]) =>
      startSidecar({ ip, discovery: ctl.identityTarget, appPort: 50099, requires: `${ECHO_API}@^1.2`, podName: name, extra: identityFlags(ctl, name === 'invoices' ? 'billing' : 'shop', name) })),
  ]);
  for (const [name, ip] of Object.entries(callers) as [Caller, string][]) clients[name] = echoClient(`${ip}:15001`);
  app = echoClient(`${PROVIDER}:50051`);
});

after(async () => {
  for (const c of Object.values(clients)) c.close();
  app?.close();
  await stopAll();
  await ctl?.stop();
});

async function appCalls(): Promise<number> {
  const r = await new Promise<StatsResponse>((resolve, reject) => app.Stats({}, (e: Error | null, s: StatsResponse) => (e ? reject(e) : resolve(s))));
  return Number(r.calls);
}

/** 'ok' or the refusal's code. */
async function verdict(who: Caller): Promise<string> {
  const r = await unary(clients[who], { text: who });
  return r.ok ? 'ok' : (r.err.metadata.get('qbasis-error-code')[0] as string | undefined) ?? grpc.status[r.err.code]!;
}

test('listed callers pass, another gets PERMISSION_DENIED naming its identity and the policy, and the app never sees it', async () => {
  assert.equal(await verdict('checkout'), 'ok');
  assert.equal(await verdict('invoices'), 'ok', 'billing/* matches billing/invoices, whatever billing\'s own policy says');
  const before = await appCalls();
  const r = await unary(clients.rogue, { text: 'rogue' });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.err.code, grpc.status.PERMISSION_DENIED);
  assert.deepEqual(r.err.metadata.get('qbasis-error-code'), ['QB_NOT_AUTHORIZED']);
  assert.equal(r.err.details, `spiffe://cluster.local/ns/shop/sa/rogue may not call ${ECHO_API}: it is not in the allow list of BasisPolicy shop/echo (generation 1)`);
  for (let i = 0; i < 20; i++) assert.equal(await verdict('rogue'), 'QB_NOT_AUTHORIZED');
  assert.equal(await appCalls(), before, 'refused calls never reach the app');
});

test('a change of the allow list applies within a second', async () => {
  const t0 = performance.now();
  replacePods(podsFile, pods, [shopPolicy(2, ['spiffe://cluster.local/ns/shop/sa/rogue']), billingPolicy]);
  for (;;) {
    const [c, r] = await Promise.all([verdict('checkout'), verdict('rogue')]);
    if (c === 'QB_NOT_AUTHORIZED' && r === 'ok') break;
    assert.ok(performance.now() - t0 < 1000, `still checkout=${c} rogue=${r} after ${Math.round(performance.now() - t0)} ms`);
    await new Promise((res) => setTimeout(res, 25));
  }
  const applied = performance.now() - t0;
  assert.equal(await verdict('invoices'), 'QB_NOT_AUTHORIZED');
  // No allow at all: every mesh identity.
  replacePods(podsFile, pods, [shopPolicy(3, undefined), billingPolicy]);
  for (;;) {
    if ((await verdict('checkout')) === 'ok') break;
    assert.ok(performance.now() - t0 < applied + 2000, 'allow removed');
    await new Promise((res) => setTimeout(res, 25));
  }
  for (const who of ['checkout', 'rogue', 'invoices'] as const) assert.equal(await verdict(who), 'ok', who);
  console.log(`# allow change applied in ${Math.round(applied)} ms (pods file write to both verdicts flipped)`);
});

test('with mesh identity off, allow cannot be enforced: the controller says so once per policy spec', async () => {
  const file = path.join(tempDir('identity-allow-off'), 'pods.yaml');
  replacePods(file, [pods[0]!], [shopPolicy(1, ['spiffe://cluster.local/ns/shop/sa/checkout'])]);
  const plain = await startController({ podsFile: file, host: `${NET}.2` });
  try {
    const line = await plain.waitForLog((l) => l.policy === 'shop/echo' && l.code === 'QB_NOT_AUTHORIZED', 10_000, 'the warning');
    assert.match(line.msg, /allow is NOT enforced/);
    replacePods(file, [{ ...pods[0]!, ready: false }], [shopPolicy(1, ['spiffe://cluster.local/ns/shop/sa/checkout'])]);
    await plain.waitForLog((l) => l.msg === 'pods file loaded' && l.reload === 2, 10_000, 'the reload');
    assert.equal(plain.logs.filter((l) => l.policy === 'shop/echo' && l.code === 'QB_NOT_AUTHORIZED').length, 1, 'once');
  } finally {
    await plain.stop();
  }
});
