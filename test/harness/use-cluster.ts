// The node:test harness for tests against the real local control plane (see test/README.md).
// One cluster per `npm test` run (global-setup.ts owns it); without the global setup, one per test file.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { up, isHealthy, readState, type ClusterState } from '../cluster/cluster.ts';
import { withFileLock } from '../cluster/file-lock.ts';
import { startReaper } from './reaper.ts';
import { waitUntil } from '../fixtures/wait.ts';

const execFileP = promisify(execFile);

/** Give the hook that calls useCluster() this timeout: a cold tool build takes ~20-45 min on 2 cores. */
export const CLUSTER_START_TIMEOUT_MS = 60 * 60_000;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin (e.g. a manifest for `kubectl apply -f -`). */
  input?: string;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  timeoutMs?: number;
}

/** Anything with node:test's `t.after`, so namespace() can clean up when the test ends. */
export interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

export interface TestCluster {
  /** Admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  apiUrl: string;
  /** Directory with kubectl, helm, kwok, kube-apiserver, ... */
  toolsBin: string;
  /** The cluster's state dir (logs/ has each component's log). */
  stateDir: string;
  /** Environment with KUBECONFIG and PATH set, for your own child processes. */
  env: NodeJS.ProcessEnv;
  kubectl(args: string[], opts?: RunOptions): Promise<RunResult>;
  helm(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** A fresh namespace whose default ServiceAccount exists; deleted when the test `t` ends. */
  namespace(t?: AfterHook, prefix?: string): Promise<string>;
  /** A self-signed CA and a serving certificate for `hosts` (PEM), e.g. for a webhook's caBundle. */
  servingCert(hosts?: string[]): Promise<{ ca: string; cert: string; key: string }>;
}

let cached: Promise<TestCluster> | undefined;

/** Starts the run's cluster, or reuses the one already running; call it from a `before` hook with CLUSTER_START_TIMEOUT_MS. */
export function useCluster(): Promise<TestCluster> {
  cached ??= start();
  return cached;
}

async function start(): Promise<TestCluster> {
  const runDir = process.env['QBASIS_TEST_RUN_DIR'];
  let state: ClusterState;
  if (runDir !== undefined && runDir !== '') {
    // The global setup owns runDir and stops the cluster at the end of the run.
    const dir = join(runDir, 'cluster');
    mkdirSync(runDir, { recursive: true });
    // Not 'cluster.lock': up() itself locks `${dir}.lock` and would wait on us forever.
    state = await withFileLock(join(runDir, 'harness.lock'), async () => {
      const existing = readState(dir);
      if (existing !== undefined && (await isHealthy(existing))) return existing;
      const owner = Number(process.env['QBASIS_TEST_OWNER_PID'] ?? process.ppid);
      startReaper(owner, dir, runDir);
      // No real node in the shared cluster: it is one per machine, and test/cluster/real-node.test.ts owns it.
      return (await up({ dir, name: 'test', realNode: false, log: (l) => process.stderr.write(l + '\n') })).state;
    });
  } else {
    // No global setup (a single file run by hand): this process owns a private cluster.
    const own = mkdtempSync(join(tmpdir(), 'qbasis-test-'));
    const dir = join(own, 'cluster');
    startReaper(process.pid, dir, own);
    state = (await up({ dir, name: 'test', realNode: false, log: (l) => process.stderr.write(l + '\n') })).state;
  }
  return harnessFor(state);
}

export function harnessFor(state: ClusterState): TestCluster {
  const env: NodeJS.ProcessEnv = { ...process.env, KUBECONFIG: state.kubeconfig, PATH: `${state.toolsBin}:${process.env['PATH'] ?? ''}` };
  // helm keeps caches and config; keep them inside the cluster's state dir.
  const helmEnv: NodeJS.ProcessEnv = {
    ...env,
    HELM_CACHE_HOME: join(state.dir, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(state.dir, 'helm', 'config'),
    HELM_DATA_HOME: join(state.dir, 'helm', 'data'),
  };
  const kubectl = (args: string[], opts?: RunOptions): Promise<RunResult> => run(join(state.toolsBin, 'kubectl'), args, env, opts);
  const helm = (args: string[], opts?: RunOptions): Promise<RunResult> => run(join(state.toolsBin, 'helm'), args, helmEnv, opts);
  return {
    kubeconfig: state.kubeconfig,
    apiUrl: state.apiUrl,
    toolsBin: state.toolsBin,
    stateDir: state.dir,
    env,
    kubectl,
    helm,
    async namespace(t?: AfterHook, prefix = 'test'): Promise<string> {
      const name = `${prefix}-${randomBytes(4).toString('hex')}`.toLowerCase();
      await kubectl(['create', 'namespace', name]);
      t?.after(async () => {
        await kubectl(['delete', 'namespace', name, '--wait=false', '--ignore-not-found'], { allowFailure: true });
      });
      // Pods are refused until the controller manager has made the namespace's default ServiceAccount.
      await waitUntil(`namespace ${name}'s default ServiceAccount`, async () => (await kubectl(['-n', name, 'get', 'serviceaccount', 'default'], { allowFailure: true })).code === 0, {
        timeoutMs: 60_000,
        intervalMs: 200,
        detail: () => `is kube-controller-manager running? (logs in ${state.dir}/logs)`,
      });
      return name;
    },
    async servingCert(hosts = ['127.0.0.1', 'localhost']): Promise<{ ca: string; cert: string; key: string }> {
      const dir = mkdtempSync(join(tmpdir(), 'qbasis-cert-'));
      try {
        await execFileP(join(state.toolsBin, 'k8s-tools'), ['pki', 'serving', '--dir', dir, '--hosts', hosts.join(',')]);
        const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
        return { ca: read('ca.crt'), cert: read('tls.crt'), key: read('tls.key') };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv, opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${bin}: ${e.message}`));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (result.code === 0 || opts.allowFailure === true) resolve(result);
      else reject(new Error(`${bin.split('/').pop()} ${args.join(' ')} failed (${sig ?? `exit ${code}`}): ${result.stderr.trim() || result.stdout.trim()}`));
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Writes `content` to a fresh temp file (removed when `t` ends) and returns its path. */
export function tempFile(t: AfterHook, name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'qbasis-file-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}
