// The TokenReview authenticator (Kubernetes mode's, behind the same interface as local mode's tokens)
// against the real API server of the test bed, with real bound tokens from TokenRequest
// (`kubectl create token --bound-object-kind Pod`) and the pods from a real informer: the right
// identity for a pod's token; refused for another audience, a token bound to no pod, a deleted pod, a
// terminating pod, and garbage. Binds nothing of its own (pods are kwok's).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { KubeClient, loadKubeConfig } from '../../controller/kube/kube-client.ts';
import { InformerPodSource } from '../../controller/kube/informer-pod-source.ts';
import { MeshPods } from '../../controller/identity/mesh-pods.ts';
import { TokenReviewAuthenticator } from '../../controller/identity/token-review.ts';
import { waitUntil } from '../fixtures/wait.ts';
import { CLUSTER_START_TIMEOUT_MS, useCluster, type TestCluster } from '../harness/use-cluster.ts';
import { createPods, getJson } from '../controller/kube-helpers.ts';

let c: TestCluster;
let auth: TokenReviewAuthenticator;
let informer: InformerPodSource;
const pods = new MeshPods();

before(async () => {
  c = await useCluster();
  const client = new KubeClient(loadKubeConfig({ kubeconfig: c.kubeconfig }));
  informer = new InformerPodSource({ client, logger: pino({ level: 'silent' }) });
  await informer.start(pods);
  auth = new TokenReviewAuthenticator(client, pods);
}, { timeout: CLUSTER_START_TIMEOUT_MS });

after(() => informer?.stop());

/** The informer keeps only pods with qbasis annotations, as injected pods have. */
const MESH = { 'qbasis.io/injected': 'v1' };

/** Until the informer has seen the pod (and, with `deleting`, its deletion). */
async function cached(ns: string, name: string, deleting = false): Promise<void> {
  await waitUntil(`pod ${ns}/${name} in the informer's cache${deleting ? ', terminating' : ''}`, () => pods.get(ns, name)?.deleting === deleting, { timeoutMs: 10_000 });
}

async function podUid(ns: string, name: string): Promise<string> {
  return (await getJson<{ metadata: { uid: string } }>(c, ['-n', ns, 'get', 'pod', name, '-o', 'json'])).metadata.uid;
}

async function token(ns: string, sa: string, opts: { audience?: string; pod?: string; uid?: string } = {}): Promise<string> {
  const args = ['-n', ns, 'create', 'token', sa, '--audience', opts.audience ?? 'qbasis.io', '--duration', '10m'];
  if (opts.pod !== undefined) args.push('--bound-object-kind', 'Pod', '--bound-object-name', opts.pod, '--bound-object-uid', opts.uid!);
  return (await c.kubectl(args)).stdout.trim();
}

test("a pod's bound token authenticates as that pod and its ServiceAccount; other audiences, unbound tokens and garbage do not", { timeout: 120_000 }, async (t) => {
  const ns = await c.namespace(t, 'id-review');
  await c.kubectl(['-n', ns, 'create', 'serviceaccount', 'orders']);
  await createPods(c, ns, [{ name: 'orders-1', serviceAccount: 'orders', annotations: MESH }]);
  const uid = await podUid(ns, 'orders-1');
  await cached(ns, 'orders-1');
  const ok = await auth.authenticate(await token(ns, 'orders', { pod: 'orders-1', uid }));
  assert.deepEqual(ok, { ok: true, pod: { namespace: ns, pod: 'orders-1', uid, serviceAccount: 'orders' } });

  const other = await auth.authenticate(await token(ns, 'orders', { pod: 'orders-1', uid, audience: 'someone-else' }));
  assert.equal(other.ok, false);
  if (!other.ok) {
    assert.equal(other.code, 'QB_TOKEN_REFUSED');
    assert.match(other.reason, /did not authenticate the token.*audience qbasis\.io/);
    t.diagnostic(`other audience: ${other.reason}`);
  }
  const unbound = await auth.authenticate(await token(ns, 'orders'));
  assert.equal(unbound.ok, false);
  if (!unbound.ok) assert.match(unbound.reason, /is not bound to a pod/);
  const garbage = await auth.authenticate('not.a-token');
  assert.equal(garbage.ok, false);
  if (!garbage.ok) assert.equal(garbage.code, 'QB_TOKEN_REFUSED');
  const notJwt = await auth.authenticate('a'.repeat(64));
  assert.equal(notJwt.ok, false);
});

test('the token of a deleted pod, or of a terminating one, is refused', { timeout: 120_000 }, async (t) => {
  const ns = await c.namespace(t, 'id-review-gone');
  await c.kubectl(['-n', ns, 'create', 'serviceaccount', 'orders']);
  await createPods(c, ns, [{ name: 'gone', serviceAccount: 'orders', annotations: MESH }, { name: 'ending', serviceAccount: 'orders', annotations: MESH }]);
  const goneToken = await token(ns, 'orders', { pod: 'gone', uid: await podUid(ns, 'gone') });
  // A finalizer keeps the pod in Terminating after its delete.
  await c.kubectl(['-n', ns, 'patch', 'pod', 'ending', '--type=merge', '-p', JSON.stringify({ metadata: { finalizers: ['qbasis.io/test'] } })]);
  const endingToken = await token(ns, 'orders', { pod: 'ending', uid: await podUid(ns, 'ending') });
  await c.kubectl(['-n', ns, 'delete', 'pod', 'gone', '--wait=true']);
  await c.kubectl(['-n', ns, 'delete', 'pod', 'ending', '--wait=false']);
  await cached(ns, 'ending', true);
  try {
    const gone = await auth.authenticate(goneToken);
    assert.equal(gone.ok, false, 'a deleted pod');
    if (!gone.ok) {
      t.diagnostic(`deleted pod: ${gone.code} ${gone.reason}`);
      assert.match(gone.reason, /service account token has been invalidated|not in the controller's pod cache/);
      assert.ok(!gone.reason.includes(goneToken), 'the reason never holds the token');
    }
    const ending = await auth.authenticate(endingToken);
    assert.equal(ending.ok, false, 'a terminating pod');
    if (!ending.ok) {
      assert.equal(ending.code, 'QB_POD_NOT_ELIGIBLE');
      assert.match(ending.reason, new RegExp(`pod ${ns}/ending is terminating`));
    }
  } finally {
    await c.kubectl(['-n', ns, 'patch', 'pod', 'ending', '--type=merge', '-p', JSON.stringify({ metadata: { finalizers: null } })], { allowFailure: true });
  }
});
