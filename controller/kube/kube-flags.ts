// Kubernetes-mode flags, apart from kube-mode.ts so that parsing flags (and local mode) never loads
// the Kubernetes client.
import type { FlagSpec } from '../flags.ts';

export const KUBE_FLAG_SPECS: FlagSpec[] = [
  { name: 'kubeconfig', kind: 'string', help: 'Kubernetes mode: kubeconfig file (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config)' },
  { name: 'namespaces', kind: 'string', help: 'Kubernetes mode: comma-separated namespaces to watch (default: all)' },
  { name: 'leader-elect', kind: 'bool', default: 'true', help: 'Kubernetes mode: elect one writer of statuses and Events through a Lease' },
  { name: 'lease-name', kind: 'string', default: 'qbasis-controller', help: 'leader election Lease name' },
  { name: 'lease-namespace', kind: 'string', help: 'leader election Lease namespace (default $POD_NAMESPACE, else default)' },
  { name: 'identity', kind: 'string', help: 'this replica in the Lease (default $POD_NAME, else hostname_pid)' },
  { name: 'lease-duration-ms', kind: 'int', default: '15000', help: 'how long a standby trusts a holder it has not seen renew' },
  { name: 'renew-deadline-ms', kind: 'int', default: '10000', help: 'a leader that cannot renew for this long steps down' },
  { name: 'retry-period-ms', kind: 'int', default: '2000', help: 'lease acquire/renew interval' },
  { name: 'reconcile-workers', kind: 'int', default: '4', help: 'BasisService keys reconciled in parallel' },
  { name: 'resync-ms', kind: 'int', default: '60000', help: 'periodic re-check of every BasisService (0: off)' },
];
