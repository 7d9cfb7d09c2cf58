// The pods-file item cache (controller/local/pods-file-parse.ts, ItemCache): a reload that parses only
// the items whose text changed must give exactly what a whole parse gives, for any values YAML writers
// emit, and fall back to the whole parse for any other shape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import YAML from 'yaml';
import { ItemCache, parseToReply, splitBlockList } from '../../controller/local/pods-file-parse.ts';

// Values with the characters that move YAML's quoting and line structure.
const tricky = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', ':', '-', '#', '"', "'", '\n', '|', '>', '{', '}', '[', ']', ',', '?', '@', '%', '`', 'é', '💡', '\\'), maxLength: 24 });

const pod = fc.record({
  name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
  version: fc.constantFrom('1.0.0', '1.2.3', '2.0.0', 'not-a-version'),
  note: tricky,
  ready: fc.boolean(),
});

type P = { name: string; version: string; note: string; ready: boolean };

function object(p: P, i: number): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${p.name}-${i}`, namespace: 'shop', annotations: { 'qbasis.io/provides': `shop.orders.v1.Orders@${p.version}`, note: p.note }, labels: { app: 'orders' } },
    status: { phase: 'Running', podIP: `127.0.0.${(i % 250) + 1}`, conditions: [{ type: 'Ready', status: p.ready ? 'True' : 'False' }] },
  };
}

// As YAML writers lay a List out: `yaml` (items last, indented), js-yaml, and kubectl's order (items first, at column 0).
const writers: Record<string, (items: object[]) => string> = {
  yaml: (items) => YAML.stringify({ apiVersion: 'v1', kind: 'List', items }),
  'js-yaml': (items) => dump({ apiVersion: 'v1', kind: 'List', items }),
  kubectl: (items) => dump({ apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } }, { seqNoIndent: true }),
};

test('a reload through the item cache gives exactly the whole parse, for every writer and any values, also after one item changed', () => {
  fc.assert(
    fc.property(fc.array(pod, { minLength: 1, maxLength: 8 }), pod, fc.nat(), fc.constantFrom(...Object.keys(writers)), (pods, changed, at, writer) => {
      const write = writers[writer]!;
      const cache = new ItemCache();
      const first = write(pods.map(object));
      assert.deepEqual(parseToReply(first, cache), parseToReply(first));
      const next = pods.slice();
      next[at % next.length] = changed;
      const second = write(next.map(object));
      assert.deepEqual(parseToReply(second, cache), parseToReply(second));
    }),
    { numRuns: 300 },
  );
});

test('the cache takes plain Lists from each writer item by item (the fast path is really taken)', () => {
  const items = [0, 1, 2].map((i) => object({ name: 'p', version: '1.0.0', note: 'plain', ready: true }, i));
  for (const [name, write] of Object.entries(writers)) {
    const split = splitBlockList(write(items));
    assert.equal(split?.items.length, 3, `${name}: ${JSON.stringify(split)}`);
  }
});

test('other shapes are parsed whole: anchors and aliases, several documents, tabs, a flow list, items that do not parse alone', () => {
  const list = YAML.stringify({ apiVersion: 'v1', kind: 'List', items: [object({ name: 'p', version: '1.0.0', note: 'x', ready: true }, 0)] });
  const shapes = [
    `${list}\n---\n${list}`,
    list.replace('note: x', 'note: &a x'),
    'apiVersion: v1\nkind: List\nitems: []\n',
    list.replace('  - apiVersion', '\t- apiVersion'),
  ];
  for (const text of shapes) {
    assert.equal(splitBlockList(text), undefined, text);
    assert.deepEqual(parseToReply(text, new ItemCache()), parseToReply(text));
  }
  // an item whose quoted value runs onto a line that looks like the next item: the whole parse says what is wrong
  const broken = 'apiVersion: v1\nkind: List\nitems:\n  - metadata:\n      name: "a\n  - b"\n';
  const cache = new ItemCache();
  assert.equal(cache.documents(broken), undefined);
  assert.deepEqual(parseToReply(broken, cache), parseToReply(broken));
});
