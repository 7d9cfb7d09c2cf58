// Profiles the two sidecars of one hop pair under ghz load: --cpu-prof on both, then prints the top
// self-time frames of each. `node test/bench/profile-sidecar.ts [--rps 1000] [--seconds 20] [--out DIR]`
// Addresses: 127.0.10.x (controller .1, provider .11, caller .12).
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { ensureTools } from '../cluster/build.ts';
import { ECHO_API, ECHO_PROTO } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { startController, tempDir, writePods } from '../fixtures/local-controller.ts';

const { values } = parseArgs({ options: { rps: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '20' }, out: { type: 'string' }, flags: { type: 'string' } } });
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
      const env = { QBASIS_SIDECAR_NODE_FLAGS: `${flags} --cpu-prof --cpu-prof-dir=${path.join(out, role)}` };
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
  }
}

if (import.meta.main) await main();
