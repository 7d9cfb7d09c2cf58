// `qbasis cluster up|down|env|status|build`: a real local Kubernetes control plane for tests and demos.
// Flags through cli/flags.ts (exit 2 for a usage error, one line on stderr).
import { clusterDir, componentStatus, down, envLines, isHealthy, readState, up, NODE_NAME, POD_CIDR } from './cluster.ts';
import { ensureTools } from './build.ts';
import { KUBERNETES_VERSION, TOOLS, type ToolName } from './versions.ts';
import { parseCommandLine, reportFailure, unknownSubcommand, wantsHelp, type CommandSpec, type FlagSpec, type ParsedCommandLine } from '../../cli/flags.ts';

const SUBCOMMANDS = ['up', 'down', 'env', 'status', 'build', 'help'];

const USAGE = `Usage: qbasis cluster <up|down|env|status|build> [--name NAME] [--dir DIR]

  up       build the tools if needed (first time: ~20-45 min), start etcd, kube-apiserver,
           kube-controller-manager, kube-scheduler and kwok with one fake node (${NODE_NAME},
           pod IPs from ${POD_CIDR}), and the real node qbasis-node-0 (kubelet, containerd,
           kube-proxy; pods on 198.18.0.0/24, Services on 198.19.0.0/16; root; --real-node=false
           to skip it); idempotent
  down     stop every process the cluster started (by pid) and remove its state dir
  env      print shell exports; use: eval "$(npx qbasis cluster env)"
  status   show each component, its pid and whether it runs
  build    only build the tools (--tools ${Object.keys(TOOLS).join(',')})

Flags:
  --name NAME   the cluster's name, a DNS label (default 'default')
  --dir DIR     its state dir (default: $QBASIS_CLUSTER_DIR, else ~/.cache/qbasis/clusters/<name>)
  -h, --help    show this help

Kubernetes ${KUBERNETES_VERSION}.`;

const NAME_FLAG: FlagSpec = {
  name: 'name', kind: 'string', default: 'default', help: 'cluster name',
  check: (v) => (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v) ? undefined : 'expected a DNS label (lower-case letters, digits and -, at most 63), e.g. default'),
};
const DIR_FLAG: FlagSpec = { name: 'dir', kind: 'string', arg: '<dir>', help: 'state dir' };
const REAL_NODE_FLAG: FlagSpec = { name: 'real-node', kind: 'bool', default: 'true', help: 'also start the real node qbasis-node-0 (root, one per machine)' };
const TOOLS_FLAG: FlagSpec = {
  name: 'tools', kind: 'string', arg: '<tool,…>', help: 'build only these tools',
  check: (v) => {
    const bad = v.split(',').filter((t) => !(t in TOOLS));
    return bad.length > 0 ? `unknown tool(s) ${bad.join(', ')}; expected some of ${Object.keys(TOOLS).join(', ')}` : undefined;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  if (command === 'help' || wantsHelp([command]) || wantsHelp(rest)) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!SUBCOMMANDS.includes(command)) return reportFailure('cluster', unknownSubcommand('cluster', command, SUBCOMMANDS.slice(0, -1)));
  const spec: CommandSpec = { name: `cluster ${command}`, flags: command === 'build' ? [NAME_FLAG, DIR_FLAG, TOOLS_FLAG] : command === 'up' ? [NAME_FLAG, DIR_FLAG, REAL_NODE_FLAG] : [NAME_FLAG, DIR_FLAG] };
  let parsed: ParsedCommandLine | 'help';
  try {
    parsed = parseCommandLine(spec, rest);
  } catch (err) {
    return reportFailure(spec.name, err);
  }
  if (parsed === 'help') return 0;
  const name = parsed.values.get('name')!;
  const dir = parsed.values.get('dir');
  const tools = parsed.values.get('tools')?.split(',') as ToolName[] | undefined;
  const stateDir = dir ?? clusterDir(name);

  switch (command) {
    case 'up': {
      const { state, alreadyRunning } = await up({ dir: stateDir, name, realNode: parsed.values.get('real-node') !== 'false' });
      if (alreadyRunning) process.stderr.write(`qbasis: cluster ${state.name} is already running (API ${state.apiUrl}, state ${state.dir})\n`);
      process.stderr.write(
        [
          `qbasis: kubeconfig ${state.kubeconfig}`,
          'qbasis: use it with:',
          `  eval "$(npx qbasis cluster env${dir !== undefined ? ` --dir ${stateDir}` : name !== 'default' ? ` --name ${name}` : ''})"`,
          '  kubectl get nodes',
          `qbasis: stop it with: npx qbasis cluster down${dir !== undefined ? ` --dir ${stateDir}` : name !== 'default' ? ` --name ${name}` : ''}`,
          '',
        ].join('\n'),
      );
      return 0;
    }
    case 'down': {
      const had = await down({ dir: stateDir });
      process.stderr.write(had ? `qbasis: cluster stopped, ${stateDir} removed\n` : `qbasis: no cluster in ${stateDir}; nothing to stop\n`);
      return 0;
    }
    case 'env': {
      const state = readState(stateDir);
      if (state === undefined) {
        process.stderr.write(`qbasis: no cluster in ${stateDir}; run 'npx qbasis cluster up' first\n`);
        return 1;
      }
      process.stdout.write(envLines(state).join('\n') + '\n');
      return 0;
    }
    case 'status': {
      const state = readState(stateDir);
      if (state === undefined) {
        process.stdout.write(`no cluster in ${stateDir}\n`);
        return 1;
      }
      const healthy = await isHealthy(state);
      const lines = [
        `cluster   ${state.name} (${healthy ? 'running' : 'NOT healthy'}), Kubernetes ${KUBERNETES_VERSION}`,
        `api       ${state.apiUrl}`,
        `state     ${state.dir}`,
        `kubeconfig ${state.kubeconfig}`,
        `tools     ${state.toolsBin}`,
        `started   ${state.startedAt}`,
        ...componentStatus(state).map((s) => `${s.component.padEnd(24)} pid ${String(s.pid ?? '-').padEnd(8)} ${s.alive ? 'alive' : 'dead'}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
      return healthy ? 0 : 1;
    }
    case 'build': {
      const bin = await ensureTools(tools === undefined ? {} : { tools });
      process.stdout.write(bin + '\n');
      return 0;
    }
    default:
      return 0;
  }
}
