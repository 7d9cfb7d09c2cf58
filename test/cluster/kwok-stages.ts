// kwok v0.8 has no built-in behaviour: feed it upstream's "fast" stages (what kwokctl uses) from its Go module,
// and its PortForward CRD (a pod on the fake node forwards where its PortForward object says: a process here).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { goBinary } from './build.ts';
import { TOOLS } from './versions.ts';

const execFileP = promisify(execFile);

/** Node Ready, node heartbeat through a Lease, pod Running+Ready with an IP (init and native sidecar containers included), Job pods complete, deleted pods go. */
const STAGE_FILES = [
  'kustomize/stage/node/fast/node-initialize.yaml',
  'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
  'kustomize/stage/pod/fast/pod-ready.yaml',
  'kustomize/stage/pod/fast/pod-complete.yaml',
  'kustomize/stage/pod/fast/pod-delete.yaml',
];

export async function kwokStagesYaml(): Promise<string> {
  const dir = await kwokModuleDir();
  return STAGE_FILES.map((f) => readFileSync(join(dir, f), 'utf8').trim()).join('\n---\n') + '\n';
}

/** kwok's PortForward CRD as an object (kwok's server answers `kubectl port-forward` to kwok pods by these). */
export async function kwokPortForwardCrd(): Promise<unknown> {
  const { parse } = await import('yaml');
  return parse(readFileSync(join(await kwokModuleDir(), 'kustomize/crd/bases/kwok.x-k8s.io_portforwards.yaml'), 'utf8'));
}

async function kwokModuleDir(): Promise<string> {
  const go = goBinary();
  const mod = `sigs.k8s.io/kwok@${TOOLS.kwok.version}`;
  try {
    // Already in the module cache after the kwok build; `download` is then a no-op.
    const { stdout } = await execFileP(go, ['mod', 'download', '-json', mod], { env: { ...process.env, GOFLAGS: '-buildvcs=false', GOTOOLCHAIN: 'local' }, cwd: '/' });
    const dir = (JSON.parse(stdout) as { Dir?: string }).Dir;
    if (dir === undefined) throw new Error(`no Dir in go mod download output: ${stdout}`);
    return dir;
  } catch (err) {
    throw new Error(`could not locate the kwok ${TOOLS.kwok.version} module for its stage files: ${err instanceof Error ? err.message : String(err)}`);
  }
}
