// The local control plane is the real Kubernetes: version, CRD validation, scheduling with kwok,
// admission webhooks, service-account tokens, helm.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POD_CIDR } from '../cluster/cluster.ts';
import { useCluster, CLUSTER_START_TIMEOUT_MS, type TestCluster } from '../harness/use-cluster.ts';
import { pollFor, waitForValue } from '../fixtures/wait.ts';

const POD_PREFIX = new RegExp(`^${POD_CIDR.split('.').slice(0, 2).join('\\.')}\\.\\d{1,3}\\.\\d{1,3}$`);
const T = { timeout: 180_000 };

describe('local control plane', { timeout: CLUSTER_START_TIMEOUT_MS + 30 * 60_000 }, () => {
  let c: TestCluster;
  before(async () => {
    c = await useCluster();
  }, { timeout: CLUSTER_START_TIMEOUT_MS });

  test('the API server and kubectl both report Kubernetes v1.37.2', T, async () => {
    const { stdout } = await c.kubectl(['version', '-o', 'json']);
    const v = JSON.parse(stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string; major: string; minor: string } };
    assert.equal(v.serverVersion.gitVersion, 'v1.37.2');
    assert.equal(v.serverVersion.minor, '37');
    assert.equal(v.clientVersion.gitVersion, 'v1.37.2');
  });

  test('the fake node is Ready with a loopback pod CIDR', T, async () => {
    const { stdout } = await c.kubectl(['get', 'node', 'kwok-node-0', '-o', 'json']);
    const node = JSON.parse(stdout) as { spec: { podCIDR: string }; status: { conditions: { type: string; status: string }[] } };
    assert.equal(node.spec.podCIDR, POD_CIDR);
    assert.ok(node.status.conditions.some((x) => x.type === 'Ready' && x.status === 'True'), JSON.stringify(node.status.conditions));
  });

  test('the harness kubeconfig works with @kubernetes/client-node', T, async () => {
    const k8s = await import('@kubernetes/client-node');
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(c.kubeconfig);
    const nodes = await kc.makeApiClient(k8s.CoreV1Api).listNode();
    assert.deepEqual(nodes.items.map((n) => n.metadata?.name), ['kwok-node-0']);
  });

  test('a CRD applied with kubectl is served and the API server refuses an object that breaks its schema', T, async (t) => {
    const ns = await c.namespace(t);
    const group = `w${Date.now().toString(36)}.qbasis.test`;
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    required: ['size'],
                    properties: { size: { type: 'integer', minimum: 1, maximum: 10 } },
                  },
                },
              },
            },
          },
        ],
      },
    };
    await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(crd) });
    t.after(async () => {
      await c.kubectl(['delete', 'crd', `widgets.${group}`, '--wait=false', '--ignore-not-found'], { allowFailure: true });
    });
    await c.kubectl(['wait', '--for=condition=Established', `crd/widgets.${group}`, '--timeout=60s']);

    const good = { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'good', namespace: ns }, spec: { size: 3 } };
    await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(good) });
    const got = JSON.parse((await c.kubectl(['-n', ns, 'get', `widgets.${group}`, 'good', '-o', 'json'])).stdout) as { spec: { size: number } };
    assert.equal(got.spec.size, 3);

    const bad = { ...good, metadata: { name: 'bad', namespace: ns }, spec: { size: 42 } };
    const r = await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(bad), allowFailure: true });
    assert.notEqual(r.code, 0, 'an object with size 42 must be refused');
    assert.match(r.stderr, /spec\.size: Invalid value: 42: spec\.size in body should be less than or equal to 10/);
  });

  test('a Deployment of 3 replicas gets 3 Running, Ready pods with distinct IPs in the kwok pod range (127.1.0.0/16)', T, async (t) => {
    const ns = await c.namespace(t);
    await c.kubectl(['-n', ns, 'create', 'deployment', 'web', '--image=example.invalid/web:1', '--replicas=3']);
    await c.kubectl(['-n', ns, 'rollout', 'status', 'deployment/web', '--timeout=120s']);
    const pods = await runningPods(c, ns, 'app=web', 3);
    const ips = pods.map((p) => p.status.podIP);
    assert.equal(new Set(ips).size, 3, `IPs must be distinct: ${ips.join(', ')}`);
    for (const ip of ips) assert.match(ip, POD_PREFIX);
    for (const p of pods) assert.equal(p.status.hostIP, '127.0.0.1');
  });

  test('a pod with a native sidecar (init container with restartPolicy Always) becomes Running and Ready', T, async (t) => {
    const ns = await c.namespace(t);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'with-sidecar', namespace: ns },
      spec: {
        initContainers: [
          { name: 'setup', image: 'example.invalid/setup:1' },
          { name: 'sidecar', image: 'example.invalid/sidecar:1', restartPolicy: 'Always' },
        ],
        containers: [{ name: 'app', image: 'example.invalid/app:1' }],
      },
    };
    await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    await c.kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'pod/with-sidecar', '--timeout=60s']);
    const got = JSON.parse((await c.kubectl(['-n', ns, 'get', 'pod', 'with-sidecar', '-o', 'json'])).stdout) as PodJson;
    assert.equal(got.status.phase, 'Running');
    const sidecar = got.status.initContainerStatuses?.find((s) => s.name === 'sidecar');
    assert.ok(sidecar?.state.running !== undefined, `sidecar must be running: ${JSON.stringify(got.status.initContainerStatuses)}`);
    assert.match(got.status.podIP, POD_PREFIX);
  });

  test('the API server calls a MutatingWebhookConfiguration served over HTTPS on loopback when a pod is created', T, async (t) => {
    const ns = await c.namespace(t);
    const tls = await c.servingCert(['127.0.0.1']);
    const calls: { kind: string; name: string; namespace: string }[] = [];
    const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (ch: Buffer) => chunks.push(ch));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString()) as {
          request: { uid: string; kind: { kind: string }; name?: string; namespace: string; object: { metadata: { name?: string; generateName?: string } } };
        };
        calls.push({ kind: review.request.kind.kind, name: review.request.object.metadata.name ?? '', namespace: review.request.namespace });
        const patch = [{ op: 'add', path: '/metadata/labels', value: { 'mutated-by': 'test-webhook' } }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;

    const hook = `mutate-${ns}`;
    const config = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: hook },
      webhooks: [
        {
          name: 'pods.test.qbasis.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 10,
          clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(tls.ca).toString('base64') },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        },
      ],
    };
    await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(config) });
    t.after(async () => {
      await c.kubectl(['delete', 'mutatingwebhookconfiguration', hook, '--ignore-not-found'], { allowFailure: true });
    });

    // The API server picks up a new webhook configuration asynchronously; retry until it is called.
    let i = 0;
    const labels = await pollFor('the webhook to label a new pod', async () => {
      const name = `p${i++}`;
      await c.kubectl(['-n', ns, 'run', name, '--image=example.invalid/app:1', '--restart=Never']);
      const pod = JSON.parse((await c.kubectl(['-n', ns, 'get', 'pod', name, '-o', 'json'])).stdout) as { metadata: { labels?: Record<string, string> } };
      return pod.metadata.labels?.['mutated-by'] !== undefined ? pod.metadata.labels : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500, detail: () => `webhook calls: ${JSON.stringify(calls)}` });
    assert.equal(labels['mutated-by'], 'test-webhook');
    assert.ok(calls.some((x) => x.kind === 'Pod' && x.namespace === ns), JSON.stringify(calls));
  });

  test('a ServiceAccount token from the TokenRequest API passes TokenReview', T, async (t) => {
    const ns = await c.namespace(t);
    await c.kubectl(['-n', ns, 'create', 'serviceaccount', 'caller']);
    const token = (await c.kubectl(['-n', ns, 'create', 'token', 'caller', '--duration=10m', '--audience=qbasis-test'])).stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT');
    const review = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: ['qbasis-test'] } };
    const out = JSON.parse((await c.kubectl(['create', '-f', '-', '-o', 'json'], { input: JSON.stringify(review) })).stdout) as {
      status: { authenticated?: boolean; user?: { username: string }; audiences?: string[]; error?: string };
    };
    assert.equal(out.status.authenticated, true, out.status.error);
    assert.equal(out.status.user?.username, `system:serviceaccount:${ns}:caller`);
    assert.deepEqual(out.status.audiences, ['qbasis-test']);

    const forged = { ...review, spec: { ...review.spec, token: token.slice(0, -4) + 'AAAA' } };
    const bad = JSON.parse((await c.kubectl(['create', '-f', '-', '-o', 'json'], { input: JSON.stringify(forged) })).stdout) as { status: { authenticated?: boolean } };
    assert.notEqual(bad.status.authenticated, true, 'a token with a broken signature must not authenticate');
  });

  test('helm install of a tiny chart creates its objects and helm uninstall removes them', T, async (t) => {
    const ns = await c.namespace(t);
    const dir = mkdtempSync(join(tmpdir(), 'qbasis-chart-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const chart = join(dir, 'tiny');
    mkdirSync(join(chart, 'templates'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\n');
    writeFileSync(join(chart, 'values.yaml'), 'greeting: hello\nreplicas: 2\n');
    writeFileSync(
      join(chart, 'templates', 'objects.yaml'),
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: {{ .Release.Name }}-config',
        'data:',
        '  greeting: {{ .Values.greeting | quote }}',
        '---',
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        '  name: {{ .Release.Name }}-app',
        'spec:',
        '  replicas: {{ .Values.replicas }}',
        '  selector: { matchLabels: { app: {{ .Release.Name }} } }',
        '  template:',
        '    metadata: { labels: { app: {{ .Release.Name }} } }',
        '    spec:',
        '      containers: [{ name: app, image: example.invalid/app:1 }]',
        '',
      ].join('\n'),
    );
    await c.helm(['install', 'tiny1', chart, '-n', ns, '--set', 'greeting=hi', '--wait', '--timeout', '120s']);
    const cm = JSON.parse((await c.kubectl(['-n', ns, 'get', 'configmap', 'tiny1-config', '-o', 'json'])).stdout) as { data: { greeting: string } };
    assert.equal(cm.data.greeting, 'hi');
    await runningPods(c, ns, 'app=tiny1', 2);
    const list = JSON.parse((await c.helm(['list', '-n', ns, '-o', 'json'])).stdout) as { name: string; status: string }[];
    assert.deepEqual(list.map((r) => [r.name, r.status]), [['tiny1', 'deployed']]);

    await c.helm(['uninstall', 'tiny1', '-n', ns, '--wait', '--timeout', '120s']);
    const gone = await c.kubectl(['-n', ns, 'get', 'configmap', 'tiny1-config'], { allowFailure: true });
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NotFound/);
    assert.deepEqual(JSON.parse((await c.helm(['list', '-n', ns, '-o', 'json'])).stdout), []);
  });
});

interface PodJson {
  metadata: { name: string };
  status: {
    phase: string;
    podIP: string;
    hostIP: string;
    conditions?: { type: string; status: string }[];
    initContainerStatuses?: { name: string; state: { running?: unknown } }[];
  };
}

async function runningPods(c: TestCluster, ns: string, selector: string, want: number): Promise<PodJson[]> {
  const isReady = (p: PodJson): boolean => p.status.phase === 'Running' && p.status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') === true;
  const pods = await waitForValue(
    `${want} Running+Ready pods for ${selector} in ${ns}`,
    async () => (JSON.parse((await c.kubectl(['-n', ns, 'get', 'pods', '-l', selector, '-o', 'json'])).stdout) as { items: PodJson[] }).items,
    (items) => items.length === want && items.every(isReady),
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  return pods;
}
