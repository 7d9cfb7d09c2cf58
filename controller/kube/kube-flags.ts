// Kubernetes-mode flags and the settings they give (checked: namespace names, positive counts and
// durations), apart from kube-mode.ts so that parsing flags (and local mode) never loads the
// Kubernetes client.
import os from 'node:os';
import { FlagError, type FlagSpec, type FlagValues } from '../flags.ts';

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
  { name: 'replica-selector', kind: 'string', help: "label selector of this controller's own pods in the Lease namespace (the chart sets it): the console's health block lists them" },
];

export interface LeaseSettings {
  namespace: string;
  name: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface KubeSettings {
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  /** This replica in the Lease and in the Events it writes. */
  identity: string;
  /** undefined: no leader election (--leader-elect=false), this replica always writes. */
  lease: LeaseSettings | undefined;
  reconcileWorkers: number;
  resyncMs: number;
  /** The replicas' pods, by label selector in the Lease namespace (else $POD_NAMESPACE); undefined: not listed. */
  replicaSelector: string | undefined;
  replicaNamespace: string;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The Kubernetes-mode settings from parsed flags; a bad value is a FlagError naming it. */
export function kubeSettings(flags: FlagValues): KubeSettings {
  const namespaces = (flags.get('namespaces') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const ns of namespaces) {
    if (!NAMESPACE.test(ns) || ns.length > 63) {
      throw new FlagError(`--namespaces '${flags.get('namespaces')}' is invalid: '${ns}' is not a namespace name (RFC 1123 label)`);
    }
  }
  const reconcileWorkers = positive(flags, 'reconcile-workers');
  // the controller's own namespace: its Lease and its replicas' pods are there
  const ownNamespace = flags.get('lease-namespace') ?? process.env.POD_NAMESPACE ?? 'default';
  const lease: LeaseSettings | undefined =
    flags.get('leader-elect') === 'false'
      ? undefined
      : {
          namespace: ownNamespace,
          name: flags.get('lease-name') ?? 'qbasis-controller',
          leaseDurationMs: positive(flags, 'lease-duration-ms'),
          renewDeadlineMs: positive(flags, 'renew-deadline-ms'),
          retryPeriodMs: positive(flags, 'retry-period-ms'),
        };
  return {
    namespaces,
    identity: flags.get('identity') ?? process.env.POD_NAME ?? `${os.hostname()}_${process.pid}`,
    lease,
    reconcileWorkers,
    resyncMs: Number(flags.get('resync-ms') ?? '60000'),
    replicaSelector: replicaSelector(flags.get('replica-selector')),
    replicaNamespace: ownNamespace,
  };
}

// Equality-based and set-based label selectors, as kubectl -l takes them; bounded (it goes in a URL).
const SELECTOR = /^[A-Za-z0-9._/=!,() -]{1,512}$/;

function replicaSelector(v: string | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  if (!SELECTOR.test(v)) throw new FlagError(`--replica-selector '${v.slice(0, 80)}' is invalid: expected a label selector like app.kubernetes.io/component=controller,app.kubernetes.io/instance=qbasis (at most 512 characters of letters, digits and . _ / = ! , ( ) - and spaces)`);
  return v;
}

function positive(flags: FlagValues, name: string): number {
  const n = Number(flags.get(name));
  if (!(n > 0)) throw new FlagError(`--${name} '${flags.get(name)}' is invalid: expected a positive integer`);
  return n;
}
