// A sidecar's CSR, read as hostile input: PEM or DER, bounded, a PKCS#10 request whose signature
// verifies with its own key (proof of possession) and whose key is ECDSA P-256. Only the key is
// used: the certificate names the authenticated identity. The URIs it asks for are returned so that
// Certify can refuse a request for another identity; its subject and DNS names are ignored.
// The parsers behind it are lenient (tags, lengths, trailing bytes, the signature's inner DER),
// so a request must also be canonical DER: it re-encodes to the very bytes that were sent.
import { createPublicKey } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { ECDSASigValue } from '@peculiar/asn1-ecc';
import { MAX_CSR_BYTES } from '../../proto/identity.ts';
import { QbasisError } from '../../proto/errors.ts';
import { EC, x509, type CryptoKey } from '../webhook/certificates.ts';

const PEM = /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;

function bad(why: string): QbasisError {
  return new QbasisError('QB_BAD_CSR', `the CSR is invalid: ${why}; expected a PKCS#10 request (PEM or DER) for an ECDSA P-256 key, signed with it (SHA-256)`);
}

/** DER bytes of a PEM or DER request. */
function derOf(raw: Buffer): Buffer {
  if (raw.length === 0) throw bad('it is empty');
  if (raw.length > MAX_CSR_BYTES) throw bad(`it is ${raw.length} bytes, more than ${MAX_CSR_BYTES}`);
  if (raw[0] === 0x30) return raw; // a DER SEQUENCE
  const m = PEM.exec(raw.toString('latin1'));
  if (m === null) throw bad('it is neither DER (a SEQUENCE) nor a PEM block "CERTIFICATE REQUEST"');
  return Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
}

/** Whether `der` parses as `type` and re-encodes to exactly the same bytes (DER, not merely BER). */
function canonical(der: Uint8Array, type: new () => object): boolean {
  try {
    return Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, type))).equals(der);
  } catch {
    return false;
  }
}

/** The request's public key, once the request proved it holds the private key. Throws QB_BAD_CSR. */
export async function csrPublicKey(raw: Buffer): Promise<CryptoKey> {
  return (await csrRequest(raw)).key;
}

/** The key (as csrPublicKey) and the URI SANs the request asks for (at most a few shown). */
export async function csrRequest(raw: Buffer): Promise<{ key: CryptoKey; uris: string[] }> {
  const der = derOf(raw);
  let csr: x509.Pkcs10CertificateRequest;
  let spki: Buffer;
  try {
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
    spki = Buffer.from(csr.publicKey.rawData);
  } catch (err) {
    throw bad(`it does not parse (${(err as Error).message.slice(0, 120)})`);
  }
  if (!canonical(der, CertificationRequest)) throw bad('it is not canonical DER (a length, tag or trailing byte differs from its DER encoding)');
  let key;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw bad(`its public key does not parse (${(err as Error).message.slice(0, 120)})`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw bad(`its key is ${key.asymmetricKeyType ?? 'unknown'}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
  }
  const alg = csr.signatureAlgorithm as { name?: string; hash?: { name?: string } };
  if (alg.name !== 'ECDSA' || alg.hash?.name !== 'SHA-256') throw bad(`it is signed with ${alg.name ?? 'an unknown algorithm'}${alg.hash?.name ? `/${alg.hash.name}` : ''}`);
  if (!canonical(new Uint8Array(csr.signature), ECDSASigValue)) throw bad('its signature is not a canonical DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs)');
  let ok = false;
  try {
    ok = await csr.verify();
  } catch (err) {
    throw bad(`its signature cannot be checked (${(err as Error).message.slice(0, 120)})`);
  }
  if (!ok) throw bad('its signature does not verify with its own key (no proof that the sender holds the private key)');
  let uris: string[] = [];
  try {
    const san = csr.extensions.find((e): e is x509.SubjectAlternativeNameExtension => e instanceof x509.SubjectAlternativeNameExtension);
    uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value.slice(0, 300)).slice(0, 4);
  } catch (err) {
    throw bad(`its subjectAltName does not parse (${(err as Error).message.slice(0, 120)})`);
  }
  return { key: key.toCryptoKey(EC, true, ['verify']) as CryptoKey, uris };
}
