// Minimal OCI image archives (one uncompressed layer) written from bytes, for images no registry can give us:
// the pod sandbox and small test apps. `ctr images import` reads them; the tag is the manifest's content hash.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ImageFile {
  path: string;
  mode: number;
  data: Buffer;
}

export interface ImageSpec {
  /** Repository without tag, e.g. qbasis.local/pause. */
  repository: string;
  files: ImageFile[];
  entrypoint: string[];
  cmd?: string[];
  user?: string;
}

export interface BuiltImage {
  /** repository:tag, the tag being the first 12 hex digits of the manifest digest. */
  ref: string;
  archive: string;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A POSIX ustar stream of regular files (mtime 0, root-owned), so the same files give the same digest. */
export function tarOf(files: ImageFile[]): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    const name = f.path.replace(/^\/+/, '');
    if (Buffer.byteLength(name) > 100) throw new Error(`tar: path ${name} is over 100 bytes; expected a short path`);
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write(octal(f.mode & 0o7777, 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal(f.data.length, 12), 124);
    h.write(octal(0, 12), 136);
    h.fill(0x20, 148, 156);
    h.write('0', 156);
    h.write('ustar\u000000', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7), 148);
    blocks.push(h, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** Writes (once) an OCI archive for spec under dir; the same content is never rebuilt. */
export function buildImage(spec: ImageSpec, dir: string): BuiltImage {
  const layer = tarOf(spec.files);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: spec.entrypoint, ...(spec.cmd === undefined ? {} : { Cmd: spec.cmd }), ...(spec.user === undefined ? {} : { User: spec.user }), WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha256(layer)}`, size: layer.length }],
  }));
  const tag = sha256(manifest).slice(0, 12);
  const ref = `${spec.repository}:${tag}`;
  const archive = join(dir, `${spec.repository.replace(/[^a-z0-9.-]/g, '_')}-${tag}.oci.tar`);
  if (existsSync(archive)) return { ref, archive };
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${sha256(manifest)}`,
      size: manifest.length,
      platform: { architecture: 'amd64', os: 'linux' },
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
    }],
  }));
  const blob = (b: Buffer): ImageFile => ({ path: `blobs/sha256/${sha256(b)}`, mode: 0o644, data: b });
  const outer = tarOf([
    { path: 'oci-layout', mode: 0o644, data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { path: 'index.json', mode: 0o644, data: index },
    blob(config),
    blob(manifest),
    blob(layer),
  ]);
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${archive}.tmp`, outer);
  renameSync(`${archive}.tmp`, archive);
  return { ref, archive };
}

/** The real node's images, all from the qbasis-tiny binary: the sandbox, and an HTTP app that names who answered. */
export function nodeImages(tinyBinary: string, dir: string): { pause: BuiltImage; tinyHttp: BuiltImage } {
  const bin = readFileSync(tinyBinary);
  return {
    pause: buildImage({ repository: 'qbasis.local/pause', files: [{ path: 'pause', mode: 0o755, data: bin }], entrypoint: ['/pause'], user: '65535:65535' }, dir),
    tinyHttp: buildImage({ repository: 'qbasis.local/tiny-http', files: [{ path: 'tiny', mode: 0o755, data: bin }], entrypoint: ['/tiny', 'serve'], cmd: ['8080'], user: '65532:65532' }, dir),
  };
}
