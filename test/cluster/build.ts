// Builds the pinned tools from their Go modules into the cache, once: temp dir, then rename, under a lock.
// Run directly: node test/cluster/build.ts [--tools k8s-tools,kwok,helm,ghz,grpcurl,h2spec,grpc-interop-server,grpc-interop-client]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { withFileLock } from './file-lock.ts';
import { CLUSTER_TOOLS, K8S_MODULE_DIR, KUBERNETES_VERSION, TOOLS, binariesOf, isStamped, stampOf, stampPath, toolDir, toolsBinDir, type ToolName } from './versions.ts';

export interface BuildOptions {
  tools?: ToolName[];
  log?: (line: string) => void;
}

/**
 * Ensures each requested tool is in the bin dir; returns the bin dir. Instant when all are present.
 * The hashed tools build under one lock (build.lock); each stamped tool under its own (build-<tool>.lock),
 * so building h2spec never waits for a control-plane build in another process.
 */
export async function ensureTools(opts: BuildOptions = {}): Promise<string> {
  const tools = opts.tools ?? CLUSTER_TOOLS;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const bin = toolsBinDir();
  if (tools.every((t) => isBuilt(bin, t))) return bin;
  mkdirSync(bin, { recursive: true });
  const build = async (group: ToolName[]): Promise<void> => {
    for (const t of group) {
      if (isBuilt(bin, t)) continue;
      const started = Date.now();
      const hint = t === 'k8s-tools' ? ' (cold: about 12 min on 2 idle cores, 40 under load)' : '';
      log(`qbasis: building ${t} ${TOOLS[t].version}${hint}…`);
      await buildTool(bin, t, log);
      log(`qbasis: built ${t} in ${formatDuration(Date.now() - started)}`);
    }
  };
  const onWait = (pid: number): void => log(`qbasis: waiting for the tool build already running in pid ${pid}…`);
  const hashed = tools.filter((t) => !isStamped(t) && !isBuilt(bin, t));
  if (hashed.length > 0) await withFileLock(join(dirname(bin), 'build.lock'), () => build(hashed), { onWait });
  for (const t of tools.filter((x) => isStamped(x) && !isBuilt(bin, x))) {
    await withFileLock(join(dirname(bin), `build-${t}.lock`), () => build([t]), { onWait });
  }
  return bin;
}

function isBuilt(bin: string, t: ToolName): boolean {
  const dir = toolDir(bin, t);
  if (!binariesOf(t).every((b) => existsSync(join(dir, b))) || !TOOLS[t].aliases.every((a) => existsSync(join(bin, a)))) return false;
  if (!isStamped(t)) return true;
  try {
    return readFileSync(stampPath(bin, t), 'utf8') === stampOf(t);
  } catch {
    return false;
  }
}

async function buildTool(bin: string, t: ToolName, log: (l: string) => void): Promise<void> {
  const spec = TOOLS[t];
  const tmp = mkdtempSync(join(bin, `.build-${t}-`));
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CGO_ENABLED: spec.cgo === true ? '1' : '0',
      GOFLAGS: '-buildvcs=false',
      GOTOOLCHAIN: 'local',
      PATH: `${process.env['PATH'] ?? ''}:/usr/local/go/bin`,
    };
    if (spec.moduleDir !== undefined) {
      await run(goBinary(), ['build', '-trimpath', '-ldflags', '-s -w', '-o', join(tmp, t), '.'], spec.moduleDir, env, log);
    } else if (spec.goPackage === undefined) {
      await run(goBinary(), ['build', '-trimpath', '-ldflags', versionLdflags(), '-o', join(tmp, t), '.'], K8S_MODULE_DIR, env, log);
    } else {
      const pkgs = [spec.goPackage, ...(spec.morePackages ?? [])].map((p) => `${p}@${spec.version}`);
      const tags = spec.tags === undefined ? [] : ['-tags', spec.tags];
      await run(goBinary(), ['install', '-trimpath', ...tags, '-ldflags', `-s -w ${spec.ldflags ?? ''}`.trim(), ...pkgs], tmp, { ...env, GOBIN: tmp }, log);
    }
    // Aliases first, binary last: isBuilt checks the binary, so a crash in between leaves "not built".
    for (const a of spec.aliases) {
      const link = join(bin, a);
      try {
        if (readlinkSync(link) === t) continue;
        unlinkSync(link);
      } catch {}
      symlinkSync(t, link);
    }
    const dir = toolDir(bin, t);
    mkdirSync(dir, { recursive: true });
    const [first, ...more] = binariesOf(t);
    // The first binary last: isBuilt then sees either all or a missing one.
    for (const b of more) renameSync(join(tmp, b), join(dir, b));
    renameSync(join(tmp, spec.outDir === undefined ? (spec.goBinary ?? t) : first!), join(dir, first!));
    if (isStamped(t)) {
      // Stamp last: a crash before it leaves a stale or missing stamp, i.e. "not built".
      const stamp = stampPath(bin, t);
      mkdirSync(dirname(stamp), { recursive: true });
      writeFileSync(join(tmp, 'stamp'), stampOf(t));
      renameSync(join(tmp, 'stamp'), stamp);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function versionLdflags(): string {
  const [major, minor] = KUBERNETES_VERSION.slice(1).split('.');
  const flags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    flags.push(
      `-X ${pkg}.gitVersion=${KUBERNETES_VERSION}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
      `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
    );
  }
  return flags.join(' ');
}

export function goBinary(): string {
  if (process.env['QBASIS_GO'] !== undefined) return process.env['QBASIS_GO'];
  return existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, log: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer): void => {
      tail = (tail + chunk.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // Go prints nothing while compiling; a heartbeat shows the build is alive.
    const started = Date.now();
    const beat = setInterval(() => log(`qbasis:   … still building (${formatDuration(Date.now() - started)})`), 60_000);
    child.on('error', (err) => {
      clearInterval(beat);
      reject(new Error(`could not run ${cmd}: ${err.message}; expected Go at /usr/local/go/bin/go or on PATH (or set QBASIS_GO)`));
    });
    child.on('close', (code, sig) => {
      clearInterval(beat);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} in ${cwd} failed (${sig ?? `exit ${code}`}):\n${tail}`));
    });
  });
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

async function main(argv: string[]): Promise<number> {
  let tools: ToolName[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = a.startsWith('--tools=') ? a.slice('--tools='.length) : a === '--tools' ? argv[++i] : undefined;
    if (value === undefined) {
      process.stderr.write(`build: unknown argument '${a}'; expected --tools ${Object.keys(TOOLS).join(',')}\n`);
      return 2;
    }
    tools = value.split(',').map((s) => s.trim()) as ToolName[];
    const bad = tools.filter((t) => !(t in TOOLS));
    if (bad.length > 0) {
      process.stderr.write(`build: unknown tool(s) ${bad.join(', ')}; expected some of ${Object.keys(TOOLS).join(', ')}\n`);
      return 2;
    }
  }
  const bin = await ensureTools(tools === undefined ? {} : { tools });
  process.stdout.write(bin + '\n');
  return 0;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
