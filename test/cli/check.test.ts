// `qbasis check` against the real API server: the chart installed (its Deployment runs on the kwok node, its
// webhook pointed at a controller process of ours in Kubernetes mode, which leads and fills the caBundle),
// every check passes; with the controller gone, the leader and webhook lines fail and say what to do.
// Addresses: the controller's webhook on 127.0.96.1:19446.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { applyCrds, startKubeController, type KubeController } from '../controller/kube-helpers.ts';
import { QBASIS_BIN, REPO } from '../fixtures/local-controller.ts';
import { waitForValue, waitUntil } from '../fixtures/wait.ts';
import { CLUSTER_START_TIMEOUT_MS, useCluster, type TestCluster } from '../harness/use-cluster.ts';

const execFileP = promisify(execFile);
const HOST = '127.0.96.1';
const WEBHOOK_PORT = 19446;
const RELEASE = 'qbcheck';
const FULL = 'qbcheck-qbasis';

describe('qbasis check on the real control plane', { timeout: CLUSTER_START_TIMEOUT_MS + 10 * 60_000 }, () => {
  let cluster: TestCluster;
  let ns: string;
  let controller: KubeController | undefined;
  const tmp = mkdtempSync(join(tmpdir(), 'qbasis-check-'));
  const hooks: (() => Promise<void> | void)[] = [];

  const check = async (): Promise<{ code: number; out: string }> => {
    try {
      const r = await execFileP(process.execPath, [QBASIS_BIN, 'check', '--kubeconfig', cluster.kubeconfig, '--namespace', ns, '--release', RELEASE, '--lease-duration-ms', '4000'], { cwd: REPO, timeout: 60_000 });
      return { code: 0, out: r.stdout };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  };

  before(async () => {
    cluster = await useCluster();
    ns = await cluster.namespace({ after: (fn) => hooks.push(fn) }, 'qbcheck');
    await applyCrds(cluster);
    // The CRDs are the shared cluster's (applyCrds); the webhook selects a label no namespace has, so it never
    // injects another test's pods.
    const r = await cluster.helm(['install', RELEASE, join(REPO, 'charts/qbasis'), '--namespace', ns, '--set', 'crds.enabled=false', '--set', `webhook.url=https://${HOST}:${WEBHOOK_PORT}/mutate`,
      '--set-string', 'webhook.namespaceSelector.matchLabels.qbasis-check-test=never', '--set', 'image.tag=test', '--wait', '--timeout', '3m'], { allowFailure: true, timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr);
    const cm = await cluster.kubectl(['-n', ns, 'get', 'configmap', `${FULL}-injection`, '-o', 'jsonpath={.data.config\\.json}']);
    const injection = join(tmp, 'injection.json');
    writeFileSync(injection, cm.stdout);
    controller = await startKubeController({
      cluster, namespace: ns, host: HOST, identity: 'check-test-controller', leaseName: `${FULL}-controller`,
      args: ['--webhook-port', String(WEBHOOK_PORT), '--webhook-address', HOST, '--webhook-namespace', ns, '--webhook-secret', `${FULL}-webhook-tls`,
        '--webhook-service', `${FULL}-webhook`, '--webhook-config-name', `${FULL}-sidecar-injector`, '--webhook-san', HOST, '--injection-config', injection,
        '--identity-secret', `${FULL}-identity-root`, '--identity-port', '0'],
    });
    await waitUntil('the leader to fill the caBundle', async () => (await cluster.kubectl(['get', 'mutatingwebhookconfiguration', `${FULL}-sidecar-injector`, '-o', 'jsonpath={.webhooks[0].clientConfig.caBundle}'])).stdout.length > 0, { timeoutMs: 60_000, intervalMs: 250, retryErrors: true });
  }, { timeout: CLUSTER_START_TIMEOUT_MS + 5 * 60_000 });

  after(async () => {
    await controller?.stop();
    await cluster?.helm(['uninstall', RELEASE, '--namespace', ns, '--wait'], { allowFailure: true });
    for (const h of hooks.reverse()) await h();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('passes on a healthy install: every line ✔, exit 0', async (t) => {
    const r = await waitForValue('qbasis check to pass', check, (x) => x.code === 0, { timeoutMs: 60_000, intervalMs: 1000 });
    t.diagnostic(r.out);
    const lines = r.out.split('\n').filter((l) => /^[✔✖] /.test(l));
    assert.deepEqual(lines.map((l) => l.split(':')[0]), ['✔ CRDs', '✔ controller', '✔ leader', '✔ webhook', '✔ webhook reachable', '✔ mesh identity', '✔ sidecars', '✔ BasisServices', '✔ BasisPolicies'], r.out);
    assert.match(r.out, /✔ leader: check-test-controller holds Lease/);
    assert.match(r.out, new RegExp(`✔ webhook reachable: https://${HOST.replaceAll('.', '\\.')}:${WEBHOOK_PORT}/mutate answers TLS with a certificate the caBundle verifies`));
    assert.match(r.out, new RegExp(`✔ mesh identity: root in Secret ${ns}/${FULL}-identity-root valid until .* \\(36\\d\\d days\\); trust bundle in 0 namespaces`));
    assert.match(r.out, /Status: every check passed/);
  });

  it('reports ✖ with what to do, exit 1, when the controller is gone: no live leader, webhook unreachable', async (t) => {
    await controller!.stop('SIGKILL');
    controller = undefined;
    const r = await waitForValue('qbasis check to see the lease expire', check, (x) => x.code === 1 && /✖ leader/.test(x.out), { timeoutMs: 30_000, intervalMs: 1000 });
    t.diagnostic(r.out);
    assert.match(r.out, /✖ leader: Lease .* check-test-controller last renewed \d+ s ago/);
    assert.match(r.out, /✖ webhook reachable: https:\/\/127\.0\.96\.1:19446\/mutate: .*ECONNREFUSED/);
    assert.match(r.out, /\n {4}→ /, 'each ✖ says what to do');
    assert.match(r.out, /✔ CRDs/, 'what is still fine stays ✔');
    assert.match(r.out, /Status: 2 of 9 checks failed/);
  });
});
