// The flags that pick a controller replica in a cluster (`qbasis console`, `qbasis plan remove` without
// --console), apart from cli/console-forward.ts so that parsing them never loads the Kubernetes client.
import type { FlagSpec } from './flags.ts';

/** The chart's console port (values.yaml controller.console.port). */
export const CHART_CONSOLE_PORT = 15014;

export const REPLICA_FLAGS: FlagSpec[] = [
  { name: 'kubeconfig', kind: 'string', arg: '<file>', help: 'kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)' },
  { name: 'namespace', kind: 'string', arg: '<ns>', default: 'qbasis-system', help: 'the release namespace (where the controller replicas run)' },
  { name: 'release', kind: 'string', arg: '<name>', default: 'qbasis', help: 'the Helm release name (replicas are its pods labelled app.kubernetes.io/component=controller)' },
  { name: 'pod', kind: 'string', arg: '<name>', help: 'this controller replica instead of the leader' },
  { name: 'remote-port', kind: 'port', min: 1, default: String(CHART_CONSOLE_PORT), help: "the console's port in the pod (the chart's controller.console.port)" },
];
