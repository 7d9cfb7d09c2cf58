// X.509 for the webhook and the mesh CA (controller/identity/): a self-signed CA and leaf certificates it signs.
// Keys and verification use node:crypto; only building certificates needs @peculiar/x509 (Node has no API).
import 'reflect-metadata'; // @peculiar/x509 → tsyringe needs the Reflect metadata polyfill loaded first
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, KeyObject, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export type { CryptoKey };
export const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface KeyPairPem {
  cert: string;
  key: string;
}

/** What the webhook Secret holds. */
export interface ServingBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

export async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export function keyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0] ?? 0) & 0x7f; // positive INTEGER
  return Buffer.from(b).toString('hex');
}

/** Back-date a little: clocks of API server and controller differ. */
function validity(days: number, now: Date): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now.getTime() - 5 * 60_000), notAfter: new Date(now.getTime() + days * DAY) };
}

export async function createCa(commonName: string, days: number, now = new Date()): Promise<KeyPairPem> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    ...validity(days, now),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: keyPem(keys.privateKey) };
}

/** A TLS server certificate for `hosts` (DNS names and IP addresses), signed by `ca`. */
export async function issueServingCert(ca: KeyPairPem, hosts: readonly string[], days: number, now = new Date()): Promise<KeyPairPem> {
  if (hosts.length === 0) throw new Error('a serving certificate needs at least one host');
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = createPrivateKey(ca.key).toCryptoKey(EC, false, ['sign']) as CryptoKey;
  const keys = await newKeys();
  const names = hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${hosts[0]}`,
    issuer: caCert.subject,
    ...validity(days, now),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: keyPem(keys.privateKey) };
}

export async function createServingBundle(hosts: readonly string[], opts: { caDays: number; certDays: number; now?: Date }): Promise<ServingBundle> {
  const ca = await createCa('qbasis-webhook-ca', opts.caDays, opts.now);
  const leaf = await issueServingCert(ca, hosts, opts.certDays, opts.now);
  return { caCert: ca.cert, caKey: ca.key, cert: leaf.cert, key: leaf.key };
}

/**
 * Why the bundle cannot be served as is (undefined: it is fine). Renew at two thirds of the lifetime, so
 * every replica picks the new certificate up long before the old one ends.
 */
export function bundleProblem(b: ServingBundle, hosts: readonly string[], now = new Date()): string | undefined {
  let ca: X509Certificate;
  let leaf: X509Certificate;
  try {
    ca = new X509Certificate(b.caCert);
    leaf = new X509Certificate(b.cert);
    const key = createPrivateKey(b.key);
    if (!leaf.checkPrivateKey(key)) return 'the key does not match the certificate';
    createPrivateKey(b.caKey);
  } catch (err) {
    return `unreadable certificate or key (${(err as Error).message})`;
  }
  if (!leaf.verify(ca.publicKey)) return 'the certificate is not signed by the CA';
  const t = now.getTime();
  for (const [what, c] of [['CA', ca], ['certificate', leaf]] as const) {
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    if (t < from || t >= to) return `the ${what} is not valid now (valid ${c.validFrom} to ${c.validTo})`;
    if (t > from + ((to - from) * 2) / 3) return `the ${what} is past two thirds of its lifetime (ends ${c.validTo})`;
  }
  for (const h of hosts) {
    const ok = isIP(h) ? leaf.checkIP(h) !== undefined : leaf.checkHost(h, { subject: 'never', wildcards: false }) !== undefined;
    if (!ok) return `the certificate does not name ${h}`;
  }
  return undefined;
}
