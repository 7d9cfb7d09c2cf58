// The pinned versions of every tool the local cluster uses, and where their binaries are cached.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const KUBERNETES_VERSION = 'v1.37.2';
export const ETCD_VERSION = 'v3.7.0';

/** The Go module (test/k8s) that builds the multi-call control-plane binary. */
export const K8S_MODULE_DIR = join(import.meta.dirname, '..', 'k8s');

export type ToolName = 'k8s-tools' | 'kwok' | 'helm' | 'ghz' | 'grpcurl';

export interface ToolSpec {
  name: ToolName;
  /** What `go install` builds, or undefined for the local module. */
  goPackage?: string;
  version: string;
  /** Extra names symlinked to this binary (the multi-call tools). */
  aliases: string[];
}

export const TOOLS: Record<ToolName, ToolSpec> = {
  'k8s-tools': {
    name: 'k8s-tools',
    version: KUBERNETES_VERSION,
    aliases: ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'],
  },
  kwok: { name: 'kwok', goPackage: 'sigs.k8s.io/kwok/cmd/kwok', version: 'v0.8.0', aliases: [] },
  helm: { name: 'helm', goPackage: 'helm.sh/helm/v3/cmd/helm', version: 'v3.22.0', aliases: [] },
  ghz: { name: 'ghz', goPackage: 'github.com/bojand/ghz/cmd/ghz', version: 'v0.121.0', aliases: [] },
  grpcurl: { name: 'grpcurl', goPackage: 'github.com/fullstorydev/grpcurl/cmd/grpcurl', version: 'v1.9.3', aliases: [] },
};

/** What a cluster needs; ghz and grpcurl are built only on request (benchmarks). */
export const CLUSTER_TOOLS: ToolName[] = ['k8s-tools', 'kwok', 'helm'];

export function cacheRoot(): string {
  return process.env['QBASIS_CACHE_DIR'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'qbasis');
}

/** Hash of every pinned version and of the local Go module's sources: a new pin means a new bin dir. */
export function versionsHash(): string {
  const h = createHash('sha256');
  for (const t of Object.values(TOOLS)) h.update(`${t.name}@${t.version}\n`);
  for (const f of readdirSync(K8S_MODULE_DIR).sort()) {
    if (f === 'go.mod' || f === 'go.sum' || f.endsWith('.go')) {
      h.update(`${f}\n`);
      h.update(readFileSync(join(K8S_MODULE_DIR, f)));
    }
  }
  return h.digest('hex').slice(0, 12);
}

/** The directory that goes on PATH: kubectl, helm, kwok, ... */
export function toolsBinDir(): string {
  return join(cacheRoot(), `tools-${KUBERNETES_VERSION}-${versionsHash()}`, 'bin');
}
