// The product's image and the test apps' image, built here without a Docker engine: buildah (Debian's) builds
// the repository's own Dockerfile on a local Node 24 base (mmdebstrap's Debian rootfs + the node binary of the
// npm `node` package + npm), because node:24-slim and distroless cannot be pulled. Every image is an OCI archive
// under <cache>/images named by the hash of what went into it, so an unchanged tree never builds again.
//   node test/cluster/images.ts      builds (or finds) all three and prints their refs and archives
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withFileLock } from './file-lock.ts';
import { formatDuration } from './build.ts';
import { cacheRoot } from './versions.ts';

const REPO = join(import.meta.dirname, '..', '..');
/** Debian release and packages of the base: what the node binary links (glibc, libstdc++) and TLS roots. */
const DEBIAN_SUITE = 'bookworm';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const BASE_PACKAGES = ['ca-certificates', 'libstdc++6'];
/** npm for the Dockerfile's `npm ci` stages (the `node` package ships only the binary). */
export const NPM_VERSION = '11.19.1';
/** What the Dockerfile copies from the repository (its COPY lines), hashed for the product image's tag. */
const PRODUCT_INPUTS = ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'bin', 'cli', 'proto', 'controller', 'sidecar'];
/** Never part of the image's inputs: the console bundle is built inside the Dockerfile. */
const NOT_INPUTS = new Set(['node_modules', 'dist']);
/** The test apps on top of the product image: the demo's order app, the load it drives, the caller that counts, and the legacy HTTP stock app. */
const TEST_APP_FILES = ['test/demo/order-app.ts', 'test/demo/orders.proto', 'test/demo/load.ts', 'test/fixtures/wait.ts', 'test/node/caller-app.ts', 'test/demo/stock-app.ts', 'test/demo/stock.proto'];

export interface LocalImage {
  ref: string;
  archive: string;
}

export interface ProductImages {
  base: LocalImage;
  product: LocalImage;
  testApps: LocalImage;
}

type Log = (line: string) => void;

export function imagesDir(): string {
  return join(cacheRoot(), 'images');
}

/** buildah with its own storage in the cache (never /var/lib/containers), so image layers survive between runs. */
function buildahArgs(args: string[]): string[] {
  const store = join(cacheRoot(), 'buildah');
  return ['--root', join(store, 'storage'), '--runroot', join(store, 'run'), '--storage-driver', 'overlay', ...args];
}

async function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 20 * 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim().split('\n').slice(-30).join('\n')}`));
      else resolve(String(stdout));
    });
  });
}

const buildah = (args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> => run('buildah', buildahArgs(args), opts);

/** Why images cannot be built here, with what to do; undefined when they can. */
export async function imageBuildProblem(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'building images needs root (buildah and mmdebstrap run rootful here)';
  for (const bin of ['buildah', 'mmdebstrap']) {
    try {
      await run('sh', ['-c', `command -v ${bin}`]);
    } catch {
      return `'${bin}' is missing; install it: apt-get install -y mmdebstrap buildah`;
    }
  }
  return undefined;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Hash of files and directory trees (paths, modes and contents), skipping NOT_INPUTS. */
export function treeHash(root: string, entries: string[]): string {
  const h = createHash('sha256');
  const visit = (rel: string): void => {
    const abs = join(root, rel);
    const st = statSync(abs);
    if (st.isDirectory()) {
      for (const e of readdirSync(abs).sort()) if (!NOT_INPUTS.has(e)) visit(join(rel, e));
    } else if (st.isFile()) {
      h.update(`${rel}\0${st.mode & 0o111 ? 'x' : '-'}\0${st.size}\0`);
      h.update(readFileSync(abs));
    }
  };
  for (const e of entries) visit(e);
  return h.digest('hex');
}

function nodeBinary(): string {
  return join(REPO, 'node_modules', 'node', 'bin', 'node');
}

/** The image in buildah's store, exported once to an OCI archive; `make` builds it when neither exists. */
async function cached(repository: string, key: string, log: Log, make: (ref: string) => Promise<void>): Promise<LocalImage> {
  const tag = key.slice(0, 12);
  const ref = `${repository}:${tag}`;
  const dir = imagesDir();
  const archive = join(dir, `${repository.replace(/[^a-z0-9.-]/g, '_')}-${tag}.oci.tar`);
  mkdirSync(dir, { recursive: true });
  return withFileLock(join(dir, `build-${repository.replace(/[^a-z0-9.-]/g, '_')}.lock`), async () => {
    if (existsSync(archive)) return { ref, archive };
    const inStore = await buildah(['images', '--noheading', '--format', '{{.Name}}:{{.Tag}}']).then((o) => o.split('\n').includes(ref), () => false);
    const t = Date.now();
    if (!inStore) {
      log(`qbasis: building image ${ref}`);
      await make(ref);
    }
    await buildah(['push', ref, `oci-archive:${archive}.tmp:${ref}`]);
    renameSync(`${archive}.tmp`, archive);
    await prune(dir, repository, KEEP_PER_REPOSITORY);
    log(`qbasis: image ${ref} ready in ${formatDuration(Date.now() - t)}`);
    return { ref, archive };
  }, { onWait: (pid) => log(`qbasis: waiting for pid ${pid}, which is building ${repository}…`) });
}

/** Archives kept per repository (every source change makes a new product image): a few trees, e.g. worktrees, side by side. */
const KEEP_PER_REPOSITORY = 3;

/** Removes all but the newest `keep` archives of `repository`, and their images in buildah's store. */
async function prune(dir: string, repository: string, keep: number): Promise<void> {
  const prefix = `${repository.replace(/[^a-z0-9.-]/g, '_')}-`;
  const archives = readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.oci.tar') && /^[0-9a-f]{12}$/.test(f.slice(prefix.length, -'.oci.tar'.length)))
    .map((f) => ({ f, mtime: statSync(join(dir, f)).mtimeMs })).sort((a, b) => b.mtime - a.mtime);
  for (const { f } of archives.slice(keep)) {
    rmSync(join(dir, f), { force: true });
    await buildah(['rmi', `${repository}:${f.slice(prefix.length, -'.oci.tar'.length)}`]).catch(() => undefined);
  }
}

/** Debian rootfs + /nodejs/bin/node (distroless's path, so the Dockerfile's ENTRYPOINT holds) + npm. */
async function buildBase(log: Log): Promise<LocalImage> {
  const node = nodeBinary();
  if (!existsSync(node)) throw new Error(`${node} is missing; run npm ci (the node devDependency ships Node 24)`);
  const key = sha256(JSON.stringify({ v: 1, suite: DEBIAN_SUITE, packages: BASE_PACKAGES, node: sha256(readFileSync(node)), npm: NPM_VERSION }));
  return cached('qbasis.local/node24-base', key, log, async (ref) => {
    const work = mkdtempSync(join(imagesDir(), 'base-'));
    try {
      const rootfs = join(work, 'rootfs.tar');
      await run('mmdebstrap', ['--variant=essential', `--include=${BASE_PACKAGES.join(',')}`, '--format=tar',
        ...['doc', 'man', 'info', 'locale'].map((d) => `--dpkgopt=path-exclude=/usr/share/${d}/*`),
        DEBIAN_SUITE, rootfs, DEBIAN_MIRROR], { timeoutMs: 30 * 60_000 });
      const stage = join(work, 'stage');
      mkdirSync(join(stage, 'nodejs', 'bin'), { recursive: true });
      mkdirSync(join(stage, 'usr', 'local', 'bin'), { recursive: true });
      mkdirSync(join(stage, 'usr', 'local', 'lib', 'node_modules'), { recursive: true });
      copyFileSync(node, join(stage, 'nodejs', 'bin', 'node'));
      symlinkSync('/nodejs/bin/node', join(stage, 'usr', 'local', 'bin', 'node'));
      const tgz = (await run('npm', ['pack', `npm@${NPM_VERSION}`, '--silent', '--pack-destination', work], { cwd: work })).trim().split('\n').pop()!;
      await run('tar', ['-xzf', join(work, tgz), '-C', join(stage, 'usr', 'local', 'lib', 'node_modules')]);
      renameSync(join(stage, 'usr', 'local', 'lib', 'node_modules', 'package'), join(stage, 'usr', 'local', 'lib', 'node_modules', 'npm'));
      for (const [cmd, cli] of [['npm', 'npm-cli.js'], ['npx', 'npx-cli.js']]) symlinkSync(`../lib/node_modules/npm/bin/${cli}`, join(stage, 'usr', 'local', 'bin', cmd!));
      const ctr = (await buildah(['from', 'scratch'])).trim();
      try {
        await buildah(['add', ctr, rootfs, '/']);
        await buildah(['add', ctr, `${stage}/`, '/']);
        await buildah(['config', '--env', 'PATH=/usr/local/bin:/usr/bin:/bin', '--workingdir', '/', '--os', 'linux', '--arch', 'amd64', ctr]);
        await buildah(['commit', '--format', 'oci', '--rm', ctr, ref]);
      } catch (err) {
        await buildah(['rm', ctr]).catch(() => undefined);
        throw err;
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

/**
 * The host's npm registry and CA file for the Dockerfile's `npm ci` steps, as RUN-time mounts (never in a layer):
 * where the registry is reached through a TLS-inspecting proxy, its CA is in the host's store only.
 */
async function npmMounts(dir: string): Promise<string[]> {
  const get = async (k: string): Promise<string> => (await run('npm', ['config', 'get', k]).catch(() => '')).trim();
  const [registry, npmCafile] = await Promise.all([get('registry'), get('cafile')]);
  // Node's own extra CAs (how the host's npm trusts such a proxy here), else npm's cafile setting.
  const cafile = process.env['NODE_EXTRA_CA_CERTS'] ?? npmCafile;
  const lines = [`registry=${registry || 'https://registry.npmjs.org/'}`];
  const mounts: string[] = [];
  if (cafile !== '' && cafile !== 'null' && cafile !== 'undefined' && existsSync(cafile)) {
    mounts.push('--volume', `${cafile}:/etc/qbasis-host-ca.pem:ro`);
    lines.push('cafile=/etc/qbasis-host-ca.pem');
  }
  writeFileSync(join(dir, 'npmrc'), lines.join('\n') + '\n');
  // The build stages run as root: npm reads /root/.npmrc.
  return [...mounts, '--volume', `${join(dir, 'npmrc')}:/root/.npmrc:ro`];
}

/** The repository's Dockerfile, both stages' FROM the local base; `npm ci` reaches the registry through the host's network. */
async function buildProduct(base: LocalImage, log: Log): Promise<LocalImage> {
  const key = sha256(JSON.stringify({ v: 1, base: base.ref, tree: treeHash(REPO, PRODUCT_INPUTS) }));
  return cached('qbasis.local/qbasis', key, log, async (ref) => {
    const work = mkdtempSync(join(imagesDir(), 'product-'));
    try {
      // --isolation chroot: Debian's crun 1.8 refuses this host's cgroup v1/v2 hybrid ("cgroups in hybrid mode not
      // supported"); chroot isolation runs RUN steps without an OCI runtime or cgroups. --network host: the
      // default private network needs CNI plugins plus iptables (absent here) and leaves firewall rules behind;
      // the host's network is what npm ci needs.
      await buildah(['bud', '--isolation', 'chroot', '--network', 'host', '--pull=never', '--layers', '--force-rm', '--format', 'oci', ...(await npmMounts(work)),
        '--build-arg', `NODE_BUILD_IMAGE=${base.ref}`, '--build-arg', `RUNTIME_IMAGE=${base.ref}`, '-f', 'Dockerfile', '-t', ref, '.'], { cwd: REPO, timeoutMs: 30 * 60_000 });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

/** The product image plus the test apps; they run with the image's node: `command: [/nodejs/bin/node, test/…]`. */
async function buildTestApps(product: LocalImage, log: Log): Promise<LocalImage> {
  const key = sha256(JSON.stringify({ v: 1, product: product.ref, tree: treeHash(REPO, TEST_APP_FILES) }));
  return cached('qbasis.local/test-apps', key, log, async (ref) => {
    const ctr = (await buildah(['from', '--pull=never', product.ref])).trim();
    try {
      for (const f of TEST_APP_FILES) await buildah(['copy', '--chown', '0:0', ctr, join(REPO, f), `/app/${f}`]);
      await buildah(['config', '--entrypoint', '["/nodejs/bin/node"]', '--cmd', '', ctr]);
      await buildah(['commit', '--format', 'oci', '--rm', ctr, ref]);
    } catch (err) {
      await buildah(['rm', ctr]).catch(() => undefined);
      throw err;
    }
  });
}

/** Builds what is missing (base, product, test apps) and returns all three. */
export async function ensureImages(log: Log = (l) => process.stderr.write(l + '\n')): Promise<ProductImages> {
  const problem = await imageBuildProblem();
  if (problem !== undefined) throw new Error(problem);
  const base = await buildBase(log);
  const product = await buildProduct(base, log);
  const testApps = await buildTestApps(product, log);
  return { base, product, testApps };
}

if (import.meta.main) {
  const t = Date.now();
  ensureImages().then((imgs) => {
    for (const [k, v] of Object.entries(imgs)) process.stdout.write(`${k}\t${v.ref}\t${v.archive}\n`);
    process.stdout.write(`done in ${formatDuration(Date.now() - t)}\n`);
  }, (err: unknown) => {
    process.stderr.write(`images: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
