// Composition of the injection webhook inside `qbasis controller`: flags → injection config → certificate
// (Secret, self-managed or cert-manager's) → HTTPS server. main.ts only spreads the flags and calls start.
import { KubeConfig } from '@kubernetes/client-node';
import type { ControllerComponent } from '../component.ts';
import type { FlagSpec, FlagValues } from '../flags.ts';
import { AdmissionServer } from './admission-server.ts';
import type { AdmissionOutcome } from './admission.ts';
import { CertKeeper } from './cert-keeper.ts';
import { defaultInjectionConfig, loadInjectionConfig } from './injection-config.ts';
import type { InjectionConfig } from './injection-config.ts';

/** Spread into the controller's CONTROLLER_FLAGS; each also settable as QBASIS_<FLAG>. */
export const WEBHOOK_FLAG_SPECS: FlagSpec[] = [
  { name: 'webhook-port', kind: 'port', help: 'admission webhook HTTPS port for POST /mutate (chart: 9443; 0 = any free port; unset = webhook off)' },
  { name: 'webhook-address', kind: 'string', help: 'webhook bind address (default: the discovery address)' },
  { name: 'webhook-secret', kind: 'string', default: 'qbasis-webhook-tls', help: "Secret in the controller's namespace holding ca.crt, ca.key, tls.crt, tls.key" },
  { name: 'webhook-config-name', kind: 'string', help: 'MutatingWebhookConfiguration whose caBundle is kept in step (unset: left alone)' },
  { name: 'webhook-service', kind: 'string', default: 'qbasis-webhook', help: 'Service in front of the webhook; its DNS names go into the certificate' },
  { name: 'webhook-san', kind: 'string', help: 'extra DNS names or IPs for the certificate, comma-separated' },
  { name: 'webhook-cert-mode', kind: 'enum', values: ['self', 'load'], default: 'self', help: 'self: generate, renew, patch caBundle; load: only read the Secret (cert-manager writes it)' },
  { name: 'webhook-ca-days', kind: 'int', default: '3650', help: 'days a self-managed webhook CA is valid' },
  { name: 'webhook-cert-days', kind: 'int', default: '365', help: 'days a self-managed serving certificate is valid (renewed at two thirds)' },
  { name: 'webhook-strict', kind: 'bool', default: 'false', help: 'refuse pods with invalid qbasis annotations instead of warning' },
  { name: 'injection-config', kind: 'string', help: 'JSON injection defaults (the chart mounts it from a ConfigMap)' },
  { name: 'sidecar-image', kind: 'string', help: 'sidecar image (overrides the injection config)' },
  { name: 'sidecar-discovery', kind: 'string', help: 'discovery host:port given to sidecars (default qbasis-discovery.<namespace>.svc:15010)' },
  { name: 'webhook-namespace', kind: 'string', help: "the controller's own namespace (never injected; holds the webhook Secret); default $POD_NAMESPACE, else qbasis-system" },
];

export interface WebhookSettings {
  host: string;
  port: number;
  namespace: string;
  secretName: string;
  webhookConfigName: string | undefined;
  hosts: string[];
  certMode: 'self' | 'load';
  caDays: number;
  certDays: number;
  injection: InjectionConfig;
}

/** undefined: the webhook is off (no --webhook-port). */
export function webhookSettings(flags: FlagValues, defaultHost: string): WebhookSettings | undefined {
  const portText = flags.get('webhook-port');
  if (portText === undefined) return undefined;
  const namespace = flags.get('webhook-namespace') ?? process.env.POD_NAMESPACE ?? 'qbasis-system';
  const service = flags.get('webhook-service') ?? 'qbasis-webhook';
  const sans = (flags.get('webhook-san') ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
  const hosts = [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service, ...sans];
  let injection = defaultInjectionConfig();
  injection.discoveryAddress = `qbasis-discovery.${namespace}.svc:15010`;
  const file = flags.get('injection-config');
  if (file !== undefined) injection = loadInjectionConfig(file, injection);
  injection.controllerNamespace = namespace; // the running namespace wins over any file
  injection.image = flags.get('sidecar-image') ?? injection.image;
  injection.discoveryAddress = flags.get('sidecar-discovery') ?? injection.discoveryAddress;
  if (flags.get('webhook-strict') === 'true') injection.strict = true;
  return {
    host: flags.get('webhook-address') ?? defaultHost,
    port: Number(portText),
    namespace,
    secretName: flags.get('webhook-secret') ?? 'qbasis-webhook-tls',
    webhookConfigName: flags.get('webhook-config-name'),
    hosts: [...new Set(hosts)],
    certMode: flags.get('webhook-cert-mode') === 'load' ? 'load' : 'self',
    caDays: Math.max(1, Number(flags.get('webhook-ca-days') ?? 3650)),
    certDays: Math.max(1, Number(flags.get('webhook-cert-days') ?? 365)),
    injection,
  };
}

/** A kubeconfig file if given, else in-cluster, else $KUBECONFIG / ~/.kube/config. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined && path !== '') kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST !== undefined && process.env.KUBECONFIG === undefined) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

export interface RunningWebhook {
  port: number;
  stop(): Promise<void>;
}

export interface StartWebhookOptions {
  settings: WebhookSettings;
  kubeConfig: KubeConfig;
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
    kubeConfig: o.kubeConfig,
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
  opts: Omit<StartWebhookOptions, 'settings' | 'kubeConfig'> & { kubeConfig?: KubeConfig; kubeconfigPath?: string | undefined },
): ControllerComponent {
  const deps = { ...opts, kubeConfig: opts.kubeConfig ?? loadKubeConfig(opts.kubeconfigPath) };
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
