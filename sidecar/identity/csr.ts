// A PKCS#10 certificate signing request (RFC 2986) for an ECDSA P-256 key, built with node:crypto
// alone: the request is one fixed shape (empty subject, no attributes: the CA ignores names and
// signs for the identity the token proves), so its DER is a few bytes around the public key and the
// signature. Loading an X.509 library for it would cost each sidecar ~17 MB RSS and ~0.6 s at start
// (measured: @peculiar/x509 + reflect-metadata). The controller parses requests with @peculiar/x509;
// test/identity checks these requests against it and `openssl req -verify`.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/** DER TLV with a definite length. */
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else len = Buffer.from([0x82, n >> 8, n & 0xff]); // a P-256 request stays far below 64 KiB
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const SEQUENCE = 0x30;
const VERSION_0 = Buffer.from([0x02, 0x01, 0x00]);
const EMPTY_NAME = tlv(SEQUENCE, Buffer.alloc(0));
/** attributes [0] IMPLICIT SET OF Attribute, empty. */
const NO_ATTRIBUTES = Buffer.from([0xa0, 0x00]);
/** AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters. */
const ECDSA_SHA256 = tlv(SEQUENCE, Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));

export interface KeyAndCsr {
  /** Never written anywhere: it lives in this process only. */
  privateKey: KeyObject;
  /** DER. */
  csr: Buffer;
}

/** A new P-256 key in memory and a CSR signed with it. */
export function newKeyAndCsr(): KeyAndCsr {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = tlv(SEQUENCE, Buffer.concat([VERSION_0, EMPTY_NAME, spki, NO_ATTRIBUTES]));
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  const bitString = tlv(0x03, Buffer.concat([Buffer.from([0]), signature]));
  return { privateKey, csr: tlv(SEQUENCE, Buffer.concat([info, ECDSA_SHA256, bitString])) };
}
