// Mirror benchmark (issue 15): does a parallel run slow the caller? In one run, interleaved, a gRPC client
// calls through two sidecars at a fixed rate with the BasisPolicy's mirror off (the same route, no mirror),
// copying 10 % of the calls, and copying every call, to a shadow endpoint; repeated rounds, medians. The
// result is the ratio of the caller's p50/p90/p99 with each mirror share to off; the goal is within 10 %.
// Everything shares this machine's cores, so a 100 % mirror also measures the shadow's own CPU.
//   npm run bench:mirror      env: BENCH_ROUNDS (3), BENCH_PHASE_S (10), BENCH_RPS (300), BENCH_OUT
// Addresses: 127.0.94.x (controller .1, primary .11, shadow .12, caller .20).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { echoClient, ECHO_API } from '../fixtures/echo-client.ts';
import { startEcho, startSidecar, stopAll } from '../fixtures/echo-mesh.ts';
import { REPO, startController, tempDir, writePods, type TestPod } from '../fixtures/local-controller.ts';
import { basisPolicy, unary, waitPolicyInForce } from '../fixtures/policy.ts';

const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 3));
const PHASE_S = Number(process.env.BENCH_PHASE_S ?? 10);
const RPS = Number(process.env.BENCH_RPS ?? 300);
const NET = '127.0.94';
const CALLER = `${NET}.20`;
const pods: TestPod[] = [
  { name: 'primary', ip: `${NET}.11`, provides: `${ECHO_API}@1.4.0` },
  { name: 'shadow', ip: `${NET}.12`, provides: `${ECHO_API}@1.10.0` },
];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

async function main(): Promise<void> {
  const podsFile = path.join(tempDir('mirror-bench'), 'pods.yaml');
  writePods(podsFile, pods);
  const ctl = await startController({ podsFile, host: `${NET}.1` });
  const client = echoClient(`${CALLER}:15001`);
  try {
    await Promise.all(pods.map((p) => startEcho({ host: p.ip!, port: 50051, name: p.name, version: p.provides!.split('@')[1]!, sameAnswer: true })));
    await Promise.all([
      ...pods.map((p) => startSidecar({ ip: p.ip!, discovery: ctl.target, appPort: 50051, provides: p.provides! })),
      startSidecar({ ip: CALLER, discovery: ctl.target, appPort: 50051, requires: `${ECHO_API}@^1.2` }),
    ]);
    let generation = 0;
    const mode = async (percent: number): Promise<void> => {
      generation++;
      const route = { split: [{ versions: '<1.10.0', weight: 1 }], ...(percent > 0 ? { mirror: { versions: '>=1.10.0', percent } } : {}) };
      writePods(podsFile, pods, [basisPolicy('bench', generation, { api: ECHO_API, routes: [route] })]);
      await waitPolicyInForce(CALLER, ECHO_API, { name: 'default/bench', generation });
    };
    const payload = Buffer.alloc(1024, 7);
    const phase = async (): Promise<{ p50: number; p90: number; p99: number; calls: number; failed: number }> => {
      const ms: number[] = [];
      let failed = 0;
      const end = performance.now() + PHASE_S * 1000;
      const pending: Promise<void>[] = [];
      for (let i = 0; performance.now() < end; i++) {
        const due = i * (1000 / RPS);
        const wait = due - (performance.now() - (end - PHASE_S * 1000));
        if (wait > 0) await sleep(wait);
        pending.push(unary(client, { payload, text: 'bench' }).then((r) => (r.ok ? void ms.push(r.ms) : void failed++)));
      }
      await Promise.all(pending);
      ms.sort((a, b) => a - b);
      return { p50: quantile(ms, 0.5), p90: quantile(ms, 0.9), p99: quantile(ms, 0.99), calls: ms.length + failed, failed };
    };
    const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim();
    const MODES = [0, 10, 100];
    await mode(0);
    await phase(); // warm-up
    type Phase = Awaited<ReturnType<typeof phase>>;
    const rounds: Record<string, Phase>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order, so a drift in the machine's load does not favour one mode.
      const order = MODES.map((_, i) => MODES[(i + r) % MODES.length]!);
      const got: Record<string, Phase> = {};
      for (const m of order) {
        await mode(m);
        got[`mirror_${m}`] = await phase();
      }
      rounds.push(got);
      process.stdout.write(`round ${r + 1}: ${JSON.stringify(got)}\n`);
    }
    const stat = (k: 'p50' | 'p90' | 'p99', m: string): number => Number(median(rounds.map((x) => x[m]![k])).toFixed(3));
    const medians = Object.fromEntries(MODES.map((m) => [`mirror_${m}`, { p50: stat('p50', `mirror_${m}`), p90: stat('p90', `mirror_${m}`), p99: stat('p99', `mirror_${m}`) }]));
    const ratio = (m: number): Record<string, number> => Object.fromEntries((['p50', 'p90', 'p99'] as const).map((k) => [k, Number((stat(k, `mirror_${m}`) / stat(k, 'mirror_0')).toFixed(3))]));
    const ratios = { mirror_10: ratio(10), mirror_100: ratio(100) };
    const met = (r: Record<string, number>): boolean => r.p50! <= 1.1 && r.p90! <= 1.1;
    const out = {
      when: new Date().toISOString(),
      setup: { rps: RPS, phaseS: PHASE_S, rounds: ROUNDS, payloadBytes: 1024, path: 'client → caller sidecar → primary sidecar → echo app; mirror_N: N % of the calls copied to a shadow after the primary answered (mirror_0: same route, no mirror)' },
      medians_ms: medians,
      ratio_to_off: ratios,
      goal: { p50_p90_within: 1.1, met_at_10_percent: met(ratios.mirror_10), met_at_100_percent: met(ratios.mirror_100) },
      rounds,
      loadavg: { before: loadBefore, after: fs.readFileSync('/proc/loadavg', 'utf8').trim() },
    };
    const file = process.env.BENCH_OUT ?? path.join(REPO, 'test/bench/results/mirror.json');
    fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    process.stdout.write(`caller latency with the mirror vs without, medians of ${ROUNDS} rounds: 10 % copied p50 ${ratios.mirror_10.p50} p90 ${ratios.mirror_10.p90}; 100 % copied p50 ${ratios.mirror_100.p50} p90 ${ratios.mirror_100.p90} (goal <= 1.1); written to ${file}\n`);
  } finally {
    client.close();
    await stopAll();
    await ctl.stop();
  }
}

await main();
