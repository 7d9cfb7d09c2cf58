// The Helm chart and sidecar injection against the real local control plane (test/harness).
// The chart's controller pods land on the fake (kwok) node and run no code, so the webhook under test is a
// real `node bin/qbasis.ts controller` process on loopback, reached by the API server through the chart's
// dev value webhook.url. Its addresses: 127.0.61.1 (third octet 61 is this file's; ports 15010/18080/19443).
// The webhook only sees namespaces labelled with this run's label, so other test files never meet it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { CLUSTER_START_TIMEOUT_MS, useCluster } from '../harness/use-cluster.ts';
import type { TestCluster } from '../harness/use-cluster.ts';
import { API_RETRY } from '../controller/kube-helpers.ts';
import { pollFor, portOpen, waitUntil } from '../fixtures/wait.ts';

const ROOT = join(import.meta.dirname, '..', '..');
// QBASIS_TEST_CHART: run these tests against a copy of the chart (e.g. while trying a change elsewhere).
const CHART = process.env.QBASIS_TEST_CHART ?? join(ROOT, 'charts', 'qbasis');
const HA = join(CHART, 'values-ha.yaml');
const HOST = '127.0.61.1';
const WEBHOOK_PORT = 19443;
// Starts with a letter: an all-digit value would reach Helm as a number.
const RUN = `r${randomBytes(3).toString('hex')}`;
const SELECT_LABEL = 'qbasis-chart-test';
// helm built from source (go install, no release ldflags) assumes Kubernetes v1.20 offline; the chart needs >= 1.33.
const KUBE_VERSION = ['--kube-version', 'v1.37.2'];

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  [k: string]: unknown;
}

function docs(yamlText: string): Doc[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null && typeof d === 'object');
}

const annotatedPod = (name: string, extra: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    annotations: {
      'qbasis.io/inject': 'true',
      'qbasis.io/provides': 'shop.orders.v1.OrderService@1.4.0',
      'qbasis.io/requires': 'shop.inventory.v1.InventoryService@^1.2',
      'qbasis.io/app-port': '50051',
      ...extra,
    },
  },
  spec: { containers: [{ name: 'app', image: 'shop/orders:1.4.0', ports: [{ containerPort: 50051 }] }] },
});

interface Container {
  name: string;
  restartPolicy?: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { containerPort: number }[];
  securityContext?: Record<string, unknown>;
  image?: string;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  projected?: { sources: unknown[] };
  configMap?: { name: string };
}
interface PodJson {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { initContainers?: Container[]; containers: Container[]; volumes?: Volume[] };
}

describe('qbasis Helm chart on the real control plane', { timeout: CLUSTER_START_TIMEOUT_MS + 15 * 60_000 }, () => {
  let cluster: TestCluster;
  let releaseNs: string;
  let appNs: string;
  const release = `qb${RUN.slice(1)}`;
  const fullname = `${release}-qbasis`;
  let controller: ChildProcess | undefined;
  let controllerLog = '';
  const tmp = mkdtempSync(join(tmpdir(), 'qbasis-chart-'));
  const hooks: (() => Promise<void> | void)[] = [];
  const hook = { after: (fn: () => Promise<void> | void) => hooks.push(fn) };

  const installArgs = () => [
    '--namespace',
    releaseNs,
    '--set',
    `webhook.url=https://${HOST}:${WEBHOOK_PORT}/mutate`,
    '--set-string',
    `webhook.namespaceSelector.matchLabels.${SELECT_LABEL}=${RUN}`,
    '--set',
    'image.tag=test',
  ];

  async function stopController(): Promise<void> {
    const c = controller;
    controller = undefined;
    if (c === undefined || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (c.exitCode === null) c.kill('SIGKILL');
  }

  /** The real webhook: the controller with the injection config the chart rendered into its ConfigMap. */
  async function startController(): Promise<void> {
    const cm = await cluster.kubectl(['-n', releaseNs, 'get', 'configmap', `${fullname}-injection`, '-o', 'jsonpath={.data.config\\.json}']);
    const configPath = join(tmp, `injection-${Date.now()}.json`);
    writeFileSync(configPath, cm.stdout);
    const podsFile = join(tmp, 'pods.yaml');
    writeFileSync(podsFile, '');
    controllerLog = '';
    const c = spawn(
      process.execPath,
      [
        join(ROOT, 'bin', 'qbasis.ts'),
        'controller',
        '--pods-file', podsFile,
        '--discovery-address', HOST,
        '--discovery-port', '15010',
        '--admin-port', '18080',
        '--webhook-port', String(WEBHOOK_PORT),
        '--webhook-address', HOST,
        '--webhook-namespace', releaseNs,
        '--webhook-secret', `${fullname}-webhook-tls`,
        '--webhook-service', `${fullname}-webhook`,
        '--webhook-config-name', `${fullname}-sidecar-injector`,
        '--webhook-san', HOST,
        '--injection-config', configPath,
      ],
      { env: { ...cluster.env, KUBECONFIG: cluster.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    controller = c;
    c.stdout?.on('data', (d: Buffer) => (controllerLog += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (controllerLog += d.toString()));
    await waitUntil('the controller webhook to listen', () => portOpen(HOST, WEBHOOK_PORT), {
      ...API_RETRY,
      timeoutMs: 90_000,
      abortIf: () => (c.exitCode !== null ? `controller exited ${c.exitCode}: ${controllerLog.slice(-2000)}` : undefined),
    });
  }

  async function createPod(ns: string, pod: unknown, opts: { dryRun?: boolean } = {}) {
    const args = ['-n', ns, 'create', '-o', 'json', '-f', '-'];
    if (opts.dryRun) args.push('--dry-run=server');
    return cluster.kubectl(args, { input: JSON.stringify(pod), allowFailure: true });
  }

  before(async () => {
    cluster = await useCluster();
    releaseNs = await cluster.namespace(hook, 'qbasis-system');
    appNs = await cluster.namespace(hook, 'shop');
    // Both carry the selector label: only the chart's own-namespace exclusion keeps the release namespace out.
    for (const ns of [releaseNs, appNs]) await cluster.kubectl(['label', 'namespace', ns, `${SELECT_LABEL}=${RUN}`]);
  }, { timeout: CLUSTER_START_TIMEOUT_MS });

  after(async () => {
    await stopController();
    await cluster?.helm(['uninstall', release, '--namespace', releaseNs, '--wait'], { allowFailure: true });
    for (const h of hooks.reverse()) await h();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('passes helm lint --strict with the defaults and with the HA overlay', async () => {
    const plain = await cluster.helm(['lint', '--strict', CHART], { allowFailure: true });
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    const ha = await cluster.helm(['lint', '--strict', CHART, '-f', HA], { allowFailure: true });
    assert.equal(ha.code, 0, ha.stdout + ha.stderr);
  });

  it('refuses bad values with a message naming the value and what is expected', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'controller.replicas=0'], /controller[./]replicas.*(minimum|greater than or equal)/is],
      [['--set', 'webhook.failurePolicy=Sometimes'], /webhook[./]failurePolicy.*(Ignore|enum|must be one of)/is],
      [['--set', 'controller.replicaz=3'], /replicaz/],
      [['--set', 'sidecar.resources.limits.memory=lots'], /sidecar[./]resources[./]limits[./]memory/i],
      [['--set', 'webhook.url=http://127.0.0.1/mutate'], /webhook[./]url/i],
      [['--set', 'controller.leaderElection.enabled=false'], /more than one replica needs leader election/],
      [['--set', 'controller.podDisruptionBudget.minAvailable=2'], /minAvailable \(2\) must be below controller\.replicas \(2\)/],
      [['--set', 'controller.ports.admin=15010'], /four different ports/],
      [['--set', 'identity.certLifetimeSeconds=5'], /identity[./]certLifetimeSeconds/i],
      [['--set', 'identity.issuer.existingSecret=Not_A_Name'], /identity[./]issuer[./]existingSecret/i],
      [['--set', 'controller.console.port=8080'], /controller\.console\.port \(8080\) must differ/],
      [['--set', 'controller.console.address=localhost'], /controller[./]console[./]address/i],
    ];
    for (const [args, expected] of cases) {
      const r = await cluster.helm(['template', 'x', CHART, ...KUBE_VERSION, ...args], { allowFailure: true });
      assert.notEqual(r.code, 0, `helm template ${args.join(' ')} should fail`);
      assert.match(r.stderr, expected, `helm template ${args.join(' ')}`);
    }
  });

  it('renders manifests the API server accepts in a server-side dry run (defaults and HA)', async () => {
    for (const extra of [[], ['-f', HA], ['--set', 'webhook.url=https://127.0.0.1:9443/mutate,webhook.strict=true,crds.keep=false']]) {
      const t = await cluster.helm(['template', release, CHART, ...KUBE_VERSION, '--namespace', releaseNs, ...extra]);
      const kinds = docs(t.stdout).map((d) => d.kind);
      for (const k of ['Deployment', 'PodDisruptionBudget', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ConfigMap', 'Secret', 'MutatingWebhookConfiguration', 'CustomResourceDefinition']) {
        assert.ok(kinds.includes(k), `${k} rendered (${extra.join(' ')})`);
      }
      assert.equal(kinds.filter((k) => k === 'Service').length, 3);
      const r = await cluster.kubectl(['apply', '--dry-run=server', '-n', releaseNs, '-f', '-'], { input: t.stdout, allowFailure: true });
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('keeps the RBAC least-privilege: no cluster-wide secrets, webhook config and Secrets by name, TokenReviews and the trust-bundle ConfigMap only', async () => {
    const t = await cluster.helm(['template', release, CHART, ...KUBE_VERSION, '--namespace', releaseNs]);
    const all = docs(t.stdout);
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
    const clusterRules = all.find((d) => d.kind === 'ClusterRole')!.rules as Rule[];
    assert.ok(!clusterRules.some((r) => r.resources.includes('secrets')), 'no secrets in the ClusterRole');
    assert.ok(!clusterRules.some((r) => r.verbs.includes('*') || r.resources.includes('*')), 'no wildcards');
    // BasisPolicies: the informer lists and watches, the status reconciler merge-patches; nothing more
    assert.deepEqual(clusterRules.find((r) => r.resources.includes('basispolicies'))?.verbs, ['list', 'watch']);
    assert.deepEqual(clusterRules.find((r) => r.resources.includes('basispolicies/status'))?.verbs, ['patch']);
    const mwc = clusterRules.find((r) => r.resources.includes('mutatingwebhookconfigurations'))!;
    assert.deepEqual(mwc.resourceNames, [`${fullname}-sidecar-injector`]);
    // Mesh identity: create TokenReviews; the ConfigMap qbasis-root-ca by name (create cannot be named), nothing else.
    assert.deepEqual(clusterRules.filter((r) => r.resources.includes('tokenreviews')).map((r) => [r.apiGroups, r.verbs]), [[['authentication.k8s.io'], ['create']]]);
    assert.deepEqual(clusterRules.filter((r) => r.resources.includes('configmaps')).map((r) => [r.verbs, r.resourceNames ?? []]), [[['create'], []], [['get', 'update'], ['qbasis-root-ca']]]);
    const roleRules = all.find((d) => d.kind === 'Role')!.rules as Rule[];
    const secrets = roleRules.filter((r) => r.resources.includes('secrets')).map((r) => [r.resourceNames, r.verbs]);
    assert.deepEqual(secrets, [[[`${fullname}-webhook-tls`], ['get', 'update', 'patch']], [[`${fullname}-identity-root`], ['get', 'update']]]);
    const user = docs((await cluster.helm(['template', release, CHART, ...KUBE_VERSION, '--namespace', releaseNs, '--set', 'identity.issuer.existingSecret=my-root'])).stdout);
    assert.deepEqual((user.find((d) => d.kind === 'Role')!.rules as Rule[]).filter((r) => r.resourceNames?.includes('my-root')).map((r) => r.verbs), [['get']], "the user's root is only read");
    assert.ok(!user.some((d) => d.kind === 'Secret' && d.metadata.name.endsWith('-identity-root')), "no Secret of ours beside the user's");
    const root = all.find((d) => d.kind === 'Secret' && d.metadata.name === `${fullname}-identity-root`)!;
    assert.equal(root.metadata.annotations?.['helm.sh/resource-policy'], 'keep', 'the mesh root outlives an uninstall');
    const off = docs((await cluster.helm(['template', release, CHART, ...KUBE_VERSION, '--namespace', releaseNs, '--set', 'identity.enabled=false'])).stdout);
    const offRules = off.find((d) => d.kind === 'ClusterRole')!.rules as Rule[];
    assert.ok(!offRules.some((r) => r.resources.includes('tokenreviews') || r.resources.includes('configmaps')), 'identity off: no TokenReviews, no ConfigMaps');
    const webhook = (all.find((d) => d.kind === 'MutatingWebhookConfiguration')!.webhooks as { sideEffects: string; admissionReviewVersions: string[]; namespaceSelector: { matchExpressions: { values: string[] }[] } }[])[0]!;
    assert.equal(webhook.sideEffects, 'None');
    assert.deepEqual(webhook.admissionReviewVersions, ['v1']);
    assert.ok(webhook.namespaceSelector.matchExpressions[0]!.values.includes(releaseNs));
    const crd = all.find((d) => d.kind === 'CustomResourceDefinition')!;
    assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
  });

  it('the controller is told its own ServiceAccount, which its mesh SPIFFE ID names (the release prefixes it)', async () => {
    const t = await cluster.helm(['template', release, CHART, ...KUBE_VERSION, '--namespace', releaseNs]);
    const d = docs(t.stdout).find((x) => x.kind === 'Deployment') as unknown as { spec: { template: { spec: { serviceAccountName: string; containers: { env: { name: string; valueFrom?: unknown }[] }[] } } } };
    assert.equal(d.spec.template.spec.serviceAccountName, `${fullname}-controller`);
    const env = d.spec.template.spec.containers[0]!.env.find((e) => e.name === 'POD_SERVICE_ACCOUNT');
    assert.deepEqual(env?.valueFrom, { fieldRef: { fieldPath: 'spec.serviceAccountName' } });
  });

  it('with cert-manager: a Certificate instead of the Secret, CA injection annotation, controller only loads', async () => {
    const t = await cluster.helm(['template', release, CHART, ...KUBE_VERSION, '--namespace', releaseNs, '--set', 'webhook.certManager.enabled=true']);
    const all = docs(t.stdout);
    assert.ok(all.some((d) => d.kind === 'Certificate' && d.apiVersion === 'cert-manager.io/v1'));
    assert.ok(all.some((d) => d.kind === 'Issuer'));
    assert.ok(!all.some((d) => d.kind === 'Secret' && d.metadata.name === `${fullname}-webhook-tls`), 'cert-manager writes the Secret');
    const mwc = all.find((d) => d.kind === 'MutatingWebhookConfiguration')!;
    assert.equal(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${releaseNs}/${fullname}-webhook-tls`);
    const args = ((all.find((d) => d.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } }).spec.template.spec.containers[0]!).args;
    assert.ok(args.includes('--webhook-cert-mode=load'));
    const both = await cluster.helm(['template', 'x', CHART, ...KUBE_VERSION, '--set', 'webhook.certManager.enabled=true,webhook.url=https://127.0.0.1:1/mutate'], { allowFailure: true });
    assert.match(both.stderr, /webhook\.url and webhook\.certManager\.enabled exclude each other/);
  });

  it('installs, every rendered object exists, and the controller fills the caBundle', async () => {
    // CRDs applied earlier by other tests (kubectl apply) are adopted, as a user would: Helm's ownership metadata.
    for (const crd of ['basisservices.qbasis.io', 'basispolicies.qbasis.io']) {
      if ((await cluster.kubectl(['get', 'crd', crd], { allowFailure: true })).code === 0) {
        await cluster.kubectl(['annotate', '--overwrite', 'crd', crd, `meta.helm.sh/release-name=${release}`, `meta.helm.sh/release-namespace=${releaseNs}`]);
        await cluster.kubectl(['label', '--overwrite', 'crd', crd, 'app.kubernetes.io/managed-by=Helm']);
      }
    }
    const r = await cluster.helm(['install', release, CHART, ...installArgs(), '--wait', '--timeout', '3m'], { allowFailure: true, timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Annotate a first pod/, 'NOTES.txt printed');
    const manifest = docs((await cluster.helm(['get', 'manifest', release, '--namespace', releaseNs])).stdout);
    assert.ok(manifest.length >= 14, `${manifest.length} objects`);
    for (const d of manifest) {
      const ns = d.metadata.namespace ? ['-n', d.metadata.namespace] : [];
      const got = await cluster.kubectl(['get', `${d.kind}.${d.apiVersion.includes('/') ? d.apiVersion.split('/')[0] : ''}`.replace(/\.$/, ''), d.metadata.name, ...ns, '-o', 'name'], { allowFailure: true });
      assert.equal(got.code, 0, `${d.kind} ${d.metadata.name}: ${got.stderr}`);
    }
    await startController();
    const ca = await pollFor('the caBundle', async () => {
      const v = (await cluster.kubectl(['get', 'mutatingwebhookconfiguration', `${fullname}-sidecar-injector`, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout;
      return v.length > 0 ? v : undefined;
    }, { ...API_RETRY, timeoutMs: 90_000 });
    assert.match(Buffer.from(ca, 'base64').toString(), /BEGIN CERTIFICATE/);
    const secret = await cluster.kubectl(['-n', releaseNs, 'get', 'secret', `${fullname}-webhook-tls`, '-o', 'jsonpath={.data.ca\\.crt}']);
    assert.equal(secret.stdout, ca, 'caBundle is the CA in the Secret');
  });

  let firstPod: PodJson;

  it('an annotated pod created with kubectl comes back with exactly one sidecar, its env, ports and security context', async () => {
    const r = await createPod(appNs, annotatedPod('orders-1'));
    assert.equal(r.code, 0, r.stderr + controllerLog.slice(-2000));
    firstPod = JSON.parse(r.stdout) as PodJson;
    const sidecars = [...(firstPod.spec.initContainers ?? []), ...firstPod.spec.containers].filter((c) => c.name === 'qbasis-sidecar');
    assert.equal(sidecars.length, 1);
    const s = sidecars[0]!;
    assert.equal(firstPod.spec.initContainers?.[0]?.name, 'qbasis-sidecar');
    assert.equal(s.restartPolicy, 'Always');
    assert.equal(s.image, 'qbasis/qbasis:test');
    const env = Object.fromEntries((s.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(env.QBASIS_PROVIDES, 'shop.orders.v1.OrderService@1.4.0');
    assert.equal(env.QBASIS_REQUIRES, 'shop.inventory.v1.InventoryService@^1.2');
    assert.equal(env.QBASIS_APP_PORT, '50051');
    // Mesh identity (on by default): the TLS port, the projected token and the trust bundle.
    assert.equal(env.QBASIS_DISCOVERY, `${fullname}-discovery.${releaseNs}.svc:15012`);
    assert.equal(env.QBASIS_TOKEN_FILE, '/var/run/secrets/qbasis.io/token/token');
    assert.equal(env.QBASIS_TRUST_BUNDLE, '/var/run/secrets/qbasis.io/trust/ca.crt');
    // (The ServiceAccount admission adds its kube-api-access mount to every container too.)
    assert.deepEqual(s.volumeMounts?.filter((m) => m.name.startsWith('qbasis-')), [
      { name: 'qbasis-token', mountPath: '/var/run/secrets/qbasis.io/token', readOnly: true },
      { name: 'qbasis-trust-bundle', mountPath: '/var/run/secrets/qbasis.io/trust', readOnly: true },
    ]);
    const vols = Object.fromEntries((firstPod.spec.volumes ?? []).map((v) => [v.name, v]));
    assert.deepEqual(vols['qbasis-token']?.projected?.sources, [{ serviceAccountToken: { audience: 'qbasis.io', expirationSeconds: 3600, path: 'token' } }]);
    assert.equal(vols['qbasis-trust-bundle']?.configMap?.name, 'qbasis-root-ca');
    assert.deepEqual(env.QBASIS_IP, { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } });
    assert.deepEqual(env.QBASIS_NAMESPACE, { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } });
    assert.deepEqual(env.QBASIS_POD_NAME, { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } });
    assert.deepEqual(s.ports?.map((p) => p.containerPort), [15001, 15006, 15020]);
    // The same security context as the chart's controller container.
    const deploy = JSON.parse((await cluster.kubectl(['-n', releaseNs, 'get', 'deployment', `${fullname}-controller`, '-o', 'json'])).stdout);
    assert.deepEqual(s.securityContext, deploy.spec.template.spec.containers[0].securityContext);
    assert.equal(s.securityContext?.runAsNonRoot, true);
    assert.equal(s.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(firstPod.metadata.annotations?.['qbasis.io/injected'], 'v1');
    assert.deepEqual(firstPod.spec.containers.map((c) => c.name), ['app']);
  });

  it('a second pass through the webhook changes nothing', async () => {
    const again = structuredClone(firstPod) as PodJson & { metadata: Record<string, unknown>; status?: unknown; spec: Record<string, unknown> };
    for (const k of ['uid', 'resourceVersion', 'creationTimestamp', 'managedFields', 'namespace']) delete again.metadata[k];
    delete again.status;
    delete again.spec.nodeName;
    again.metadata.name = 'orders-1-again';
    const r = await createPod(appNs, again, { dryRun: true });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as PodJson;
    assert.equal(out.spec.initContainers?.filter((c) => c.name === 'qbasis-sidecar').length, 1, 'still exactly one sidecar');
    assert.deepEqual(out.spec.initContainers, firstPod.spec.initContainers);
    assert.deepEqual(out.spec.containers, firstPod.spec.containers);
    assert.deepEqual(out.metadata.annotations, firstPod.metadata.annotations);
  });

  it('an invalid annotation comes back as a warning that kubectl prints', async () => {
    const r = await createPod(appNs, annotatedPod('orders-bad', { 'qbasis.io/provides': 'shop.orders.v1.OrderService@1.4' }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Warning: qbasis: invalid qbasis\.io\/provides value "shop\.orders\.v1\.OrderService@1\.4"/);
    const pod = JSON.parse(r.stdout) as PodJson;
    assert.equal(pod.spec.initContainers?.filter((c) => c.name === 'qbasis-sidecar').length, 1);
  });

  it('leaves a pod without the annotation and a pod in the controller namespace untouched', async () => {
    // Control: the webhook is up and injects an annotated pod in the app namespace right now.
    const control = await createPod(appNs, annotatedPod('control'));
    assert.equal(control.code, 0, control.stderr);
    assert.equal((JSON.parse(control.stdout) as PodJson).spec.initContainers?.[0]?.name, 'qbasis-sidecar');
    const plain = annotatedPod('plain');
    plain.metadata.annotations = {} as typeof plain.metadata.annotations;
    const r1 = await createPod(appNs, plain);
    assert.equal(r1.code, 0, r1.stderr);
    const p1 = JSON.parse(r1.stdout) as PodJson;
    assert.equal(p1.spec.initContainers, undefined);
    assert.equal(p1.metadata.annotations?.['qbasis.io/injected'], undefined);
    const r2 = await createPod(releaseNs, annotatedPod('own-namespace'));
    assert.equal(r2.code, 0, r2.stderr);
    const p2 = JSON.parse(r2.stdout) as PodJson;
    assert.equal(p2.spec.initContainers, undefined);
    assert.equal(p2.metadata.annotations?.['qbasis.io/injected'], undefined);
  });

  it('helm upgrade with changed values rolls the controller; under strict an invalid annotation is refused', async () => {
    const before = JSON.parse((await cluster.kubectl(['-n', releaseNs, 'get', 'deployment', `${fullname}-controller`, '-o', 'json'])).stdout);
    const hashBefore = before.spec.template.metadata.annotations['checksum/injection-config'];
    const caPath = ['get', 'mutatingwebhookconfiguration', `${fullname}-sidecar-injector`, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'];
    const caBefore = (await cluster.kubectl(caPath)).stdout;
    const certBefore = (await cluster.kubectl(['-n', releaseNs, 'get', 'secret', `${fullname}-webhook-tls`, '-o', 'jsonpath={.data.tls\\.crt}'])).stdout;
    // The webhook configuration changes too: Helm's three-way merge must leave the controller's caBundle alone
    // (the controller is stopped meanwhile, so it cannot put the caBundle back).
    await stopController();
    const r = await cluster.helm(['upgrade', release, CHART, ...installArgs(), '--set', 'webhook.strict=true', '--set', 'webhook.timeoutSeconds=7', '--wait', '--timeout', '3m'], {
      allowFailure: true,
      timeoutMs: 240_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await cluster.kubectl(['get', 'mutatingwebhookconfiguration', `${fullname}-sidecar-injector`, '-o', 'jsonpath={.webhooks[0].timeoutSeconds}'])).stdout, '7');
    assert.equal((await cluster.kubectl(caPath)).stdout, caBefore, 'caBundle kept across helm upgrade');
    assert.equal((await cluster.kubectl(['-n', releaseNs, 'get', 'secret', `${fullname}-webhook-tls`, '-o', 'jsonpath={.data.tls\\.crt}'])).stdout, certBefore, 'certificate kept');
    assert.notEqual(certBefore, '');
    const afterDeploy = JSON.parse((await cluster.kubectl(['-n', releaseNs, 'get', 'deployment', `${fullname}-controller`, '-o', 'json'])).stdout);
    assert.notEqual(afterDeploy.spec.template.metadata.annotations['checksum/injection-config'], hashBefore);
    const rs = await pollFor('a second ReplicaSet', async () => {
      const list = JSON.parse((await cluster.kubectl(['-n', releaseNs, 'get', 'replicasets', '-l', 'app.kubernetes.io/component=controller', '-o', 'json'])).stdout) as { items: unknown[] };
      return list.items.length >= 2 ? list.items.length : undefined;
    }, { ...API_RETRY, timeoutMs: 90_000 });
    assert.equal(rs, 2);
    // The rolled pods would read the new ConfigMap; the local stand-in does the same by restarting.
    await startController();
    const refused = await createPod(appNs, annotatedPod('orders-strict', { 'qbasis.io/app-port': 'http' }));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /denied the request: qbasis \(strict\): invalid qbasis\.io\/app-port value "http"/);
    const ok = await createPod(appNs, annotatedPod('orders-strict-ok'));
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('helm uninstall removes everything but the kept CRDs and mesh root', async () => {
    const kept = (d: { kind: string; metadata: { name: string } }): boolean => d.kind === 'CustomResourceDefinition' || (d.kind === 'Secret' && d.metadata.name === `${fullname}-identity-root`);
    const manifest = docs((await cluster.helm(['get', 'manifest', release, '--namespace', releaseNs])).stdout);
    await stopController();
    const r = await cluster.helm(['uninstall', release, '--namespace', releaseNs, '--wait'], { allowFailure: true, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /kept due to the resource policy/);
    for (const d of manifest) {
      const ns = d.metadata.namespace ? ['-n', d.metadata.namespace] : [];
      const kind = d.apiVersion.includes('/') ? `${d.kind}.${d.apiVersion.split('/')[0]}` : d.kind;
      const got = await pollFor(`${d.kind} ${d.metadata.name} to be deleted or kept`, async () => {
        const g = await cluster.kubectl(['get', kind, d.metadata.name, ...ns, '-o', 'name'], { allowFailure: true });
        if (kept(d)) return g.code;
        return g.code !== 0 ? g.code : undefined;
      }, { ...API_RETRY, timeoutMs: 90_000 });
      if (kept(d)) assert.equal(got, 0, `${d.metadata.name} kept`);
      else assert.notEqual(got, 0, `${d.kind} ${d.metadata.name} removed`);
    }
  });
});
