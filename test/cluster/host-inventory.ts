// What a real node can leave on a host, listed so a test can compare before `up` and after `down`.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

const NODE_BINARIES = /(^|\/)(containerd|containerd-shim-runc-v2|runc|kubelet|kube-proxy|qbasis-tiny|pause|tiny)$/;
const WATCHED_DIRS = ['/run/qbasis-node', '/var/log/containers', '/var/log/pods', '/var/lib/kubelet', '/var/lib/containerd', '/run/containerd', '/etc/cni', '/opt/cni', '/var/lib/cni', '/var/run/nri', '/opt/containerd', '/run/netns', '/usr/libexec/kubernetes'];
const SYSCTLS = ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes', 'net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables'];

export interface HostInventory {
  processes: string[];
  mounts: string[];
  links: string[];
  routes: string[];
  nftables: string;
  iptables: string;
  cgroups: string[];
  files: string[];
  sysctls: Record<string, string>;
}

async function out(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileP(cmd, args, { maxBuffer: 16 << 20, timeout: 30_000 })).stdout;
  } catch {
    return '(unavailable)';
  }
}

export async function hostInventory(): Promise<HostInventory> {
  const processes: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (NODE_BINARIES.test(argv[0] ?? '') || (argv[0]?.endsWith('k8s-tools') === true && /^(kubelet|kube-proxy)$/.test(argv[1] ?? ''))) processes.push(`${e} ${argv.join(' ').slice(0, 300)}`);
    } catch {}
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l !== '').map((l) => l.split(' ').slice(4, 5).concat(l.split(' - ')[1] ?? '').join(' '));
  const links = (await out('ip', ['-o', 'link', 'show'])).split('\n').map((l) => /^\d+: ([^:]+):/.exec(l)?.[1]).filter((n): n is string => n !== undefined);
  const routes = [...(await out('ip', ['route', 'show', 'table', 'all'])).split('\n'), ...(await out('ip', ['-6', 'route', 'show', 'table', 'all'])).split('\n')].filter((l) => l !== '');
  const cgroups: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const d of readdirSync(join('/sys/fs/cgroup', h))) if (/qbasis|kubepods/.test(d)) cgroups.push(`${h}/${d}`);
    } catch {}
  }
  const files: string[] = [];
  for (const d of WATCHED_DIRS) if (existsSync(d)) files.push(d, ...readdirSync(d).slice(0, 50).map((f) => join(d, f)));
  const sysctls: Record<string, string> = {};
  for (const s of SYSCTLS) {
    try {
      sysctls[s] = readFileSync(`/proc/sys/${s}`, 'utf8').trim();
    } catch {}
  }
  return {
    processes: processes.sort(),
    mounts: mounts.sort(),
    links: links.sort(),
    routes: routes.sort(),
    // Stateless: counters in rules that were there before (another tool's) change with traffic.
    nftables: await out('nft', ['-s', 'list', 'ruleset']),
    iptables: (await out('sh', ['-c', 'command -v iptables-save >/dev/null && iptables-save | grep -v "^#" | sed "s/\\[[0-9]*:[0-9]*\\]/[-]/" || echo none'])).trim(),
    cgroups: cgroups.sort(),
    files: files.sort(),
    sysctls,
  };
}
