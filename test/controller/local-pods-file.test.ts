// Local mode's pods file: edits in place and by rename reach the stream, an invalid
// file keeps the last good state and says what was wrong, kubectl's multi-document
// form works, invalid annotations are reported once and the pod is left out.
// Addresses: this file uses 127.0.33.x (controller on 127.0.33.1).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import {
  listedPod,
  replacePods,
  startController,
  tempDir,
  WatchReader,
  writePods,
  type RunningController,
  type EndpointsByPod,
  type TestPod,
} from '../fixtures/local-controller.ts';
import { waitUntil } from '../fixtures/wait.ts';

const HOST = '127.0.33.1';
const API = 'shop.orders.v1.OrderService';
let dir: string;
let file: string;
let ctl: RunningController;

const pod = (name: string, version: string, ip: string, extra: Partial<TestPod> = {}): TestPod => ({ name, namespace: 'shop', ip, provides: `${API}@${version}`, ...extra });
const a = pod('orders-a', '1.4.0', '127.0.33.10');
const bad: TestPod = { name: 'orders-bad', namespace: 'shop', ip: '127.0.33.11', provides: `${API}@1.x` };

before(async () => {
  dir = tempDir('podsfile');
  file = path.join(dir, 'pods.yaml');
  writePods(file, [a, bad]);
  ctl = await startController({ podsFile: file, host: HOST });
});

after(async () => {
  assert.equal(await ctl.stop(), 0);
});

const badLines = (value = `${API}@1.x`) =>
  ctl.logs.filter((l) => l.code === 'QB_INVALID_ANNOTATION' && l.pod === 'orders-bad' && l.annotation === 'qbasis.io/provides' && l.value === value);
const rejectedPods = async (): Promise<number> => Number(/^qbasis_controller_rejected_pods (\d+)$/m.exec(await (await fetch(`${ctl.admin}/metrics`)).text())?.[1]);

test('an invalid annotation is logged once with pod, annotation, value and expectation, and the pod is left out', async () => {
  await waitUntil('the invalid-annotation log line', () => badLines().length >= 1, { timeoutMs: 20_000 });
  const line = badLines()[0]!;
  assert.equal(line.value, `${API}@1.x`);
  assert.match(String(line.expected), /semantic version|MAJOR\.MINOR\.PATCH/);
  assert.equal(line.namespace, 'shop');
  assert.match(line.msg, /orders-bad/);

  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await w.readUntil(state, () => state.has('orders-a'));
    assert.equal(state.has('orders-bad'), false, 'the invalid pod is not an endpoint');

    // several reloads that keep the bad pod as it is: still exactly one report
    for (const v of ['1.4.1', '1.4.2', '1.4.3']) {
      writePods(file, [pod('orders-a', v, '127.0.33.10'), bad]);
      await w.readUntil(state, () => state.get('orders-a')?.version === v);
    }
    assert.equal(await rejectedPods(), 1, 'the bad pod is counted as rejected');
    // The pod broken differently is reported again: once that report is in the log, every line the three
    // reloads before it could have written is in too (one ordered stdout), so a repeat would show.
    writePods(file, [a, { ...bad, provides: `${API}@1.y` }]);
    await waitUntil('the report of the new invalid value', () => badLines(`${API}@1.y`).length >= 1, { timeoutMs: 20_000 });
    assert.equal(badLines().length, 1, 'reported once, not on every reload');

    // fixed: it joins discovery
    writePods(file, [a, { ...bad, provides: `${API}@1.6.0` }]);
    await w.readUntil(state, () => state.get('orders-bad')?.version === '1.6.0');
    assert.equal(await rejectedPods(), 0);
  } finally {
    w.close();
  }
});

test('edits in place and by rename (as editors save) reach subscribers', async () => {
  writePods(file, [a]);
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await w.readUntil(state, () => state.size === 1 && state.has('orders-a'));
    replacePods(file, [a, pod('orders-b', '1.5.0', '127.0.33.12')]);
    await w.readUntil(state, () => state.get('orders-b')?.version === '1.5.0');
    // a second rename: the watch must survive the inode change
    replacePods(file, [pod('orders-b', '1.5.0', '127.0.33.12', { ready: false })]);
    await w.readUntil(state, () => !state.has('orders-a') && state.get('orders-b')?.ready === false);
    writePods(file, [a]);
    await w.readUntil(state, () => state.size === 1 && state.has('orders-a'));
  } finally {
    w.close();
  }
});

test('an invalid pods file keeps the last good state and logs what was wrong', async () => {
  writePods(file, [a]);
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await w.readUntil(state, () => state.size === 1 && state.get('orders-a')?.version === '1.4.0');
    const before = w.messages.length;
    const lastVersion = Number(w.messages.at(-1)!.version);
    // half-written YAML: an unterminated flow mapping
    fs.writeFileSync(file, 'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: x\n');
    const err = await ctl.waitForLog((l) => l.level >= 50 && /pods file is invalid/.test(l.msg), 20_000, 'the invalid-file error');
    assert.match(String(err.err), /YAML|document 1/);
    // wrong kind
    fs.writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n');
    const kindErr = await ctl.waitForLog((l) => /kind Service; expected Pod, BasisPolicy, List or PodList/.test(String(l.err)), 20_000, 'the wrong-kind error');
    assert.ok(kindErr);
    const ready = await fetch(`${ctl.admin}/ready`);
    assert.equal(ready.status, 200, 'still ready on the last good state');
    // a valid file again
    writePods(file, [a, pod('orders-c', '1.7.0', '127.0.33.13')]);
    await w.readUntil(state, () => state.get('orders-c')?.version === '1.7.0');
    // The stream is ordered and its version counts every change of the endpoint set: the first message after
    // the invalid files is the valid file's change, one version on, adding orders-c and nothing else. Any
    // change published for the invalid files would come before it or skip a version.
    const after = w.messages.slice(before);
    assert.equal(after.length, 1, `subscribers saw only the valid file: ${JSON.stringify(after)}`);
    assert.equal(Number(after[0]!.version), lastVersion + 1, 'no change was made in between, not even one folded into this update');
    assert.equal(after[0]!.kind, 'diff');
    assert.deepEqual(after[0]!.diff!.added.map((e) => e.pod), ['orders-c']);
    assert.deepEqual([...after[0]!.diff!.changed, ...after[0]!.diff!.removed], []);
  } finally {
    w.close();
  }
});

test('a multi-document file of Pods (and a PodList) is read like kubectl prints it', async () => {
  const docs = [listedPod(a), listedPod(pod('orders-d', '1.8.0', '127.0.33.14'))].map((d) => YAML.stringify(d)).join('---\n');
  fs.writeFileSync(file, docs + '---\n');
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await w.readUntil(state, () => state.size === 2 && state.get('orders-d')?.version === '1.8.0');
    fs.writeFileSync(file, YAML.stringify({ apiVersion: 'v1', kind: 'PodList', items: [listedPod(pod('orders-e', '1.9.0', '127.0.33.15'))] }));
    await w.readUntil(state, () => state.size === 1 && state.get('orders-e')?.version === '1.9.0');
  } finally {
    w.close();
  }
});

test('two APIs whose basis API ids collide are reported', async () => {
  // found by search: both hash to 0x422fd944 (FNV-1a 32)
  const x = 'shop.hxpdesko.v1.Api';
  const y = 'shop.jixbkzcm.v1.Api';
  writePods(file, [a, { name: 'api-x', namespace: 'shop', ip: '127.0.33.16', provides: `${x}@1.0.0` }, { name: 'api-y', namespace: 'shop', ip: '127.0.33.17', provides: `${y}@1.0.0` }]);
  const line = await ctl.waitForLog((l) => l.code === 'QB_API_ID_COLLISION', 20_000, 'the collision report');
  assert.deepEqual([...(line.apis as string[])].sort(), [x, y]);
  assert.equal(line.apiId, '0x422fd944');
});

test('a controller started on an invalid pods file is not ready until the file is valid', async () => {
  const file2 = path.join(dir, 'later.yaml');
  fs.writeFileSync(file2, 'kind: List\nitems: [\n');
  const c2 = await startController({ podsFile: file2, host: '127.0.33.2', waitReady: false });
  try {
    await c2.waitForLog((l) => /pods file is invalid/.test(l.msg), 20_000, 'the invalid-file error');
    const before = await fetch(`${c2.admin}/ready`);
    assert.equal(before.status, 503);
    assert.match(await before.text(), /pod source pods-file synced/);
    writePods(file2, [a]);
    await c2.waitForLog((l) => l.msg === 'controller ready', 20_000, 'controller ready after a good load');
    assert.equal((await fetch(`${c2.admin}/ready`)).status, 200);
  } finally {
    assert.equal(await c2.stop(), 0);
  }
});
