// Certify under a start storm (issue 16): 500 sidecars starting at once, each with its own TLS connection
// to the local controller's identity port (--identity-dir, tokens minted for the pods file), one Certify
// each. Keys and CSRs are made before the clock starts; each call's time is from its channel's creation to
// the signed certificate. Reported: p50/p90/p99/max and the whole storm, in rounds (medians over rounds),
// and what the controller's CPU did. Local mode's authenticator is the minted token; in Kubernetes mode
// each Certify adds one TokenReview (not measured here).
//   npm run bench:certify      env: BENCH_SIDECARS (500), BENCH_ROUNDS (3), BENCH_OUT
// Addresses: 127.0.108.x (controller .1; the pods' IPs are never dialed).
import fs from 'node:fs';
import path from 'node:path';
import { newKeyAndCsr } from '../../sidecar/identity/csr.ts';
import { certify, readToken, startIdentityController } from '../fixtures/identity.ts';
import { REPO, tempDir, writePods, type TestPod } from '../fixtures/local-controller.ts';

const NET = '127.0.108';
const N = Number(process.env.BENCH_SIDECARS ?? 500);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const median = (xs: number[]): number => pct(xs, 50);
const cpuMs = (pid: number): number => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

async function main(): Promise<void> {
  const pods: TestPod[] = Array.from({ length: N }, (_, i) => ({ name: `app-${i}`, namespace: `ns${i % 10}`, ip: `${NET}.${10 + (i % 240)}`, serviceAccount: `sa${i % 50}` }));
  const podsFile = path.join(tempDir('certify-bench'), 'pods.yaml');
  writePods(podsFile, pods);
  // Each pod may ask 10 times at once (the per-pod burst), so rounds stay within the rate limit.
  const ctl = await startIdentityController({ podsFile, host: `${NET}.1` });
  const rounds: { p50: number; p90: number; p99: number; max: number; stormMs: number; failed: number; controllerCpuMs: number }[] = [];
  try {
    const tokens = await Promise.all(pods.map((p) => readToken(ctl, p.namespace!, p.name)));
    for (let r = 0; r < ROUNDS; r++) {
      const csrs = pods.map(() => newKeyAndCsr().csr);
      const c0 = cpuMs(ctl.proc.pid!);
      const t0 = performance.now();
      const times = await Promise.all(pods.map(async (_, i) => {
        const s = performance.now();
        const o = await certify(ctl, tokens[i]!, csrs[i]!);
        return { ms: performance.now() - s, ok: o.ok };
      }));
      const stormMs = performance.now() - t0;
      const ms = times.map((t) => t.ms);
      rounds.push({ p50: median(ms), p90: pct(ms, 90), p99: pct(ms, 99), max: Math.max(...ms), stormMs, failed: times.filter((t) => !t.ok).length, controllerCpuMs: cpuMs(ctl.proc.pid!) - c0 });
      process.stderr.write(`round ${r + 1}: p50 ${median(ms).toFixed(0)} ms, p99 ${pct(ms, 99).toFixed(0)} ms, all ${N} in ${stormMs.toFixed(0)} ms, ${times.filter((t) => !t.ok).length} failed\n`);
      await new Promise((res) => setTimeout(res, 2000));
    }
  } finally {
    await ctl.stop();
  }
  const m = (k: keyof (typeof rounds)[number]): number => Math.round(median(rounds.map((x) => x[k])));
  const result = {
    when: new Date().toISOString(),
    sidecars: N,
    rounds,
    medians: { p50Ms: m('p50'), p90Ms: m('p90'), p99Ms: m('p99'), maxMs: m('max'), stormMs: m('stormMs'), failed: m('failed'), controllerCpuMsPerCertify: Math.round((median(rounds.map((x) => x.controllerCpuMs)) / N) * 100) / 100 },
    note: 'client TLS handshakes and the controller share this machine\'s 2 cores',
  };
  const out = process.env.BENCH_OUT ?? path.join(REPO, 'test/bench/results/certify.json');
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(JSON.stringify(result.medians) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:certify: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
