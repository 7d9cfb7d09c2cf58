// Local mode's pods file as hostile input (issue 11, item 8): an invalid UTF-8 byte is
// reported once with its offset and the file is not re-read in a loop; a file over
// --pods-file-max-bytes is refused unread while the last good state is still served; a
// podIP that is not an IP literal is refused for that pod only; a file at the limit is
// parsed off the event loop.
// Addresses: this file uses 127.0.73.x (controllers on 127.0.73.1 and 127.0.73.2; pod IPs
// 127.0.73.10-250 are never dialed). Admin and discovery ports are 0 (any free port).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import {
  listedPod,
  podsYaml,
  QBASIS_BIN,
  REPO,
  startController,
  tempDir,
  WatchReader,
  writePods,
  type EndpointsByPod,
  type LogLine,
  type RunningController,
  type TestPod,
} from '../fixtures/local-controller.ts';

const HOST = '127.0.73.1';
const API = 'shop.orders.v1.OrderService';
const LIMIT = 1024 * 1024; // the default of --pods-file-max-bytes
let dir: string;
let file: string;
let ctl: RunningController;

const pod = (name: string, version: string, ip: string, extra: Partial<TestPod> = {}): TestPod => ({ name, namespace: 'shop', ip, provides: `${API}@${version}`, ...extra });
const a = pod('orders-a', '1.4.0', '127.0.73.10');
const b = pod('orders-b', '1.4.0', '127.0.73.11');
const c = pod('orders-c', '1.5.0', '127.0.73.12');

before(async () => {
  dir = tempDir('podsfile-hostile');
  file = path.join(dir, 'pods.yaml');
  writePods(file, [a]);
  // debug: the source logs each time it reads the file ('pods file read'), which the tests count
  ctl = await startController({ podsFile: file, host: HOST, args: ['--log-level', 'debug'] });
});

after(async () => {
  assert.equal(await ctl.stop(), 0);
});

/** Log lines logged after `mark` (an index into ctl.logs) that match. */
const since = (mark: number, pred: (l: LogLine) => boolean): LogLine[] => ctl.logs.slice(mark).filter(pred);
const after_ = (mark: number, pred: (l: LogLine) => boolean) => (l: LogLine) => ctl.logs.indexOf(l) >= mark && pred(l);
const reads = (l: LogLine): boolean => l.msg === 'pods file read';
const loaded = (l: LogLine): boolean => l.msg === 'pods file loaded';
const invalid = (problem: string) => (l: LogLine): boolean => l.code === 'QB_INVALID_PODS_FILE' && l.problem === problem;

/** Writes a temp file and renames it over the pods file: the controller sees the whole file or the old one. */
function replaceWith(content: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

/** Starts from a known good state: only orders-a, at 1.4.0. */
async function goodState(w: WatchReader, state: EndpointsByPod): Promise<void> {
  writePods(file, [a]);
  await w.readUntil(state, () => state.size === 1 && state.get('orders-a')?.version === '1.4.0', 30_000);
}

test('an invalid UTF-8 byte is reported once per change with its offset, and the file is not re-read in a loop', { timeout: 120_000 }, async (t) => {
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await goodState(w, state);
    const messagesBefore = w.messages.length;

    const text = podsYaml([a, b]);
    const offset = text.indexOf('orders-b') + 3;
    const bytes = Buffer.from(text);
    bytes[offset] = 0xff;
    const mark = ctl.logs.length;
    fs.writeFileSync(file, bytes);
    const err = await ctl.waitForLog(after_(mark, invalid('not-utf8')), 30_000, 'the invalid UTF-8 report');
    assert.equal(err.level, 50, 'an error');
    assert.equal(err.offset, offset);
    const line = text.slice(0, offset).split('\n').length;
    assert.match(err.msg, new RegExp(`^pods file is invalid \\(not UTF-8: byte 0xff at offset ${offset} \\(line ${line}\\)\\); keeping the last good state \\(1 pods\\)$`));

    // The first read was within 2 s of the write ("racy": same-size writes in one mtime tick look alike), so
    // the source reads once more after that window and then stops reading: wait for that settled read.
    await ctl.waitForLog(after_(mark, (l) => reads(l) && l.bytes === bytes.length && l.racy === false), 30_000, 'a settled (non-racy) read of the bad file');

    // a different bad content is a change: reported again, once
    const mark2 = ctl.logs.length;
    const bytes2 = Buffer.from(text);
    bytes2[offset + 1] = 0xc3; // a lead byte followed by an ASCII letter
    fs.writeFileSync(file, bytes2);
    const err2 = await ctl.waitForLog(after_(mark2, invalid('not-utf8')), 30_000, 'the second invalid UTF-8 report');
    assert.equal(err2.offset, offset + 1);
    assert.match(err2.msg, /byte 0xc3 at offset/);
    await ctl.waitForLog(after_(mark2, (l) => reads(l) && l.bytes === bytes2.length && l.racy === false), 30_000, 'a settled read of the second bad file');
    assert.equal(w.messages.length, messagesBefore, 'subscribers see no change while the file is invalid');

    // the positive event: a valid write is picked up
    const mark3 = ctl.logs.length;
    writePods(file, [a, c]);
    await w.readUntil(state, () => state.get('orders-c')?.version === '1.5.0', 30_000);
    assert.equal(since(mark, invalid('not-utf8')).length, 2, 'one report per bad content, not one per poll');
    // Two bad contents, each read at most: once at the change, maybe once while a writer was still at it, once
    // or twice more until it is no longer racy. The old loop read it every debounce (~30 a second here).
    const badReads = ctl.logs.slice(mark, mark3).filter(reads).length;
    t.diagnostic(`the two bad files were read ${badReads} times in ${Number(ctl.logs[mark3 - 1]?.time) - Number(ctl.logs[mark]?.time)} ms`);
    assert.ok(badReads >= 2 && badReads <= 10, `the bad files were read ${badReads} times`);
  } finally {
    w.close();
  }
});

test('a file over --pods-file-max-bytes is refused unread, and the last good state is still served', { timeout: 120_000 }, async () => {
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await goodState(w, state);
    const messagesBefore = w.messages.length;

    // A valid file that would add orders-c, padded with comments to 3 MB.
    const body = podsYaml([a, c]);
    const padding = `# ${'x'.repeat(98)}\n`.repeat(Math.ceil((3 * 1024 * 1024) / 101));
    const big = padding + body;
    const size = Buffer.byteLength(big);
    const mark = ctl.logs.length;
    // By rename: written in place, a loaded machine can pause the writer mid-file, and each size the
    // controller sees then is a change of its own (reported, still refused; but not one report).
    replaceWith(big);
    const err = await ctl.waitForLog(after_(mark, invalid('too-large')), 30_000, 'the too-large report');
    assert.equal(err.level, 50, 'an error');
    assert.equal(err.bytes, size);
    assert.equal(err.limit, LIMIT);
    assert.equal(
      err.msg,
      `pods file is invalid (${size} bytes, over the limit of ${LIMIT} bytes (--pods-file-max-bytes); not read); keeping the last good state (1 pods)`,
    );

    // The old pods are still served: to the open stream (no change) and to a new subscriber (the snapshot).
    const w2 = new WatchReader(ctl.target, API);
    try {
      const first = await w2.next(30_000);
      assert.equal(first.kind, 'snapshot');
      assert.deepEqual(
        first.snapshot!.endpoints.map((e) => e.pod),
        ['orders-a'],
      );
    } finally {
      w2.close();
    }
    assert.equal((await fetch(`${ctl.admin}/ready`)).status, 200, 'still ready on the last good state');

    assert.equal(w.messages.length, messagesBefore, 'subscribers see no change while the file is too large');

    // shrink it back under the limit: picked up; the big file was never read and reported once
    writePods(file, [a, c]);
    await w.readUntil(state, () => state.get('orders-c')?.version === '1.5.0', 30_000);
    assert.deepEqual(
      since(mark, reads).filter((l) => (l.bytes as number) > LIMIT),
      [],
      'the oversize file was not read',
    );
    assert.equal(since(mark, invalid('too-large')).length, 1, 'reported once, not on every poll');
  } finally {
    w.close();
  }
});

test('YAML aliases that expand a small file past one value per byte (a billion laughs) are refused, keeping the last good state; an alias as YAML writers emit it is read', { timeout: 120_000 }, async () => {
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await goodState(w, state);
    const mark = ctl.logs.length;
    // 9 levels of 9 aliases each: under 1 KB of text, 9^9 values if walked as a tree.
    const levels = ['l0: &l0 [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(', ')}]`);
    const bomb = `${podsYaml([a, c]).replace(/^metadata:$/m, `bomb:\n${levels.map((l) => `  ${l}`).join('\n')}\nmetadata:`)}`;
    assert.ok(bomb.length < 3000, `${bomb.length} bytes`);
    replaceWith(bomb);
    const err = await ctl.waitForLog(after_(mark, invalid('parse')), 30_000, 'the parse report');
    assert.match(String(err.err), /^its YAML aliases \(\*name\) expand it past \d+ values \(one per byte of the file\); write shared values out, or alias less$/);
    assert.match(err.msg, /keeping the last good state \(1 pods\)$/);
    assert.equal((await fetch(`${ctl.admin}/ready`)).status, 200, 'still ready on the last good state');
    assert.equal(state.has('orders-c'), false);

    // The yaml library writes one object used twice as an anchor and an alias: that file is read as written out.
    const labels = { app: 'orders' };
    const shared = podsYaml([{ ...a, labels }, { ...c, labels }]);
    assert.match(shared, /labels: \*\w+/, 'the writer used an alias');
    replaceWith(shared);
    await w.readUntil(state, () => state.get('orders-c')?.version === '1.5.0', 30_000);
  } finally {
    w.close();
  }
});

test('a podIP that is not an IP literal is refused for that pod, naming it, the value and what is expected; the others are served', { timeout: 120_000 }, async () => {
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await goodState(w, state);
    const dns = pod('orders-dns', '1.4.0', 'not-an-ip');
    const port = pod('orders-port', '1.4.0', '127.0.73.13:50051');
    const v6 = pod('orders-v6', '1.4.0', '::1');
    const mark = ctl.logs.length;
    writePods(file, [a, dns, b, port, v6]);
    await w.readUntil(state, () => state.has('orders-b') && state.has('orders-v6'), 30_000);
    const badIp = (name: string) => (l: LogLine) => l.code === 'QB_INVALID_PODS_FILE' && l.pod === name && l.field === 'status.podIP';
    const line = await ctl.waitForLog(after_(mark, badIp('orders-dns')), 30_000, 'the bad podIP report');
    assert.equal(line.level, 50);
    assert.equal(line.namespace, 'shop');
    assert.equal(line.value, 'not-an-ip');
    assert.match(String(line.expected), /IPv4 or IPv6 address literal/);
    assert.match(line.msg, /^pods file entry skipped: document 1 item 2: pod shop\/orders-dns: status\.podIP 'not-an-ip' is invalid: expected an IPv4 or IPv6 address literal/);
    const portLine = await ctl.waitForLog(after_(mark, badIp('orders-port')), 30_000, 'the podIP-with-port report');
    assert.equal(portLine.value, '127.0.73.13:50051');

    assert.deepEqual([...state.keys()].sort(), ['orders-a', 'orders-b', 'orders-v6'], 'the bad pods are left out, the others stay');
    assert.equal(state.get('orders-v6')?.address, '::1', 'an IPv6 literal is fine');

    // reloads that keep the bad pods as they are: still one report each
    for (const v of ['1.4.1', '1.4.2']) {
      writePods(file, [pod('orders-a', v, '127.0.73.10'), dns, b, port, v6]);
      await w.readUntil(state, () => state.get('orders-a')?.version === v, 30_000);
    }
    assert.equal(since(mark, badIp('orders-dns')).length, 1, 'reported once, not on every reload');
    assert.equal(since(mark, badIp('orders-port')).length, 1);

    // fixed: it joins discovery
    writePods(file, [a, { ...dns, ip: '127.0.73.14' }]);
    await w.readUntil(state, () => state.get('orders-dns')?.address === '127.0.73.14', 30_000);
  } finally {
    w.close();
  }
});

/** Roughly what `kubectl get pods -o yaml` prints for a pod (~3 KB), so that a parse does real work. */
function kubectlPod(i: number): Record<string, unknown> {
  const m = listedPod(pod(`orders-${i}`, '1.4.0', `127.0.73.${20 + (i % 230)}`)) as {
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
    status: Record<string, unknown>;
  };
  Object.assign(m.metadata, {
    labels: { app: 'orders', 'pod-template-hash': '7d9f8b6c5' },
    generateName: 'orders-7d9f8b6c5-',
    creationTimestamp: '2026-01-01T00:00:00Z',
    resourceVersion: String(1000 + i),
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'orders-7d9f8b6c5', uid: `rs-${i}`, controller: true, blockOwnerDeletion: true }],
  });
  Object.assign(m.spec, {
    containers: [
      {
        name: 'app',
        image: 'registry.example/orders:1.4.0',
        imagePullPolicy: 'IfNotPresent',
        ports: [{ containerPort: 50051, name: 'grpc', protocol: 'TCP' }],
        resources: { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
        volumeMounts: [{ mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', name: 'kube-api-access', readOnly: true }],
      },
    ],
    dnsPolicy: 'ClusterFirst',
    nodeName: 'kwok-node-0',
    restartPolicy: 'Always',
    schedulerName: 'default-scheduler',
    serviceAccountName: 'default',
    terminationGracePeriodSeconds: 30,
    tolerations: [
      { effect: 'NoExecute', key: 'node.kubernetes.io/not-ready', operator: 'Exists', tolerationSeconds: 300 },
      { effect: 'NoExecute', key: 'node.kubernetes.io/unreachable', operator: 'Exists', tolerationSeconds: 300 },
    ],
    volumes: [{ name: 'kube-api-access', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
  });
  Object.assign(m.status, {
    hostIP: '127.0.0.1',
    qosClass: 'Burstable',
    startTime: '2026-01-01T00:00:00Z',
    containerStatuses: [
      {
        name: 'app',
        ready: true,
        restartCount: 0,
        started: true,
        image: 'registry.example/orders:1.4.0',
        containerID: `containerd://${'ab'.repeat(32)}`,
        state: { running: { startedAt: '2026-01-01T00:00:01Z' } },
      },
    ],
  });
  return m;
}

/** A List of kubectl-style pods as close to `max` bytes as whole pods allow. */
function listOfSize(max: number): { text: string; pods: number } {
  const one = Buffer.byteLength(YAML.stringify({ items: [kubectlPod(100)] }));
  let n = Math.floor(max / one);
  for (;;) {
    const text = YAML.stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: n }, (_, i) => kubectlPod(i)), metadata: { resourceVersion: '' } });
    if (Buffer.byteLength(text) <= max) return { text, pods: n };
    n -= Math.ceil(n / 100);
  }
}

test('a file at the size limit is loaded, and parsed in a worker while /live keeps answering', { timeout: 180_000 }, async (t) => {
  const { text, pods } = listOfSize(LIMIT);
  assert.ok(Buffer.byteLength(text) > LIMIT * 0.97, `the file is at the limit (${Buffer.byteLength(text)} bytes)`);
  const mark = ctl.logs.length;
  replaceWith(text); // by rename, so the controller never sees half of it
  const size = Buffer.byteLength(text);
  await ctl.waitForLog(after_(mark, (l) => l.msg === 'pods file parse started in a worker' && l.bytes === size), 30_000, 'the worker parse');
  // Not a timing bound: the parse takes a while (about half a second of CPU per MiB here, more under load); the
  // event loop is free during it, so /live answers before the load ends. On the main thread it could not.
  // (Matched by its pod count: the previous test's load line can arrive after its discovery update did.)
  const bigLoaded = (): boolean => since(mark, (l) => loaded(l) && l.pods === pods).length > 0;
  const answeredDuringParse: number[] = [];
  while (!bigLoaded()) {
    const r = await fetch(`${ctl.admin}/live`);
    await r.arrayBuffer();
    if (!bigLoaded()) answeredDuringParse.push(r.status);
  }
  t.diagnostic(`${size} bytes, ${pods} pods; /live answered ${answeredDuringParse.length} times during the parse`);
  assert.ok(answeredDuringParse.length >= 1, '/live answered while the file was being parsed');
  assert.ok(answeredDuringParse.every((s) => s === 200));
  const w = new WatchReader(ctl.target, API);
  try {
    const state: EndpointsByPod = new Map();
    await w.readUntil(state, () => state.size === pods, 30_000);
  } finally {
    w.close();
  }
});

test('a controller started on a file over its --pods-file-max-bytes is not ready until the file fits', { timeout: 120_000 }, async () => {
  const file2 = path.join(dir, 'small-limit.yaml');
  writePods(file2, [a, b, c]);
  const size = fs.statSync(file2).size;
  const c2 = await startController({ podsFile: file2, host: '127.0.73.2', waitReady: false, args: ['--pods-file-max-bytes', String(size - 1)] });
  try {
    const err = await c2.waitForLog(invalid('too-large'), 30_000, 'the too-large report');
    assert.equal(err.limit, size - 1);
    assert.match(err.msg, /nothing is loaded yet: discovery is not served and \/ready stays 503 until the file is valid$/);
    assert.equal((await fetch(`${c2.admin}/ready`)).status, 503);
    writePods(file2, [a, b]);
    await c2.waitForLog((l) => l.msg === 'controller ready', 30_000, 'controller ready once the file fits');
    assert.equal((await fetch(`${c2.admin}/ready`)).status, 200);
  } finally {
    assert.equal(await c2.stop(), 0);
  }
});

test('controller refuses --pods-file-max-bytes 0 with one line and exit 2', () => {
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'controller', '--pods-file', file, '--pods-file-max-bytes', '0'], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stderr, "qbasis controller: QB_INVALID_FLAG: --pods-file-max-bytes '0' is invalid: expected a positive number of bytes\n");
});
