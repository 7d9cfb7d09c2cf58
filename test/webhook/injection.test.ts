// The injection function: pod + config → JSONPatch. Pure, so no sockets here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { admit } from '../../controller/webhook/admission.ts';
import { defaultInjectionConfig, mergeInjectionConfig } from '../../controller/webhook/injection-config.ts';
import { applyPatch, INJECTED_ANNOTATION, injectPod, SIDECAR_NAME } from '../../controller/webhook/injection.ts';

const config = { ...defaultInjectionConfig(), controllerNamespace: 'qbasis-system', discoveryAddress: 'qbasis-discovery.qbasis-system.svc:15010' };

function pod(annotations?: Record<string, string>, extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'orders-1', ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: 'app', image: 'shop/orders:1', ports: [{ containerPort: 50051 }] }], ...extra },
  };
}

const annotated = {
  'qbasis.io/inject': 'true',
  'qbasis.io/provides': 'shop.orders.v1.OrderService@1.4.0',
  'qbasis.io/requires': 'shop.inventory.v1.InventoryService@^1.2',
  'qbasis.io/app-port': '50051',
  'qbasis.io/app-protocol': 'grpc',
};

function injected(p: V1Pod, ns = 'shop'): V1Pod {
  const r = injectPod(p, ns, config);
  assert.equal(r.action, 'inject', JSON.stringify(r));
  return applyPatch(p, r.action === 'inject' ? r.patch : []);
}

function sidecars(p: V1Pod): V1Container[] {
  return [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].filter((c) => c.name === SIDECAR_NAME);
}

function env(c: V1Container): Record<string, unknown> {
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
}

describe('sidecar injection', () => {
  it('adds exactly one native sidecar (init container, restartPolicy Always) with the annotations as env', () => {
    const out = injected(pod(annotated));
    const s = sidecars(out);
    assert.equal(s.length, 1);
    assert.equal(out.spec?.initContainers?.[0]?.name, SIDECAR_NAME);
    const c = s[0]!;
    assert.equal(c.restartPolicy, 'Always');
    assert.deepEqual(c.args, ['sidecar']);
    assert.deepEqual(env(c), {
      QBASIS_IP: { fieldRef: { fieldPath: 'status.podIP' } },
      QBASIS_POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      QBASIS_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      QBASIS_DISCOVERY: 'qbasis-discovery.qbasis-system.svc:15010',
      QBASIS_OUTBOUND_HOST: '127.0.0.1',
      QBASIS_APP_HOST: '127.0.0.1',
      QBASIS_PROVIDES: 'shop.orders.v1.OrderService@1.4.0',
      QBASIS_REQUIRES: 'shop.inventory.v1.InventoryService@^1.2',
      QBASIS_APP_PORT: '50051',
      QBASIS_APP_PROTOCOL: 'grpc',
      QBASIS_OUTBOUND_PORT: '15001',
      QBASIS_INBOUND_PORT: '15006',
      QBASIS_ADMIN_PORT: '15020',
      QBASIS_GRACE_PERIOD: '5',
    });
    assert.deepEqual(c.ports?.map((p) => p.containerPort), [15001, 15006, 15020]);
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) assert.equal(probe?.httpGet?.port, 15020);
    assert.equal(c.readinessProbe?.httpGet?.path, '/ready');
    assert.deepEqual(c.securityContext, config.securityContext);
    assert.equal(c.securityContext?.runAsNonRoot, true);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
    assert.deepEqual(c.resources, { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } });
    assert.equal(out.metadata?.annotations?.[INJECTED_ANNOTATION], 'v1');
    assert.deepEqual(out.spec?.containers, pod(annotated).spec?.containers, 'app containers untouched');
  });

  it('is idempotent: injecting an injected pod gives no patch and the same pod', () => {
    const once = injected(pod(annotated));
    const again = injectPod(once, 'shop', config);
    assert.equal(again.action, 'skip');
    // Even without the mark, the container name alone prevents a second sidecar.
    const unmarked = structuredClone(once);
    delete unmarked.metadata!.annotations![INJECTED_ANNOTATION];
    assert.equal(injectPod(unmarked, 'shop', config).action, 'skip');
  });

  it('goes first among existing init containers, so they can already call through it', () => {
    const p = pod(annotated, { initContainers: [{ name: 'migrate', image: 'shop/migrate:1' }] });
    const out = injected(p);
    assert.deepEqual(out.spec?.initContainers?.map((c) => c.name), [SIDECAR_NAME, 'migrate']);
  });

  it('leaves pods without the annotation, with inject "false", and in the controller namespace alone', () => {
    assert.equal(injectPod(pod(), 'shop', config).action, 'skip');
    assert.equal(injectPod(pod({ 'qbasis.io/inject': 'false' }), 'shop', config).action, 'skip');
    const own = injectPod(pod(annotated), 'qbasis-system', config);
    assert.equal(own.action, 'skip');
    assert.match(own.action === 'skip' ? own.reason : '', /controller's own/);
  });

  it('warns about an invalid annotation, still injects, and leaves the bad value out of the env', () => {
    const r = injectPod(pod({ ...annotated, 'qbasis.io/provides': 'shop.orders.v1.OrderService@one' }), 'shop', config);
    assert.equal(r.action, 'inject');
    assert.ok(r.warnings.some((w) => w.includes('qbasis.io/provides') && w.includes('"shop.orders.v1.OrderService@one"') && /semantic version/.test(w)), r.warnings.join('\n'));
    const out = applyPatch(pod(annotated), r.action === 'inject' ? r.patch : []);
    assert.equal(env(sidecars(out)[0]!).QBASIS_PROVIDES, undefined);
  });

  it('under strict refuses the pod with every problem in the message', () => {
    const strict = { ...config, strict: true };
    const r = injectPod(pod({ ...annotated, 'qbasis.io/app-port': '99999', 'qbasis.io/app-protocol': 'soap' }), 'shop', strict);
    assert.equal(r.action, 'refuse');
    const msg = r.action === 'refuse' ? r.message : '';
    assert.match(msg, /qbasis\.io\/app-port.*99999/);
    assert.match(msg, /qbasis\.io\/app-protocol.*soap/);
  });

  it('an invalid inject value is a warning and no sidecar', () => {
    const r = injectPod(pod({ 'qbasis.io/inject': 'yes' }), 'shop', config);
    assert.equal(r.action, 'skip');
    assert.ok(r.warnings.some((w) => w.includes('qbasis.io/inject') && w.includes('"true" or "false"')));
  });

  it('applies per-pod overrides and warns about bad ones', () => {
    const out = injected(
      pod({ ...annotated, 'qbasis.io/sidecar-image': 'registry.local/qbasis:dev', 'qbasis.io/sidecar-cpu-request': '200m', 'qbasis.io/sidecar-memory-limit': '1Gi', 'qbasis.io/grace-period-seconds': '20' }),
    );
    const c = sidecars(out)[0]!;
    assert.equal(c.image, 'registry.local/qbasis:dev');
    assert.deepEqual(c.resources, { requests: { cpu: '200m', memory: '64Mi' }, limits: { memory: '1Gi' } });
    assert.equal(env(c).QBASIS_GRACE_PERIOD, '20');
    const r = injectPod(pod({ ...annotated, 'qbasis.io/sidecar-cpu-limit': 'lots' }), 'shop', config);
    assert.equal(r.action, 'inject');
    assert.ok(r.warnings.some((w) => w.includes('qbasis.io/sidecar-cpu-limit') && w.includes('quantity')));
  });

  it('warns when an app container already uses a sidecar port', () => {
    const p = pod(annotated);
    p.spec!.containers[0]!.ports = [{ containerPort: 15001 }];
    const r = injectPod(p, 'shop', config);
    assert.ok(r.warnings.some((w) => w.includes('port 15001')));
  });

  it('warns when a providing pod has no app port annotation, and not when the pod only calls', () => {
    const { 'qbasis.io/app-port': _, ...noPort } = annotated;
    const r = injectPod(pod(noPort), 'shop', config);
    assert.equal(r.action, 'inject');
    assert.ok(r.warnings.some((w) => w.includes('no qbasis.io/app-port')));
    const { 'qbasis.io/provides': _p, ...callerOnly } = noPort;
    const c = injectPod(pod(callerOnly), 'shop', config);
    assert.equal(c.action, 'inject');
    assert.deepEqual(c.warnings.filter((w) => w.includes('app-port')), []);
  });

  it('mounts the qbasis.io/schema ConfigMap into the sidecar of an app-protocol http pod and points --schema at it', () => {
    const legacy = { ...annotated, 'qbasis.io/app-protocol': 'http', 'qbasis.io/schema': 'orders-schema' };
    const out = injected(pod(legacy, { volumes: [{ name: 'data', emptyDir: {} }] }));
    const c = sidecars(out)[0]!;
    assert.equal(env(c).QBASIS_APP_PROTOCOL, 'http');
    assert.equal(env(c).QBASIS_SCHEMA, '/etc/qbasis/schema');
    assert.deepEqual(c.volumeMounts, [{ name: 'qbasis-schema', mountPath: '/etc/qbasis/schema', readOnly: true }]);
    assert.deepEqual(out.spec?.volumes, [{ name: 'data', emptyDir: {} }, { name: 'qbasis-schema', configMap: { name: 'orders-schema', optional: false } }]);
    // A pod without volumes gets the list.
    assert.deepEqual(injected(pod(legacy)).spec?.volumes, [{ name: 'qbasis-schema', configMap: { name: 'orders-schema', optional: false } }]);
    assert.deepEqual(out.spec?.containers, pod(legacy).spec?.containers, 'app containers untouched');
  });

  it('an app-protocol http pod without qbasis.io/schema is warned and gets no mount; a schema on a gRPC pod is ignored with a warning', () => {
    const r = injectPod(pod({ ...annotated, 'qbasis.io/app-protocol': 'http' }), 'shop', config);
    assert.equal(r.action, 'inject');
    assert.ok(r.warnings.some((w) => w.includes('qbasis.io/schema') && w.includes('needs it')), r.warnings.join('\n'));
    const out = applyPatch(pod(annotated), r.action === 'inject' ? r.patch : []);
    assert.equal(env(sidecars(out)[0]!).QBASIS_SCHEMA, undefined);
    assert.equal(sidecars(out)[0]!.volumeMounts, undefined);
    assert.equal(out.spec?.volumes, undefined);
    const grpcPod = injectPod(pod({ ...annotated, 'qbasis.io/schema': 'orders-schema' }), 'shop', config);
    assert.ok(grpcPod.warnings.some((w) => /qbasis\.io\/schema is used only with qbasis\.io\/app-protocol: "http"/.test(w)), grpcPod.warnings.join('\n'));
    assert.ok(grpcPod.action === 'inject' && !grpcPod.patch.some((op) => op.path.startsWith('/spec/volumes')));
  });

  it('escapes JSON pointer segments in the annotation path', () => {
    const r = injectPod(pod(annotated), 'shop', config);
    assert.ok(r.action === 'inject' && r.patch.some((op) => op.path === '/metadata/annotations/qbasis.io~1injected'));
  });
});

describe('sidecar injection with mesh identity', () => {
  const idConfig = { ...config, identity: { discoveryAddress: 'qbasis-discovery.qbasis-system.svc:15012', tokenExpirationSeconds: 3600 } };

  it("mounts the projected token (audience qbasis.io) and the trust bundle, and points the sidecar at them and at the TLS port", () => {
    const r = injectPod(pod(annotated, { volumes: [{ name: 'data', emptyDir: {} }] }), 'shop', idConfig);
    assert.equal(r.action, 'inject');
    const out = applyPatch(pod(annotated, { volumes: [{ name: 'data', emptyDir: {} }] }), r.action === 'inject' ? r.patch : []);
    assert.deepEqual(out.spec?.volumes, [
      { name: 'data', emptyDir: {} },
      { name: 'qbasis-token', projected: { sources: [{ serviceAccountToken: { audience: 'qbasis.io', expirationSeconds: 3600, path: 'token' } }] } },
      { name: 'qbasis-trust-bundle', configMap: { name: 'qbasis-root-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
    ]);
    const s = sidecars(out)[0]!;
    const e = env(s);
    assert.equal(e.QBASIS_DISCOVERY, 'qbasis-discovery.qbasis-system.svc:15012');
    assert.equal(e.QBASIS_TOKEN_FILE, '/var/run/secrets/qbasis.io/token/token');
    assert.equal(e.QBASIS_TRUST_BUNDLE, '/var/run/secrets/qbasis.io/trust/ca.crt');
    assert.deepEqual(s.volumeMounts?.map((m) => [m.name, m.mountPath, m.readOnly]), [
      ['qbasis-token', '/var/run/secrets/qbasis.io/token', true],
      ['qbasis-trust-bundle', '/var/run/secrets/qbasis.io/trust', true],
    ]);
    // A pod without volumes gets the list.
    const bare = injected(pod(annotated));
    assert.equal(bare.spec?.volumes, undefined, 'identity off: no volumes');
    const r2 = injectPod(pod(annotated), 'shop', idConfig);
    assert.equal(applyPatch(pod(annotated), r2.action === 'inject' ? r2.patch : []).spec?.volumes?.length, 2);
  });

  it('a legacy app with mesh identity gets the schema and the identity mounts together (one list, none lost)', () => {
    const legacy = { ...annotated, 'qbasis.io/app-protocol': 'http', 'qbasis.io/schema': 'orders-schema' };
    const r = injectPod(pod(legacy), 'shop', idConfig);
    const out = applyPatch(pod(legacy), r.action === 'inject' ? r.patch : []);
    assert.deepEqual(sidecars(out)[0]!.volumeMounts?.map((m) => m.name), ['qbasis-schema', 'qbasis-token', 'qbasis-trust-bundle']);
    assert.deepEqual(out.spec?.volumes?.map((v) => v.name).sort(), ['qbasis-schema', 'qbasis-token', 'qbasis-trust-bundle']);
  });

  it('a pod that already has a volume of that name gets no sidecar and a warning (refused under strict)', () => {
    const clash = pod(annotated, { volumes: [{ name: 'qbasis-token', emptyDir: {} }] });
    const r = injectPod(clash, 'shop', idConfig);
    assert.equal(r.action, 'skip');
    assert.ok(r.warnings.some((w) => /already has a volume named qbasis-token/.test(w)), r.warnings.join('; '));
    const strict = injectPod(clash, 'shop', { ...idConfig, strict: true });
    assert.equal(strict.action, 'refuse');
  });

  it('the identity part of the injection config is checked', () => {
    assert.deepEqual(mergeInjectionConfig(config, { identity: { discoveryAddress: 'x:15012' } }).identity, { discoveryAddress: 'x:15012', tokenExpirationSeconds: 3600 });
    assert.throws(() => mergeInjectionConfig(config, { identity: { discoveryAddress: '' } }), /identity\.discoveryAddress/);
    assert.throws(() => mergeInjectionConfig(config, { identity: { discoveryAddress: 'x:1', tokenExpirationSeconds: 60 } }), /from 600 to 86400/);
    assert.throws(() => mergeInjectionConfig(config, { identity: { discoveryAddress: 'x:1', audience: 'other' } }), /unknown key 'identity\.audience'/);
  });
});

describe('injection config', () => {
  it('overlays a partial JSON config and refuses unknown keys and wrong types', () => {
    const c = mergeInjectionConfig(defaultInjectionConfig(), { image: 'x:1', strict: true, ports: { admin: 16020 } });
    assert.equal(c.image, 'x:1');
    assert.equal(c.strict, true);
    assert.equal(c.ports.admin, 16020);
    assert.equal(c.ports.outbound, 15001);
    assert.throws(() => mergeInjectionConfig(defaultInjectionConfig(), { imag: 'x' }), /unknown key 'imag'/);
    assert.throws(() => mergeInjectionConfig(defaultInjectionConfig(), { ports: { admin: 70000 } }), /ports.admin/);
    assert.throws(() => mergeInjectionConfig(defaultInjectionConfig(), { resources: { requests: { cpu: 'much' } } }), /quantity/);
  });
});

describe('AdmissionReview handling', () => {
  const review = (object: unknown, namespace = 'shop', operation = 'CREATE') => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, operation, namespace, object },
  });

  it('answers with the request uid, a base64 JSONPatch and warnings', () => {
    const { review: out, decision } = admit(review(pod({ ...annotated, 'qbasis.io/app-port': 'x' })), config);
    assert.equal(decision, 'inject');
    assert.equal(out.response?.uid, 'u-1');
    assert.equal(out.response?.allowed, true);
    assert.equal(out.response?.patchType, 'JSONPatch');
    const patch = JSON.parse(Buffer.from(out.response!.patch!, 'base64').toString());
    assert.equal(patch[0].path, '/spec/initContainers');
    assert.equal(out.response?.warnings?.length, 2);
  });

  it('refuses under strict with a 400 status message, allows everything else untouched', () => {
    const strict = admit(review(pod({ ...annotated, 'qbasis.io/app-port': 'x' })), { ...config, strict: true }).review.response!;
    assert.equal(strict.allowed, false);
    assert.equal(strict.status?.code, 400);
    assert.match(strict.status?.message ?? '', /app-port/);
    const update = admit(review(pod(annotated), 'shop', 'UPDATE'), config);
    assert.equal(update.decision, 'ignored');
    assert.equal(update.review.response?.patch, undefined);
    assert.throws(() => admit({ kind: 'Nope' }, config), /AdmissionReview/);
  });
});
