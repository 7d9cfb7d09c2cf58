// The sidecar's call metrics: label values that come from the wire stay bounded (statuses gRPC does
// not define share `OTHER`; made-up methods share `other`), and what is recorded is what /metrics says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallMetrics, MAX_METHOD_LABELS, Metrics } from '../../sidecar/metrics.ts';

test('grpc-status values gRPC does not define (from a hostile far end) are counted as status="OTHER", not one series each', async () => {
  const m = new Metrics();
  const c = new CallMetrics(m.methods('outbound', 'shop.orders.v1.OrderService'), 'Create');
  for (const bogus of [17, 99, 12345, -1, 1.5, Number.NaN, 2 ** 40]) c.done(bogus, 0.001, true);
  c.done(0, 0.001, true);
  const text = await m.registry.metrics();
  const statuses = [...text.matchAll(/^qbasis_sidecar_requests_total\{[^}]*status="([^"]+)"\} (\d+)/gm)].map((x) => [x[1], Number(x[2])]);
  assert.deepEqual(Object.fromEntries(statuses), { OTHER: 7, OK: 1 });
});

test('a method keeps its name only once the far end answered it with something other than UNIMPLEMENTED, and at most MAX_METHOD_LABELS per API', async () => {
  const m = new Metrics();
  const api = m.methods('inbound', 'shop.orders.v1.OrderService');
  new CallMetrics(api, 'Made1').done(12, 0.001, true); // the app does not know it
  new CallMetrics(api, 'Local').done(3, 0.001, false); // refused by the sidecar itself
  for (let i = 0; i < MAX_METHOD_LABELS + 50; i++) new CallMetrics(api, `Real${i}`).done(0, 0.001, true);
  const methods = new Set([...(await m.registry.metrics()).matchAll(/^qbasis_sidecar_requests_total\{[^}]*method="([^"]+)"/gm)].map((x) => x[1]));
  assert.ok(!methods.has('Made1') && !methods.has('Local'));
  assert.ok(methods.has('other'));
  assert.equal(methods.size, MAX_METHOD_LABELS + 1, 'the cap plus `other`');
});
