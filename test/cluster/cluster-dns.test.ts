// The real node's cluster DNS (cluster-dns.ts) without a cluster: which names it answers, the answer's bytes as
// a resolver reads them (node:dns's own parser is not exposed, so the wire format is checked field by field),
// and that malformed queries are dropped rather than answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answer, parseQuery, serviceOf } from './cluster-dns.ts';

function query(name: string, type = 1, id = 0x1234): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

test('Service names <svc>.<ns>.svc.cluster.local are answered, anything else is not a Service', () => {
  assert.deepEqual(serviceOf('qbasis-discovery.qbasis-system.svc.cluster.local'), { service: 'qbasis-discovery', namespace: 'qbasis-system' });
  for (const n of ['qbasis-discovery.qbasis-system.svc.shop.svc.cluster.local', 'qbasis-discovery.svc.cluster.local', 'example.com', 'a.b.svc.cluster.local.evil', '-x.ns.svc.cluster.local', 'x.ns_.svc.cluster.local']) {
    assert.equal(serviceOf(n), undefined, n);
  }
});

test('an A answer echoes the id and question and carries one record with the ClusterIP; a miss is NXDOMAIN', () => {
  const q = parseQuery(query('Orders.Shop.svc.cluster.local'))!;
  assert.equal(q.name, 'orders.shop.svc.cluster.local', 'names compare lower-case');
  const a = answer(q, 0, '198.19.3.4');
  assert.equal(a.readUInt16BE(0), 0x1234);
  assert.equal(a.readUInt16BE(2) & 0x800f, 0x8000, 'a response, rcode 0');
  assert.equal(a.readUInt16BE(2) & 0x0100, 0x0100, 'RD echoed');
  assert.deepEqual([a.readUInt16BE(4), a.readUInt16BE(6)], [1, 1]);
  assert.deepEqual(a.subarray(12, 12 + q.raw.length), q.raw);
  const rr = a.subarray(12 + q.raw.length);
  assert.equal(rr.readUInt16BE(0), 0xc00c, 'the name points at the question');
  assert.equal(rr.readUInt16BE(10), 4);
  assert.deepEqual([...rr.subarray(12, 16)], [198, 19, 3, 4]);
  const miss = answer(q, 3);
  assert.equal(miss.readUInt16BE(2) & 0x000f, 3);
  assert.equal(miss.readUInt16BE(6), 0, 'no answer records');
});

test('malformed or hostile queries are dropped: short, oversized, responses, several questions, bad labels, truncated', () => {
  const good = query('a.b.svc.cluster.local');
  const response = Buffer.from(good);
  response[2] = 0x81;
  const two = Buffer.from(good);
  two.writeUInt16BE(2, 4);
  const longLabel = Buffer.from(good);
  longLabel[12] = 64;
  for (const [why, msg] of [
    ['empty', Buffer.alloc(0)],
    ['header only, no question', good.subarray(0, 12)],
    ['over 512 bytes', Buffer.concat([good, Buffer.alloc(600)])],
    ['a response', response],
    ['two questions', two],
    ['a label over 63 bytes', longLabel],
    ['cut in a label', good.subarray(0, 15)],
    ['no type and class', good.subarray(0, good.length - 3)],
  ] as const) {
    assert.equal(parseQuery(msg), undefined, why);
  }
  assert.ok(parseQuery(good) !== undefined);
});
