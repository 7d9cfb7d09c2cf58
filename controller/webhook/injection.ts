// Pod + injection config → JSONPatch that adds the qbasis sidecar. Pure and idempotent: a pod that already
// carries the sidecar (or the injected mark) gets an empty patch, so re-invocation changes nothing.
import type { V1Container, V1EnvVar, V1Pod, V1Volume } from '@kubernetes/client-node';
import { ANNOTATIONS, describeProblem, parsePodAnnotations } from '../../proto/annotations.ts';
import { TOKEN_AUDIENCE } from '../../proto/identity.ts';
import type { AnnotationProblem } from '../../proto/annotations.ts';
import { isQuantity } from './injection-config.ts';
import type { InjectionConfig, SidecarResources } from './injection-config.ts';

export const SIDECAR_NAME = 'qbasis-sidecar';

/** Mesh identity's volumes and where the sidecar finds them (the ConfigMap is the controller's trust-bundle.ts). */
export const IDENTITY_VOLUMES = {
  token: { name: 'qbasis-token', mountPath: '/var/run/secrets/qbasis.io/token', file: 'token' },
  bundle: { name: 'qbasis-trust-bundle', mountPath: '/var/run/secrets/qbasis.io/trust', file: 'ca.crt', configMap: 'qbasis-root-ca' },
} as const;

function identityVolumes(expirationSeconds: number): V1Volume[] {
  const { token, bundle } = IDENTITY_VOLUMES;
  return [
    { name: token.name, projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds, path: token.file } }] } },
    { name: bundle.name, configMap: { name: bundle.configMap, items: [{ key: bundle.file, path: bundle.file }] } },
  ];
}

/** Per-pod overrides of the chart's sidecar defaults (documented in charts/README.md). */
export const OVERRIDE_ANNOTATIONS = {
  image: 'qbasis.io/sidecar-image',
  cpuRequest: 'qbasis.io/sidecar-cpu-request',
  cpuLimit: 'qbasis.io/sidecar-cpu-limit',
  memoryRequest: 'qbasis.io/sidecar-memory-request',
  memoryLimit: 'qbasis.io/sidecar-memory-limit',
  gracePeriod: 'qbasis.io/grace-period-seconds',
} as const;

/** Set on injected pods: the mark that makes injection idempotent. */
export const INJECTED_ANNOTATION = 'qbasis.io/injected';
export const INJECTOR_VERSION = 'v1';

export interface JsonPatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

export type InjectionResult =
  | { action: 'skip'; reason: string; warnings: string[] }
  | { action: 'inject'; patch: JsonPatchOp[]; warnings: string[] }
  | { action: 'refuse'; message: string; warnings: string[] };

function pointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Invalid qbasis annotations are left out of the sidecar's env (the pod still runs, undiscovered for them). */
function overrides(annotations: Record<string, string>, config: InjectionConfig, problems: AnnotationProblem[]): { image: string; resources: SidecarResources; grace: number } {
  const image = annotations[OVERRIDE_ANNOTATIONS.image];
  const out = { image: config.image, resources: structuredClone(config.resources), grace: config.gracePeriodSeconds };
  if (image !== undefined) {
    if (image.trim() === '' || /\s/.test(image)) problems.push({ annotation: OVERRIDE_ANNOTATIONS.image, value: image, expected: 'an image reference without spaces' });
    else out.image = image;
  }
  const quantities: [string, 'requests' | 'limits', 'cpu' | 'memory'][] = [
    [OVERRIDE_ANNOTATIONS.cpuRequest, 'requests', 'cpu'],
    [OVERRIDE_ANNOTATIONS.cpuLimit, 'limits', 'cpu'],
    [OVERRIDE_ANNOTATIONS.memoryRequest, 'requests', 'memory'],
    [OVERRIDE_ANNOTATIONS.memoryLimit, 'limits', 'memory'],
  ];
  for (const [name, kind, res] of quantities) {
    const v = annotations[name];
    if (v === undefined) continue;
    if (!isQuantity(v)) problems.push({ annotation: name, value: v, expected: 'a Kubernetes quantity, e.g. 100m or 128Mi' });
    else out.resources[kind][res] = v;
  }
  const g = annotations[OVERRIDE_ANNOTATIONS.gracePeriod];
  if (g !== undefined) {
    const n = /^\d{1,4}$/.test(g) ? Number(g) : NaN;
    if (!(n >= 0 && n <= 3600)) problems.push({ annotation: OVERRIDE_ANNOTATIONS.gracePeriod, value: g, expected: 'whole seconds from 0 to 3600' });
    else out.grace = n;
  }
  return out;
}

function cleanResources(r: SidecarResources): { requests?: Record<string, string>; limits?: Record<string, string> } {
  const pick = (o: Record<string, string | undefined>): Record<string, string> | undefined => {
    const e = Object.entries(o).filter((kv): kv is [string, string] => kv[1] !== undefined);
    return e.length > 0 ? Object.fromEntries(e) : undefined;
  };
  const out: { requests?: Record<string, string>; limits?: Record<string, string> } = {};
  const req = pick(r.requests);
  const lim = pick(r.limits);
  if (req) out.requests = req;
  if (lim) out.limits = lim;
  return out;
}

/** The native sidecar container (init container with restartPolicy Always). */
export function sidecarContainer(annotations: Record<string, string>, config: InjectionConfig, problems: AnnotationProblem[]): V1Container {
  const bad = new Set(problems.map((p) => p.annotation));
  const o = overrides(annotations, config, problems);
  const env: V1EnvVar[] = [
    { name: 'QBASIS_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'QBASIS_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'QBASIS_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'QBASIS_DISCOVERY', value: config.identity?.discoveryAddress ?? config.discoveryAddress },
    // The app dials localhost:15001 (DESIGN.md) and listens in the same network namespace; loopback keeps
    // the outbound proxy unreachable from outside the pod.
    { name: 'QBASIS_OUTBOUND_HOST', value: '127.0.0.1' },
    { name: 'QBASIS_APP_HOST', value: '127.0.0.1' },
  ];
  const fromAnnotation: [string, string][] = [
    ['QBASIS_PROVIDES', ANNOTATIONS.provides],
    ['QBASIS_REQUIRES', ANNOTATIONS.requires],
    ['QBASIS_APP_PORT', ANNOTATIONS.appPort],
    ['QBASIS_APP_PROTOCOL', ANNOTATIONS.appProtocol],
  ];
  for (const [name, annotation] of fromAnnotation) {
    const v = annotations[annotation];
    if (v !== undefined && !bad.has(annotation)) env.push({ name, value: v.trim() });
  }
  const schema = schemaConfigMap(annotations, problems);
  if (schema !== undefined) env.push({ name: 'QBASIS_SCHEMA', value: SCHEMA_MOUNT });
  env.push(
    { name: 'QBASIS_OUTBOUND_PORT', value: String(config.ports.outbound) },
    { name: 'QBASIS_INBOUND_PORT', value: String(config.ports.inbound) },
    { name: 'QBASIS_ADMIN_PORT', value: String(config.ports.admin) },
    { name: 'QBASIS_GRACE_PERIOD', value: String(o.grace) },
  );
  const { token, bundle } = IDENTITY_VOLUMES;
  if (config.identity !== undefined) {
    env.push(
      { name: 'QBASIS_TOKEN_FILE', value: `${token.mountPath}/${token.file}` },
      { name: 'QBASIS_TRUST_BUNDLE', value: `${bundle.mountPath}/${bundle.file}` },
    );
  }
  const admin = config.ports.admin;
  const probe = (path: string, period: number, failures: number) => ({
    httpGet: { path, port: admin },
    periodSeconds: period,
    failureThreshold: failures,
    timeoutSeconds: 1,
  });
  const mounts = [
    ...(schema !== undefined ? [{ name: SCHEMA_VOLUME, mountPath: SCHEMA_MOUNT, readOnly: true }] : []),
    ...(config.identity === undefined ? [] : [
      { name: token.name, mountPath: token.mountPath, readOnly: true },
      { name: bundle.name, mountPath: bundle.mountPath, readOnly: true },
    ]),
  ];
  return {
    name: SIDECAR_NAME,
    image: o.image,
    imagePullPolicy: config.imagePullPolicy,
    args: ['sidecar'],
    restartPolicy: 'Always',
    env,
    ports: [
      { name: 'qb-outbound', containerPort: config.ports.outbound, protocol: 'TCP' },
      { name: 'qb-inbound', containerPort: config.ports.inbound, protocol: 'TCP' },
      { name: 'qb-admin', containerPort: admin, protocol: 'TCP' },
    ],
    // Startup gates the app's containers: Kubernetes starts them once the sidecar has its routes (/started:
    // a snapshot for every required API), so the app's first call already finds a provider.
    startupProbe: probe('/started', 1, 120),
    readinessProbe: probe('/ready', 2, 3),
    livenessProbe: probe('/live', 10, 3),
    resources: cleanResources(o.resources),
    securityContext: structuredClone(config.securityContext),
    // One list for every mount: a legacy app's schema and the identity volumes together.
    ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
  } as V1Container;
}

/** The legacy app's gateway converts with the API schema of this ConfigMap, mounted read-only (DESIGN.md, "Legacy apps"). */
export const SCHEMA_VOLUME = 'qbasis-schema';
export const SCHEMA_MOUNT = '/etc/qbasis/schema';

/** The qbasis.io/schema ConfigMap of an app-protocol http pod whose annotations are valid; else undefined. */
function schemaConfigMap(annotations: Record<string, string>, problems: AnnotationProblem[]): string | undefined {
  const bad = new Set(problems.map((p) => p.annotation));
  if (annotations[ANNOTATIONS.appProtocol] !== 'http' || bad.has(ANNOTATIONS.schema) || bad.has(ANNOTATIONS.appProtocol)) return undefined;
  return annotations[ANNOTATIONS.schema];
}

function alreadyInjected(pod: V1Pod): boolean {
  if (pod.metadata?.annotations?.[INJECTED_ANNOTATION] !== undefined) return true;
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  return all.some((c) => c.name === SIDECAR_NAME);
}

function portClashes(pod: V1Pod, config: InjectionConfig): string[] {
  const ours = new Set([config.ports.outbound, config.ports.inbound, config.ports.admin]);
  const out: string[] = [];
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const p of c.ports ?? []) {
      if (ours.has(p.containerPort)) out.push(`container ${c.name} uses port ${p.containerPort}, which the qbasis sidecar needs`);
    }
  }
  return out;
}

/**
 * Decide what to do with one pod. `namespace` is the request's namespace (a pod being created may not
 * carry it in metadata yet).
 */
export function injectPod(pod: V1Pod, namespace: string, config: InjectionConfig): InjectionResult {
  const annotations = (pod.metadata?.annotations ?? {}) as Record<string, string>;
  if (namespace === config.controllerNamespace) return { action: 'skip', reason: `namespace ${namespace} is the controller's own`, warnings: [] };
  const parsed = parsePodAnnotations(annotations);
  const problems: AnnotationProblem[] = parsed.ok ? [] : [...parsed.problems];
  const injectProblem = problems.some((p) => p.annotation === ANNOTATIONS.inject);
  const wantsInject = annotations[ANNOTATIONS.inject] === 'true';
  if (!wantsInject && !injectProblem) return { action: 'skip', reason: `no ${ANNOTATIONS.inject}: "true"`, warnings: [] };
  if (alreadyInjected(pod)) return { action: 'skip', reason: 'already injected', warnings: [] };

  const container = injectProblem ? undefined : sidecarContainer(annotations, config, problems);
  const warnings = problems.map((p) => `qbasis: ${describeProblem(p)}`);
  if (injectProblem) warnings.push('qbasis: sidecar not injected');
  else if (problems.length > 0) warnings.push('qbasis: the invalid values are left out of the sidecar; the pod is not discovered for them');
  if (problems.length > 0 && config.strict) {
    return { action: 'refuse', message: `qbasis (strict): ${problems.map(describeProblem).join('; ')}`, warnings: [] };
  }
  if (container === undefined) return { action: 'skip', reason: 'invalid inject annotation', warnings };
  // A pod that only calls (a caller, a Job) needs no app port; one that provides an API does.
  if (annotations[ANNOTATIONS.appPort] === undefined && (annotations[ANNOTATIONS.provides] ?? '').trim() !== '') {
    warnings.push(`qbasis: no ${ANNOTATIONS.appPort} annotation; the pod provides an API, and its sidecar needs the port the app listens on to pass calls to it (the sidecar will not start without it)`);
  }
  const clashes = portClashes(pod, config);
  if (clashes.length > 0) {
    if (config.strict) return { action: 'refuse', message: `qbasis (strict): ${clashes.join('; ')}`, warnings: [] };
    warnings.push(...clashes.map((c) => `qbasis: ${c}`));
  }

  if (annotations[ANNOTATIONS.schema] !== undefined && annotations[ANNOTATIONS.appProtocol] !== 'http') {
    warnings.push(`qbasis: ${ANNOTATIONS.schema} is used only with ${ANNOTATIONS.appProtocol}: "http"; ignored`);
  }
  const patch: JsonPatchOp[] = [];
  const newVolumes: V1Volume[] = [];
  const schema = schemaConfigMap(annotations, problems);
  if (schema !== undefined) {
    // optional: false — a missing ConfigMap keeps the pod Pending with an event naming it, rather than a sidecar without its schema.
    newVolumes.push({ name: SCHEMA_VOLUME, configMap: { name: schema, optional: false } });
  }
  // First among init containers: later init containers (migrations, warm-ups) can already call through it.
  if (pod.spec?.initContainers === undefined || pod.spec.initContainers.length === 0) {
    patch.push({ op: 'add', path: '/spec/initContainers', value: [container] });
  } else {
    patch.push({ op: 'add', path: '/spec/initContainers/0', value: container });
  }
  if (config.identity !== undefined) {
    const volumes = identityVolumes(config.identity.tokenExpirationSeconds);
    const have = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
    const clash = volumes.find((v) => have.has(v.name));
    if (clash !== undefined) {
      const message = `pod already has a volume named ${clash.name}, which the qbasis sidecar needs for its identity`;
      if (config.strict) return { action: 'refuse', message: `qbasis (strict): ${message}`, warnings: [] };
      return { action: 'skip', reason: message, warnings: [...warnings, `qbasis: ${message}; sidecar not injected`] };
    }
    newVolumes.push(...volumes);
  }
  // One add for a pod without volumes: two would each create the list, and the second would drop the first's.
  if (newVolumes.length > 0) {
    if (pod.spec?.volumes === undefined) patch.push({ op: 'add', path: '/spec/volumes', value: newVolumes });
    else for (const v of newVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  }
  if (pod.metadata?.annotations === undefined) {
    patch.push({ op: 'add', path: '/metadata/annotations', value: { [INJECTED_ANNOTATION]: INJECTOR_VERSION } });
  } else {
    patch.push({ op: 'add', path: `/metadata/annotations/${pointer(INJECTED_ANNOTATION)}`, value: INJECTOR_VERSION });
  }
  return { action: 'inject', patch, warnings };
}

/** Apply our own patch ops (only the shapes injectPod emits) — for tests and the dry-run CLI path. */
export function applyPatch<T>(doc: T, patch: readonly JsonPatchOp[]): T {
  const out = structuredClone(doc) as unknown;
  for (const op of patch) {
    const parts = op.path.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = parts.pop();
    if (last === undefined) throw new Error(`bad patch path ${op.path}`);
    let target = out as Record<string, unknown>;
    for (const p of parts) target = target[p] as Record<string, unknown>;
    if (Array.isArray(target)) {
      const idx = last === '-' ? target.length : Number(last);
      if (op.op === 'add') target.splice(idx, 0, op.value);
      else if (op.op === 'replace') target[idx] = op.value;
      else target.splice(idx, 1);
    } else if (op.op === 'remove') {
      delete target[last];
    } else {
      target[last] = op.value;
    }
  }
  return out as T;
}
