// `qbasis check`: is the mesh healthy? Like `linkerd check`: one line per check, ✔ or ✖, and for each ✖
// what to do; exit 1 if anything failed. It only reads (the API server, and a TLS handshake with the
// webhook when the chart points the API server at a URL). The rules are pure functions of what was read,
// so each is testable without a cluster; `main` reads and prints.
import { X509Certificate } from 'node:crypto';
import process from 'node:process';
import tls from 'node:tls';
import { KubeClient, isNotFound, loadKubeConfig } from '../controller/kube/kube-client.ts';
import { ROOT_WARN_DAYS } from '../controller/console/mesh-snapshot.ts';
import { parseOrExit, type CommandSpec } from './flags.ts';

export const CHECK_COMMAND: CommandSpec = {
  name: 'check',
  summary: 'Checks that the qbasis install is healthy: CRDs, controller and leader, webhook, mesh identity, sidecars, BasisServices, BasisPolicies. Exit 1 on any ✖.',
  flags: [
    { name: 'kubeconfig', kind: 'string', arg: '<file>', help: 'kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)' },
    { name: 'namespace', kind: 'string', arg: '<ns>', default: 'qbasis-system', help: 'the release namespace' },
    { name: 'release', kind: 'string', arg: '<name>', default: 'qbasis', help: 'the Helm release name' },
    { name: 'lease-duration-ms', kind: 'int', min: 1000, max: 600_000, default: '15000', expected: 'milliseconds from 1000 to 600000', help: "the controller's --lease-duration-ms: a Lease not renewed for longer has no live leader" },
  ],
};

export interface CheckResult {
  ok: boolean;
  title: string;
  detail: string;
  /** What to do, for a ✖. */
  fix?: string;
}

const CRDS = ['basisservices.qbasis.io', 'basispolicies.qbasis.io'];
const SIDECAR = 'qbasis-sidecar';
/** How many failing objects a line names; the rest are counted. */
const NAMED = 5;

/** The chart's `qbasis.fullname` (without fullnameOverride): the release name if it contains the chart's name. */
export function chartFullname(release: string): string {
  return (release.includes('qbasis') ? release : `${release}-qbasis`).slice(0, 63).replace(/-+$/, '');
}

function listed(names: string[]): string {
  return names.length <= NAMED ? names.join(', ') : `${names.slice(0, NAMED).join(', ')} and ${names.length - NAMED} more`;
}

interface Condition { type: string; status: string; reason?: string; message?: string; observedGeneration?: number }
interface Obj { metadata: { name: string; namespace?: string; generation?: number; annotations?: Record<string, string>; deletionTimestamp?: string }; status?: { conditions?: Condition[] } }

export function checkCrds(crds: (Obj & { spec?: { versions?: { name: string; served: boolean }[] } } | undefined)[]): CheckResult {
  const bad: string[] = [];
  CRDS.forEach((name, i) => {
    const c = crds[i];
    if (c === undefined) bad.push(`${name} is not installed`);
    else if (!c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True')) bad.push(`${name} is not Established`);
    else if (!c.spec?.versions?.some((v) => v.name === 'v1alpha1' && v.served)) bad.push(`${name} does not serve v1alpha1`);
  });
  return bad.length === 0
    ? { ok: true, title: 'CRDs', detail: `${CRDS.join(' and ')} established, v1alpha1 served` }
    : { ok: false, title: 'CRDs', detail: bad.join('; '), fix: 'install the chart (helm upgrade --install … charts/qbasis; crds.enabled=true) or kubectl apply -f charts/qbasis/files/crds/' };
}

export function checkController(ns: string, name: string, d: { spec?: { replicas?: number }; status?: { readyReplicas?: number } } | undefined): CheckResult {
  const title = 'controller';
  if (d === undefined) return { ok: false, title, detail: `Deployment ${ns}/${name} not found`, fix: `install the chart into ${ns} (or pass --namespace/--release)` };
  const want = d.spec?.replicas ?? 1;
  const ready = d.status?.readyReplicas ?? 0;
  if (want > 0 && ready === 0) return { ok: false, title, detail: `Deployment ${ns}/${name}: 0 of ${want} replicas ready`, fix: `kubectl -n ${ns} describe deployment ${name}; kubectl -n ${ns} logs deployment/${name}` };
  return { ok: true, title, detail: `Deployment ${ns}/${name}: ${ready}/${want} replicas ready` };
}

export function checkLeader(ns: string, name: string, lease: { spec?: { holderIdentity?: string; renewTime?: string } } | undefined, leaseDurationMs: number, now: number): CheckResult {
  const title = 'leader';
  const fix = `no replica writes statuses: kubectl -n ${ns} get pods; kubectl -n ${ns} logs deployment/${name.replace(/-controller$/, '')}-controller`;
  if (lease === undefined) return { ok: false, title, detail: `no Lease ${ns}/${name}: no controller has ever led`, fix };
  const holder = lease.spec?.holderIdentity ?? '';
  const renewed = Date.parse(lease.spec?.renewTime ?? '');
  if (holder === '' || Number.isNaN(renewed)) return { ok: false, title, detail: `Lease ${ns}/${name} has no holder`, fix };
  const ago = Math.max(0, now - renewed);
  if (ago > leaseDurationMs) return { ok: false, title, detail: `Lease ${ns}/${name}: ${holder} last renewed ${Math.round(ago / 1000)} s ago (more than the ${leaseDurationMs / 1000} s lease)`, fix };
  return { ok: true, title, detail: `${holder} holds Lease ${ns}/${name} (renewed ${Math.round(ago / 1000)} s ago)` };
}

interface WebhookConfig { webhooks?: { name: string; clientConfig?: { caBundle?: string; url?: string; service?: { name: string; namespace: string; port?: number } } }[] }

/** The caBundle's certificates, or why there are none. */
export function caCertificates(caBundle: string | undefined): X509Certificate[] | string {
  if (caBundle === undefined || caBundle === '') return 'has no caBundle (the controller writes it once it leads)';
  const pem = Buffer.from(caBundle, 'base64').toString('utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'has a caBundle with no PEM certificate in it';
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    return `has a caBundle that does not parse: ${(err as Error).message}`;
  }
}

export function checkWebhookConfig(name: string, cfg: WebhookConfig | undefined, now: number): CheckResult {
  const title = 'webhook';
  const fix = 'helm upgrade --install the release; the controller fills the caBundle when it leads (see the leader line)';
  if (cfg === undefined) return { ok: false, title, detail: `MutatingWebhookConfiguration ${name} not found: pods are created without sidecars`, fix };
  const hook = cfg.webhooks?.find((w) => w.name === 'sidecar-injector.qbasis.io');
  if (hook === undefined) return { ok: false, title, detail: `MutatingWebhookConfiguration ${name} has no sidecar-injector.qbasis.io webhook`, fix };
  const cas = caCertificates(hook.clientConfig?.caBundle);
  if (typeof cas === 'string') return { ok: false, title, detail: `MutatingWebhookConfiguration ${name} ${cas}`, fix };
  const expired = cas.filter((c) => Date.parse(c.validTo) < now);
  if (expired.length === cas.length) return { ok: false, title, detail: `every CA in ${name}'s caBundle expired (${cas.map((c) => c.validTo).join(', ')})`, fix: 'restart the controller so it issues a new CA, or renew it in cert-manager' };
  return { ok: true, title, detail: `MutatingWebhookConfiguration ${name} has a caBundle (${cas.length} CA, valid until ${cas.map((c) => c.validTo).join(', ')})` };
}

/** Whether the serving certificate chains to the caBundle, names the host, and is in date. */
export function servingCertProblem(leaf: X509Certificate, cas: X509Certificate[], host: string, now: number): string | undefined {
  if (!cas.some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))) return `its certificate (${leaf.subject.replace(/\n/g, ', ')}) is not signed by a CA in the caBundle`;
  if (Date.parse(leaf.validTo) < now) return `its certificate expired ${leaf.validTo}`;
  if (leaf.checkHost(host) === undefined && leaf.checkIP(host) === undefined) return `its certificate does not name ${host} (${leaf.subjectAltName ?? 'no SAN'})`;
  return undefined;
}

/** TLS to the webhook's URL: the certificate it serves must verify against the caBundle, as the API server's check would. */
function handshake(url: string, timeoutMs: number): Promise<X509Certificate> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: u.hostname, port: Number(u.port || 443), servername: /^[\d.]+$/.test(u.hostname) ? undefined : u.hostname, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    const t = setTimeout(() => s.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(t);
      const raw = s.getPeerX509Certificate();
      s.end();
      if (raw === undefined) reject(new Error('it sent no certificate'));
      else resolve(raw);
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

async function checkWebhookReachable(client: KubeClient, cfg: WebhookConfig | undefined, now: number): Promise<CheckResult | undefined> {
  const hook = cfg?.webhooks?.find((w) => w.name === 'sidecar-injector.qbasis.io');
  const cas = caCertificates(hook?.clientConfig?.caBundle);
  if (hook === undefined || typeof cas === 'string') return undefined; // the config line already says why
  const title = 'webhook reachable';
  const url = hook.clientConfig?.url;
  if (url !== undefined) {
    try {
      const leaf = await handshake(url, 5000);
      const problem = servingCertProblem(leaf, cas, new URL(url).hostname, now);
      if (problem !== undefined) return { ok: false, title, detail: `${url} answers, but ${problem}`, fix: 'the controller serving the webhook and the caBundle disagree: restart the controller' };
      return { ok: true, title, detail: `${url} answers TLS with a certificate the caBundle verifies` };
    } catch (err) {
      return { ok: false, title, detail: `${url}: ${(err as Error).message}`, fix: 'is the controller that serves the webhook running? (webhook.url points outside the cluster)' };
    }
  }
  const svc = hook.clientConfig?.service;
  if (svc === undefined) return { ok: false, title, detail: 'the webhook has neither a URL nor a Service', fix: 'helm upgrade --install the release' };
  const ref = `${svc.namespace}/${svc.name}`;
  try {
    await client.request('GET', `/api/v1/namespaces/${svc.namespace}/services/${svc.name}`);
  } catch (err) {
    if (isNotFound(err)) return { ok: false, title, detail: `Service ${ref} not found: the API server cannot call the injector, so pods are created without sidecars`, fix: `helm upgrade --install the release to recreate it (kubectl -n ${svc.namespace} get svc)` };
    throw err;
  }
  const slices = await client.request<{ items: { endpoints?: { conditions?: { ready?: boolean } }[] }[] }>('GET', `/apis/discovery.k8s.io/v1/namespaces/${svc.namespace}/endpointslices`, { query: { labelSelector: `kubernetes.io/service-name=${svc.name}` } });
  const ready = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).length;
  if (ready === 0) return { ok: false, title, detail: `Service ${ref} has no ready endpoint: no controller replica serves the webhook`, fix: `kubectl -n ${svc.namespace} get pods; kubectl -n ${svc.namespace} describe svc ${svc.name}` };
  return { ok: true, title, detail: `Service ${ref} has ${ready} ready endpoint${ready === 1 ? '' : 's'}` };
}

const DAY_MS = 86_400_000;

type Deployment = { spec?: { replicas?: number; template?: { spec?: { containers?: { args?: string[] }[] } } }; status?: { readyReplicas?: number } };

/** The controller's --identity-secret, from its Deployment (undefined: identity off). */
export function identitySecretOf(d: Deployment | undefined): string | undefined {
  const args = d?.spec?.template?.spec?.containers?.[0]?.args ?? [];
  return args.find((a) => a.startsWith('--identity-secret='))?.slice('--identity-secret='.length);
}

/**
 * Mesh identity: the root in its Secret (present, a CA, not near its expiry) and the trust bundle ConfigMap in
 * every namespace with injected pods, holding that root. Only `tls.crt` of the Secret is looked at.
 */
export function checkIdentity(ns: string, secretName: string | undefined, rootPem: string | undefined, bundles: { namespace: string; caCrt: string | undefined }[], now: number): CheckResult {
  const title = 'mesh identity';
  if (secretName === undefined) return { ok: true, title, detail: 'off (identity.enabled=false): calls between sidecars are plain text' };
  const where = `Secret ${ns}/${secretName}`;
  if (rootPem === undefined || rootPem === '') {
    return { ok: false, title, detail: `${where} holds no root yet`, fix: `the leader writes it on start (kubectl -n ${ns} logs <controller pod> | grep 'mesh root'); with identity.issuer.existingSecret, create it: kubectl -n ${ns} create secret tls ${secretName} --cert ca.pem --key ca-key.pem` };
  }
  let root: X509Certificate;
  try {
    root = new X509Certificate(rootPem);
  } catch (err) {
    return { ok: false, title, detail: `${where} has a tls.crt that does not parse: ${(err as Error).message}`, fix: `kubectl -n ${ns} get secret ${secretName} -o jsonpath='{.data.tls\.crt}' | base64 -d | openssl x509 -noout -text` };
  }
  const left = Math.floor((Date.parse(root.validTo) - now) / DAY_MS);
  if (!root.ca) return { ok: false, title, detail: `${where} holds a certificate that is not a CA`, fix: 'give identity.issuer.existingSecret a self-signed ECDSA P-256 CA' };
  if (left < ROOT_WARN_DAYS) {
    return { ok: false, title, detail: `the root in ${where} expires ${root.validTo} (${left} days)`, fix: 'rotate the root (controller/README.md, "Mesh identity") before it expires: every certificate chains to it' };
  }
  const stale = bundles.filter((b) => b.caCrt === undefined || !b.caCrt.includes(rootPem.trim()));
  if (stale.length > 0) {
    return {
      ok: false, title,
      detail: `${stale.length} of ${bundles.length} namespaces with injected pods lack the trust bundle ConfigMap qbasis-root-ca with this root: ${listed(stale.map((b) => `${b.namespace}${b.caCrt === undefined ? ' (missing)' : ' (another root)'}`))}`,
      fix: 'the leader writes it when a namespace gets its first injected pod and every resync; kubectl -n <ns> get configmap qbasis-root-ca; the leader\'s log says why not',
    };
  }
  return { ok: true, title, detail: `root in ${where} valid until ${root.validTo} (${left} days); trust bundle in ${bundles.length} namespace${bundles.length === 1 ? '' : 's'} with injected pods` };
}

interface PodJson extends Obj {
  spec?: { initContainers?: { name: string }[]; containers?: { name: string }[] };
  status?: Obj['status'] & { phase?: string; initContainerStatuses?: { name: string; ready: boolean }[]; containerStatuses?: { name: string; ready: boolean }[] };
}

export function checkSidecars(pods: PodJson[]): CheckResult {
  const title = 'sidecars';
  const injected = pods.filter((p) => [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].some((c) => c.name === SIDECAR));
  const live = injected.filter((p) => p.metadata.deletionTimestamp === undefined && p.status?.phase === 'Running');
  const notReady = live.filter((p) => ![...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].some((s) => s.name === SIDECAR && s.ready));
  if (notReady.length > 0) {
    return {
      ok: false, title,
      detail: `${notReady.length} of ${live.length} running injected pods have a sidecar that is not ready (it is ready once it has a discovery snapshot for every API it requires): ${listed(notReady.map((p) => `${p.metadata.namespace}/${p.metadata.name}`))}`,
      fix: `kubectl logs <pod> -c ${SIDECAR}; is the discovery Service reachable from the pod?`,
    };
  }
  return { ok: true, title, detail: live.length === 0 ? 'no running injected pods' : `${live.length} running injected pod${live.length === 1 ? '' : 's'}, every sidecar ready (connected to discovery)` };
}

function conditionProblems(objs: Obj[], type: string, acceptable: (c: Condition) => boolean): string[] {
  return objs.flatMap((o) => {
    const c = o.status?.conditions?.find((x) => x.type === type);
    const stale = c?.observedGeneration !== undefined && o.metadata.generation !== undefined && c.observedGeneration < o.metadata.generation;
    if (c !== undefined && acceptable(c) && !stale) return [];
    const why = c === undefined ? `no ${type} condition yet` : stale ? `${type} is for generation ${c.observedGeneration}, the object is at ${o.metadata.generation}` : `${type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`.trim();
    return [`${o.metadata.namespace}/${o.metadata.name} (${why})`];
  });
}

export function checkBasisServices(items: Obj[]): CheckResult {
  const bad = conditionProblems(items, 'Synced', (c) => c.status === 'True');
  return bad.length === 0
    ? { ok: true, title: 'BasisServices', detail: `${items.length} Synced` }
    : { ok: false, title: 'BasisServices', detail: `${bad.length} of ${items.length} not Synced: ${listed(bad)}`, fix: 'kubectl describe bsvc <name>; the leader writes them (see the leader line)' };
}

export function checkBasisPolicies(items: Obj[]): CheckResult {
  // NoSuchAPI is a policy waiting for its pods, not a fault.
  const bad = conditionProblems(items, 'Accepted', (c) => c.status === 'True' || c.reason === 'NoSuchAPI');
  return bad.length === 0
    ? { ok: true, title: 'BasisPolicies', detail: `${items.length} accepted` }
    : { ok: false, title: 'BasisPolicies', detail: `${bad.length} of ${items.length} refused: ${listed(bad)}`, fix: 'kubectl describe bpol <name> names the field; the last accepted spec stays in force meanwhile' };
}

async function getOrUndefined<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.request<T>('GET', path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function listOrEmpty<T>(client: KubeClient, path: string): Promise<T[]> {
  try {
    return (await client.request<{ items: T[] }>('GET', path)).items;
  } catch (err) {
    if (isNotFound(err)) return []; // the CRD is missing: the CRD line says so
    throw err;
  }
}

export async function runChecks(client: KubeClient, o: { namespace: string; release: string; leaseDurationMs: number }): Promise<CheckResult[]> {
  const now = Date.now();
  const full = chartFullname(o.release);
  const controller = `${full}-controller`;
  const webhookConfig = `${full}-sidecar-injector`;
  const [crds, deployment, lease, cfg, pods, bsvcs, bpols] = await Promise.all([
    Promise.all(CRDS.map((c) => getOrUndefined<Obj>(client, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${c}`))),
    getOrUndefined<Deployment>(client, `/apis/apps/v1/namespaces/${o.namespace}/deployments/${controller}`),
    getOrUndefined<{ spec?: { holderIdentity?: string; renewTime?: string } }>(client, `/apis/coordination.k8s.io/v1/namespaces/${o.namespace}/leases/${controller}`),
    getOrUndefined<WebhookConfig>(client, `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`),
    listOrEmpty<PodJson>(client, '/api/v1/pods'),
    listOrEmpty<Obj>(client, '/apis/qbasis.io/v1alpha1/basisservices'),
    listOrEmpty<Obj>(client, '/apis/qbasis.io/v1alpha1/basispolicies'),
  ]);
  const results: CheckResult[] = [
    checkCrds(crds),
    checkController(o.namespace, controller, deployment),
    checkLeader(o.namespace, controller, lease, o.leaseDurationMs, now),
    checkWebhookConfig(webhookConfig, cfg, now),
  ];
  const reach = await checkWebhookReachable(client, cfg, now);
  if (reach !== undefined) results.push(reach);
  const secretName = identitySecretOf(deployment);
  if (secretName !== undefined) {
    const secret = await getOrUndefined<{ data?: Record<string, string> }>(client, `/api/v1/namespaces/${o.namespace}/secrets/${encodeURIComponent(secretName)}`);
    const rootPem = secret?.data?.['tls.crt'] === undefined ? undefined : Buffer.from(secret.data['tls.crt'], 'base64').toString('utf8');
    const injectedNs = [...new Set(pods.filter((p) => p.metadata.annotations?.['qbasis.io/injected'] !== undefined && p.metadata.namespace !== undefined).map((p) => p.metadata.namespace!))].sort().slice(0, 100);
    const bundles = await Promise.all(injectedNs.map(async (namespace) => ({
      namespace,
      caCrt: (await getOrUndefined<{ data?: Record<string, string> }>(client, `/api/v1/namespaces/${namespace}/configmaps/qbasis-root-ca`))?.data?.['ca.crt'],
    })));
    results.push(checkIdentity(o.namespace, secretName, rootPem, bundles, now));
  } else {
    results.push(checkIdentity(o.namespace, undefined, undefined, [], now));
  }
  results.push(checkSidecars(pods), checkBasisServices(bsvcs), checkBasisPolicies(bpols));
  return results;
}

export function formatResults(results: CheckResult[]): string {
  const lines = results.map((r) => `${r.ok ? '✔' : '✖'} ${r.title}: ${r.detail}${r.ok || r.fix === undefined ? '' : `\n    → ${r.fix}`}`);
  const failed = results.filter((r) => !r.ok).length;
  lines.push('', failed === 0 ? `Status: every check passed (${results.length})` : `Status: ${failed} of ${results.length} checks failed`);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseOrExit(CHECK_COMMAND, argv, process.env);
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values;
  const kubeconfig = v.get('kubeconfig');
  const client = new KubeClient(loadKubeConfig(kubeconfig === undefined ? {} : { kubeconfig }));
  const namespace = v.get('namespace')!;
  const release = v.get('release')!;
  process.stdout.write(`qbasis check: release ${release} in namespace ${namespace}\n`);
  const results = await runChecks(client, { namespace, release, leaseDurationMs: Number(v.get('lease-duration-ms')) });
  process.stdout.write(formatResults(results) + '\n');
  return results.every((r) => r.ok) ? 0 : 1;
}
