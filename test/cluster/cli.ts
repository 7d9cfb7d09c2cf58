// `qbasis cluster up|down|env|status`: a real local Kubernetes control plane for tests and demos.
import { clusterDir, componentStatus, down, envLines, isHealthy, readState, up, NODE_NAME, POD_CIDR } from './cluster.ts';
import { ensureTools } from './build.ts';
import { KUBERNETES_VERSION, TOOLS, type ToolName } from './versions.ts';

const USAGE = `Usage: qbasis cluster <up|down|env|status|build> [--name NAME] [--dir DIR]

  up       build the tools if needed (first time: ~20-45 min), start etcd, kube-apiserver,
           kube-controller-manager, kube-scheduler and kwok with one fake node (${NODE_NAME},
           pod IPs from ${POD_CIDR}); idempotent
  down     stop every process the cluster started (by pid) and remove its state dir
  env      print shell exports; use: eval "$(npx qbasis cluster env)"
  status   show each component, its pid and whether it runs
  build    only build the tools (--tools k8s-tools,kwok,helm,ghz,grpcurl)

State dir: $QBASIS_CLUSTER_DIR, else ~/.cache/qbasis/clusters/<name> (name 'default').
Kubernetes ${KUBERNETES_VERSION}.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  let name = 'default';
  let dir: string | undefined;
  let tools: ToolName[] | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? rest[++i];
      if (v === undefined || v === '') throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--name') name = value();
    else if (flag === '--dir') dir = value();
    else if (flag === '--tools' && command === 'build') {
      tools = value().split(',') as ToolName[];
      const bad = tools.filter((t) => !(t in TOOLS));
      if (bad.length > 0) throw new Error(`unknown tool(s) ${bad.join(', ')}; expected some of ${Object.keys(TOOLS).join(', ')}`);
    } else if (flag === '--help' || flag === '-h') {
      process.stdout.write(USAGE + '\n');
      return 0;
    } else {
      process.stderr.write(`qbasis cluster: unknown flag '${a}'\n${USAGE}\n`);
      return 2;
    }
  }
  const stateDir = dir ?? clusterDir(name);

  switch (command) {
    case 'up': {
      const { state, alreadyRunning } = await up({ dir: stateDir, name });
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
    case undefined:
    case 'help':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`qbasis cluster: unknown command '${command}'; expected up, down, env, status or build\n`);
      return 2;
  }
}
