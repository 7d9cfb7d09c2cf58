// The webhook's flags and the settings they give, apart from webhook.ts so that parsing flags never
// loads the Kubernetes client or the X.509 library.
import type { FlagSpec, FlagValues } from '../flags.ts';
import { defaultInjectionConfig, loadInjectionConfig, type InjectionConfig } from './injection-config.ts';

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
