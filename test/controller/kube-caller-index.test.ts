// The caller index (pods' qbasis.io/requires per namespace and API) as a pod sink: upserts, deletes, resyncs;
// the reconcile keys it emits, and the tee that feeds it beside the registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallerIndex } from '../../controller/kube/caller-index.ts';
import { reconcileKey, splitKey } from '../../controller/kube/reconcile-key.ts';
import { teeSink } from '../../controller/kube/tee-sink.ts';
import type { PodInfo } from '../../controller/pod-source.ts';

const A = 'shop.orders.v1.OrderService';
const B = 'shop.stock.v1.StockService';

function pod(namespace: string, name: string, requires?: string): PodInfo {
  return { namespace, name, uid: `uid-${name}`, ready: true, ip: '127.1.0.9', annotations: requires === undefined ? {} : { 'qbasis.io/requires': requires }, labels: {}, deleting: false, serviceAccount: 'default' };
}

test('keys split at the first slash, so API names with dots survive', () => {
  assert.deepEqual(splitKey(reconcileKey('shop', A)), { namespace: 'shop', api: A });
});

test('callers are indexed per namespace and API, and changes name the keys touched', () => {
  const idx = new CallerIndex();
  const touched: string[][] = [];
  idx.on('change', (keys: string[]) => touched.push(keys));
  idx.upsert(pod('shop', 'web', `${A}@^1.2, ${B}@>=2 <3`));
  assert.deepEqual(idx.callers('shop', A), [{ pod: 'web', range: '^1.2' }]);
  assert.deepEqual(idx.callers('shop', B), [{ pod: 'web', range: '>=2 <3' }]);
  assert.deepEqual(idx.callers('other', A), []);
  assert.deepEqual(touched.at(-1)?.sort(), [`shop/${A}`, `shop/${B}`].sort());

  idx.upsert(pod('shop', 'web', `${A}@^1.3`));
  assert.deepEqual(idx.callers('shop', A), [{ pod: 'web', range: '^1.3' }]);
  assert.deepEqual(idx.callers('shop', B), []);

  touched.length = 0;
  idx.upsert(pod('shop', 'web', `${A}@^1.3`));
  assert.equal(touched.length, 0, 'no change, no event');

  idx.delete({ namespace: 'shop', name: 'web' });
  assert.deepEqual(idx.callers('shop', A), []);
  assert.deepEqual(idx.apis(), new Set());
});

test('an invalid requires annotation makes the pod no caller, and resync drops pods that are gone', () => {
  const idx = new CallerIndex();
  idx.resync([pod('shop', 'a', `${A}@^1`), pod('shop', 'b', 'not a list @@'), pod('shop', 'c', `${A}@~1.4.0`)]);
  assert.deepEqual(idx.callers('shop', A).map((c) => c.pod).sort(), ['a', 'c']);
  idx.resync([pod('shop', 'c', `${A}@~1.4.0`)]);
  assert.deepEqual(idx.callers('shop', A), [{ pod: 'c', range: '~1.4.0' }]);
});

test('teeSink hands every pod to every sink in order', () => {
  const x = new CallerIndex();
  const y = new CallerIndex();
  const tee = teeSink(x, y);
  tee.upsert(pod('ns', 'p', `${A}@^1`));
  assert.equal(x.callers('ns', A).length, 1);
  assert.equal(y.callers('ns', A).length, 1);
  tee.resync([]);
  assert.equal(x.callers('ns', A).length + y.callers('ns', A).length, 0);
});
