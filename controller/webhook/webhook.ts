// Composition of the injection webhook inside `qbasis controller`: flags → injection config → certificate
// (Secret, self-managed or cert-manager's) → HTTPS server. main.ts only spreads the flags and calls start.
import type { ControllerComponent } from '../component.ts';
import { FlagError } from '../flags.ts';
import { KubeClient, loadKubeConfig } from '../kube/kube-client.ts';
import { AdmissionServer } from './admission-server.ts';
import type { AdmissionOutcome } from './admission.ts';
import { CertKeeper } from './cert-keeper.ts';
import type { WebhookSettings } from './webhook-settings.ts';

export interface RunningWebhook {
  port: number;
  stop(): Promise<void>;
}

export interface StartWebhookOptions {
  settings: WebhookSettings;
  client: KubeClient;
  /** The leader writes the Secret and the caBundle; without leader election every replica may. */
  isLeader?: () => boolean;
  /** Aborting stops the wait for a first certificate. */
  signal?: AbortSignal;
  onDecision?: (outcome: AdmissionOutcome, req: { namespace?: string; name?: string; durationMs: number }) => void;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Resolves when the server listens with a valid certificate. */
export async function startWebhook(o: StartWebhookOptions): Promise<RunningWebhook> {
  const s = o.settings;
  let server: AdmissionServer | undefined;
  let first: (b: { cert: string; key: string }) => void = () => {};
  const firstBundle = new Promise<{ cert: string; key: string }>((r) => (first = r));
  const keeper = new CertKeeper({
    client: o.client,
    namespace: s.namespace,
    secretName: s.secretName,
    webhookConfigName: s.certMode === 'self' ? s.webhookConfigName : undefined,
    hosts: s.hosts,
    mode: s.certMode,
    isWriter: o.isLeader,
    caDays: s.caDays,
    certDays: s.certDays,
    onBundle: (b) => (server ? server.setCertificate(b.cert, b.key) : first(b)),
    log: o.log,
  });
  o.signal?.addEventListener('abort', () => void keeper.stop());
  await keeper.start();
  if (o.signal?.aborted) throw new Error('stopped before a certificate was available');
  const b = await firstBundle;
  const onDecision =
    o.onDecision ??
    ((outcome: AdmissionOutcome, req: { namespace?: string; name?: string; durationMs: number }) =>
      o.log?.(outcome.decision === 'refuse' ? 'warn' : 'info', 'admission', { decision: outcome.decision, namespace: req.namespace, pod: req.name, ms: Math.round(req.durationMs * 10) / 10, warnings: outcome.review.response?.warnings?.length ?? 0 }));
  server = new AdmissionServer({ host: s.host, port: s.port, cert: b.cert, key: b.key, config: s.injection, onDecision, log: o.log });
  const address = await server.listen();
  o.log?.('info', 'admission webhook listening', { host: s.host, port: address.port, strict: s.injection.strict });
  return {
    port: address.port,
    stop: async () => {
      await keeper.stop();
      await server?.close();
    },
  };
}

/**
 * The webhook as a controller component. start() returns at once: the server listens as soon as a
 * certificate is in the Secret (a non-leader replica waits for the leader to write one), and ready()
 * reports it, so /live answers meanwhile.
 */
export function webhookComponent(
  settings: WebhookSettings,
  opts: Omit<StartWebhookOptions, 'settings' | 'client'> & { client?: KubeClient; kubeconfigPath?: string | undefined },
): ControllerComponent {
  const deps = { ...opts, client: opts.client ?? webhookClient(opts.kubeconfigPath) };
  let running: RunningWebhook | undefined;
  let starting: Promise<void> | undefined;
  let stopped = false;
  const abort = new AbortController();
  return {
    name: 'admission webhook serving',
    start: async () => {
      starting = startWebhook({ ...deps, settings, signal: abort.signal }).then(
        (w) => {
          running = w;
        },
        (err: unknown) => deps.log?.('error', 'admission webhook failed to start', { err: (err as Error).message }),
      );
    },
    stop: async () => {
      stopped = true;
      abort.abort();
      await starting;
      await running?.stop();
    },
    ready: () => running !== undefined && !stopped,
  };
}

/** Local mode has no Kubernetes-mode client to share: the webhook loads its own config (same rules). */
function webhookClient(kubeconfig: string | undefined): KubeClient {
  try {
    return new KubeClient(loadKubeConfig({ kubeconfig }));
  } catch (err) {
    throw new FlagError(`cannot load Kubernetes config for the webhook: ${err instanceof Error ? err.message : String(err)}`);
  }
}
