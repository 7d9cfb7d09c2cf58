// Preload for the sidecar benchmark: GC time and event-loop delay of a Node proxy process, measured from
// inside without touching its code. Loaded through NODE_OPTIONS:
//   NODE_OPTIONS="--import file:///…/test/bench/proc-stats-preload.ts" QBASIS_BENCH_STATS_DIR=/tmp/x node …
// It installs a PerformanceObserver on 'gc' and monitorEventLoopDelay (resolution BENCH_ELD_RESOLUTION_MS,
// default 10 ms). Each SIGUSR2 writes what was seen since the previous SIGUSR2 (or since start) to
// <QBASIS_BENCH_STATS_DIR>/<pid>.json (written to a temp file, then renamed) and starts counting afresh;
// `seq` grows by one per write, so the reader knows the file is the answer to its signal. At exit the
// same is written once more. The qbasis sidecar re-executes itself in place (process.execve, same PID) and
// keeps NODE_OPTIONS, so this runs again in the re-executed image, which is the one measured.
// Nothing here keeps the event loop alive (signal handlers, the observer and the histogram are unref'd).
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

export interface ProcStats {
  pid: number;
  seq: number;
  /** Wall time this record covers (since the previous record). */
  interval_ms: number;
  gc: { count: number; total_ms: number; max_ms: number; by_kind: Record<string, { count: number; total_ms: number }> };
  /** Event-loop delay beyond the timer's schedule (the raw histogram minus the resolution), ms. */
  eventloop: { resolution_ms: number; samples: number; p50_ms: number; p99_ms: number; max_ms: number; mean_ms: number };
  heap_used_mb: number;
  rss_mb: number;
}

const dir = process.env.QBASIS_BENCH_STATS_DIR;
if (dir) install(dir);

function install(outDir: string): void {
  const resolutionMs = Number(process.env.BENCH_ELD_RESOLUTION_MS ?? 10);
  const kindName: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };
  let gcCount = 0;
  let gcTotal = 0;
  let gcMax = 0;
  let byKind: Record<string, { count: number; total_ms: number }> = {};
  const take = (entries: PerformanceEntry[]): void => {
    for (const e of entries) {
      gcCount++;
      gcTotal += e.duration;
      if (e.duration > gcMax) gcMax = e.duration;
      const k = kindName[((e as { detail?: unknown }).detail as { kind?: number } | undefined)?.kind ?? 0] ?? 'other';
      const b = (byKind[k] ??= { count: 0, total_ms: 0 });
      b.count++;
      b.total_ms += e.duration;
    }
  };
  const obs = new PerformanceObserver((list) => take(list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  const eld = monitorEventLoopDelay({ resolution: resolutionMs });
  eld.enable();
  let seq = 0;
  let since = performance.now();
  const ms = (ns: number): number => Number(Math.max(0, ns / 1e6 - resolutionMs).toFixed(3));
  const r3 = (x: number): number => Number(x.toFixed(3));

  const write = (): void => {
    take(obs.takeRecords()); // entries not yet delivered to the callback
    const now = performance.now();
    const mem = process.memoryUsage();
    const rec: ProcStats = {
      pid: process.pid,
      seq: ++seq,
      interval_ms: r3(now - since),
      gc: { count: gcCount, total_ms: r3(gcTotal), max_ms: r3(gcMax), by_kind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, { count: v.count, total_ms: r3(v.total_ms) }])) },
      eventloop: {
        resolution_ms: resolutionMs, samples: eld.count,
        p50_ms: eld.count ? ms(eld.percentile(50)) : 0, p99_ms: eld.count ? ms(eld.percentile(99)) : 0,
        max_ms: eld.count ? ms(eld.max) : 0, mean_ms: eld.count ? ms(eld.mean) : 0,
      },
      heap_used_mb: Number((mem.heapUsed / 1048576).toFixed(1)),
      rss_mb: Number((mem.rss / 1048576).toFixed(1)),
    };
    gcCount = 0;
    gcTotal = 0;
    gcMax = 0;
    byKind = {};
    eld.reset();
    since = now;
    const file = path.join(outDir, `${process.pid}.json`);
    try {
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(rec));
      fs.renameSync(`${file}.tmp`, file);
    } catch {
      // the benchmark's directory is gone: nothing to report to
    }
  };
  process.on('SIGUSR2', write);
  process.once('exit', write);
}
