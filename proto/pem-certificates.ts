// A PEM trust bundle as its certificates: several roots side by side during a root rotation.
import { X509Certificate } from 'node:crypto';

const BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/** Each certificate block of `pem`, normalised to end in a newline. */
export function pemCertificates(pem: string): string[] {
  return (pem.match(BLOCK) ?? []).map((b) => b.trim() + '\n');
}

/** The roots of a bundle, or why it cannot be trusted: no certificate, one that is not a CA or not valid now. */
export function bundleRoots(pem: string, now = Date.now()): { roots: X509Certificate[]; pem: string } | string {
  const blocks = pemCertificates(pem);
  if (blocks.length === 0) return 'it holds no PEM certificate; expected the mesh root(s)';
  const roots: X509Certificate[] = [];
  for (const [i, b] of blocks.entries()) {
    let c: X509Certificate;
    try {
      c = new X509Certificate(b);
    } catch (err) {
      return `certificate ${i + 1} of ${blocks.length} cannot be parsed (${(err as Error).message})`;
    }
    if (!c.ca) return `certificate ${i + 1} of ${blocks.length} (${c.subject.replace(/\n/g, ', ')}) is not a CA certificate; expected the mesh root(s)`;
    if (now >= Date.parse(c.validTo)) return `certificate ${i + 1} of ${blocks.length} (${c.subject.replace(/\n/g, ', ')}) expired at ${c.validTo}`;
    roots.push(c);
  }
  return { roots, pem: blocks.join('') };
}

/** The SHA-256 fingerprints of a bundle's certificates (logs, the admin view). */
export function fingerprints(roots: readonly X509Certificate[]): string[] {
  return roots.map((r) => r.fingerprint256);
}
