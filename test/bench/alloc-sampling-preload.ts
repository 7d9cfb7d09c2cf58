// Preload for profile-sidecar.ts --alloc: V8's sampling heap profiler over a window of the run, counting
// every allocation, also of objects already collected (a heap snapshot or --heap-prof shows only what is
// still alive, which hides the per-call garbage that drives GC). Loaded through NODE_OPTIONS:
//   QBASIS_ALLOC_DIR=/tmp/x QBASIS_ALLOC_START_S=5 QBASIS_ALLOC_SECONDS=8 NODE_OPTIONS="--import file:///…/alloc-sampling-preload.ts"
// Writes <dir>/<pid>.heapprofile (Chrome DevTools format). The sidecar re-executes itself in place; only
// the re-executed image (QBASIS_SIDECAR_REEXEC=0) is profiled. Timers are unref'd.
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import process from 'node:process';

const dir = process.env.QBASIS_ALLOC_DIR;
if (dir && process.env.QBASIS_SIDECAR_REEXEC === '0') {
  const session = new inspector.Session();
  session.connect();
  const startMs = Number(process.env.QBASIS_ALLOC_START_S ?? 5) * 1000;
  const lengthMs = Number(process.env.QBASIS_ALLOC_SECONDS ?? 8) * 1000;
  setTimeout(() => {
    const params = { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
    session.post('HeapProfiler.startSampling', params, () => {
      setTimeout(() => {
        session.post('HeapProfiler.stopSampling', (err, res) => {
          if (err === null) fs.writeFileSync(path.join(dir, `${process.pid}.heapprofile`), JSON.stringify(res.profile));
        });
      }, lengthMs).unref();
    });
  }, startMs).unref();
}
