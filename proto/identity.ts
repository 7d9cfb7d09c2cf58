// Mesh identity, the part both sides share: SPIFFE IDs (DESIGN.md "Security"), how one is read from a
// certificate, and the qbasis.identity.v1.Identity service (proto/identity.proto, types in generated/).
import path from 'node:path';
import { lazyPackage } from './discovery.ts';
import type { ProtoGrpcType } from './generated/identity.ts';
import type { IdentityClient, IdentityDefinition } from './generated/qbasis/identity/v1/Identity.ts';
import type { CertifyRequest, CertifyRequest__Output } from './generated/qbasis/identity/v1/CertifyRequest.ts';
import type { CertifyResponse, CertifyResponse__Output } from './generated/qbasis/identity/v1/CertifyResponse.ts';

export type { CertifyRequest, CertifyRequest__Output, CertifyResponse, CertifyResponse__Output, IdentityClient, IdentityDefinition };

export const IDENTITY_PROTO_PATH = path.join(import.meta.dirname, 'identity.proto');
export const IDENTITY_SERVICE = 'qbasis.identity.v1.Identity';
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
/** The audience of the projected ServiceAccount tokens sidecars present (Kubernetes mode). */
export const TOKEN_AUDIENCE = 'qbasis.io';
/** Largest CSR the controller reads (a P-256 request is ~230 bytes DER, ~400 PEM). */
export const MAX_CSR_BYTES = 8 * 1024;
/** Largest token the controller reads (a projected ServiceAccount token is ~1 KB). */
export const MAX_TOKEN_BYTES = 16 * 1024;

export interface MeshIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export function spiffeId(id: MeshIdentity): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/**
 * A trust domain, namespace and ServiceAccount name as Kubernetes allows them (DNS labels and
 * subdomains, lower case): no '*', no '/', nothing a certificate could use to name two things.
 */
const NAME = '[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?';
const STRICT_ID = new RegExp(`^spiffe://(${NAME})/ns/(${NAME})/sa/(${NAME})$`);

/** A SPIFFE ID as a certificate names a workload; undefined for anything else. */
export function parseSpiffeId(id: string): MeshIdentity | undefined {
  const m = STRICT_ID.exec(id);
  return m === null ? undefined : { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
}

/** The trust domain flag's rule (a DNS name, lower case). */
export function trustDomainProblem(td: string): string | undefined {
  return new RegExp(`^${NAME}$`).test(td) ? undefined : 'expected a trust domain such as cluster.local (lower-case letters, digits, dots and dashes)';
}

/**
 * The URI SANs of a certificate from Node's `subjectaltname` text ("DNS:a, URI:spiffe://…, IP Address:…").
 * Node writes a name that holds a comma or quote as a JSON string ("URI:\"…\""); those are returned
 * decoded, so a caller comparing exactly never mistakes one name for two.
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === '') return [];
  const out: string[] = [];
  let i = 0;
  const s = subjectAltName;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const kind = s.slice(i, colon);
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      // A JSON string: find its closing quote (backslash escapes).
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      } catch {
        return out; // malformed: stop, names read so far stay
      }
      next = s.indexOf(', ', j + 1);
    } else {
      next = s.indexOf(', ', colon + 1);
      value = s.slice(colon + 1, next < 0 ? s.length : next);
    }
    if (kind === 'URI') out.push(value);
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** The one SPIFFE ID a mesh certificate names; undefined when it names none, several, or a malformed one. */
export function meshIdentityOf(subjectAltName: string | undefined): string | undefined {
  const uris = uriSans(subjectAltName);
  if (uris.length !== 1) return undefined;
  return parseSpiffeId(uris[0]!) === undefined ? undefined : uris[0];
}

const identityPackage = lazyPackage<ProtoGrpcType>(IDENTITY_PROTO_PATH);

export function identityServiceDefinition(): IdentityDefinition {
  return identityPackage().qbasis.identity.v1.Identity.service;
}

export function identityClientConstructor(): ProtoGrpcType['qbasis']['identity']['v1']['Identity'] {
  return identityPackage().qbasis.identity.v1.Identity;
}
