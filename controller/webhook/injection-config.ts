// What the injector puts into a pod, before per-pod annotation overrides. Read once at start from the
// chart's mounted ConfigMap (JSON), then flags on top; a change of values rolls the controller (checksum).
import { readFileSync } from 'node:fs';
import { QbasisError } from '../../proto/errors.ts';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface SidecarResources {
  requests: { cpu?: string; memory?: string };
  limits: { cpu?: string; memory?: string };
}

export interface ContainerSecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string; localhostProfile?: string };
}

export interface InjectionConfig {
  /** The controller's own namespace: never injected, whatever the webhook configuration says. */
  controllerNamespace: string;
  image: string;
  imagePullPolicy: PullPolicy;
  /** host:port of the discovery Service the sidecars subscribe to. */
  discoveryAddress: string;
  /** Refuse pods whose qbasis annotations are invalid instead of warning. */
  strict: boolean;
  ports: { outbound: number; inbound: number; admin: number };
  gracePeriodSeconds: number;
  resources: SidecarResources;
  securityContext: ContainerSecurityContext;
  /**
   * Mesh identity on: the sidecar mounts a projected ServiceAccount token (audience qbasis.io) and the
   * trust-bundle ConfigMap, and subscribes to the controller's TLS port instead of `discoveryAddress`.
   */
  identity?: { discoveryAddress: string; tokenExpirationSeconds: number };
}

export const DEFAULT_SECURITY_CONTEXT: ContainerSecurityContext = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export function defaultInjectionConfig(): InjectionConfig {
  return {
    controllerNamespace: 'qbasis-system',
    image: 'qbasis/qbasis:0.1.0',
    imagePullPolicy: 'IfNotPresent',
    discoveryAddress: 'qbasis-discovery.qbasis-system.svc:15010',
    strict: false,
    ports: { outbound: 15001, inbound: 15006, admin: 15020 },
    gracePeriodSeconds: 5,
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    securityContext: structuredClone(DEFAULT_SECURITY_CONTEXT),
  };
}

const KEYS = new Set(['controllerNamespace', 'image', 'imagePullPolicy', 'discoveryAddress', 'strict', 'ports', 'gracePeriodSeconds', 'resources', 'securityContext', 'identity']);

function bad(message: string): QbasisError {
  return new QbasisError('QB_INVALID_FLAG', `injection config: ${message}`);
}

function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Overlay a partial config (the ConfigMap's JSON) on `base`; unknown keys and wrong types are refused. */
export function mergeInjectionConfig(base: InjectionConfig, raw: unknown): InjectionConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('expected a JSON object');
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KEYS.has(k)) throw bad(`unknown key '${k}'; expected one of ${[...KEYS].join(', ')}`);
  const out = structuredClone(base);
  const str = (k: string): string | undefined => {
    const v = r[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length === 0) throw bad(`'${k}' must be a non-empty string`);
    return v;
  };
  out.controllerNamespace = str('controllerNamespace') ?? out.controllerNamespace;
  out.image = str('image') ?? out.image;
  out.discoveryAddress = str('discoveryAddress') ?? out.discoveryAddress;
  const pull = str('imagePullPolicy');
  if (pull !== undefined) {
    if (pull !== 'Always' && pull !== 'IfNotPresent' && pull !== 'Never') throw bad(`'imagePullPolicy' must be Always, IfNotPresent or Never, not '${pull}'`);
    out.imagePullPolicy = pull;
  }
  if (r.strict !== undefined) {
    if (typeof r.strict !== 'boolean') throw bad("'strict' must be a boolean");
    out.strict = r.strict;
  }
  if (r.gracePeriodSeconds !== undefined) {
    const g = r.gracePeriodSeconds;
    if (typeof g !== 'number' || !Number.isInteger(g) || g < 0 || g > 3600) throw bad("'gracePeriodSeconds' must be an integer from 0 to 3600");
    out.gracePeriodSeconds = g;
  }
  if (r.ports !== undefined) {
    const p = r.ports as Record<string, unknown>;
    for (const k of ['outbound', 'inbound', 'admin'] as const) {
      if (p[k] !== undefined) {
        if (!isPort(p[k])) throw bad(`'ports.${k}' must be a port number from 1 to 65535`);
        out.ports[k] = p[k];
      }
    }
  }
  if (r.resources !== undefined) {
    const res = r.resources as { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
    // Helm values may hold `cpu: 1` as a number; quantities are strings to Kubernetes.
    const str = (o: Record<string, unknown> | undefined) => Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, typeof v === 'number' ? String(v) : v]));
    out.resources = { requests: str(res.requests), limits: str(res.limits) } as SidecarResources;
    for (const [k, v] of [...Object.entries(out.resources.requests), ...Object.entries(out.resources.limits)]) {
      if (typeof v !== 'string' || !isQuantity(v)) throw bad(`resource '${k}' must be a Kubernetes quantity, not ${JSON.stringify(v)}`);
    }
  }
  if (r.identity !== undefined && r.identity !== null) {
    const id = r.identity as Record<string, unknown>;
    if (typeof id !== 'object' || Array.isArray(id)) throw bad("'identity' must be an object");
    for (const k of Object.keys(id)) if (k !== 'discoveryAddress' && k !== 'tokenExpirationSeconds') throw bad(`unknown key 'identity.${k}'; expected discoveryAddress, tokenExpirationSeconds`);
    if (typeof id.discoveryAddress !== 'string' || id.discoveryAddress === '') throw bad("'identity.discoveryAddress' must be a non-empty string (host:port of the controller's TLS port)");
    const exp = id.tokenExpirationSeconds ?? 3600;
    // The API server's bounds for a projected token: at least 10 minutes; at most what its flags allow (2^32 s here).
    if (typeof exp !== 'number' || !Number.isInteger(exp) || exp < 600 || exp > 86_400) throw bad("'identity.tokenExpirationSeconds' must be an integer from 600 to 86400");
    out.identity = { discoveryAddress: id.discoveryAddress, tokenExpirationSeconds: exp };
  }
  if (r.securityContext !== undefined) {
    if (typeof r.securityContext !== 'object' || r.securityContext === null) throw bad("'securityContext' must be an object");
    out.securityContext = structuredClone(r.securityContext) as ContainerSecurityContext;
  }
  return out;
}

export function loadInjectionConfig(path: string, base: InjectionConfig = defaultInjectionConfig()): InjectionConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new QbasisError('QB_INVALID_FLAG', `injection config ${path}: cannot read it as JSON (${(err as Error).message})`, { cause: err });
  }
  return mergeInjectionConfig(base, raw);
}

// Kubernetes resource.Quantity, decimal and binary suffixes (no exponent form: nobody writes it by hand).
const QUANTITY = /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

export function isQuantity(value: string): boolean {
  return QUANTITY.test(value);
}
