// `qbasis console`: the cluster's console in the browser. Port-forwards to a controller replica's
// console (cli/console-forward.ts: the leader if ready), checks that it answers, prints the URL and
// keeps forwarding until Ctrl-C (SIGINT) or SIGTERM. Exit 0 after a signal; 1 when no replica can be
// reached (the message says why and what to do); 2 usage.
import net from 'node:net';
import process from 'node:process';
import { MESH_KIND } from '../controller/console/mesh-snapshot.ts';
import { CHART_CONSOLE_PORT, REPLICA_FLAGS } from './console-flags.ts';
import { forwardFromFlags, replicaLine, type ConsoleForward } from './console-forward.ts';
import { parseOrExit, type CommandSpec } from './flags.ts';

export const CONSOLE_COMMAND: CommandSpec = {
  name: 'console',
  summary: "Opens the console of a controller replica in the cluster (the leader when it is ready) through a port-forward, prints its URL and forwards until Ctrl-C.",
  flags: [
    ...REPLICA_FLAGS,
    { name: 'address', kind: 'string', arg: '<ip>', default: '127.0.0.1', help: 'local address to listen on (an IP address; keep it loopback: the console has no login)', check: (v) => (net.isIP(v) === 0 ? 'expected an IP address, e.g. 127.0.0.1' : undefined) },
    { name: 'port', kind: 'port', default: String(CHART_CONSOLE_PORT), help: 'local port (0: any free port)' },
    { name: 'timeout-ms', kind: 'int', min: 100, max: 600_000, default: '15000', help: 'give up when the console does not answer through the forward within this long' },
  ],
  footer: `Example:
  qbasis console --namespace qbasis-system
  qbasis console --port 0 --pod qbasis-controller-7d9f8b6c5-x2x4z`,
};

/** GET /api/v1/mesh through the forward: the console is on and answers (else why not). */
export async function checkConsole(f: ConsoleForward, remotePort: number, timeoutMs: number): Promise<string> {
  const where = `the console of ${f.replica.namespace}/${f.replica.pod} (port ${remotePort} in the pod)`;
  let r: Response;
  try {
    r = await fetch(`${f.url}api/v1/mesh`, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    throw new Error(`${where} did not answer through the port-forward (${e.cause?.message ?? e.message}): is it on? The chart's controller.console.enabled (default true) runs it on ${CHART_CONSOLE_PORT}; a controller run by hand needs --console 127.0.0.1:${CHART_CONSOLE_PORT}, or pass --remote-port`);
  }
  const body = await r.text();
  if (r.status !== 200) throw new Error(`${where} answered ${r.status}: ${body.trim().slice(0, 300)}`);
  let kind: unknown;
  try {
    kind = (JSON.parse(body) as { kind?: unknown }).kind;
  } catch {
    kind = undefined;
  }
  if (kind !== MESH_KIND) throw new Error(`port ${remotePort} of ${f.replica.namespace}/${f.replica.pod} is not a qbasis console (no ${MESH_KIND} snapshot at /api/v1/mesh); pass --remote-port`);
  return body;
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseOrExit(CONSOLE_COMMAND, argv, process.env);
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values;
  const signal = waitForSignal();
  const forward = await forwardFromFlags(v, {
    host: v.get('address')!,
    port: Number(v.get('port')),
    onError: (msg) => process.stderr.write(`qbasis console: ${msg}\n`),
  });
  try {
    await checkConsole(forward, Number(v.get('remote-port')), Number(v.get('timeout-ms')));
  } catch (err) {
    await forward.close();
    throw err;
  }
  process.stdout.write(`qbasis console: ${replicaLine(forward.replica)}\n${forward.url}\nForwarding until Ctrl-C.\n`);
  await signal;
  await forward.close();
  return 0;
}
