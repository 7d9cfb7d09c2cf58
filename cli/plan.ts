// `qbasis plan remove API@RANGE [--console URL]`: would removing every provider of API@RANGE strand a
// caller? Reads the console's snapshot (GET URL/api/v1/mesh; without --console through a port-forward to
// a controller replica in the cluster, as `qbasis console` makes) and answers with the planner the page
// uses (controller/console/planner.ts), so both say the same.
// Exit codes: 0 strands no caller; 1 strands one or more (or the console could not be read: the
// message says which); 2 a usage error. --fail-if-called also exits 1 when a caller sent calls to
// RANGE within --minutes.
import process from 'node:process';
import type { MeshSnapshot } from '../controller/console/mesh-snapshot.ts';
import { MESH_KIND } from '../controller/console/mesh-snapshot.ts';
import { parseRemoval, planLines, planRemoval } from '../controller/console/planner.ts';
import { REPLICA_FLAGS } from './console-flags.ts';
import { commandUsage, parseOrExit, reportFailure, shown, unknownSubcommand, UsageError, wantsHelp, type CommandSpec, type FlagValues } from './flags.ts';

const REMOVE: CommandSpec = {
  name: 'plan remove',
  summary: 'Says which callers would be left with no compatible ready provider if every pod providing a version of API in RANGE went, and which called those versions lately. Exit 0: strands none; 1: strands one or more; 2: usage.',
  synopsis: '<API@RANGE> [--console <url>] [flags]',
  operands: { name: 'API@RANGE', min: 1, max: 1 },
  flags: [
    {
      name: 'console', kind: 'string', arg: '<url>', help: "the console's base URL (local mode: the controller's --console address); without it, a port-forward to a controller replica in the cluster (the flags below)",
      check: (v) => (/^https?:\/\/[^/?#]+\/?$/.test(v) ? undefined : 'expected http://HOST:PORT, e.g. http://127.0.0.1:15014'),
    },
    { name: 'minutes', kind: 'int', min: 1, max: 15, default: '15', expected: 'minutes from 1 to 15 (the console keeps 15)', help: 'how far back "still calls it" looks' },
    { name: 'fail-if-called', kind: 'bool', default: 'false', help: 'also exit 1 when a caller sent calls to RANGE within --minutes' },
    { name: 'json', kind: 'bool', default: 'false', help: 'print the plan as one JSON object instead of lines' },
    { name: 'timeout-ms', kind: 'int', min: 100, max: 600_000, default: '10000', help: 'give up on the console after this long' },
    ...REPLICA_FLAGS,
  ],
  footer: `Examples:
  qbasis plan remove shop.orders.v1.OrderService@1.x --console http://127.0.0.1:15014
  qbasis plan remove shop.orders.v1.OrderService@1.x --namespace qbasis-system`,
};

function planUsage(): string {
  return commandUsage(REMOVE);
}

async function fetchMesh(base: string, timeoutMs: number): Promise<MeshSnapshot> {
  const url = `${base.replace(/\/$/, '')}/api/v1/mesh`;
  let r: Response;
  try {
    r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    throw new Error(`cannot read ${url}: ${e.cause?.message ?? e.message}; is the controller running with --console?`);
  }
  const body = await r.text();
  if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${body.trim().slice(0, 300)}`);
  let mesh: MeshSnapshot;
  try {
    mesh = JSON.parse(body) as MeshSnapshot;
  } catch {
    throw new Error(`${url} did not answer JSON; expected the console's mesh snapshot`);
  }
  if (mesh.kind !== MESH_KIND || !Array.isArray(mesh.apis)) throw new Error(`${url} answered kind ${shown(String(mesh.kind))}; expected ${MESH_KIND}`);
  return mesh;
}

/** From --console, else through a port-forward to a replica (loaded only then: the Kubernetes client is large). */
async function meshOf(v: FlagValues, timeoutMs: number): Promise<MeshSnapshot> {
  const url = v.get('console');
  if (url !== undefined) return fetchMesh(url, timeoutMs);
  const { forwardFromFlags, replicaLine } = await import('./console-forward.ts');
  const forward = await forwardFromFlags(v, { host: '127.0.0.1', port: 0, onError: (msg) => process.stderr.write(`qbasis plan remove: ${msg}\n`) });
  try {
    const mesh = await fetchMesh(forward.url, timeoutMs);
    if (!forward.replica.isLeader) process.stderr.write(`qbasis plan remove: from ${replicaLine(forward.replica)}\n`);
    return mesh;
  } finally {
    await forward.close();
  }
}

async function remove(argv: string[]): Promise<number> {
  const parsed = parseOrExit(REMOVE, argv);
  if (typeof parsed === 'number') return parsed;
  const target = parseRemoval(parsed.operands[0]!);
  if (typeof target === 'string') throw new UsageError(`${shown(parsed.operands[0]!)} is invalid: ${target}`, { code: 'QB_USAGE' });
  const v = parsed.values;
  const minutes = Number(v.get('minutes'));
  const mesh = await meshOf(v, Number(v.get('timeout-ms')));
  const plan = planRemoval(mesh.apis.find((a) => a.api === target.api), target.api, target.range, { now: mesh.generatedAt, withinMinutes: minutes });
  if (v.get('json') === 'true') process.stdout.write(JSON.stringify(plan) + '\n');
  else process.stdout.write(planLines(plan, mesh.generatedAt).join('\n') + '\n');
  const failed = !plan.safe || (v.get('fail-if-called') === 'true' && plan.stillCalling.length > 0);
  return failed ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'remove') return await remove(rest);
    if (sub === undefined) {
      process.stderr.write(planUsage() + '\n');
      return 2;
    }
    if (sub === 'help' || wantsHelp([sub])) {
      process.stdout.write(planUsage() + '\n');
      return 0;
    }
    throw unknownSubcommand('plan', sub, ['remove']);
  } catch (err) {
    return reportFailure(sub === 'remove' ? 'plan remove' : 'plan', err);
  }
}
