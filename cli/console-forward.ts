// The way into a cluster's console, shared by `qbasis console` and `qbasis plan remove`: find a ready
// controller replica (the leader first: only its traffic figures hold every sidecar's reports), then a
// port-forward to its console port made with @kubernetes/client-node's PortForward, as `kubectl
// port-forward` and `linkerd viz dashboard` do: a local TCP server whose every connection is one
// WebSocket to the API server's pods/portforward, which the pod's kubelet joins to the port.
import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, isNotFound, loadKubeConfig } from '../controller/kube/kube-client.ts';
import { chartFullname } from './check.ts';
import { shown, type FlagValues } from './flags.ts';

const HALF_CLOSE_GRACE_MS = 500;

export interface Replica {
  namespace: string;
  pod: string;
  /** The Lease holder's identity (the chart sets it to the pod name), when one holds it. */
  leader: string | undefined;
  isLeader: boolean;
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

function readiness(p: PodJson): string | undefined {
  if (p.metadata.deletionTimestamp !== undefined) return 'terminating';
  const phase = p.status?.phase ?? 'Unknown';
  if (phase !== 'Running') return phase;
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true ? undefined : 'Running, not Ready';
}

/** The replica to open: --pod if given, else the ready Lease holder, else the first ready replica by name. */
export async function pickReplica(client: KubeClient, o: { namespace: string; release: string; pod?: string }): Promise<Replica> {
  const ns = o.namespace;
  const full = chartFullname(o.release);
  const lease = await client.request<{ spec?: { holderIdentity?: string } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/leases/${full}-controller`).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
  const leader = lease?.spec?.holderIdentity || undefined;
  const selector = `app.kubernetes.io/component=controller,app.kubernetes.io/instance=${o.release}`;
  let candidates: PodJson[];
  if (o.pod !== undefined) {
    const one = await client.request<PodJson>('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(o.pod)}`).catch((err: unknown) => {
      if (isNotFound(err)) throw new Error(`no pod ${shown(o.pod!)} in namespace ${ns}; list the replicas with: kubectl -n ${ns} get pods -l ${selector}`);
      throw err;
    });
    candidates = [one];
  } else {
    candidates = (await client.request<{ items: PodJson[] }>('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`, { query: { labelSelector: selector } })).items;
    if (candidates.length === 0) {
      throw new Error(`no controller replica found in namespace ${ns} (no pod labelled ${selector}): is the qbasis chart installed there? pass --namespace and --release (or --pod)`);
    }
  }
  const ready = candidates.filter((p) => readiness(p) === undefined).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  if (ready.length === 0) {
    const what = candidates.map((p) => `${p.metadata.name} (${readiness(p)})`).join(', ');
    throw new Error(`no ready controller replica in namespace ${ns}: ${what}; wait for one (kubectl -n ${ns} get pods -l ${selector} -w) or see why: kubectl -n ${ns} describe pod ${candidates[0]!.metadata.name}`);
  }
  const pick = ready.find((p) => p.metadata.name === leader) ?? ready[0]!;
  return { namespace: ns, pod: pick.metadata.name, leader, isLeader: pick.metadata.name === leader };
}

export interface ConsoleForward {
  /** http://HOST:PORT/ of the local end. */
  url: string;
  replica: Replica;
  close(): Promise<void>;
}

/**
 * A local listener on host:port (0: any free port) whose connections go to the replica's remotePort.
 * `onError` hears each connection the API server or the kubelet refused (at most once per message).
 */
export async function openForward(kc: KubeConfig, replica: Replica, o: { host: string; port: number; remotePort: number; onError?: (msg: string) => void }): Promise<ConsoleForward> {
  const { PortForward } = await import('@kubernetes/client-node');
  const forward = new PortForward(kc);
  const said = new Set<string>();
  const tell = (msg: string): void => {
    if (said.has(msg)) return;
    said.add(msg);
    o.onError?.(msg);
  };
  const sockets = new Set<net.Socket>();
  // Half-open: a client that ends its side after the request (HTTP/1.0, `nc -N`) still gets the answer.
  // The v4 WebSocket protocol has no half-close (client-node closes the WebSocket when its input ends,
  // losing the answer, and the pod's side waits for both directions to end), so after the client's end
  // the forward stays open until the pod's side has been quiet for HALF_CLOSE_GRACE_MS, then closes.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // The pod's side reports a failed dial on the error channel (text), then the data channel closes.
    const errors = new Writable({
      write(chunk: Buffer, _enc, done) {
        const text = chunk.toString('utf8').trim();
        if (text !== '') tell(`the replica ${replica.namespace}/${replica.pod} refused a connection to port ${o.remotePort}: ${text}`);
        done();
      },
    });
    const input = new PassThrough();
    socket.on('data', (d: Buffer) => input.write(d));
    let quiet: NodeJS.Timeout | undefined;
    let ended = false;
    const closeWhenQuiet = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(() => socket.end(() => socket.destroy()), HALF_CLOSE_GRACE_MS);
    };
    socket.on('end', () => {
      ended = true;
      closeWhenQuiet();
    });
    const output = new Writable({
      write(chunk: Buffer, _enc, done) {
        if (ended) closeWhenQuiet();
        if (socket.writable) socket.write(chunk, () => done());
        else done();
      },
    });
    socket.on('close', () => clearTimeout(quiet));
    forward.portForward(replica.namespace, replica.pod, [o.remotePort], output, errors, input).then(
      (ws) => {
        const w = ws as unknown as { on(e: string, f: () => void): void; close(): void; readyState: number };
        w.on('close', () => socket.end());
        w.on('error', () => socket.destroy());
        socket.on('close', () => {
          input.end();
          w.close();
        });
        if (socket.destroyed) w.close();
      },
      (err: unknown) => {
        const e = err as { message?: string; error?: { message?: string } };
        tell(`the API server refused the port-forward to ${replica.namespace}/${replica.pod}: ${e.error?.message ?? e.message ?? String(err)}`);
        socket.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    throw new Error(`cannot listen on ${o.host}:${o.port}: ${err.message}; pass --port N (0: any free port)`);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://${net.isIPv6(o.host) ? `[${o.host}]` : o.host}:${port}/`,
    replica,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** From the parsed REPLICA_FLAGS: the replica and a forward to it on host:port. */
export async function forwardFromFlags(v: FlagValues, o: { host: string; port: number; onError?: (msg: string) => void }): Promise<ConsoleForward> {
  const kubeconfig = v.get('kubeconfig');
  let kc: KubeConfig;
  try {
    kc = loadKubeConfig(kubeconfig === undefined ? {} : { kubeconfig });
  } catch (err) {
    throw new Error(`cannot load the kubeconfig${kubeconfig === undefined ? '' : ` ${shown(kubeconfig)}`}: ${(err as Error).message}; pass --kubeconfig, or --console URL for a local controller`);
  }
  const pod = v.get('pod');
  const replica = await pickReplica(new KubeClient(kc), { namespace: v.get('namespace')!, release: v.get('release')!, ...(pod !== undefined ? { pod } : {}) });
  return openForward(kc, replica, { ...o, remotePort: Number(v.get('remote-port')) });
}

/** One line on who answers: the leader, or a standby (whose traffic figures count only its own sidecars). */
export function replicaLine(r: Replica): string {
  const who = `controller replica ${r.namespace}/${r.pod}`;
  if (r.isLeader) return `${who} (the leader)`;
  return `${who} (${r.leader === undefined ? 'no replica holds the Lease' : `a standby; the leader is ${r.leader}`}: its traffic figures count only the sidecars connected to it)`;
}
