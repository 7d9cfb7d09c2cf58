// The discovery Watch stream against a real controller process.
// Addresses: this file uses 127.0.31.x (controller on 127.0.31.1).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startController, tempDir, WatchReader, writePods, type RunningController, type TestPod } from '../fixtures/local-controller.ts';

const HOST = '127.0.31.1';
const API = 'shop.orders.v1.OrderService';
let dir: string;
let file: string;
let ctl: RunningController;

const a: TestPod = { name: 'orders-a', namespace: 'shop', ip: '127.0.31.10', provides: `${API}@1.4.0` };
const b: TestPod = { name: 'orders-b', namespace: 'shop', ip: '127.0.31.11', provides: `${API}@1.5.0` };
const plain: TestPod = { name: 'not-meshed', namespace: 'shop', ip: '127.0.31.12' };

before(async () => {
  dir = tempDir('watch');
  file = path.join(dir, 'pods.yaml');
  writePods(file, [a, plain]);
  ctl = await startController({ podsFile: file, host: HOST });
});

after(async () => {
  assert.equal(await ctl.stop(), 0, 'controller exits 0 on SIGTERM');
});

test('first message is a full snapshot, then add/change/remove/no-endpoints updates with increasing versions', async () => {
  const w = new WatchReader(ctl.target, API);
  try {
    const first = await w.next();
    assert.equal(first.kind, 'snapshot');
    assert.equal(first.api, API);
    assert.deepEqual(first.snapshot?.endpoints, [
      { pod: 'orders-a', namespace: 'shop', address: '127.0.31.10', port: 15006, version: '1.4.0', codecs: [1], ready: true, identity: 'spiffe://cluster.local/ns/shop/sa/default' },
    ]);
    let version = first.version;
    const nextUpdate = async (kind: string) => {
      const u = await w.next();
      assert.equal(u.kind, kind, `expected a ${kind} message, got ${JSON.stringify(u)}`);
      assert.ok(u.version > version, `version ${u.version} must be above ${version}`);
      version = u.version;
      return u;
    };

    writePods(file, [a, b, plain]);
    const added = await nextUpdate('diff');
    assert.deepEqual(added.diff?.added.map((e) => [e.pod, e.version, e.address]), [['orders-b', '1.5.0', '127.0.31.11']]);
    assert.equal(added.diff?.removed.length, 0);
    assert.equal(added.diff?.changed.length, 0);

    writePods(file, [a, { ...b, ready: false }, plain]);
    const changed = await nextUpdate('diff');
    assert.deepEqual(changed.diff?.changed.map((e) => [e.pod, e.ready]), [['orders-b', false]]);
    assert.equal(changed.diff?.added.length, 0);

    writePods(file, [{ ...b, ready: false }, plain]);
    const removed = await nextUpdate('diff');
    assert.deepEqual(removed.diff?.removed, [{ pod: 'orders-a', namespace: 'shop' }]);

    writePods(file, [plain]);
    const none = await nextUpdate('noEndpoints');
    assert.equal(none.noEndpoints?.existsElsewhere, false);

    writePods(file, [plain, a]);
    const back = await nextUpdate('diff');
    assert.deepEqual(back.diff?.added.map((e) => e.pod), ['orders-a']);
  } finally {
    w.close();
  }
});

test('a terminating pod stays listed but not ready, and a pod without an IP is not listed', async () => {
  writePods(file, [a, { ...b, deleting: true }, { name: 'no-ip', namespace: 'shop', provides: `${API}@1.6.0` }]);
  const w = new WatchReader(ctl.target, API);
  try {
    // the file change may land before or after the stream opens: read until the state is right
    let eps = new Map<string, { ready: boolean }>();
    for (;;) {
      const u = await w.next();
      if (u.kind === 'snapshot') eps = new Map(u.snapshot!.endpoints.map((e) => [e.pod, e]));
      else if (u.kind === 'diff') for (const e of [...u.diff!.added, ...u.diff!.changed]) eps.set(e.pod, e);
      if (eps.has('orders-b')) break;
    }
    assert.equal(eps.get('orders-b')?.ready, false);
    assert.equal(eps.get('orders-a')?.ready, true);
    assert.equal(eps.has('no-ip'), false);
  } finally {
    w.close();
  }
});

test('a namespace-scoped watch sees only that namespace, and no_endpoints says the API exists elsewhere', async () => {
  writePods(file, [a, { ...b, namespace: 'other' }]);
  const w = new WatchReader(ctl.target, API, 'other');
  try {
    let u = await w.next();
    assert.equal(u.kind, 'snapshot');
    // the snapshot may predate the reload: read on until b is there
    while (!(u.snapshot?.endpoints ?? u.diff?.added ?? []).some((e) => e.pod === 'orders-b')) u = await w.next();
    assert.ok((u.snapshot?.endpoints ?? u.diff?.added ?? []).every((e) => e.namespace === 'other'));
    writePods(file, [a]);
    const none = await w.next();
    assert.equal(none.kind, 'noEndpoints');
    assert.equal(none.noEndpoints?.existsElsewhere, true, 'orders-a still provides the API in namespace shop');
  } finally {
    w.close();
  }
});

test('a watch for a name that is not a gRPC service name is refused with INVALID_ARGUMENT', async () => {
  const w = new WatchReader(ctl.target, 'not a service!');
  try {
    await assert.rejects(w.next(), /QB_BAD_REQUEST/);
    assert.equal(w.error?.code, 3);
  } finally {
    w.close();
  }
});
