// The sidecar's DiscoveryClient against a real controller process: it follows edits,
// keeps its last snapshot while the controller is down, and reconnects by itself.
// Addresses: this file uses 127.0.34.x (controller on 127.0.34.1).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pino, type Logger } from 'pino';
import { DiscoveryClient, type ApiSnapshot } from '../../sidecar/discovery-client.ts';
import { startController, tempDir, writePods, type LogLine, type TestPod } from '../fixtures/local-controller.ts';
import { waitUntil } from '../fixtures/wait.ts';

const HOST = '127.0.34.1';
const API = 'shop.orders.v1.OrderService';
const pod = (name: string, version: string, ip: string): TestPod => ({ name, namespace: 'shop', ip, provides: `${API}@${version}` });

/** A logger that keeps the client's own JSON lines (debug included: every reconnect attempt is one). */
function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

test('the discovery client keeps its last snapshot while the controller is down and reconnects after it restarts', async () => {
  const dir = tempDir('client');
  const file = path.join(dir, 'pods.yaml');
  writePods(file, [pod('orders-a', '1.4.0', '127.0.34.10')]);
  let ctl = await startController({ podsFile: file, host: HOST });
  const port = Number(ctl.target.split(':')[1]); // the restart reuses it, as a Service would
  const { logger, lines } = capturingLogger();
  const client = new DiscoveryClient({ target: ctl.target, logger, backoffInitialMs: 100, backoffMaxMs: 500, pod: 'tester' });
  const states: string[] = [];
  client.on('state', (s: string) => states.push(s));
  try {
    client.watch(API);
    client.watch(API); // idempotent
    assert.deepEqual(client.apis(), [API]);
    const first = await client.waitForSnapshot(API, 20_000);
    assert.deepEqual(
      first.endpoints.map((e) => [e.pod, e.version, e.address, e.port]),
      [['orders-a', '1.4.0', '127.0.34.10', 15006]],
    );
    await waitUntil('connected', () => client.state() === 'connected', { timeoutMs: 10_000 });

    writePods(file, [pod('orders-a', '1.4.0', '127.0.34.10'), pod('orders-b', '1.5.0', '127.0.34.11')]);
    await waitUntil('the added endpoint', () => client.snapshot(API)?.endpoints.length === 2, { timeoutMs: 20_000 });

    // controller goes away: state drops, the snapshot stays
    const held = client.snapshot(API);
    const heldEndpoints = held!.endpoints.map((e) => e.pod);
    const snapsWhileDown: ApiSnapshot[] = [];
    const onSnap = (x: ApiSnapshot): void => void snapsWhileDown.push(x);
    client.on('snapshot', onSnap);
    assert.equal(await ctl.stop(), 0);
    await waitUntil('disconnected', () => client.state() === 'disconnected', { timeoutMs: 20_000 });
    // Several reconnects have failed (the client logs each): each was a point where the snapshot could be dropped.
    const lost = (): LogLine[] => lines.filter((l) => l.msg === 'discovery stream lost; keeping last snapshot' && l.api === API);
    await waitUntil('three failed reconnects', () => lost().some((l) => Number(l.attempt) >= 3), { timeoutMs: 20_000 });
    assert.equal(client.state(), 'disconnected');
    assert.equal(client.snapshot(API), held, 'the last snapshot is kept while disconnected');
    assert.deepEqual(client.snapshot(API)!.endpoints.map((e) => e.pod), heldEndpoints);
    assert.deepEqual(snapsWhileDown, [], 'no snapshot (an empty one included) was published while disconnected');
    assert.ok(lost().every((l) => l.keptVersion === held!.version), `each lost stream kept version ${held!.version}: ${JSON.stringify(lost())}`);
    client.off('snapshot', onSnap);

    // edited while down; the restarted controller sends a fresh snapshot
    writePods(file, [pod('orders-b', '1.5.0', '127.0.34.11'), pod('orders-c', '2.0.0', '127.0.34.12')]);
    const snaps: ApiSnapshot[] = [];
    client.on('snapshot', (s: ApiSnapshot) => snaps.push(s));
    ctl = await startController({ podsFile: file, host: HOST, port });
    await waitUntil('the snapshot after restart', () => client.snapshot(API)?.endpoints.some((e) => e.pod === 'orders-c') === true, { timeoutMs: 30_000 });
    assert.deepEqual(client.snapshot(API)!.endpoints.map((e) => e.pod), ['orders-b', 'orders-c']);
    await waitUntil('connected again', () => client.state() === 'connected', { timeoutMs: 10_000 });
    assert.ok(states.includes('disconnected') && states.at(-1) === 'connected', `states: ${states.join(' → ')}`);
  } finally {
    client.close();
    await ctl.stop();
  }
});

test('the discovery client reconnects after the controller is killed with SIGKILL', async () => {
  const dir = tempDir('client-kill');
  const file = path.join(dir, 'pods.yaml');
  writePods(file, [pod('orders-a', '1.4.0', '127.0.34.20')]);
  let ctl = await startController({ podsFile: file, host: HOST });
  const port = Number(ctl.target.split(':')[1]);
  const client = new DiscoveryClient({ target: ctl.target, logger: pino({ level: 'silent' }), backoffInitialMs: 100, backoffMaxMs: 500 });
  try {
    client.watch(API);
    await client.waitForSnapshot(API, 20_000);
    await ctl.stop('SIGKILL');
    await waitUntil('disconnected', () => client.state() === 'disconnected', { timeoutMs: 20_000 });
    assert.equal(client.snapshot(API)?.endpoints[0]?.pod, 'orders-a');
    writePods(file, [pod('orders-z', '1.4.0', '127.0.34.21')]);
    ctl = await startController({ podsFile: file, host: HOST, port });
    await waitUntil('the new snapshot', () => client.snapshot(API)?.endpoints[0]?.pod === 'orders-z', { timeoutMs: 30_000 });
  } finally {
    client.close();
    await ctl.stop();
  }
});

test('keepalive notices a controller that hangs (SIGSTOP) without closing its connection, and the client recovers after SIGCONT', async () => {
  const dir = tempDir('client-hang');
  const file = path.join(dir, 'pods.yaml');
  writePods(file, [pod('orders-h', '1.4.0', '127.0.34.30')]);
  const ctl = await startController({ podsFile: file, host: HOST });
  const client = new DiscoveryClient({
    target: ctl.target,
    logger: pino({ level: 'silent' }),
    backoffInitialMs: 100,
    backoffMaxMs: 500,
    keepaliveTimeMs: 1000,
    keepaliveTimeoutMs: 1000,
  });
  try {
    client.watch(API);
    await client.waitForSnapshot(API, 20_000);
    await waitUntil('connected', () => client.state() === 'connected', { timeoutMs: 10_000 });
    ctl.proc.kill('SIGSTOP'); // the TCP connection stays open; only the keepalive can tell
    await waitUntil('keepalive to notice the hung controller', () => client.state() === 'disconnected', { timeoutMs: 30_000 });
    assert.equal(client.snapshot(API)?.endpoints[0]?.pod, 'orders-h', 'the last snapshot is kept');
    ctl.proc.kill('SIGCONT');
    await waitUntil('reconnected after SIGCONT', () => client.state() === 'connected', { timeoutMs: 30_000 });
  } finally {
    ctl.proc.kill('SIGCONT');
    client.close();
    await ctl.stop();
  }
});

test('a discovery client that watches nothing reports the connection state of its channel', async () => {
  const dir = tempDir('client-idle');
  const file = path.join(dir, 'pods.yaml');
  writePods(file, []);
  const ctl = await startController({ podsFile: file, host: HOST });
  const client = new DiscoveryClient({ target: ctl.target, logger: pino({ level: 'silent' }), backoffInitialMs: 100, backoffMaxMs: 500 });
  try {
    await waitUntil('connected without any watch', () => client.state() === 'connected', { timeoutMs: 20_000 });
    await ctl.stop();
    await waitUntil('disconnected after the controller stopped', () => client.state() === 'disconnected', { timeoutMs: 20_000 });
  } finally {
    client.close();
    await ctl.stop();
  }
});
