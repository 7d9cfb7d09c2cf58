// Profiles the two sidecars of one hop pair under ghz load: --cpu-prof on both, then prints the top
// self-time frames of each. `node test/bench/profile-sidecar.ts [--rps 1000] [--seconds 20] [--out DIR]`
// `--alloc` also samples every allocation from 5 s into the run for 8 s (alloc-sampling-preload.ts,
// collected objects included) and prints the top allocating frames and the bytes allocated per call.
// Addresses: 127.0.10.x (controller .1, provider .11, caller .12).
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ensureTools } from '../cluster/build.ts';
import { ECHO_API, ECHO_PROTO } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods } from '../fixtures/local-controller.ts';

const { values } = parseArgs({ options: { rps: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '20' }, out: { type: 'string' }, flags: { type: 'string' }, alloc: { type: 'boolean', default: false } } });
const ALLOC_SECONDS = 8;
const NET = '127.0.10';
const out = values.out ?? tempDir('sidecar-profile');
const execFileP = promisify(execFile);

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

export function topFrames(file: string, n = 25): { frame: string; selfPct: number }[] {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!)!;
    const f = node.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|work\/main)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}`;
    const dt = p.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([frame, t]) => ({ frame, selfPct: Number(((100 * t) / total).toFixed(1)) }));
}

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }

/** Bytes allocated per frame (with its caller, which says which call site it serves). */
export function topAllocations(file: string, n = 25): { totalBytes: number; top: { frame: string; pct: number }[] } {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { head: HeapNode };
  const by = new Map<string, number>();
  let total = 0;
  const name = (f: HeapNode['callFrame']): string => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|work\/main)\//, '$1/')}:${f.lineNumber + 1}`;
  const walk = (node: HeapNode, caller: string): void => {
    const here = name(node.callFrame);
    if (node.selfSize > 0) {
      const key = `${here} < ${caller}`;
      by.set(key, (by.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, node.callFrame.functionName || '(anonymous)');
  };
  walk(p.head, '');
  const top = [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([frame, b]) => ({ frame, pct: Number(((100 * b) / total).toFixed(1)) }));
  return { totalBytes: total, top };
}

async function main(): Promise<void> {
  const bin = await ensureTools({ tools: ['ghz'] });
  const podsFile = path.join(tempDir('profile'), 'pods.yaml');
  writePods(podsFile, [{ name: 'provider', ip: `${NET}.11`, provides: `${ECHO_API}@1.4.0` }]);
  const ctl = await startController({ podsFile, host: `${NET}.1` });
  try {
    await startEcho({ host: `${NET}.11`, port: 50051, name: 'provider', version: '1.4.0' });
    const flags = values.flags ?? '--max-semi-space-size=4 --max-old-space-size=128';
    const sidecars: Proc[] = [];
    for (const [ip, role] of [[`${NET}.11`, 'provider'], [`${NET}.12`, 'caller']] as const) {
      fs.mkdirSync(path.join(out, role), { recursive: true });
      const env: NodeJS.ProcessEnv = { QBASIS_SIDECAR_NODE_FLAGS: `${flags} --cpu-prof --cpu-prof-dir=${path.join(out, role)}` };
      if (values.alloc) {
        Object.assign(env, { NODE_OPTIONS: `--import ${pathToFileURL(path.join(import.meta.dirname, 'alloc-sampling-preload.ts')).href}`, QBASIS_ALLOC_DIR: path.join(out, role), QBASIS_ALLOC_START_S: '5', QBASIS_ALLOC_SECONDS: String(ALLOC_SECONDS) });
      }
      if (role === 'provider') sidecars.push(await startSidecar({ ip, discovery: ctl.target, appPort: 50051, provides: `${ECHO_API}@1.4.0`, env, extra: ['--log-level', 'warn'] }));
      else sidecars.push(await startSidecar({ ip, discovery: ctl.target, appPort: 50099, requires: `${ECHO_API}@^1.2`, env, extra: ['--log-level', 'warn'] }));
    }
    const payload = Buffer.alloc(1024, 7).toString('base64');
    await execFileP(path.join(bin, 'ghz'), ['--insecure', '--proto', ECHO_PROTO, '--call', `${ECHO_API}.Unary`, '-d', JSON.stringify({ payload }), '--rps', values.rps!, '-c', '32', '-z', `${values.seconds}s`, `${NET}.12:15001`], { timeout: 10 * 60_000, maxBuffer: 1 << 26 });
    // --cpu-prof writes at exit: SIGTERM drains and exits 0.
    await Promise.all(sidecars.map((s) => s.stop('SIGTERM')));
  } finally {
    await stopAll();
    await ctl.stop();
  }
  for (const role of ['caller', 'provider']) {
    const dir = path.join(out, role);
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
      console.log(`\n${role} (${path.join(dir, f)})`);
      for (const t of topFrames(path.join(dir, f))) console.log(`${String(t.selfPct).padStart(5)} %  ${t.frame}`);
    }
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.heapprofile'))) {
      const a = topAllocations(path.join(dir, f));
      console.log(`\n${role} allocations (${path.join(dir, f)}): ${(a.totalBytes / 1e6).toFixed(1)} MB in ${ALLOC_SECONDS} s, ~${Math.round(a.totalBytes / (Number(values.rps) * ALLOC_SECONDS) / 100) / 10} KB per call`);
      for (const t of a.top) console.log(`${String(t.pct).padStart(5)} %  ${t.frame}`);
    }
  }
}

if (import.meta.main) await main();
