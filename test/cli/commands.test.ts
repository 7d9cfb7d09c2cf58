// The `qbasis` command as users run it: every subcommand answers --help, one exit-code rule, the
// Node 24 check, a first `npx qbasis` that prints only its own output, and the layout rules that keep
// command-line code out of proto/. Nothing binds (cluster and demo are only asked for help).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { QBASIS_BIN, REPO } from '../fixtures/local-controller.ts';

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QBASIS_') && !k.startsWith('npm_')));
  return { ...env, ...extra };
}

function qbasis(args: string[], nodeArgs: string[] = []): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...nodeArgs, QBASIS_BIN, ...args], { cwd: REPO, env: cleanEnv(), encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const HELP: Array<[string[], RegExp]> = [
  [['--help'], /^qbasis — version-safe gRPC calls/],
  [['help'], /^qbasis — version-safe gRPC calls/],
  [['basis', '--help'], /^Usage: qbasis basis encode\|decode/],
  [['basis', 'help'], /^Usage: qbasis basis encode\|decode/],
  [['basis', 'encode', '--help'], /^Usage: qbasis basis encode \[flags\]/],
  [['basis', 'decode', '-h'], /^Usage: qbasis basis decode /],
  [['sidecar', '--help'], /^Usage: qbasis sidecar --ip/],
  [['controller', '--help'], /^Usage: qbasis controller --pods-file <file> \| --kubeconfig <file>/],
  [['check', '--help'], /^Usage: qbasis check /],
  [['cluster', '--help'], /^Usage: qbasis cluster <up\|down\|env\|status\|build>/],
  [['plan', '--help'], /^Usage: qbasis plan remove <API@RANGE> \[--console <url>\]/],
  [['console', '--help'], /^Usage: qbasis console \[flags\]/],
  [['plan', 'remove', '-h'], /^Usage: qbasis plan remove /],
  [['cluster', '-h'], /^Usage: qbasis cluster /],
  [['cluster', 'help'], /^Usage: qbasis cluster /],
  [['cluster', 'up', '--help'], /^Usage: qbasis cluster /],
  [['cluster', 'down', '--help'], /^Usage: qbasis cluster /],
  [['cluster', 'env', '-h'], /^Usage: qbasis cluster /],
  [['cluster', 'status', '--help'], /^Usage: qbasis cluster /],
  [['cluster', 'build', '--help'], /^Usage: qbasis cluster /],
  [['demo', '--help'], /^Usage: qbasis demo \[flags\]/],
  [['help', 'cluster'], /^Usage: qbasis cluster /],
  [['help', 'controller'], /^Usage: qbasis controller /],
];

for (const [args, usage] of HELP) {
  test(`qbasis ${args.join(' ')} prints its usage on stdout and exits 0`, () => {
    const r = qbasis(args);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, usage);
  });
}

test('the top-level help lists every command, and each of them answers --help', () => {
  const top = qbasis(['--help']);
  const listed = [...top.stdout.matchAll(/^ {2}(\w+) {2,}/gm)].map((m) => m[1]!);
  assert.deepEqual(listed, ['basis', 'sidecar', 'controller', 'check', 'cluster', 'demo', 'console', 'plan']);
  for (const cmd of listed) assert.ok(HELP.some(([a]) => a[0] === cmd && (a[1] === '--help' || a[1] === '-h')), `${cmd} --help is tested`);
});

test('a command given nothing to do prints its usage on stderr and exits 2 (a usage error)', () => {
  for (const args of [[], ['basis'], ['cluster'], ['plan']]) {
    const r = qbasis(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /Usage: qbasis/);
  }
});

// 2 for anything wrong with what was typed, whichever command; always one line with its QB_* code.
const USAGE_ERRORS: Array<[string[], RegExp]> = [
  [['frobnicate'], /^qbasis: QB_USAGE: unknown command 'frobnicate'/],
  [['basis', 'encode', '--api'], /^qbasis basis encode: QB_INVALID_FLAG: --api needs a value/],
  [['basis', 'decode', 'zz'], /^qbasis basis decode: QB_FRAME_BAD_TEXT: /],
  [['sidecar', '--bogus'], /^qbasis sidecar: QB_INVALID_FLAG: unknown flag '--bogus'/],
  [['controller', '--admin-port', '-1'], /^qbasis controller: QB_INVALID_FLAG: --admin-port '-1' is invalid: expected a port number from 0 to 65535/],
  [['cluster', 'frobnicate'], /^qbasis cluster: QB_USAGE: unknown subcommand 'frobnicate': expected one of up, down, env, status, build/],
  [['plan', 'keep'], /^qbasis plan: QB_USAGE: unknown subcommand 'keep': expected one of remove/],
  [['plan', 'remove', 'x.Y@1.x', '--console', 'ftp://x'], /^qbasis plan remove: QB_INVALID_FLAG: --console 'ftp:\/\/x' is invalid: expected http:\/\/HOST:PORT/],
  [['cluster', 'status', '--name', '../../etc'], /^qbasis cluster status: QB_INVALID_FLAG: --name '\.\.\/\.\.\/etc' is invalid: expected a DNS label/],
  [['cluster', 'build', '--tools', 'nope'], /^qbasis cluster build: QB_INVALID_FLAG: --tools 'nope' is invalid: unknown tool\(s\) nope/],
  [['cluster', 'up', '--tools', 'helm'], /^qbasis cluster up: QB_INVALID_FLAG: unknown flag '--tools'/],
  [['cluster', 'env', '--bogus'], /^qbasis cluster env: QB_INVALID_FLAG: unknown flag '--bogus'/],
  [['check', '--lease-duration-ms', '5'], /^qbasis check: QB_INVALID_FLAG: --lease-duration-ms '5' is invalid: expected milliseconds from 1000 to 600000/],
  [['demo', '--rps', '0'], /^qbasis demo: QB_INVALID_FLAG: --rps '0' is invalid: expected calls per second from 1 to 2000/],
  [['demo', '--json=maybe'], /^qbasis demo: QB_INVALID_FLAG: --json 'maybe' is invalid: expected true or false/],
];

for (const [args, line] of USAGE_ERRORS) {
  test(`qbasis ${args.join(' ')} is a usage error: one line with a QB_* code on stderr, exit 2`, () => {
    const r = qbasis(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    assert.match(r.stderr, line);
  });
}

test('a failure while running exits 1 (cluster env with no cluster)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbasis-cli-nocluster-'));
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'cluster', 'env'], { cwd: REPO, env: cleanEnv({ QBASIS_CLUSTER_DIR: path.join(dir, 'none') }), encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^qbasis: no cluster in .*; run 'npx qbasis cluster up' first\n$/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('on a Node other than 24, qbasis says that Node 24 is needed (one line, exit 1)', () => {
  const fake = 'data:text/javascript,' + encodeURIComponent('Object.defineProperty(process,"versions",{value:{...process.versions,node:"25.1.0"}});Object.defineProperty(process,"version",{value:"v25.1.0"})');
  const r = qbasis(['--help'], ['--import', fake]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^qbasis: needs Node\.js 24, this is v25\.1\.0; run it as 'npx qbasis …'/);
  assert.equal(r.stderr.split('\n').length, 2);
});

/** npm's own CLI script: the npm that runs `npm test`, else the one on PATH. */
function npmCli(): string | undefined {
  const fromNpm = process.env.npm_execpath;
  if (fromNpm !== undefined && /npm-cli\.js$/.test(fromNpm) && fs.existsSync(fromNpm)) return fromNpm;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const npm = path.join(dir, 'npm');
    if (!fs.existsSync(npm)) continue;
    const real = fs.realpathSync(npm);
    if (/npm-cli\.js$/.test(real)) return real;
  }
  return undefined;
}

// Issue 12: npm checked `engines` with the machine's Node (v20 here) before the pinned Node 24 ran the
// command, and a first `npx qbasis` (npx links the package into its cache) printed ten EBADENGINE lines.
test('a first `npx qbasis --help` under an older Node prints only the help', { skip: npmCli() === undefined ? 'no npm here' : false }, () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'qbasis-npx-cache-'));
  try {
    // npm compares `engines` with its own process.version; make it the machine's older one.
    const olderNode = 'data:text/javascript,' + encodeURIComponent('Object.defineProperty(process,"version",{value:"v20.20.2"})');
    const r = spawnSync(process.execPath, ['--import', olderNode, npmCli()!, 'exec', '--cache', cache, '--offline', '--no-update-notifier', '--no-fund', '--no-audit', '--', 'qbasis', '--help'], {
      cwd: REPO,
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /EBADENGINE|Unsupported engine/);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, qbasis(['--help']).stdout);
    assert.ok(fs.existsSync(path.join(cache, '_npx')), 'it was a first run: npx set up its cache');
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

// DESIGN.md "Layout": proto/ holds no command-line code; sidecar/ and controller/ import proto/, never
// each other; from cli/ they import only cli/flags.ts (the parser, a leaf); product code never imports test/.
function sources(dir: string): string[] {
  return fs.readdirSync(path.join(REPO, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.relative(REPO, path.join(e.parentPath, e.name)));
}

function imports(file: string): string[] {
  const text = fs.readFileSync(path.join(REPO, file), 'utf8');
  const specs = [...text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)].map((m) => m[1] ?? m[2]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.relative(REPO, path.resolve(REPO, path.dirname(file), s)));
}

test('layout: no command-line code in proto/; sidecar and controller never import each other; from cli/ only cli/flags.ts', () => {
  assert.equal(fs.existsSync(path.join(REPO, 'proto/cli')), false, 'proto/cli/ is gone (the basis CLI is cli/basis.ts)');
  const bad: string[] = [];
  for (const f of sources('proto')) for (const i of imports(f)) if (!i.startsWith('proto/')) bad.push(`${f} → ${i}`);
  for (const f of sources('sidecar')) {
    for (const i of imports(f)) if (i.startsWith('controller/') || i.startsWith('test/') || (i.startsWith('cli/') && i !== 'cli/flags.ts')) bad.push(`${f} → ${i}`);
  }
  for (const f of sources('controller')) {
    for (const i of imports(f)) if (i.startsWith('sidecar/') || i.startsWith('test/') || (i.startsWith('cli/') && i !== 'cli/flags.ts')) bad.push(`${f} → ${i}`);
  }
  for (const f of sources('cli')) for (const i of imports(f)) if (i.startsWith('test/')) bad.push(`${f} → ${i}`);
  for (const i of imports('cli/flags.ts')) if (i !== 'proto/errors.ts') bad.push(`cli/flags.ts → ${i} (the parser stays a leaf)`);
  assert.deepEqual(bad, []);
  assert.match(fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'), /^COPY cli \.\/cli$/m, 'the image carries cli/');
});

test('in the image\'s layout (no test/), qbasis demo and qbasis cluster say the test bed is not installed, in one line, exit 1', () => {
  // The Dockerfile's COPY lines: bin, cli, proto, controller, sidecar and package.json; node_modules linked.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbasis-image-layout-'));
  try {
    for (const d of ['bin', 'cli', 'proto', 'controller', 'sidecar']) fs.cpSync(path.join(REPO, d), path.join(dir, d), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'package.json'), path.join(dir, 'package.json'));
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
    for (const cmd of ['demo', 'cluster']) {
      const r = spawnSync(process.execPath, [path.join(dir, 'bin/qbasis.ts'), cmd, 'status'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, `${cmd}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^qbasis ${cmd}: the test bed is not in this installation`));
    }
    const basis = spawnSync(process.execPath, [path.join(dir, 'bin/qbasis.ts'), 'basis', 'decode', '7101::'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(basis.status, 0, basis.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
