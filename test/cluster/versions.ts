// The pinned versions of every tool the local cluster uses, and where their binaries are cached.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const KUBERNETES_VERSION = 'v1.37.2';
export const ETCD_VERSION = 'v3.7.0';

/** The Go module (test/k8s) that builds the multi-call control-plane binary. */
export const K8S_MODULE_DIR = join(import.meta.dirname, '..', 'k8s');

export type ToolName =
  | 'k8s-tools' | 'kwok' | 'helm' | 'ghz' | 'grpcurl' | 'h2spec' | 'grpc-interop-server' | 'grpc-interop-client' | 'promlint'
  | 'containerd' | 'runc' | 'cni-plugins' | 'qbasis-tiny' | 'protojson-ref';

export interface ToolSpec {
  name: ToolName;
  /** What `go install` builds, or undefined for the local module. */
  goPackage?: string;
  version: string;
  /** Extra names symlinked to this binary (the multi-call tools). */
  aliases: string[];
  /** The file `go install` writes when it is not `name` (the last element of goPackage). */
  goBinary?: string;
  /** A small Go module of ours under test/, built with `go build` (its sources are part of the stamp). */
  moduleDir?: string;
  /** More main packages of goPackage's module, built by the same `go install`; each binary keeps its own name. */
  morePackages?: string[];
  /** 'cni': into tools-…/cni, off PATH (CNI's `bridge` would shadow iproute2's). */
  outDir?: 'cni';
  /** Needs cgo (runc's nsenter is C); everything else is static. */
  cgo?: boolean;
  tags?: string;
  ldflags?: string;
}

export const CONTAINERD_VERSION = 'v2.4.2';
export const RUNC_VERSION = 'v1.5.3';
export const CNI_PLUGINS_VERSION = 'v1.10.0';

/** grpc-go, whose interop server and client are built on request (test/attacks/grpc-interop.test.ts). */
export const GRPC_GO_VERSION = 'v1.85.0';

export const TOOLS: Record<ToolName, ToolSpec> = {
  'k8s-tools': {
    name: 'k8s-tools',
    version: KUBERNETES_VERSION,
    aliases: ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl', 'kubelet', 'kube-proxy'],
  },
  kwok: { name: 'kwok', goPackage: 'sigs.k8s.io/kwok/cmd/kwok', version: 'v0.8.0', aliases: [] },
  helm: { name: 'helm', goPackage: 'helm.sh/helm/v3/cmd/helm', version: 'v3.22.0', aliases: [] },
  ghz: { name: 'ghz', goPackage: 'github.com/bojand/ghz/cmd/ghz', version: 'v0.121.0', aliases: [] },
  grpcurl: { name: 'grpcurl', goPackage: 'github.com/fullstorydev/grpcurl/cmd/grpcurl', version: 'v1.9.3', aliases: [] },
  // Stamped tools (not in HASHED_TOOLS). h2spec: v2.2.1 is the newest tag the module proxy serves
  // (later tags carry a go.mod without the /v2 suffix, which `go install` refuses); having no go.mod, its
  // dependencies (golang.org/x/net, cobra, color) resolve to their latest versions at build time.
  h2spec: { name: 'h2spec', goPackage: 'github.com/summerwind/h2spec/cmd/h2spec', version: 'v2.2.1+incompatible', aliases: [] },
  'grpc-interop-server': { name: 'grpc-interop-server', goPackage: 'google.golang.org/grpc/interop/server', version: GRPC_GO_VERSION, aliases: [], goBinary: 'server' },
  'grpc-interop-client': { name: 'grpc-interop-client', goPackage: 'google.golang.org/grpc/interop/client', version: GRPC_GO_VERSION, aliases: [], goBinary: 'client' },
  // promtool's metric lint without promtool (minutes to build): client_golang's promlint package, test/promlint.
  promlint: { name: 'promlint', version: 'client_golang-v1.23.2', aliases: [], moduleDir: join(import.meta.dirname, '..', 'promlint') },
  // The real node's runtime, stamped so it never rebuilds the control plane. containerd 2.x: kubelet 1.37
  // asks the runtime for its cgroup driver (RuntimeConfig, which 1.6 lacks) and is tested against 2.x.
  containerd: {
    name: 'containerd', goPackage: 'github.com/containerd/containerd/v2/cmd/containerd', version: CONTAINERD_VERSION, aliases: [],
    morePackages: ['github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2', 'github.com/containerd/containerd/v2/cmd/ctr'],
    ldflags: `-X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION}`,
  },
  // seccomp: the chart asks for RuntimeDefault, which a runc without it refuses (needs libseccomp-dev).
  runc: { name: 'runc', goPackage: 'github.com/opencontainers/runc', version: RUNC_VERSION, aliases: [], cgo: true, tags: 'seccomp', ldflags: `-X main.version=${RUNC_VERSION.slice(1)}` },
  'cni-plugins': {
    name: 'cni-plugins', goPackage: 'github.com/containernetworking/plugins/plugins/main/bridge', version: CNI_PLUGINS_VERSION, aliases: [], outDir: 'cni',
    morePackages: ['github.com/containernetworking/plugins/plugins/ipam/host-local', 'github.com/containernetworking/plugins/plugins/main/loopback'],
  },
  // The pod sandbox (pause) and a tiny test server, the node's images without a registry (test/tiny).
  'qbasis-tiny': { name: 'qbasis-tiny', version: 'v1', aliases: [], moduleDir: join(import.meta.dirname, '..', 'tiny') },
  // Go's protojson (and protocompile for .proto sources), the reference the gateway's JSON codec and schema
  // compiler are checked against (test/gateway/, test/protojson).
  'protojson-ref': { name: 'protojson-ref', version: 'protobuf-v1.36.12', aliases: [], moduleDir: join(import.meta.dirname, '..', 'protojson') },
};

/** The binaries a tool puts in its dir: its own name, then one per extra package. */
export function binariesOf(t: ToolName): string[] {
  const spec = TOOLS[t];
  const first = spec.outDir === undefined ? t : spec.goPackage!.split('/').pop()!;
  return [first, ...(spec.morePackages ?? []).map((p) => p.split('/').pop()!)];
}

/** Where a tool's binaries go: the bin dir (on PATH), or a sibling for CNI plugins. */
export function toolDir(bin: string, t: ToolName): string {
  return TOOLS[t].outDir === undefined ? bin : join(dirname(bin), TOOLS[t].outDir!);
}

/** What the real node needs beside CLUSTER_TOOLS. */
export const NODE_TOOLS: ToolName[] = ['containerd', 'runc', 'cni-plugins', 'qbasis-tiny'];

/** What a cluster needs; the others are built only on request (benchmarks, conformance tests). */
export const CLUSTER_TOOLS: ToolName[] = ['k8s-tools', 'kwok', 'helm'];

/**
 * The tools whose versions name the bin dir (versionsHash). Frozen: adding a tool here changes the dir and
 * so rebuilds every tool (a 15-minute cold build). Every other tool is "stamped": it lives in the same bin
 * dir with its own stamp (stampPath) recording what it was built from, so adding it or bumping its
 * version rebuilds only that tool.
 */
export const HASHED_TOOLS: readonly ToolName[] = ['k8s-tools', 'kwok', 'helm', 'ghz', 'grpcurl'];

export function isStamped(t: ToolName): boolean {
  return !HASHED_TOOLS.includes(t);
}

/** What a stamped tool's stamp must say for its binary to count as built. */
export function stampOf(t: ToolName): string {
  const spec = TOOLS[t];
  if (spec.moduleDir === undefined) {
    const more = spec.morePackages === undefined ? '' : ` +${spec.morePackages.length}`;
    const opts = [spec.cgo === true ? ' cgo' : '', spec.tags !== undefined ? ` tags=${spec.tags}` : ''].join('');
    return `${spec.goPackage ?? t}@${spec.version}${more}${opts}\n`;
  }
  const h = createHash('sha256');
  for (const f of readdirSync(spec.moduleDir).sort()) {
    if (f === 'go.mod' || f === 'go.sum' || f.endsWith('.go')) h.update(`${f}\n`).update(readFileSync(join(spec.moduleDir, f)));
  }
  return `${t}@${spec.version} sources ${h.digest('hex').slice(0, 12)}\n`;
}

/** tools-…/stamps/<tool>, next to the bin dir (not on PATH). */
export function stampPath(bin: string, t: ToolName): string {
  return join(dirname(bin), 'stamps', t);
}

export function cacheRoot(): string {
  return process.env['QBASIS_CACHE_DIR'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'qbasis');
}

/** Hash of the HASHED_TOOLS pins and of the local Go module's sources: a new pin there means a new bin dir. */
export function versionsHash(): string {
  const h = createHash('sha256');
  for (const name of HASHED_TOOLS) h.update(`${name}@${TOOLS[name].version}\n`);
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
