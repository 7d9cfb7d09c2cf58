// The controller's replicas as pods (the chart's --replica-selector in its own namespace), for the
// console's health block: each replica's name and readiness beside the Lease holder. A short poll, not a
// watch: a handful of pods, read every few seconds, only while a console asks for them.
import type { Logger } from 'pino';
import type { ReplicaPodView } from '../console/mesh-snapshot.ts';
import type { KubeClient } from './kube-client.ts';

/** A Deployment of the controller has a few replicas; more than this is not a controller's. */
export const MAX_REPLICAS_SHOWN = 20;
const POLL_MS = 5000;

interface PodJson {
  metadata?: { name?: string; deletionTimestamp?: string };
  status?: { phase?: string; conditions?: { type?: string; status?: string }[] };
}

/** 'ready', else why not (the words `kubectl get pods` would give). */
export function replicaState(p: PodJson): string {
  if (p.metadata?.deletionTimestamp !== undefined) return 'terminating';
  const phase = p.status?.phase ?? 'Unknown';
  if (phase !== 'Running') return phase;
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true ? 'ready' : 'not ready';
}

export class ReplicaList {
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #path: string;
  readonly #selector: string;
  #pods: ReplicaPodView[] | undefined;
  #error: string | undefined;
  #lastAsked = 0;
  #polling: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(o: { client: KubeClient; logger: Logger; namespace: string; selector: string }) {
    this.#client = o.client;
    this.#log = o.logger.child({ component: 'replica-list' });
    this.#path = `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods`;
    this.#selector = o.selector;
  }

  /** The last list read (undefined before the first), and why the last read failed if it did. Starts polling on first ask. */
  view(): { pods: ReplicaPodView[] | undefined; error: string | undefined } {
    this.#lastAsked = Date.now();
    if (this.#polling === undefined && this.#timer === undefined && !this.#stopped) this.#poll();
    return { pods: this.#pods, error: this.#error };
  }

  #poll(): void {
    this.#polling = this.#read().finally(() => {
      this.#polling = undefined;
      // nobody looked for a minute (no console page open): stop asking the API server until someone does
      if (!this.#stopped && Date.now() - this.#lastAsked < 60_000) this.#timer = setTimeout(() => ((this.#timer = undefined), this.#poll()), POLL_MS);
    });
  }

  async #read(): Promise<void> {
    try {
      const list = await this.#client.request<{ items?: PodJson[] }>('GET', this.#path, { query: { labelSelector: this.#selector, limit: MAX_REPLICAS_SHOWN } });
      this.#pods = (list.items ?? [])
        .map((p) => ({ name: String(p.metadata?.name ?? '').slice(0, 253), state: replicaState(p).slice(0, 64) }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      if (this.#error !== undefined) this.#log.info('replica list read again');
      this.#error = undefined;
    } catch (err) {
      const msg = `cannot list the controller's pods (${this.#selector}): ${err instanceof Error ? err.message : String(err)}`.slice(0, 500);
      if (msg !== this.#error) this.#log.warn({ err }, 'cannot list the controller replicas for the console');
      this.#error = msg;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#polling;
  }
}
