// Sidecar benchmark (issue 3): ghz drives the echo app directly and through two sidecars, in one run,
// 1 KiB payloads: (a) a fixed 1000 rps for 30 s, (b) the highest rate at concurrency 64 (bounded time).
// Real processes: the local controller (`qbasis controller --pods-file`), the echo app, and two sidecars
// launched as `node bin/qbasis.ts sidecar`. Writes test/bench/results/sidecar.json and prints a table.
//   npm run bench:sidecar
//   env: BENCH_FIXED_S (30), BENCH_MAX_S (15), BENCH_RPS (1000), BENCH_WARMUP_S (3), BENCH_OUT (results file)
// Addresses: 127.0.8.x (controller .1, provider pod .11, caller pod .12).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureTools } from '../cluster/build.ts';
import { ECHO_API, ECHO_PROTO } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll, type Proc } from '../fixtures/echo-mesh.ts';
import { REPO, startController, tempDir, writePods } from '../fixtures/local-controller.ts';

const execFileP = promisify(execFile);
const FIXED_S = Number(process.env.BENCH_FIXED_S ?? 30);
const MAX_S = Number(process.env.BENCH_MAX_S ?? 15);
const RPS = Number(process.env.BENCH_RPS ?? 1000);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 3);
const NET = '127.0.8';
const APP_PORT = 50051;
const CLK_TCK = 100;

interface GhzReport {
  rps: number;
  count: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number> | null;
}

interface Phase { p50_ms: number; p90_ms: number; p99_ms: number; rps: number; count: number; errors: number; error_kinds: Record<string, number> }

async function ghz(bin: string, target: string, args: string[]): Promise<GhzReport> {
  const payload = Buffer.alloc(1024, 7).toString('base64');
  const { stdout } = await execFileP(bin, [
    '--insecure', '--proto', ECHO_PROTO, '--call', `${ECHO_API}.Unary`, '-d', JSON.stringify({ payload }), '-O', 'json', ...args, target,
  ], { maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60_000 });
  return JSON.parse(stdout) as GhzReport;
}

function summarize(r: GhzReport): Phase {
  const at = (p: number): number => {
    const e = (r.latencyDistribution ?? []).find((d) => d.percentage === p);
    return e === undefined ? NaN : Number((e.latency / 1e6).toFixed(3));
  };
  const ok = r.statusCodeDistribution?.['OK'] ?? 0;
  const total = Object.values(r.statusCodeDistribution ?? {}).reduce((a, b) => a + b, 0);
  return { p50_ms: at(50), p90_ms: at(90), p99_ms: at(99), rps: Math.round(r.rps), count: r.count, errors: total - ok, error_kinds: r.errorDistribution ?? {} };
}

function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}

/** Busy jiffies of the whole machine (all CPUs), from /proc/stat. */
function machineBusyTicks(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
}

/** CPU of this process's finished children (the ghz runs), from /proc/self/stat cutime + cstime. */
function childTicks(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[13]) + Number(f[14]);
}

function rssMb(pid: number, field = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number((Number(m[1]) / 1024).toFixed(1)) : NaN;
}

async function main(): Promise<void> {
  const bin = path.join(await ensureTools({ tools: ['ghz'] }), 'ghz');
  const dir = tempDir('sidecar-bench');
  const podsFile = path.join(dir, 'pods.yaml');
  const provider = `${NET}.11`;
  const caller = `${NET}.12`;
  writePods(podsFile, [{ name: 'echo-bench', ip: provider, provides: `${ECHO_API}@1.0.0` }]);
  const ctl = await startController({ podsFile, host: `${NET}.1`, adminPort: 18081 });
  const sidecars: { role: string; proc: Proc }[] = [];
  try {
    const echo = await startEcho({ host: provider, port: APP_PORT, name: 'echo-bench', version: '1.0.0' });
    sidecars.push({ role: 'provider', proc: await startSidecar({ ip: provider, discovery: ctl.target, appPort: APP_PORT, provides: `${ECHO_API}@1.0.0`, extra: ['--log-level', 'warn'] }) });
    sidecars.push({ role: 'caller', proc: await startSidecar({ ip: caller, discovery: ctl.target, appPort: APP_PORT, requires: `${ECHO_API}@^1.0`, extra: ['--log-level', 'warn'] }) });
    const direct = `${provider}:${APP_PORT}`;
    const twoHop = `${caller}:15001`;
    const load = os.loadavg().map((x) => Number(x.toFixed(2)));
    process.stderr.write(`warming up (${WARMUP_S}s each)…\n`);
    await ghz(bin, direct, ['--rps', String(RPS), '-z', `${WARMUP_S}s`, '-c', '20']);
    await ghz(bin, twoHop, ['--rps', String(RPS), '-z', `${WARMUP_S}s`, '-c', '20']);

    process.stderr.write(`(a) ${RPS} rps for ${FIXED_S}s: direct, then two hops…\n`);
    const fixedDirect = summarize(await ghz(bin, direct, ['--rps', String(RPS), '-z', `${FIXED_S}s`, '-c', '20']));
    const before = sidecars.map((s) => cpuTicks(s.proc.pid));
    const ours = (): number => cpuTicks(echo.pid) + cpuTicks(ctl.proc.pid!) + sidecars.reduce((a, s) => a + cpuTicks(s.proc.pid), 0) + childTicks();
    const machine0 = machineBusyTicks();
    const ours0 = ours();
    const t0 = performance.now();
    const fixedTwoHop = summarize(await ghz(bin, twoHop, ['--rps', String(RPS), '-z', `${FIXED_S}s`, '-c', '20']));
    const elapsedS = (performance.now() - t0) / 1000;
    // CPU used meanwhile by everything that is not this benchmark (other builds and tests), in vCPUs.
    const otherVcpu = Number((((machineBusyTicks() - machine0) - (ours() - ours0)) / CLK_TCK / elapsedS).toFixed(2));
    const per = sidecars.map((s, i) => {
      const vcpu = (cpuTicks(s.proc.pid) - before[i]!) / CLK_TCK / elapsedS;
      return { role: s.role, pid: s.proc.pid, vcpu: Number(vcpu.toFixed(3)), vcpu_per_1000rps: Number((vcpu / (fixedTwoHop.rps / 1000)).toFixed(3)), rss_mb: rssMb(s.proc.pid), peak_rss_mb: rssMb(s.proc.pid, 'VmHWM') };
    });

    process.stderr.write(`(b) max rate at -c 64 for ${MAX_S}s: direct, then two hops…\n`);
    const maxDirect = summarize(await ghz(bin, direct, ['-c', '64', '-z', `${MAX_S}s`]));
    const maxTwoHop = summarize(await ghz(bin, twoHop, ['-c', '64', '-z', `${MAX_S}s`]));
    const rssAfterMax = sidecars.map((s) => ({ role: s.role, rss_mb: rssMb(s.proc.pid), peak_rss_mb: rssMb(s.proc.pid, 'VmHWM') }));

    const r3 = (x: number): number => Number(x.toFixed(3));
    const result = {
      generated_at: new Date().toISOString(),
      tool: 'ghz v0.121.0',
      conditions: {
        cpus: os.cpus().length, node: process.version, loadavg_at_start: load, payload_bytes: 1024, call: `${ECHO_API}/Unary`,
        fixed: { rps: RPS, duration_s: FIXED_S, concurrency: 20 }, max: { concurrency: 64, duration_s: MAX_S },
        other_load_vcpu_during_fixed_two_hop: otherVcpu,
        note: 'all processes (ghz, echo app, two sidecars, controller) share this 2-core machine with other engineers\' builds and tests; other_load_vcpu is the CPU those used meanwhile',
      },
      direct: { p50_ms: fixedDirect.p50_ms, p90_ms: fixedDirect.p90_ms, p99_ms: fixedDirect.p99_ms, max_rps: maxDirect.rps },
      two_hop: { p50_ms: fixedTwoHop.p50_ms, p90_ms: fixedTwoHop.p90_ms, p99_ms: fixedTwoHop.p99_ms, max_rps: maxTwoHop.rps },
      added_ms: { p50: r3(fixedTwoHop.p50_ms - fixedDirect.p50_ms), p90: r3(fixedTwoHop.p90_ms - fixedDirect.p90_ms), p99: r3(fixedTwoHop.p99_ms - fixedDirect.p99_ms) },
      p99_ratio: r3(fixedTwoHop.p99_ms / fixedDirect.p99_ms),
      throughput_ratio: r3(maxTwoHop.rps / maxDirect.rps),
      sidecars: Object.fromEntries(per.map((p) => [p.role, { vcpu_per_1000rps: p.vcpu_per_1000rps, rss_mb: p.rss_mb, peak_rss_mb: rssAfterMax.find((x) => x.role === p.role)!.peak_rss_mb, vcpu_at_fixed_rate: p.vcpu }])),
      // ghz counts the calls still in flight when -z ends (it cancels them) as errors.
      errors: { fixed_direct: fixedDirect.errors, fixed_two_hop: fixedTwoHop.errors, max_direct: maxDirect.errors, max_two_hop: maxTwoHop.errors },
      error_kinds: { fixed_direct: fixedDirect.error_kinds, fixed_two_hop: fixedTwoHop.error_kinds, max_direct: maxDirect.error_kinds, max_two_hop: maxTwoHop.error_kinds },
      achieved_rps: { fixed_direct: fixedDirect.rps, fixed_two_hop: fixedTwoHop.rps },
    };
    const goals = {
      'added p50 <= 0.5 ms': result.added_ms.p50 <= 0.5,
      'added p90 <= 1.0 ms': result.added_ms.p90 <= 1.0,
      'two-hop p99 <= 3x direct': result.p99_ratio <= 3,
      'vCPU per 1000 rps <= 0.2 (each sidecar)': per.every((p) => p.vcpu_per_1000rps <= 0.2),
      'RSS <= 80 MB (each sidecar)': per.every((p) => p.rss_mb <= 80),
      'throughput ratio >= 0.5': result.throughput_ratio >= 0.5,
    };
    const out = { ...result, goals };
    const file = process.env.BENCH_OUT ?? path.join(REPO, 'test/bench/results/sidecar.json');
    fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    const row = (name: string, p: { p50_ms: number; p90_ms: number; p99_ms: number; max_rps: number }): string =>
      `| ${name.padEnd(8)} | ${String(p.p50_ms).padStart(7)} | ${String(p.p90_ms).padStart(7)} | ${String(p.p99_ms).padStart(7)} | ${String(p.max_rps).padStart(7)} |`;
    const lines = [
      `| path     | p50 ms  | p90 ms  | p99 ms  | max rps |`,
      `|----------|---------|---------|---------|---------|`,
      row('direct', result.direct),
      row('two hops', result.two_hop),
      '',
      `added: p50 +${result.added_ms.p50} ms, p90 +${result.added_ms.p90} ms, p99 +${result.added_ms.p99} ms; p99 two hops / direct = ${result.p99_ratio}; throughput ratio (c=64) = ${result.throughput_ratio}`,
      ...per.map((p) => `${p.role} sidecar: ${p.vcpu_per_1000rps} vCPU per 1000 rps, RSS ${p.rss_mb} MB (peak ${rssAfterMax.find((x) => x.role === p.role)!.peak_rss_mb} MB after the max-rate phase)`),
      `errors (ghz counts calls cancelled at the end of -z): ${JSON.stringify(result.errors)}`,
      `other load on the machine during the two-hop fixed-rate phase: ${otherVcpu} vCPU of ${os.cpus().length}`,
      '',
      ...Object.entries(goals).map(([g, ok]) => `${ok ? 'met    ' : 'NOT met'}  ${g}`),
      '',
      `wrote ${path.relative(REPO, file)}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await stopAll();
    await ctl.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
