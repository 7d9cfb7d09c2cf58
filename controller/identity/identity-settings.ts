// The flags of mesh identity and the settings they give (no X.509 library loaded to parse them).
import { DEFAULT_IDENTITY_PORT } from '../../proto/discovery.ts';
import { DEFAULT_TRUST_DOMAIN, trustDomainProblem } from '../../proto/identity.ts';
import { FlagError, type FlagSpec, type FlagValues } from '../flags.ts';

export const DEFAULT_CERT_LIFETIME_S = 86_400;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

export const IDENTITY_FLAG_SPECS: FlagSpec[] = [
  { name: 'identity-dir', kind: 'string', arg: '<dir>', help: 'local mode: mesh identity on; the CA root (ca.pem, ca-key.pem) and a token per pod (tokens/<ns>/<pod>) live here (made on first start)' },
  { name: 'identity-port', kind: 'port', default: String(DEFAULT_IDENTITY_PORT), help: 'TLS port for Certify and Discovery when identity is on (0 = any free port)' },
  { name: 'trust-domain', kind: 'string', default: DEFAULT_TRUST_DOMAIN, check: trustDomainProblem, help: 'trust domain of the SPIFFE IDs (spiffe://<trust domain>/ns/NS/sa/SA)' },
  { name: 'cert-lifetime', kind: 'number', min: 10, max: 31_536_000, default: String(DEFAULT_CERT_LIFETIME_S), expected: 'seconds from 10 to 31536000', help: 'seconds a workload certificate is valid (sidecars renew at half of it)' },
  { name: 'identity-san', kind: 'string', help: "extra DNS names or IPs for the controller's TLS certificate, comma-separated (sidecars dial one of them)" },
  { name: 'identity-secret', kind: 'string', arg: '<name>', help: "Kubernetes mode: mesh identity on; the CA root is the Secret <name> (tls.crt, tls.key) in the controller's namespace (--lease-namespace, else $POD_NAMESPACE)" },
  { name: 'identity-secret-mode', kind: 'enum', values: ['self', 'load'], default: 'self', help: "self: the leader makes the root when the Secret is absent or empty; load: only read it (the user's root, identity.issuer.existingSecret)" },
];

/** Where the root is kept: local mode's directory, or Kubernetes mode's Secret. */
export type RootStore =
  | { kind: 'dir'; dir: string }
  | { kind: 'secret'; namespace: string; name: string; mode: 'self' | 'load' };

export interface IdentitySettings {
  root: RootStore;
  host: string;
  port: number;
  trustDomain: string;
  lifetimeMs: number;
  /** SANs of the controller's own certificate. */
  hosts: string[];
  /** The controller's SPIFFE ID: its namespace and service account ($POD_SERVICE_ACCOUNT from the chart). */
  namespace: string;
  serviceAccount: string;
}

/** undefined: identity is off (no --identity-dir, no --identity-secret). */
export function identitySettings(flags: FlagValues, o: { localMode: boolean; discoveryAddress: string }): IdentitySettings | undefined {
  const dir = flags.get('identity-dir');
  const secret = flags.get('identity-secret');
  if (o.localMode && secret !== undefined) {
    throw new FlagError(`--identity-secret '${secret}' is for Kubernetes mode; local mode (--pods-file) keeps the root in --identity-dir <dir>`);
  }
  if (!o.localMode && dir !== undefined) {
    throw new FlagError(`--identity-dir '${dir}' is for local mode (--pods-file); Kubernetes mode keeps the root in a Secret: --identity-secret <name>`);
  }
  if (dir === undefined && secret === undefined) return undefined;
  if (secret !== undefined && !DNS_SUBDOMAIN.test(secret)) throw new FlagError(`--identity-secret '${secret.slice(0, 80)}' is invalid: expected a Secret name (a DNS subdomain)`);
  // The controller's namespace: where its Lease is (the chart's release namespace).
  const namespace = o.localMode ? (process.env.POD_NAMESPACE ?? 'qbasis-system') : (flags.get('lease-namespace') ?? process.env.POD_NAMESPACE ?? 'default');
  const extra = (flags.get('identity-san') ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
  const wildcard = o.discoveryAddress === '0.0.0.0' || o.discoveryAddress === '::';
  return {
    root: secret !== undefined ? { kind: 'secret', namespace, name: secret, mode: flags.get('identity-secret-mode') === 'load' ? 'load' : 'self' } : { kind: 'dir', dir: dir! },
    host: o.discoveryAddress,
    port: Number(flags.get('identity-port')),
    trustDomain: trustDomainOf(flags),
    lifetimeMs: Number(flags.get('cert-lifetime')) * 1000,
    hosts: [...new Set([...(wildcard ? [] : [o.discoveryAddress]), '127.0.0.1', 'localhost', ...extra])],
    namespace,
    serviceAccount: process.env.POD_SERVICE_ACCOUNT || 'qbasis-controller',
  };
}

export function trustDomainOf(flags: FlagValues): string {
  return flags.get('trust-domain') ?? DEFAULT_TRUST_DOMAIN;
}
