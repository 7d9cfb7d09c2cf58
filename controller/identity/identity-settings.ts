// The flags of mesh identity and the settings they give (no X.509 library loaded to parse them).
import { DEFAULT_IDENTITY_PORT } from '../../proto/discovery.ts';
import { DEFAULT_TRUST_DOMAIN, trustDomainProblem } from '../../proto/identity.ts';
import { FlagError, type FlagSpec, type FlagValues } from '../flags.ts';

export const DEFAULT_CERT_LIFETIME_S = 86_400;

export const IDENTITY_FLAG_SPECS: FlagSpec[] = [
  { name: 'identity-dir', kind: 'string', arg: '<dir>', help: 'local mode: mesh identity on; the CA root (ca.pem, ca-key.pem) and a token per pod (tokens/<ns>/<pod>) live here (made on first start)' },
  { name: 'identity-port', kind: 'port', default: String(DEFAULT_IDENTITY_PORT), help: 'TLS port for Certify and Discovery when identity is on (0 = any free port)' },
  { name: 'trust-domain', kind: 'string', default: DEFAULT_TRUST_DOMAIN, check: trustDomainProblem, help: 'trust domain of the SPIFFE IDs (spiffe://<trust domain>/ns/NS/sa/SA)' },
  { name: 'cert-lifetime', kind: 'number', min: 10, max: 31_536_000, default: String(DEFAULT_CERT_LIFETIME_S), expected: 'seconds from 10 to 31536000', help: 'seconds a workload certificate is valid (sidecars renew at half of it)' },
  { name: 'identity-san', kind: 'string', help: "extra DNS names or IPs for the controller's TLS certificate, comma-separated (sidecars dial one of them)" },
];

export interface IdentitySettings {
  dir: string;
  host: string;
  port: number;
  trustDomain: string;
  lifetimeMs: number;
  /** SANs of the controller's own certificate. */
  hosts: string[];
  /** The controller's SPIFFE ID (its namespace, service account qbasis-controller). */
  namespace: string;
}

/** undefined: identity is off (no --identity-dir). */
export function identitySettings(flags: FlagValues, o: { localMode: boolean; discoveryAddress: string }): IdentitySettings | undefined {
  const dir = flags.get('identity-dir');
  if (dir === undefined) return undefined;
  if (!o.localMode) {
    throw new FlagError('--identity-dir is for local mode (--pods-file); mesh identity in Kubernetes mode (TokenReview, the root in a Secret) is not implemented yet');
  }
  const extra = (flags.get('identity-san') ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
  const wildcard = o.discoveryAddress === '0.0.0.0' || o.discoveryAddress === '::';
  return {
    dir,
    host: o.discoveryAddress,
    port: Number(flags.get('identity-port')),
    trustDomain: trustDomainOf(flags),
    lifetimeMs: Number(flags.get('cert-lifetime')) * 1000,
    hosts: [...new Set([...(wildcard ? [] : [o.discoveryAddress]), '127.0.0.1', 'localhost', ...extra])],
    namespace: process.env.POD_NAMESPACE ?? 'qbasis-system',
  };
}

export function trustDomainOf(flags: FlagValues): string {
  return flags.get('trust-domain') ?? DEFAULT_TRUST_DOMAIN;
}
