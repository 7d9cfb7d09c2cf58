// Which workload a pod belongs to, for the console's rows: pods of one Deployment (or one app) are one
// caller. The rule, in order:
//   1. the `app.kubernetes.io/name` label, else the `app` label (what Deployments and charts set);
//   2. else the pod name without the suffixes Kubernetes generates: `-<pod-template-hash>-<5>` for a
//      Deployment's pods, `-<5>` for a DaemonSet's or Job's, `-<ordinal>` for a StatefulSet's. The
//      generated parts use Kubernetes' own alphabet (bcdfghjklmnpqrstvwxz2456789: no vowels), so a
//      hand-written name such as `orders-alpha` is kept whole.
// The namespace is always part of it: `shop/orders` and `billing/orders` are two workloads.

export interface WorkloadRef {
  namespace: string;
  name: string;
}

const GENERATED = '[bcdfghjklmnpqrstvwxz2456789]';
const DEPLOYMENT_SUFFIX = new RegExp(`-${GENERATED}{6,10}-${GENERATED}{5}$`);
const SHORT_SUFFIX = new RegExp(`-${GENERATED}{5}$`);
const ORDINAL_SUFFIX = /-\d{1,5}$/;

/** The pod name minus the suffix its controller generated (the whole name when none is recognised). */
export function workloadName(podName: string): string {
  for (const re of [DEPLOYMENT_SUFFIX, SHORT_SUFFIX, ORDINAL_SUFFIX]) {
    const cut = podName.replace(re, '');
    if (cut !== podName && cut !== '') return cut;
  }
  return podName;
}

export function workloadOf(pod: { namespace: string; name: string; labels?: Record<string, string> }): WorkloadRef {
  const l = pod.labels ?? {};
  const label = l['app.kubernetes.io/name'] ?? l['app'];
  return { namespace: pod.namespace, name: label !== undefined && label !== '' ? label : workloadName(pod.name) };
}

export function workloadKey(w: WorkloadRef): string {
  return `${w.namespace}/${w.name}`;
}
