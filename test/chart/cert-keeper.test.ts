// The webhook's certificate keeper against the real API server: the Secret and the caBundle.
// No sockets of ours are served here; the MutatingWebhookConfiguration it edits points at an unused URL and
// selects no namespace (a label nobody carries), so it never fires for other tests' pods.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CertKeeper } from '../../controller/webhook/cert-keeper.ts';
import { createServingBundle } from '../../controller/webhook/certificates.ts';
import type { ServingBundle } from '../../controller/webhook/certificates.ts';
import { KubeClient, loadKubeConfig } from '../../controller/kube/kube-client.ts';
import { CLUSTER_START_TIMEOUT_MS, useCluster } from '../harness/use-cluster.ts';
import type { TestCluster } from '../harness/use-cluster.ts';

const HOSTS = ['qbasis-webhook.keeper-test.svc', '127.0.63.1'];
const DAY = 86_400_000;

describe('webhook certificate keeper on the real API server', { timeout: CLUSTER_START_TIMEOUT_MS + 5 * 60_000 }, () => {
  let cluster: TestCluster;
  let ns: string;
  const mwc = `qbasis-keeper-test-${randomBytes(3).toString('hex')}`;
  const hooks: (() => Promise<void> | void)[] = [];
  const keepers: CertKeeper[] = [];

  const keeper = (secretName: string, opts: { writer?: () => boolean; onBundle?: (b: ServingBundle) => void } = {}) => {
    const k = new CertKeeper({
      client: new KubeClient(loadKubeConfig({ kubeconfig: cluster.kubeconfig })),
      namespace: ns,
      secretName,
      webhookConfigName: mwc,
      hosts: HOSTS,
      mode: 'self',
      resyncMs: 60_000,
      ...(opts.writer ? { isWriter: opts.writer } : {}),
      onBundle: opts.onBundle ?? (() => {}),
    });
    keepers.push(k);
    return k;
  };
  const caBundle = async () => Buffer.from((await cluster.kubectl(['get', 'mutatingwebhookconfiguration', mwc, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout, 'base64').toString();
  const secretKey = async (name: string, key: string) =>
    Buffer.from((await cluster.kubectl(['-n', ns, 'get', 'secret', name, '-o', `jsonpath={.data.${key.replace('.', '\\.')}}`])).stdout, 'base64').toString();

  before(async () => {
    cluster = await useCluster();
    ns = await cluster.namespace({ after: (fn) => hooks.push(fn) }, 'keeper');
    const config = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: mwc },
      webhooks: [
        {
          name: 'keeper-test.qbasis.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Ignore',
          clientConfig: { url: 'https://127.0.63.1:1/mutate' },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: { 'qbasis-keeper-test': 'never' } },
        },
      ],
    };
    await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(config) });
  }, { timeout: CLUSTER_START_TIMEOUT_MS });

  after(async () => {
    for (const k of keepers) await k.stop();
    await cluster?.kubectl(['delete', 'mutatingwebhookconfiguration', mwc, '--ignore-not-found'], { allowFailure: true });
    for (const h of hooks.reverse()) await h();
  });

  it('two writers racing end with one certificate in the Secret, served by both, its CA in the caBundle', async () => {
    const served: Record<'a' | 'b', string[]> = { a: [], b: [] };
    const a = keeper('race-tls', { onBundle: (x) => served.a.push(x.cert) });
    const b = keeper('race-tls', { onBundle: (x) => served.b.push(x.cert) });
    await Promise.all([a.start(), b.start()]);
    const inSecret = await secretKey('race-tls', 'tls.crt');
    // The loser's write fails on the conflict; it re-reads and never serves its own certificate.
    assert.deepEqual(served.a, [inSecret]);
    assert.deepEqual(served.b, [inSecret]);
    await a.sync();
    await b.sync();
    const ca = await secretKey('race-tls', 'ca.crt');
    assert.equal(await caBundle(), ca);
    assert.ok(new X509Certificate(inSecret).checkIssued(new X509Certificate(ca)));
    assert.match(new X509Certificate(inSecret).subjectAltName ?? '', /IP Address:127\.0\.63\.1/);
  });

  it('a replica that may not write waits for the writer, then serves what it wrote', async () => {
    let servedByReader: string | undefined;
    // The keeper asks "may I write?" at the start of every pass: a third question means two whole passes
    // found no Secret and decided as a reader (a pass that wrote anyway would have created the Secret).
    let asked = 0;
    const reader = keeper('wait-tls', { writer: () => (asked++, false), onBundle: (b) => (servedByReader = b.cert) });
    const waiting = reader.start();
    const deadline = Date.now() + 60_000;
    while (asked < 3 && servedByReader === undefined) {
      if (Date.now() > deadline) assert.fail(`the reader made ${asked} passes in 60 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(servedByReader, undefined, 'nothing to serve before the writer');
    assert.notEqual((await cluster.kubectl(['-n', ns, 'get', 'secret', 'wait-tls'], { allowFailure: true })).code, 0, 'the reader created nothing');
    await keeper('wait-tls').start();
    await waiting;
    assert.equal(servedByReader, await secretKey('wait-tls', 'tls.crt'));
  });

  it('renews a serving certificate past two thirds of its life with the same CA, so the caBundle stays', async () => {
    const old = await createServingBundle(HOSTS, { caDays: 3650, certDays: 3, now: new Date(Date.now() - 2.5 * DAY) });
    const data = { 'ca.crt': old.caCert, 'ca.key': old.caKey, 'tls.crt': old.cert, 'tls.key': old.key };
    await cluster.kubectl(['-n', ns, 'create', 'secret', 'generic', 'renew-tls', ...Object.entries(data).map(([k, v]) => `--from-literal=${k}=${v}`)]);
    let served: string | undefined;
    await keeper('renew-tls', { onBundle: (b) => (served = b.cert) }).start();
    const cert = await secretKey('renew-tls', 'tls.crt');
    assert.notEqual(cert, old.cert, 'renewed');
    assert.equal(served, cert);
    assert.equal(await secretKey('renew-tls', 'ca.crt'), old.caCert, 'same CA');
    assert.equal(await caBundle(), old.caCert);
    assert.ok(Date.parse(new X509Certificate(cert).validTo) > Date.now() + 300 * DAY, 'a fresh certificate of the default lifetime');
  });
});
