// `npm run demo` / `qbasis demo`: the whole data plane on one machine, no cluster.
// A local controller watches a pods file; OrderService 1.4.0 pods run with sidecars;
// a client that requires ^1.2 calls through its own sidecar under bounded load while
// the demo adds 2.0.0 pods, runs a canary of 1.5.0 with a BasisPolicy (10 %, 50 %,
// 100 %), rolls the 1.4.0 pods away, and runs a 1.6.0 rewrite in parallel (a mirror)
// whose disagreements it prints — all by editing the pods file, exactly as a rollout
// and `kubectl apply` of a BasisPolicy would change what a controller sees.
// It prints which pod served how many calls, then calls / failed / misrouted.
// Alongside, two legacy HTTP/JSON apps join the mesh through protocol gateways (qbasis.io/app-protocol: http):
// an old stock service (stock-app.ts) and an old caller of it (HTTP requests from this process to its
// sidecar), converting with test/demo/stock.proto.
// Mutual TLS is on (unless --plaintext): the controller is the mesh CA (--identity-dir in the demo's
// temp dir), each sidecar gets a certificate for its ServiceAccount with the token the controller
// minted for its pod, and the BasisPolicy lets only the client's identity call OrderService.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import YAML from 'yaml';
import { satisfies } from '../../proto/versions.ts';
import { parseOrExit, type CommandSpec } from '../../cli/flags.ts';
import { ORDER_API } from './order-app.ts';
import { STOCK_API } from './stock-app.ts';
import { waitUntil } from '../fixtures/wait.ts';
import { newCounts, startLoad, startQuoteLoad, waitFirstCall } from './load.ts';
import { listedPod, type PodObject } from '../fixtures/local-controller.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin/qbasis.ts');
const APP = path.join(import.meta.dirname, 'order-app.ts');
const STOCK_APP = path.join(import.meta.dirname, 'stock-app.ts');
const STOCK_SCHEMA = path.join(import.meta.dirname, 'stock.proto');
const RANGE = '^1.2';
const NAMESPACE = 'shop';
const APP_PORT = 50051;

interface Options {
  durationS: number;
  rps: number;
  prefix: string;
  discoveryPort: number;
  consolePort: number;
  json: boolean;
  quiet: boolean;
  mtls: boolean;
}

const DEMO_COMMAND: CommandSpec = {
  name: 'demo',
  summary: 'The local rolling-upgrade demo: a controller, OrderService 1.4.0 pods, a ^1.2 client under load, 1.x rolled to 1.5.0 and 2.0.0 added.',
  flags: [
    { name: 'duration', kind: 'int', min: 10, max: 3600, default: '50', expected: 'seconds from 10 to 3600', help: 'seconds of load (about a minute in all; the rollout is spread over it)' },
    { name: 'rps', kind: 'int', min: 1, max: 2000, default: '40', expected: 'calls per second from 1 to 2000', help: 'calls per second from the ^1.2 client' },
    {
      name: 'ip-prefix', kind: 'string', arg: '127.X.Y', default: '127.0.1', help: 'every "pod" gets <prefix>.N',
      check: (p) => (/^127\.\d{1,3}\.\d{1,3}$/.test(p) && !p.split('.').some((o) => Number(o) > 255) ? undefined : 'expected three loopback octets such as 127.0.1'),
    },
    { name: 'discovery-port', kind: 'port', default: '0', help: "the local controller's discovery port (0: any free port)" },
    { name: 'console-port', kind: 'port', default: '15014', help: "the controller's web console, on the controller's address (0: any free port); its URL is printed" },
    { name: 'json', kind: 'bool', help: 'end with one JSON line of the counts' },
    { name: 'quiet', kind: 'bool', help: 'no live lines, only the final table' },
    { name: 'plaintext', kind: 'bool', help: 'mutual TLS off: no mesh identity, sidecars talk in plain text' },
  ],
};

function options(values: Map<string, string>): Options {
  return {
    durationS: Number(values.get('duration')),
    rps: Number(values.get('rps')),
    prefix: values.get('ip-prefix')!,
    discoveryPort: Number(values.get('discovery-port')),
    consolePort: Number(values.get('console-port')),
    json: values.get('json') === 'true',
    quiet: values.get('quiet') === 'true',
    mtls: values.get('plaintext') !== 'true',
  };
}

// --- processes -------------------------------------------------------------

class Processes {
  readonly #all = new Set<ChildProcess>();
  readonly logDir: string;

  constructor(logDir: string) {
    this.logDir = logDir;
  }

  spawn(name: string, args: string[]): ChildProcess {
    const out = fs.openSync(path.join(this.logDir, `${name}.log`), 'a');
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', out] });
    fs.closeSync(out);
    const log = fs.createWriteStream(path.join(this.logDir, `${name}.log`), { flags: 'a' });
    child.stdout!.pipe(log);
    this.#all.add(child);
    child.on('exit', () => this.#all.delete(child));
    return child;
  }

  /** SIGTERM, then SIGKILL whatever is still there after graceMs. */
  async stop(child: ChildProcess, graceMs = 15_000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }

  async stopAll(graceMs = 5000): Promise<void> {
    await Promise.all([...this.#all].map((c) => this.stop(c, graceMs)));
  }

  /** Last resort on process exit: nothing of ours may outlive the demo. */
  killAllNow(): void {
    for (const c of this.#all) c.kill('SIGKILL');
  }
}

/** Resolves with the first stdout line matching `re`. */
function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line !== undefined) done(line);
    };
    const onExit = (code: number | null): void => fail(new Error(`${what} exited (${code}) before it was up`));
    const t = setTimeout(() => fail(new Error(`${what} not up within ${timeoutMs} ms`)), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(t);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    };
    const done = (line: string): void => {
      cleanup();
      resolve(line);
    };
    const fail = (e: Error): void => {
      cleanup();
      reject(e);
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Waits for `url` to answer 200, failing at once if the process behind it exits. */
async function waitHttp200(url: string, timeoutMs: number, what: string, alive: () => boolean): Promise<void> {
  const status = async (): Promise<number> => (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
  await waitUntil(`${what} to be ready (${url})`, async () => (await status().catch(() => 0)) === 200, {
    timeoutMs,
    intervalMs: 150,
    abortIf: () => (alive() ? undefined : `${what} exited before it was ready`),
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// --- pods ------------------------------------------------------------------

interface DemoPod {
  name: string;
  version?: string;
  ip: string;
  requires?: string;
  terminating: boolean;
  /** In the pods file but not Ready yet (its token is minted; its processes are starting). */
  starting?: boolean;
  /** A legacy HTTP/JSON app of the stock API (provider if it has a version, else caller). */
  legacy?: boolean;
  /** Extra flags for its app (e.g. --quote-bug). */
  appArgs?: string[];
  app?: ChildProcess;
  sidecar?: ChildProcess;
}

/** The pod as the pods file lists it. */
function manifest(p: DemoPod): PodObject {
  const annotations: Record<string, string> = { 'qbasis.io/inject': 'true', 'qbasis.io/app-port': String(APP_PORT) };
  const api = p.legacy === true ? STOCK_API : ORDER_API;
  if (p.requires !== undefined) annotations['qbasis.io/requires'] = `${api}@${p.requires}`;
  if (p.legacy === true) Object.assign(annotations, { 'qbasis.io/app-protocol': 'http', 'qbasis.io/schema': 'stock-schema' });
  const role = p.legacy === true ? (p.version === undefined ? 'warehouse' : 'stock') : p.version === undefined ? 'shop-client' : 'orders';
  return listedPod({
    name: p.name,
    namespace: NAMESPACE,
    ip: p.ip,
    annotations,
    ...(p.version !== undefined ? { provides: `${api}@${p.version}` } : {}),
    labels: { app: role },
    image: `shop/${p.version === undefined ? role : `${role}:${p.version}`}`,
    ready: !p.terminating && p.starting !== true,
    deleting: p.terminating,
    serviceAccount: role,
  });
}

/** The demo's BasisPolicy, as `kubectl apply` would create it. */
function policyObject(generation: number, spec: Record<string, unknown>): object {
  return { apiVersion: 'qbasis.io/v1alpha1', kind: 'BasisPolicy', metadata: { name: 'orders', namespace: NAMESPACE, generation }, spec: { api: ORDER_API, ...spec } };
}

/** Saves like an editor: temp file + rename, so the controller never sees half a file. */
function writePodsFile(file: string, pods: DemoPod[], policy: object | undefined): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, YAML.stringify({ apiVersion: 'v1', kind: 'List', items: [...pods.map(manifest), ...(policy === undefined ? [] : [policy])] }));
  fs.renameSync(tmp, file);
}

interface DemoMirror {
  compared: number;
  matched: number;
  mismatched: number;
  shadowFailed: number;
  dropped: number;
  samples: { result: string; method: string; primaryVersion: string; shadowVersion: string; primaryFrame: string; shadowFrame: string }[];
}

/** The controller's sums of the sidecars' mirror reports (they report every 2 s: wait for the last). */
async function mirrorStatus(url: string): Promise<DemoMirror | undefined> {
  await sleep(2500);
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const policies = (await r.json()) as { name: string; mirror?: DemoMirror }[];
  return policies.find((p) => p.name === 'orders')?.mirror;
}

/**
 * The old warehouse app's calls: plain HTTP GETs with no qbasis or gRPC in them, to its sidecar's outbound port
 * (localhost:15001 in a pod), 5 a second. Its sidecar converts them and routes them as any call.
 */
function startLegacyLoad(ip: string, c: { calls: number; failed: number; sample: string; errors: Map<string, number> }): { stop: () => Promise<void> } {
  let i = 0;
  const inFlight = new Set<Promise<void>>();
  const one = async (): Promise<void> => {
    const sku = i++ % 2 === 0 ? 'book' : `lamp-${i}`;
    try {
      const r = await fetch(`http://${ip}:15001/v1/stock/${sku}`, { signal: AbortSignal.timeout(5000) });
      const body = await r.text();
      c.calls++;
      if (r.status !== 200) {
        c.failed++;
        const e = `HTTP ${r.status} ${r.headers.get('qbasis-error-code') ?? ''} ${body.slice(0, 160)}`;
        c.errors.set(e, (c.errors.get(e) ?? 0) + 1);
      } else if (sku === 'book') c.sample = body.trim();
    } catch (err) {
      c.calls++;
      c.failed++;
      const e = (err as Error).message;
      c.errors.set(e, (c.errors.get(e) ?? 0) + 1);
    }
  };
  const timer = setInterval(() => {
    const p = one().finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 200);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...inFlight]);
    },
  };
}

// --- the demo --------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  const parsed = parseOrExit(DEMO_COMMAND, argv);
  if (typeof parsed === 'number') return parsed;
  const o = options(parsed.values);
  const say = (s: string): void => {
    if (!o.quiet) process.stdout.write(s + '\n');
  };
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbasis-demo-'));
  const podsFile = path.join(logDir, 'pods.yaml');
  const procs = new Processes(logDir);
  const ip = (n: number): string => `${o.prefix}.${n}`;
  const controllerIp = ip(1);
  let discovery = `${controllerIp}:${o.discoveryPort}`;
  const identityDir = path.join(logDir, 'identity');
  const clientIdentity = `spiffe://cluster.local/ns/${NAMESPACE}/sa/shop-client`;
  const pods: DemoPod[] = [];
  const counts = newCounts();
  const legacyCounts = { calls: 0, failed: 0, sample: '', errors: new Map<string, number>() };
  let load: { stop: () => Promise<void> } | undefined;
  let legacyLoad: { stop: () => Promise<void> } | undefined;
  let interrupted = false;
  let clientApp: net.Server | undefined;
  let mirror: DemoMirror | undefined;

  const onExit = (): void => procs.killAllNow();
  process.on('exit', onExit);
  let wake: (() => void) | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stdout.write(`\n${sig}: stopping the demo and every process it started…\n`);
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  /** Sleeps, but returns early (false) when interrupted. */
  const pause = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (interrupted) return resolve(false);
      const t = setTimeout(() => {
        wake = undefined;
        resolve(true);
      }, ms);
      wake = () => {
        clearTimeout(t);
        resolve(false);
      };
    });
  const check = (): void => {
    if (interrupted) throw new Error('interrupted');
  };

  const startPod = async (p: DemoPod): Promise<void> => {
    if (p.version !== undefined) {
      // the client pod's "app" is this process (see clientApp), providers get an order-app
      p.app = procs.spawn(`${p.name}-app`, [p.legacy === true ? STOCK_APP : APP, '--host', p.ip, '--port', String(APP_PORT), '--pod', p.name, '--version', p.version, ...(p.appArgs ?? [])]);
      await waitForLine(p.app, /listening/, 60_000, `${p.name} app`);
    }
    const args = [BIN, 'sidecar', '--ip', p.ip, '--discovery', discovery, '--app-port', String(APP_PORT), '--pod-name', p.name, '--namespace', NAMESPACE, '--grace-period', '10'];
    if (o.mtls) {
      // The controller mints the pod's token once the pod is in the pods file.
      const token = path.join(identityDir, 'tokens', NAMESPACE, p.name);
      await waitUntil(`the token of ${p.name}`, () => fs.existsSync(token), { timeoutMs: 30_000 });
      args.push('--token-file', token, '--trust-bundle', path.join(identityDir, 'ca.pem'));
    }
    const api = p.legacy === true ? STOCK_API : ORDER_API;
    if (p.version !== undefined) args.push('--provides', `${api}@${p.version}`);
    if (p.requires !== undefined) args.push('--requires', `${api}@${p.requires}`);
    if (p.legacy === true) args.push('--app-protocol', 'http', '--schema', STOCK_SCHEMA);
    p.sidecar = procs.spawn(`${p.name}-sidecar`, args);
    const sc = p.sidecar;
    await waitHttp200(`http://${p.ip}:15020/ready`, 60_000, `${p.name} sidecar`, () => sc.exitCode === null && sc.signalCode === null);
  };
  const stopPod = async (p: DemoPod): Promise<void> => {
    // like the kubelet: the sidecar drains in-flight calls first; the app goes after it
    if (p.sidecar) await procs.stop(p.sidecar, 15_000);
    if (p.app) await procs.stop(p.app, 5000);
  };
  let policy: object | undefined;
  let policyGeneration = 0;
  const publish = (): void => writePodsFile(podsFile, pods, policy);
  const applyPolicy = (spec: Record<string, unknown> | undefined): void => {
    // With identity on, only the client's identity may call OrderService (enforced by the providers).
    policy = spec === undefined ? undefined : policyObject(++policyGeneration, o.mtls ? { ...spec, allow: [clientIdentity] } : spec);
    publish();
  };
  const propagate = 1500; // pods file debounce + discovery push + margin
  /** As a rollout does it: the pod exists (not Ready) first, its containers start, then it turns Ready. */
  const addPod = async (p: DemoPod): Promise<void> => {
    p.starting = true;
    pods.push(p);
    publish();
    await startPod(p);
    p.starting = false;
    publish();
  };

  let exitCode = 1;
  const t0 = Date.now();
  let ticker: NodeJS.Timeout | undefined;
  try {
    say(`qbasis demo: ${ORDER_API}, client requires ${RANGE}, ${o.rps} calls/s for ${o.durationS} s (logs and pods file in ${logDir})`);
    say(o.mtls
      ? `• mutual TLS on: the controller is the mesh CA (root and pod tokens in ${identityDir}); each sidecar gets a certificate for its ServiceAccount, checks its peers' identities, and the BasisPolicy allows only ${clientIdentity} to call (--plaintext: off)`
      : '• mutual TLS off (--plaintext): sidecars talk in plain text, no identities');
    const v1a: DemoPod = { name: 'orders-v1-a', version: '1.4.0', ip: ip(10), terminating: false };
    const v1b: DemoPod = { name: 'orders-v1-b', version: '1.4.0', ip: ip(11), terminating: false };
    const client: DemoPod = { name: 'shop-client', requires: RANGE, ip: ip(2), terminating: false };
    const stock: DemoPod = { name: 'stock-legacy', version: '1.0.0', ip: ip(30), terminating: false, legacy: true };
    const warehouse: DemoPod = { name: 'warehouse-legacy', requires: '^1', ip: ip(31), terminating: false, legacy: true };
    pods.push(client, v1a, v1b, stock, warehouse);
    publish();

    // ports 0: whatever is free (the sidecars learn the address from us, as from a Service)
    const ctl = procs.spawn('controller', [BIN, 'controller', '--pods-file', podsFile, '--discovery-address', controllerIp, '--discovery-port', String(o.discoveryPort), '--admin-port', '0', '--reload-debounce-ms', '50', '--console', `${controllerIp}:${o.consolePort}`,
      ...(o.mtls ? ['--identity-dir', identityDir, '--identity-port', '0'] : [])]);
    const discLine = waitForLine(ctl, o.mtls ? /identity server listening/ : /discovery server listening/, 60_000, 'controller');
    const consoleLine = waitForLine(ctl, /console listening/, 60_000, 'controller');
    const adminLine = await waitForLine(ctl, /admin server listening/, 60_000, 'controller');
    // With identity on, sidecars use the TLS port: Certify and Discovery.
    discovery = `${controllerIp}:${(JSON.parse(await discLine) as { port: number }).port}`;
    const adminPort = (JSON.parse(adminLine) as { port: number }).port;
    await waitHttp200(`http://${controllerIp}:${adminPort}/ready`, 60_000, 'controller', () => ctl.exitCode === null && ctl.signalCode === null);
    say(`• controller serving discovery${o.mtls ? ' and Certify over TLS' : ''} on ${discovery}, watching ${podsFile}`);
    say(`• console: ${(JSON.parse(await consoleLine) as { url: string }).url} (live while the demo runs; \`qbasis plan remove ${ORDER_API}@1.4.0 --console …\` asks it too)`);
    check();

    // the client "app" is this process; its pod still needs something on the app port for /ready
    clientApp = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve, reject) => clientApp!.once('error', reject).listen(APP_PORT, client.ip, resolve));
    say(`• starting ${v1a.name}, ${v1b.name} (1.4.0) and ${client.name} (requires ${RANGE}), each with its sidecar`);
    say(`• starting two legacy HTTP/JSON apps of ${STOCK_API}: ${stock.name} (1.0.0, an old JSON service) and ${warehouse.name} (an old JSON caller), each behind a sidecar that is its protocol gateway (app-protocol http, schema ${path.relative(REPO, STOCK_SCHEMA)})`);
    await Promise.all([startPod(v1a), startPod(v1b), startPod(client), startPod(stock), startPod(warehouse)]);
    check();

    // first call: the client sidecar must have its routes before the clock starts
    await waitFirstCall(`${client.ip}:15001`, { timeoutMs: 60_000, beforeEach: check });

    const durationMs = o.durationS * 1000;
    const loadStart = Date.now();
    load = startLoad(`${client.ip}:15001`, o.rps, RANGE, counts);
    legacyLoad = startLegacyLoad(warehouse.ip, legacyCounts);
    let lastByVersion = new Map<string, number>();
    ticker = setInterval(() => {
      const secs = Math.round((Date.now() - loadStart) / 1000);
      // every version that runs is listed, so "2.0.0: 0" shows the 2.x pods are never reached
      const versions = [...new Set([...pods.filter((p) => p.version !== undefined && p.legacy !== true).map((p) => p.version!), ...counts.byVersion.keys()])].sort();
      const recent = versions
        .map((v) => {
          const n = counts.byVersion.get(v) ?? 0;
          return `${v}: ${String(n).padStart(5)} (+${String(n - (lastByVersion.get(v) ?? 0)).padStart(3)})`;
        })
        .join('  ');
      lastByVersion = new Map(counts.byVersion);
      say(`  [${String(secs).padStart(3)}s] calls ${String(counts.calls).padStart(6)}  failed ${counts.failed}  misrouted ${counts.misrouted}  │ ${recent}  │ legacy HTTP ${legacyCounts.calls} (failed ${legacyCounts.failed})`);
    }, 1000);

    // Each phase holds for its share of --duration after its step is done (starting pods takes seconds
    // on a loaded machine; absolute times would let a slow step eat the next phase).
    const hold = (fraction: number): Promise<boolean> => pause(fraction * durationMs);

    if (await hold(0.1)) {
      const v2a: DemoPod = { name: 'orders-v2-a', version: '2.0.0', ip: ip(20), terminating: false };
      const v2b: DemoPod = { name: 'orders-v2-b', version: '2.0.0', ip: ip(21), terminating: false };
      say(`• adding ${v2a.name}, ${v2b.name} (2.0.0): listed, started, then Ready — a ${RANGE} client must never reach them`);
      await Promise.all([addPod(v2a), addPod(v2b)]);
    }
    const canary = (oldWeight: number, newWeight: number): Record<string, unknown> => ({
      routes: [{ split: [{ versions: '<1.5.0', weight: oldWeight }, { versions: '>=1.5.0', weight: newWeight }] }],
    });
    const v1c: DemoPod = { name: 'orders-v1-c', version: '1.5.0', ip: ip(12), terminating: false };
    const v1d: DemoPod = { name: 'orders-v1-d', version: '1.5.0', ip: ip(13), terminating: false };
    if (await hold(0.05)) {
      say(`• canary: ${v1c.name} (1.5.0) started; BasisPolicy ${NAMESPACE}/orders sends it 10 % of the calls (90 % stay on 1.4.0)`);
      await addPod(v1c);
      applyPolicy(canary(90, 10));
    }
    if (await hold(0.15)) {
      say('• canary: 50 % to 1.5.0');
      applyPolicy(canary(50, 50));
    }
    if (await hold(0.15)) {
      say(`• canary: 100 % to 1.5.0; ${v1d.name} (1.5.0) joins, then ${v1a.name} and ${v1b.name} (1.4.0) drain and stop`);
      applyPolicy({ routes: [{ split: [{ versions: '~1.5.0', weight: 1 }] }] });
      await addPod(v1d);
      if (await pause(propagate)) {
        v1a.terminating = true;
        v1b.terminating = true;
        publish();
        if (await pause(propagate)) {
          pods.splice(pods.indexOf(v1a), 1);
          pods.splice(pods.indexOf(v1b), 1);
          publish();
          await Promise.all([stopPod(v1a), stopPod(v1b)]);
        }
      }
    }
    // The parallel run: a 1.6.0 rewrite of Quote gets a copy of every Quote call; callers only ever get 1.5.0's answers.
    let quotes: { stop: () => Promise<void> } | undefined;
    if (await hold(0.1)) {
      const v1e: DemoPod = { name: 'orders-v1-e', version: '1.6.0', ip: ip(14), terminating: false, appArgs: ['--quote-bug'] };
      say(`• parallel run: ${v1e.name} (1.6.0, a rewrite) started as a mirror of Quote; callers keep getting 1.5.0's answers`);
      await addPod(v1e);
      applyPolicy({
        routes: [
          { methods: ['Quote'], split: [{ versions: '~1.5.0', weight: 1 }], mirror: { versions: '~1.6.0', percent: 100 } },
          { split: [{ versions: '~1.5.0', weight: 1 }] },
        ],
      });
      quotes = startQuoteLoad(`${client.ip}:15001`, Math.max(1, Math.round(o.rps / 2)), counts);
    }
    await hold(0.3);
    clearInterval(ticker);
    await load.stop();
    load = undefined;
    await legacyLoad?.stop();
    legacyLoad = undefined;
    await quotes?.stop();
    mirror = await mirrorStatus(`http://${controllerIp}:${adminPort}/policies`).catch(() => undefined);

    const elapsed = ((Date.now() - loadStart) / 1000).toFixed(1);
    const lines: string[] = ['', `calls by pod (${elapsed} s of load, ${((Date.now() - t0) / 1000).toFixed(1)} s in all):`];
    lines.push(`  ${'pod'.padEnd(14)} ${'version'.padEnd(8)} ${'calls'.padStart(7)} ${'first 10 s'.padStart(11)}  ${'in ' + RANGE}`);
    for (const [pod, v] of [...counts.byPod].sort()) {
      lines.push(`  ${pod.padEnd(14)} ${v.version.padEnd(8)} ${String(v.calls).padStart(7)} ${String(v.first10s).padStart(11)}  ${satisfies(v.version, RANGE) ? 'yes' : 'NO'}`);
    }
    lines.push('  (first 10 s: calls in the 10 s after the pod\'s first; a new pod is not starved by a cold first call)');
    if (mirror !== undefined) {
      lines.push('', `parallel run of Quote, 1.5.0 vs the 1.6.0 rewrite: ${mirror.compared} compared, ${mirror.matched} matched, ${mirror.mismatched} mismatched, ${mirror.shadowFailed} shadow failed, ${mirror.dropped} dropped`);
      for (const x of mirror.samples.slice(-3)) lines.push(`  mismatch (${x.result}): ${x.method} primary ${x.primaryVersion} frame ${x.primaryFrame} · shadow ${x.shadowVersion} frame ${x.shadowFrame}`);
    }
    lines.push('', `legacy HTTP/JSON apps, ${warehouse.name} → ${stock.name} through both gateways (JSON → protobuf → basis frames → JSON): ${legacyCounts.calls} calls, ${legacyCounts.failed} failed`);
    if (legacyCounts.sample !== '') lines.push(`  e.g. GET /v1/stock/book → ${legacyCounts.sample}`);
    for (const [e, n] of legacyCounts.errors) lines.push(`  legacy error ×${n}: ${e}`);
    lines.push('', `  ${'calls made'.padEnd(12)} ${String(counts.calls).padStart(7)}`);
    lines.push(`  ${'failed'.padEnd(12)} ${String(counts.failed).padStart(7)}`);
    lines.push(`  ${'misrouted'.padEnd(12)} ${String(counts.misrouted).padStart(7)}   (served by a version outside ${RANGE})`);
    for (const [e, n] of counts.errors) lines.push(`  error ×${n}: ${e}`);
    process.stdout.write(lines.join('\n') + '\n');
    const good = counts.calls > 0 && counts.failed === 0 && counts.misrouted === 0 && legacyCounts.calls > 0 && legacyCounts.failed === 0;
    if (interrupted) process.stdout.write('\nInterrupted: the counts above cover the calls made so far.\n');
    else process.stdout.write(good ? '\nOK: every call landed on a compatible pod.\n' : '\nFAILED: see the counts above and the logs in ' + logDir + '\n');
    exitCode = interrupted ? 130 : good ? 0 : 1;
  } catch (err) {
    if (interrupted) {
      exitCode = 130;
    } else {
      process.stderr.write(`qbasis demo: ${(err as Error).message} (logs in ${logDir})\n`);
      exitCode = 1;
    }
  } finally {
    if (ticker) clearInterval(ticker);
    if (load) await load.stop().catch(() => {});
    if (legacyLoad) await legacyLoad.stop().catch(() => {});
    await procs.stopAll(5000);
    clientApp?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        calls: counts.calls,
        failed: counts.failed,
        misrouted: counts.misrouted,
        byVersion: Object.fromEntries(counts.byVersion),
        byPod: Object.fromEntries([...counts.byPod].map(([k, v]) => [k, { version: v.version, calls: v.calls, first10s: v.first10s }])),
        mirror: mirror === undefined ? null : { compared: mirror.compared, matched: mirror.matched, mismatched: mirror.mismatched, dropped: mirror.dropped },
        errors: Object.fromEntries(counts.errors),
        legacy: { calls: legacyCounts.calls, failed: legacyCounts.failed, errors: Object.fromEntries(legacyCounts.errors) },
        interrupted,
        mtls: o.mtls,
        logDir,
      }) + '\n',
    );
  }
  return exitCode;
}
