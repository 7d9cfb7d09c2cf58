#!/usr/bin/env node
// The one place that reaches both sides: parse the subcommand, hand over to that side's main.
import process from 'node:process';

type Main = (argv: string[]) => Promise<number>;

const commands: Record<string, { summary: string; load: () => Promise<Main> }> = {
  basis: { summary: 'encode and decode basis frame headers', load: async () => (await import('../proto/cli/basis-cli.ts')).main },
  sidecar: { summary: 'run the per-pod sidecar proxy', load: async () => (await import('../sidecar/main.ts')).main },
  controller: { summary: 'run the discovery controller (local pods file or Kubernetes)', load: async () => (await import('../controller/main.ts')).main },
  cluster: { summary: 'a real local Kubernetes control plane for tests and demos (up|down|env|status)', load: async () => (await import('../test/cluster/cli.ts')).main },
  demo: { summary: 'run the local rolling-upgrade demo (no cluster needed)', load: async () => (await import('../test/demo/demo.ts')).main },
};

function usage(): string {
  const lines = [
    'qbasis — version-safe gRPC calls between pods',
    '',
    'Usage: qbasis <command> [flags]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`),
    '',
    "Run 'qbasis <command> --help' for a command's flags.",
  ];
  return lines.join('\n');
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`qbasis: unknown command '${name}'; expected one of: ${Object.keys(commands).join(', ')}\n`);
    return 2;
  }
  const main = await command.load();
  return main(rest);
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
