// Pushes coalesce per stream: a subscriber that stops reading while many changes
// happen gets the latest state when it resumes, not a backlog of stale updates.
// Proven with a raw node:http2 gRPC stream that is paused, so HTTP/2 flow control
// backs up to the controller.
// Addresses: this file uses 127.0.32.x (controller on 127.0.32.1).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DISCOVERY_WATCH_PATH, discoveryServiceDefinition, type Update__Output } from '../../proto/discovery.ts';
import { startController, tempDir, writePods, type RunningController, type TestPod } from '../fixtures/local-controller.ts';
import { waitUntil } from '../fixtures/wait.ts';

const HOST = '127.0.32.1';
const API = 'shop.orders.v1.OrderService';
const PODS = 300; // ~25 KiB per full-state message, so a few messages fill the flow-control window
const EDITS = 20;
let dir: string;
let file: string;
let ctl: RunningController;

function pods(round: number): TestPod[] {
  // every round flips every pod's readiness, so each change touches all endpoints
  return Array.from({ length: PODS }, (_, i) => ({
    name: `orders-${String(i).padStart(4, '0')}-with-a-longish-pod-name-like-a-deployment-makes`,
    namespace: 'shop',
    ip: `127.0.32.${10 + (i % 200)}`,
    provides: `${API}@1.${round}.0`,
    ready: round % 2 === 0,
  }));
}

before(async () => {
  dir = tempDir('coalesce');
  file = path.join(dir, 'pods.yaml');
  writePods(file, pods(0));
  ctl = await startController({ podsFile: file, host: HOST });
});

after(async () => {
  await ctl.stop();
});

function grpcFrame(msg: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

test('a paused subscriber gets the latest state on resume, not one message per change', async () => {
  const def = discoveryServiceDefinition().Watch;
  const session = http2.connect(`http://${ctl.target}`);
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': DISCOVERY_WATCH_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.end(grpcFrame(def.requestSerialize({ api: API, namespace: '', subscriberPod: 'slow', subscriberNamespace: 'test', codecs: [1] })));

  const messages: Update__Output[] = [];
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      messages.push(def.responseDeserialize(buf.subarray(5, 5 + len)) as Update__Output);
      buf = buf.subarray(5 + len);
    }
  };
  stream.on('data', onData);
  try {
    await waitUntil('the snapshot', () => messages.length >= 1, { timeoutMs: 20_000 });
    assert.equal(messages[0]!.kind, 'snapshot');
    assert.equal(messages[0]!.snapshot!.endpoints.length, PODS);

    // Stop reading. Node stops granting HTTP/2 window once its buffer is full.
    stream.pause();
    for (let round = 1; round <= EDITS; round++) {
      writePods(file, pods(round));
      // wait until the controller has applied this round, so every round is a distinct registry version
      await ctl.waitForLog((l) => l.msg === 'pods file loaded' && (l.reload as number) >= round + 1, 20_000, `reload ${round}`);
    }
    // resume: everything queued in the pipe arrives, then the controller sends the current state
    stream.resume();
    const finalVersion = (): string => `1.${EDITS}.0`;
    await waitUntil('the final state', () => {
        const last = messages.at(-1);
        const eps = last?.diff?.changed ?? last?.snapshot?.endpoints ?? [];
        return eps.length === PODS && eps.every((e) => e.version === finalVersion());
      }, { timeoutMs: 30_000 });
    const finalAt = messages.length - 1;
    const last = messages[finalAt]!;
    assert.ok(last.diff!.changed.every((e) => e.version === finalVersion() && e.ready === (EDITS % 2 === 0)));

    // Nothing stale may follow the final state. One more change, sent after the final state was seen: the
    // stream is ordered, so anything still queued for the paused rounds would arrive before it. The next
    // message must be exactly that change.
    writePods(file, pods(EDITS + 1));
    await waitUntil('the change made after the final state', () => messages.length > finalAt + 1, { timeoutMs: 30_000 });
    const next = messages[finalAt + 1]!;
    const nextEps = next.diff?.changed ?? next.snapshot?.endpoints ?? [];
    assert.ok(
      nextEps.length === PODS && nextEps.every((e) => e.version === `1.${EDITS + 1}.0` && e.ready === ((EDITS + 1) % 2 === 0)),
      `the message after the final state is the later change, not a stale one (version ${next.version}, pods at ${[...new Set(nextEps.map((e) => e.version))].join(',')})`,
    );
    assert.equal(messages.length, finalAt + 2, 'one message for the one later change');

    const updates = finalAt;
    console.log(`paused subscriber: ${updates} updates for ${EDITS} changes, versions ${messages.map((m) => m.version).join(",")}`);
    assert.ok(updates < EDITS / 2, `a paused subscriber got ${updates} updates for ${EDITS} changes; coalescing should make it far fewer`);
    for (let i = 1; i < messages.length; i++) assert.ok(messages[i]!.version > messages[i - 1]!.version, 'versions strictly increase');
    assert.ok(last.version - messages[0]!.version >= EDITS, 'the versions skipped show changes were folded together');
    const metrics = await (await fetch(`${ctl.admin}/metrics`)).text();
    const coalesced = Number(/qbasis_controller_discovery_coalesced_total (\d+)/.exec(metrics)?.[1] ?? '0');
    assert.ok(coalesced > 0, `controller counts coalesced changes (${coalesced})`);
  } finally {
    stream.close();
    session.close();
  }
});
