// The mesh's certificate authority: an ECDSA P-256 root (10 years) that signs short-lived workload
// certificates (X.509-SVIDs: one URI SAN, the SPIFFE ID) and the controller's own serving certificate.
// A certificate never outlives the root. Building certificates needs @peculiar/x509 over WebCrypto
// (Node can verify certificates but not issue them); keys stay node:crypto/WebCrypto keys.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { createCa, EC, keyPem, newKeys, randomSerial, SIGN, x509, type CryptoKey, type KeyPairPem } from '../webhook/certificates.ts';

export const ROOT_LIFETIME_DAYS = 3650;
/** Clocks differ a little between the controller and the pods: certificates start this much earlier. */
const BACKDATE_MS = 60_000;

export interface IssuedCertificate {
  /** PEM of the leaf. */
  cert: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

export class CertificateAuthority {
  /** PEM of the root: the trust bundle sidecars verify peers and the controller with. */
  readonly rootPem: string;
  /** What sidecars trust: this root, then the other roots kept beside it during a rotation. */
  readonly trustBundlePem: string;
  readonly #rootKey: CryptoKey;
  readonly #root: x509.X509Certificate;
  readonly notBefore: Date;
  readonly notAfter: Date;

  private constructor(rootPem: string, rootKey: CryptoKey, otherRoots: readonly string[]) {
    this.rootPem = rootPem;
    const own = rootPem.trim();
    this.trustBundlePem = [rootPem, ...otherRoots.filter((r) => r.trim() !== own)].map((r) => r.trim() + '\n').join('');
    this.#rootKey = rootKey;
    this.#root = new x509.X509Certificate(rootPem);
    this.notBefore = this.#root.notBefore;
    this.notAfter = this.#root.notAfter;
  }

  /** A new root for `trustDomain`. */
  static async create(trustDomain: string, now = new Date()): Promise<{ ca: CertificateAuthority; keyPem: string }> {
    const root = await createCa(`qbasis mesh root (${trustDomain})`, ROOT_LIFETIME_DAYS, now);
    return { ca: CertificateAuthority.load(root), keyPem: root.key };
  }

  /**
   * A root from its PEM; throws with what is wrong (not a CA, the key does not match, expired).
   * `otherRoots`: roots trusted beside it (the previous or the next during a rotation), checked by the caller.
   */
  static load(pem: KeyPairPem, now = new Date(), otherRoots: readonly string[] = []): CertificateAuthority {
    const cert = new X509Certificate(pem.cert);
    const key: KeyObject = createPrivateKey(pem.key);
    if (!cert.ca) throw new Error('the certificate is not a CA certificate (basicConstraints CA:TRUE)');
    if (!cert.checkPrivateKey(key)) throw new Error('the key does not match the certificate');
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('the key is not an ECDSA P-256 key');
    if (!cert.verify(cert.publicKey)) throw new Error('the certificate is not self-signed (only a root can sign here)');
    const t = now.getTime();
    if (t < Date.parse(cert.validFrom) || t >= Date.parse(cert.validTo)) throw new Error(`the root is not valid now (valid ${cert.validFrom} to ${cert.validTo})`);
    return new CertificateAuthority(pem.cert, key.toCryptoKey(EC, false, ['sign']) as CryptoKey, otherRoots);
  }

  /**
   * A workload certificate for `spiffeId` over `publicKey` (the CSR's): digital signature, client and
   * server auth, the SPIFFE ID as its one (critical) SAN; no other name, whatever the CSR asked for.
   */
  signWorkload(publicKey: CryptoKey, spiffeId: string, lifetimeMs: number, now = new Date()): Promise<IssuedCertificate> {
    return this.#sign(publicKey, {
      subject: `O=qbasis`,
      names: [{ type: 'url', value: spiffeId }],
      usages: x509.KeyUsageFlags.digitalSignature,
      eku: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
      lifetimeMs,
      now,
    });
  }

  /** The controller's own TLS certificate (port 15012): its host names and IPs, plus its SPIFFE ID. */
  async issueServing(hosts: readonly string[], spiffeId: string, lifetimeMs: number, now = new Date()): Promise<IssuedCertificate & { key: string }> {
    const keys = await newKeys();
    const names = hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
    const issued = await this.#sign(keys.publicKey, {
      subject: 'O=qbasis, CN=qbasis-controller',
      names: [...names, { type: 'url', value: spiffeId }],
      usages: x509.KeyUsageFlags.digitalSignature,
      eku: [x509.ExtendedKeyUsage.serverAuth],
      lifetimeMs,
      now,
    });
    return { ...issued, key: keyPem(keys.privateKey) };
  }

  async #sign(publicKey: CryptoKey, o: { subject: string; names: x509.JsonGeneralName[]; usages: number; eku: string[]; lifetimeMs: number; now: Date }): Promise<IssuedCertificate> {
    const t = o.now.getTime();
    // Whole seconds, as X.509 times are (what is returned is what the certificate says).
    const notBefore = new Date(Math.floor(Math.max(t - BACKDATE_MS, this.notBefore.getTime()) / 1000) * 1000);
    // Never past the issuer's expiry: a chain is only as valid as its root.
    const notAfter = new Date(Math.floor(Math.min(t + o.lifetimeMs, this.notAfter.getTime()) / 1000) * 1000);
    if (notAfter.getTime() <= t) throw new Error(`the root expires at ${this.notAfter.toISOString()}; it can sign nothing more`);
    const serialNumber = randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: o.subject,
      issuer: this.#root.subject,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.#rootKey,
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(o.usages, true),
        new x509.ExtendedKeyUsageExtension(o.eku),
        new x509.SubjectAlternativeNameExtension(o.names, true),
        await x509.AuthorityKeyIdentifierExtension.create(this.#root, false),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
    return { cert: cert.toString('pem') + '\n', notBefore, notAfter, serial: serialNumber };
  }
}
