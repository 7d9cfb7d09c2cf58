#!/usr/bin/env node
// The one place that reaches both sides: parse the subcommand, hand over to that side's main.
// The command-line convention (syntax, messages, exit codes 2 usage / 1 runtime) is cli/flags.ts's.
import process from 'node:process';

// Node 24 only: it runs the TypeScript directly (type stripping) and is what the code is tested on.
// npm's own `engines` check is not used (it printed ten EBADENGINE lines before every first
// `npx qbasis` on a machine whose Node is older, although the pinned Node 24 runs the command).
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
if (NODE_MAJOR !== 24) {
  process.stderr.write(
    `qbasis: needs Node.js 24, this is ${process.version}; run it as 'npx qbasis …' or through the npm scripts after 'npm ci' (they use the Node 24 of the 'node' package), or install Node 24\n`,
  );
  process.exit(1);
}

type Main = (argv: string[]) => Promise<number>;

const commands: Record<string, { summary: string; load: () => Promise<Main> }> = {
  basis: { summary: 'encode and decode basis frame headers', load: async () => (await import('../cli/basis.ts')).main },
  sidecar: { summary: 'run the per-pod sidecar proxy', load: async () => (await import('../sidecar/main.ts')).main },
  controller: { summary: 'run the discovery controller (local pods file or Kubernetes)', load: async () => (await import('../controller/main.ts')).main },
  check: { summary: 'check that the qbasis install in a cluster is healthy (✔/✖ per check, exit 1 on any ✖)', load: async () => (await import('../cli/check.ts')).main },
  cluster: { summary: 'a real local Kubernetes control plane for tests and demos (up|down|env|status|build)', load: () => testBed('cluster', () => import('../test/cluster/cli.ts')) },
  demo: { summary: 'run the local rolling-upgrade demo (no cluster needed)', load: () => testBed('demo', () => import('../test/demo/demo.ts')) },
  console: { summary: "open the cluster's console through a port-forward to a controller replica; prints the URL", load: async () => (await import('../cli/console.ts')).main },
  plan: { summary: 'would removing API@RANGE strand a caller? (from the console; exit 1 if so)', load: async () => (await import('../cli/plan.ts')).main },
};

/**
 * The test bed lives in test/, which the image does not ship (DESIGN.md, Layout): there these commands
 * say so in one line instead of failing on a missing module.
 */
async function testBed(name: string, load: () => Promise<{ main: Main }>): Promise<Main> {
  try {
    return (await load()).main;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' || !String((err as Error).message).includes('/test/')) throw err;
    return async () => {
      process.stderr.write(`qbasis ${name}: the test bed is not in this installation (the image ships no test/); run it from a source checkout: git clone …, npm ci, npx qbasis ${name}\n`);
      return 1;
    };
  }
}

function usage(): string {
  const lines = [
    'qbasis — version-safe gRPC calls between pods',
    '',
    'Usage: qbasis <command> [flags]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`),
    '',
    "Run 'qbasis <command> --help' (or 'qbasis help <command>') for a command's flags.",
    'Exit codes: 0 done, 1 failed while running, 2 usage error (one line on stderr with its QB_* code).',
  ];
  return lines.join('\n');
}

async function run(argv: string[]): Promise<number> {
  let [name, ...rest] = argv;
  if (name === 'help' && rest.length > 0) [name, rest] = [rest[0], ['--help']];
  if (name === undefined) {
    process.stderr.write(usage() + '\n');
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const command = commands[name];
  if (command === undefined) {
    const { reportFailure, shown, UsageError } = await import('../cli/flags.ts');
    return reportFailure('', new UsageError(`unknown command ${shown(name)}: expected one of ${Object.keys(commands).join(', ')}; run 'qbasis --help'`, { code: 'QB_USAGE' }));
  }
  const main = await command.load();
  try {
    return await main(rest);
  } catch (err) {
    const { reportFailure } = await import('../cli/flags.ts');
    return reportFailure(name, err);
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`qbasis: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
