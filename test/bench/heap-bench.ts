// Chooses the sidecar's V8 heap flags by measurement: runs `sidecar-bench.ts` (direct, lean, qbasis) once
// per flag set, the lean floor with the same flags in the same run, and prints latency tail, CPU, RSS
// and GC side by side with each run's ratios to its floor. The runs follow each other, so compare the
// ratios first; absolute figures move with the machine's other load (loadavg is printed per run).
//   npm run bench:heap      env: BENCH_HEAP_VARIANTS ("label=flags;label=flags"), plus sidecar-bench's own
// Writes test/bench/results/heap.json (and one sidecar-bench result per variant beside it).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const REPO = path.join(import.meta.dirname, '..', '..');
const RESULTS = path.join(REPO, 'test/bench/results');
const DEFAULT_VARIANTS = 'semi4-old128=--max-semi-space-size=4 --max-old-space-size=128;semi1-old128=--max-semi-space-size=1 --max-old-space-size=128;semi2-old128=--max-semi-space-size=2 --max-old-space-size=128;semi1-old64=--max-semi-space-size=1 --max-old-space-size=64';

interface Proxy { vcpu_per_1000rps?: number; rss_mb?: number; peak_rss_mb?: number; gc_ms_per_s?: number; eventloop_p99_ms?: number }
interface Phase { added_p50_ms?: number; added_p90_ms?: number; p99_ms: number; rps: number; pair_vcpu_per_1000rps?: number; proxies: Partial<Record<'caller' | 'provider', Proxy>> }
interface Result { pairs: Record<string, { fixed: Phase; max: Phase }>; conditions: { loadavg_at_start: number[]; loadavg_at_end: number[] }; invalid_pairs: string[] }

const mean = (p: Phase, k: keyof Proxy): number => ((p.proxies.caller?.[k] ?? NaN) + (p.proxies.provider?.[k] ?? NaN)) / 2;
const r = (x: number, d = 2): number => Number(x.toFixed(d));

async function main(): Promise<void> {
  const variants = (process.env.BENCH_HEAP_VARIANTS ?? DEFAULT_VARIANTS).split(';').map((v) => v.trim()).filter(Boolean).map((v) => {
    const i = v.indexOf('=');
    if (i < 1) throw new Error(`BENCH_HEAP_VARIANTS: '${v}' is not label=flags`);
    return { label: v.slice(0, i), flags: v.slice(i + 1).trim() };
  });
  fs.mkdirSync(path.join(RESULTS, 'heap'), { recursive: true });
  const rows: Record<string, unknown>[] = [];
  for (const v of variants) {
    const out = path.join(RESULTS, 'heap', `${v.label}.json`);
    process.stderr.write(`== ${v.label}: ${v.flags}\n`);
    await promisify(execFile)(process.execPath, [path.join(REPO, 'test/bench/sidecar-bench.ts')], {
      cwd: REPO, maxBuffer: 1 << 26, timeout: 30 * 60_000,
      env: { ...process.env, QBASIS_SIDECAR_NODE_FLAGS: v.flags, BENCH_PAIRS: 'direct,lean,qbasis', BENCH_OUT: out },
    });
    const res = JSON.parse(fs.readFileSync(out, 'utf8')) as Result;
    const q = res.pairs.qbasis!;
    const l = res.pairs.lean!;
    const row = {
      variant: v.label, flags: v.flags, loadavg: `${res.conditions.loadavg_at_start[0]}→${res.conditions.loadavg_at_end[0]}`, invalid: res.invalid_pairs,
      qbasis: { added_p50_ms: q.fixed.added_p50_ms, added_p90_ms: q.fixed.added_p90_ms, p99_ms: q.fixed.p99_ms, cpu_ms_per_call_pair: q.fixed.pair_vcpu_per_1000rps, rss_mb: r(mean(q.fixed, 'rss_mb'), 1), peak_rss_mb: r(mean(q.fixed, 'peak_rss_mb'), 1), gc_ms_per_s: r(mean(q.fixed, 'gc_ms_per_s'), 1), max_rps: q.max.rps },
      lean: { added_p50_ms: l.fixed.added_p50_ms, added_p90_ms: l.fixed.added_p90_ms, p99_ms: l.fixed.p99_ms, cpu_ms_per_call_pair: l.fixed.pair_vcpu_per_1000rps, rss_mb: r(mean(l.fixed, 'rss_mb'), 1), gc_ms_per_s: r(mean(l.fixed, 'gc_ms_per_s'), 1), max_rps: l.max.rps },
      qbasis_vs_lean: {
        added_p50: r((q.fixed.added_p50_ms ?? NaN) / (l.fixed.added_p50_ms ?? NaN)), added_p90: r((q.fixed.added_p90_ms ?? NaN) / (l.fixed.added_p90_ms ?? NaN)),
        cpu: r((q.fixed.pair_vcpu_per_1000rps ?? NaN) / (l.fixed.pair_vcpu_per_1000rps ?? NaN)), rss: r(mean(q.fixed, 'rss_mb') / mean(l.fixed, 'rss_mb')), max_rps: r(q.max.rps / l.max.rps),
      },
    };
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  const file = path.join(RESULTS, 'heap.json');
  fs.writeFileSync(file, JSON.stringify({ generated_at: new Date().toISOString(), rows }, null, 2) + '\n');
  const lines = ['| variant | load | qbasis +p50 / +p90 / p99 ms | CPU ms/call (pair) | RSS / peak MB | GC ms/s | max rps | vs lean: +p50 / +p90 / CPU / RSS / max |', '|---|---|---|---|---|---|---|---|'];
  for (const x of rows as { variant: string; loadavg: string; qbasis: Record<string, number>; qbasis_vs_lean: Record<string, number> }[]) {
    const q = x.qbasis;
    const v = x.qbasis_vs_lean;
    lines.push(`| ${x.variant} | ${x.loadavg} | ${q.added_p50_ms} / ${q.added_p90_ms} / ${q.p99_ms} | ${q.cpu_ms_per_call_pair} | ${q.rss_mb} / ${q.peak_rss_mb} | ${q.gc_ms_per_s} | ${q.max_rps} | ${v.added_p50} / ${v.added_p90} / ${v.cpu} / ${v.rss} / ${v.max_rps} |`);
  }
  process.stdout.write(lines.join('\n') + `\nwrote ${path.relative(REPO, file)}\n`);
}

await main();
