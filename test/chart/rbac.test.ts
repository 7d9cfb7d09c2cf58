// The chart's RBAC is enough, and only what is needed: the Kubernetes-mode controller runs as a real
// process with a token of the ServiceAccount the chart installs (not the admin kubeconfig), and must
// still publish BasisServices, warn with Events, win its Lease, read BasisPolicies and write their
// status, fill the mesh root Secret, keep the trust-bundle ConfigMap and review a sidecar's token for
// Certify — with no request refused.
// Addresses: 127.0.62.x.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { CLUSTER_START_TIMEOUT_MS, useCluster, type TestCluster } from '../harness/use-cluster.ts';
import { API_RETRY, applyCrds, createPods, getBsvcTable, getJson, startKubeController, type KubeController } from '../controller/kube-helpers.ts';
import { pollFor } from '../fixtures/wait.ts';
import { REPO } from '../fixtures/local-controller.ts';
import { certify } from '../fixtures/identity.ts';

const CHART = join(REPO, 'charts', 'qbasis');
const API = 'shop.rbac.v1.OrderService';
const release = `rb${randomBytes(3).toString('hex')}`;
const hooks: Array<() => Promise<void> | void> = [];
const hook = { after: (fn: () => Promise<void> | void) => hooks.push(fn) };
let cluster: TestCluster;
let releaseNs: string;
let appNs: string;
let controller: KubeController | undefined;
const tmp = mkdtempSync(join(tmpdir(), 'qbasis-rbac-'));

/** A kubeconfig for the same API server that authenticates as `system:serviceaccount:<ns>:<sa>`. */
function serviceAccountKubeconfig(adminKubeconfig: string, token: string): string {
  const admin = parse(readFileSync(adminKubeconfig, 'utf8')) as { clusters: Array<{ name: string; cluster: Record<string, unknown> }> };
  const c = admin.clusters[0]!;
  const file = join(tmp, 'sa.kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: c.name, cluster: c.cluster }],
      users: [{ name: 'controller-sa', user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: c.name, user: 'controller-sa' } }],
      'current-context': 'sa',
    }),
  );
  return file;
}

before(async () => {
  cluster = await useCluster();
  await applyCrds(cluster);
  releaseNs = await cluster.namespace(hook, 'qbasis-rbac');
  appNs = await cluster.namespace(hook, 'rbac-app');
  // CRDs come from files/ (another release may own them); the webhook has its own tests.
  await cluster.helm(['install', release, CHART, '--namespace', releaseNs, '--set', 'crds.enabled=false', '--set', 'webhook.enabled=false']);
}, { timeout: CLUSTER_START_TIMEOUT_MS });

after(async () => {
  await controller?.stop();
  await cluster?.helm(['uninstall', release, '--namespace', releaseNs], { allowFailure: true });
  for (const h of hooks.reverse()) await h();
  rmSync(tmp, { recursive: true, force: true });
});

test("the controller running with only the chart's ServiceAccount RBAC publishes BasisServices, warns with one Event, holds its Lease and writes BasisPolicy status", { timeout: 240_000 }, async () => {
  type Deployment = { spec: { template: { spec: { serviceAccountName: string; containers: Array<{ args: string[] }> } } } };
  const argOf = (d: Deployment, flag: string): string => d.spec.template.spec.containers[0]!.args.find((a) => a.startsWith(`${flag}=`))!.slice(flag.length + 1);
  const deployments = await getJson<{ items: Deployment[] }>(cluster, ['-n', releaseNs, 'get', 'deployment', '-l', 'app.kubernetes.io/component=controller']);
  const deploy = deployments.items[0]!;
  const sa = deploy.spec.template.spec.serviceAccountName;
  const leaseName = argOf(deploy, '--lease-name');
  const rootSecret = argOf(deploy, '--identity-secret');
  const token = (await cluster.kubectl(['-n', releaseNs, 'create', 'token', sa, '--duration=1h'])).stdout.trim();
  const kubeconfig = serviceAccountKubeconfig(cluster.kubeconfig, token);

  // What the chart grants and what it must not: no Secrets outside its own, no wildcard power.
  const can = async (...args: string[]): Promise<string> =>
    (await cluster.kubectl(['auth', 'can-i', '--as', `system:serviceaccount:${releaseNs}:${sa}`, ...args], { allowFailure: true })).stdout.trim();
  assert.equal(await can('list', 'secrets', '-A'), 'no');
  assert.equal(await can('delete', 'pods', '-n', appNs), 'no');
  assert.equal(await can('watch', 'pods', '-A'), 'yes');
  assert.equal(await can('watch', 'basispolicies.qbasis.io', '-A'), 'yes');
  assert.equal(await can('update', 'basispolicies.qbasis.io', '-n', appNs), 'no', 'the spec is the users\'');
  assert.equal(await can('create', 'tokenreviews.authentication.k8s.io'), 'yes');
  assert.equal(await can('update', 'configmaps/qbasis-root-ca', '-n', appNs), 'yes');
  assert.equal(await can('update', 'configmaps/other', '-n', appNs), 'no', 'only the trust bundle, by name');
  assert.equal(await can('list', 'configmaps', '-A'), 'no');
  assert.equal(await can('update', `secrets/${rootSecret}`, '-n', releaseNs), 'yes');
  assert.equal(await can('get', 'secrets/other', '-n', releaseNs), 'no');

  await createPods(cluster, appNs, [
    { name: 'orders-1', annotations: { 'qbasis.io/provides': `${API}@1.4.0`, 'qbasis.io/app-port': '50051', 'qbasis.io/injected': 'v1' } },
    { name: 'broken-1', annotations: { 'qbasis.io/provides': `${API}@1.4`, 'qbasis.io/app-port': '50051' } },
  ]);
  const policy = { apiVersion: 'qbasis.io/v1alpha1', kind: 'BasisPolicy', metadata: { name: 'orders', namespace: appNs }, spec: { api: API, timeout: '1s' } };
  await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(policy) });
  controller = await startKubeController({
    cluster: { ...cluster, kubeconfig },
    namespace: appNs,
    host: '127.0.62.1',
    identity: 'rbac-replica',
    leaseName,
    args: ['--lease-namespace', releaseNs, '--identity-secret', rootSecret, '--identity-port', '0'],
  });

  const row = await pollFor('BasisService Ready and Synced', async () => {
    const table = await getBsvcTable(cluster, appNs);
    const r = table.rows.find((x) => x.api === API);
    return r !== undefined && r.ready === '1/1' && r.synced === 'True' ? r : undefined;
  }, { ...API_RETRY, timeoutMs: 120_000 });
  assert.equal(row.versions, '1.4.0');

  const events = await pollFor('one InvalidAnnotation Event on broken-1', async () => {
    const list = await getJson<{ items: Array<{ reason: string; type: string; message: string; involvedObject: { name: string } }> }>(cluster, ['-n', appNs, 'get', 'events']);
    const hits = list.items.filter((e) => e.reason === 'InvalidAnnotation' && e.involvedObject.name === 'broken-1');
    return hits.length > 0 ? hits : undefined;
  }, { ...API_RETRY, timeoutMs: 120_000 });
  assert.equal(events.length, 1);
  assert.equal(events[0]!.type, 'Warning');
  assert.match(events[0]!.message, /qbasis\.io\/provides/);

  const accepted = await pollFor('the BasisPolicy Accepted', async () => {
    const o = await getJson<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(cluster, ['-n', appNs, 'get', 'bpol', 'orders']);
    return o.status?.conditions?.find((c) => c.type === 'Accepted' && c.status === 'True');
  }, { ...API_RETRY, timeoutMs: 120_000 });
  assert.ok(accepted);

  // Mesh identity: the root in the chart's (empty) Secret, the bundle where the injected pod is, a token reviewed.
  const listening = await controller.waitForLog((l) => l.msg === 'identity server listening (TLS: Certify and Discovery)', 60_000, 'identity server');
  const secret = await getJson<{ data?: Record<string, string> }>(cluster, ['-n', releaseNs, 'get', 'secret', rootSecret]);
  const root = Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
  assert.match(root, /BEGIN CERTIFICATE/);
  const bundle = await pollFor('the trust bundle ConfigMap', async () => {
    const r = await cluster.kubectl(['-n', appNs, 'get', 'configmap', 'qbasis-root-ca', '-o', 'json'], { allowFailure: true });
    return r.code === 0 ? (JSON.parse(r.stdout) as { data: Record<string, string> }).data['ca.crt'] : undefined;
  }, { ...API_RETRY, timeoutMs: 60_000 });
  assert.equal(bundle, root);
  const uid = (await getJson<{ metadata: { uid: string } }>(cluster, ['-n', appNs, 'get', 'pod', 'orders-1'])).metadata.uid;
  const podToken = (await cluster.kubectl(['-n', appNs, 'create', 'token', 'default', '--audience', 'qbasis.io', '--bound-object-kind', 'Pod', '--bound-object-name', 'orders-1', '--bound-object-uid', uid])).stdout.trim();
  const issued = await certify({ identityTarget: `127.0.62.1:${String(listening.port)}`, bundle: Buffer.from(root) }, podToken);
  assert.ok(issued.ok, issued.ok ? '' : issued.details);
  assert.equal(issued.res.identity, `spiffe://cluster.local/ns/${appNs}/sa/default`);

  const lease = await getJson<{ spec: { holderIdentity?: string } }>(cluster, ['-n', releaseNs, 'get', 'lease', leaseName]);
  assert.equal(lease.spec.holderIdentity, 'rbac-replica');

  const refused = controller.logs.filter((l) => /forbidden|\b403\b/i.test(JSON.stringify(l)));
  assert.deepEqual(refused, [], 'no request of the controller was refused by RBAC');
});
