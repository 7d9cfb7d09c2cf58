// The qbasis install and the apps on the real node, shared by test/node/real-mesh.test.ts and `npm run demo:cluster`:
// the chart's values for the image built here, the order-app providers and the counting caller as Deployments of
// the test-apps image (images.ts), and the caller's HTTP control (test/node/caller-app.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterState } from '../cluster/cluster.ts';
import { onRealNode, REAL_NODE_TAINT } from '../cluster/node.ts';
import type { TestCluster } from '../harness/use-cluster.ts';
import { ORDER_API } from '../demo/order-app.ts';
import { waitForValue, waitUntil } from '../fixtures/wait.ts';

export const CHART = join(import.meta.dirname, '..', '..', 'charts', 'qbasis');
export const SYSTEM_NS = 'qbasis-system';
export const RELEASE = 'qbasis';
export const APP_PORT = 50051;
export const CALLER_PORT = 8081;
export const RANGE = '^1.2';

export interface Counts { calls: number; ok: number; failed: number; misrouted: number; byVersion: Record<string, number>; errors: Record<string, number> }

export interface PodJson {
  metadata: { name: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: { nodeName?: string; initContainers?: { name: string; restartPolicy?: string; image: string }[]; containers: { name: string }[] };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    initContainerStatuses?: { name: string; ready: boolean; state: { running?: { startedAt: string }; terminated?: { exitCode: number } } }[];
    containerStatuses?: { name: string; ready: boolean; state: { running?: { startedAt: string }; terminated?: { exitCode: number } } }[];
  };
}

/** `helm install` of the chart as a user of this test bed runs it: the local image (never pulled), the controller on the real node. */
export async function installChart(c: TestCluster, state: ClusterState, dir: string, chart = CHART): Promise<void> {
  const [repository, tag] = state.realNode!.images.qbasis!.split(':');
  const values = join(dir, 'qbasis-values.json');
  writeFileSync(values, JSON.stringify({
    image: { repository, tag, pullPolicy: 'Never' },
    sidecar: { image: { pullPolicy: 'Never' } },
    controller: { nodeSelector: { 'qbasis.io/real-node': 'true' }, tolerations: [{ key: REAL_NODE_TAINT.key, operator: 'Exists', effect: REAL_NODE_TAINT.effect }] },
    webhook: { failurePolicy: 'Fail' },
  }));
  await c.helm(['upgrade', '--install', RELEASE, chart, '--namespace', SYSTEM_NS, '--create-namespace', '-f', values, '--wait', '--timeout', '5m'], { timeoutMs: 330_000 });
  // The leader writes the webhook's caBundle; a pod created before that would not be injected.
  await waitUntil('the webhook caBundle', async () => (await c.kubectl(['get', 'mutatingwebhookconfiguration', `${RELEASE}-sidecar-injector`, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout.length > 100, { timeoutMs: 120_000, intervalMs: 500 });
}

/** A Deployment of the test-apps image on the real node, injected; `args` follow the app container's command. */
export function appDeployment(o: { ns: string; name: string; replicas: number; image: string; annotations: Record<string, string>; args: string[]; command?: string[] }): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, namespace: o.ns },
    spec: {
      replicas: o.replicas,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      selector: { matchLabels: { app: o.name } },
      template: {
        metadata: { labels: { app: o.name }, annotations: { 'qbasis.io/inject': 'true', ...o.annotations } },
        spec: onRealNode({
          terminationGracePeriodSeconds: 15,
          containers: [{
            name: 'app',
            image: o.image,
            imagePullPolicy: 'Never',
            command: o.command ?? ['/nodejs/bin/node'],
            args: o.args,
            env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
            securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
          }],
        }),
      },
    },
  };
}

/** test/demo's order app answering as `version`. */
export function providerDeployment(ns: string, name: string, replicas: number, version: string, image: string, command?: string[]): object {
  return appDeployment({
    ns, name, replicas, image, ...(command === undefined ? {} : { command }),
    annotations: { 'qbasis.io/provides': `${ORDER_API}@${version}`, 'qbasis.io/app-port': String(APP_PORT) },
    args: ['test/demo/order-app.ts', '--host', '127.0.0.1', '--port', String(APP_PORT), '--pod', '$(POD_NAME)', '--version', version],
  });
}

/** test/node/caller-app.ts requiring RANGE, controlled over HTTP on CALLER_PORT. */
export function callerDeployment(ns: string, image: string): object {
  return appDeployment({
    ns, name: 'caller', replicas: 1, image,
    annotations: { 'qbasis.io/requires': `${ORDER_API}@${RANGE}`, 'qbasis.io/app-port': String(CALLER_PORT) },
    args: ['test/node/caller-app.ts', '--range', RANGE, '--port', String(CALLER_PORT)],
  });
}

export async function podsOf(c: TestCluster, ns: string, selector: string): Promise<PodJson[]> {
  return (JSON.parse((await c.kubectl(['-n', ns, 'get', 'pods', '-l', selector, '-o', 'json'])).stdout) as { items: PodJson[] }).items;
}

export const isReady = (p: PodJson): boolean => p.metadata.deletionTimestamp === undefined && (p.status.conditions?.some((k) => k.type === 'Ready' && k.status === 'True') ?? false);

/** The caller pod's IP once it is Ready. */
export async function callerIP(c: TestCluster, ns: string): Promise<string> {
  return waitForValue('the caller pod to be Ready with an IP', async () => (await podsOf(c, ns, 'app=caller')).find(isReady)?.status.podIP, (ip) => ip !== undefined, { timeoutMs: 120_000, intervalMs: 500 }) as Promise<string>;
}

/** POST /start?rps=N, GET /counts or POST /stop on the caller app (from the host, to its pod IP). */
export async function callerDo(c: TestCluster, ns: string, path: string, method = 'POST'): Promise<Counts> {
  const r = await fetch(`http://${await callerIP(c, ns)}:${CALLER_PORT}${path}`, { method, signal: AbortSignal.timeout(90_000) });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`caller ${method} ${path}: HTTP ${r.status} ${body}`);
  return JSON.parse(body) as Counts;
}

export const describeCounts = (k: Counts): string => `calls ${k.calls}, failed ${k.failed}, misrouted ${k.misrouted}, by version ${JSON.stringify(k.byVersion)}, errors ${JSON.stringify(k.errors)}`;
