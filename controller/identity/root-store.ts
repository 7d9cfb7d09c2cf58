// Local mode's keeper of the root: `--identity-dir DIR` holds `ca.pem` (the trust bundle sidecars
// read, `--trust-bundle DIR/ca.pem`) and `ca-key.pem`, both 0600 in a 0700 directory. Made on
// first start, reused after. A root that is there but unusable (key mismatch, expired, readable by
// others) stops the controller with the reason: replacing it silently would cut every sidecar off.
// During a root rotation `ca.pem` holds several roots (docs/root-rotation.md): the one `ca-key.pem`
// matches signs, every one is in the bundle.
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { bundleRoots } from '../../proto/pem-certificates.ts';
import { CertificateAuthority } from './certificate-authority.ts';

export const ROOT_CERT_FILE = 'ca.pem';
export const ROOT_KEY_FILE = 'ca-key.pem';

export class IdentityDirError extends Error {}

/** Writes a 0600 file by rename, so a reader never sees half of it. */
export function writePrivateFile(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Creates `dir` (0700) if needed; refuses a directory others can write or read. */
export function privateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new IdentityDirError(`${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) throw new IdentityDirError(`${dir} is accessible by other users (mode ${(st.mode & 0o777).toString(8)}); expected 700 (chmod 700 ${dir})`);
}

export async function loadOrCreateRoot(dir: string, trustDomain: string): Promise<{ ca: CertificateAuthority; created: boolean }> {
  privateDir(dir);
  const certFile = path.join(dir, ROOT_CERT_FILE);
  const keyFile = path.join(dir, ROOT_KEY_FILE);
  const haveCert = fs.existsSync(certFile);
  const haveKey = fs.existsSync(keyFile);
  if (haveCert !== haveKey) {
    throw new IdentityDirError(`${haveCert ? keyFile : certFile} is missing but ${haveCert ? certFile : keyFile} is there; expected both (restore the missing one, or remove both to make a new root, which every sidecar must then be given)`);
  }
  if (!haveCert) {
    const { ca, keyPem } = await CertificateAuthority.create(trustDomain);
    writePrivateFile(keyFile, keyPem);
    writePrivateFile(certFile, ca.rootPem);
    return { ca, created: true };
  }
  const mode = fs.statSync(keyFile).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new IdentityDirError(`${keyFile} is readable by other users (mode ${mode.toString(8)}); expected 600 (chmod 600 ${keyFile})`);
  try {
    return { ca: loadBundle(fs.readFileSync(certFile, 'utf8'), fs.readFileSync(keyFile, 'utf8')), created: false };
  } catch (err) {
    throw new IdentityDirError(`the root in ${dir} cannot be used: ${(err as Error).message}`);
  }
}

/** The root `keyPem` belongs to, with the bundle's other roots trusted beside it. */
export function loadBundle(bundlePem: string, keyPem: string, now = new Date()): CertificateAuthority {
  const b = bundleRoots(bundlePem, now.getTime());
  if (typeof b === 'string') throw new Error(b);
  const key = createPrivateKey(keyPem);
  const blocks = b.roots.map((r) => r.toString());
  const i = b.roots.findIndex((r: X509Certificate) => r.checkPrivateKey(key));
  if (i < 0) throw new Error(`the key does not match ${blocks.length === 1 ? 'the certificate' : `any of the ${blocks.length} certificates`}`);
  return CertificateAuthority.load({ cert: blocks[i]!, key: keyPem }, now, blocks.filter((_, j) => j !== i));
}
