// The controller's composition root: flags → pod source → endpoint registry →
// discovery server → extra components → admin HTTP, then wait for SIGTERM/SIGINT and
// take it all down in reverse. See controller/README.md for the extension points.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { DEFAULT_DISCOVERY_PORT, DEFAULT_INBOUND_PORT } from '../proto/discovery.ts';
import { AdminServer, type ReadinessCheck } from './admin-server.ts';
import type { ControllerComponent } from './component.ts';
import { DiscoveryServer } from './discovery-server.ts';
import { EndpointRegistry } from './endpoint-registry.ts';
import { PolicyIntake } from './policy-intake.ts';
import { PolicyStore } from './policy-store.ts';
import { MirrorResults } from './mirror-results.ts';
import { commandUsage, parseCommandLine, reportFailure, UsageError, type CommandSpec, type FlagSpec, type FlagValues } from '../cli/flags.ts';
import { DEFAULT_PODS_FILE_MAX_BYTES, PodsFileSource } from './local/pods-file-source.ts';
import { controllerMetrics } from './metrics.ts';
import type { PodSource } from './pod-source.ts';
// Flags only: the Kubernetes client (~130 MB, ~1 s to load) comes in with the mode that uses it.
import { WEBHOOK_FLAG_SPECS, webhookSettings } from './webhook/webhook-settings.ts';
import { KUBE_FLAG_SPECS } from './kube/kube-flags.ts';
import type { KubeMode } from './kube/kube-mode.ts';
import { TeedPodSource } from './kube/tee-sink.ts';
import { IDENTITY_FLAG_SPECS, identitySettings, trustDomainOf } from './identity/identity-settings.ts';
import { warnAllowUnenforced } from './identity/allow-unenforced.ts';
import type { MeshIdentity } from './identity/mesh-identity.ts';
import { teeSink } from './kube/tee-sink.ts';
import { CONSOLE_FLAG_SPECS, consoleParts } from './console/console.ts';

export const CONTROLLER_FLAGS: FlagSpec[] = [
  { name: 'pods-file', kind: 'string', arg: '<file>', help: 'local mode: YAML of Pod manifests (kubectl get pods -o yaml), watched for edits' },
  { name: 'discovery-port', kind: 'port', default: String(DEFAULT_DISCOVERY_PORT), help: 'discovery gRPC port' },
  { name: 'discovery-address', kind: 'string', help: 'discovery bind address (default 127.0.0.1 in local mode)' },
  { name: 'admin-port', kind: 'port', default: '8080', help: 'admin HTTP port (/live /ready /metrics)' },
  { name: 'admin-address', kind: 'string', help: 'admin bind address (default: the discovery address)' },
  { name: 'inbound-port', kind: 'port', default: String(DEFAULT_INBOUND_PORT), help: "the sidecars' inbound port, advertised for every endpoint" },
  { name: 'reload-debounce-ms', kind: 'int', default: '100', help: 'local mode: quiet time after a pods file change before re-reading' },
  { name: 'pods-file-max-bytes', kind: 'int', min: 1, expected: 'a positive number of bytes', default: String(DEFAULT_PODS_FILE_MAX_BYTES), help: 'local mode: a larger pods file is refused unread (the last good state is kept)' },
  { name: 'log-level', kind: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info', help: 'log level' },
  ...IDENTITY_FLAG_SPECS,
  ...WEBHOOK_FLAG_SPECS,
  ...KUBE_FLAG_SPECS,
  ...CONSOLE_FLAG_SPECS,
];

export const CONTROLLER_COMMAND: CommandSpec = {
  name: 'controller',
  synopsis: '--pods-file <file> | --kubeconfig <file> [flags]',
  summary: 'Local mode with --pods-file; Kubernetes mode with --kubeconfig, $KUBECONFIG, ~/.kube/config or an in-cluster service account.',
  env: true,
  flags: CONTROLLER_FLAGS,
};

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Where Kubernetes mode would find its config (the order @kubernetes/client-node's loadFromDefault
 * uses), or undefined when there is none: then the client would fall back to http://localhost:8080
 * and retry for ever, so main refuses at once instead.
 */
function kubeConfigSource(flags: FlagValues, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.get('kubeconfig') !== undefined) return '--kubeconfig';
  if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '') return 'in-cluster';
  if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== '') return '$KUBECONFIG';
  const home = env.HOME ?? os.homedir();
  if (home !== '' && fs.existsSync(path.join(home, '.kube', 'config'))) return '~/.kube/config';
  if (fs.existsSync(SERVICE_ACCOUNT_TOKEN)) return 'in-cluster';
  return undefined;
}

class StartupError extends Error {}

/**
 * Picks the pod source from the flags. Local mode: --pods-file. Kubernetes mode
 * (--kubeconfig / in-cluster) plugs in here: return the informer-backed source.
 */
async function selectPodSource(flags: FlagValues, logger: Logger, policies: PolicyIntake): Promise<{ source: PodSource; localMode: boolean; kube?: KubeMode }> {
  const podsFile = flags.get('pods-file');
  if (podsFile !== undefined) {
    let st: fs.Stats;
    try {
      st = fs.statSync(podsFile);
    } catch (err) {
      throw new UsageError(`--pods-file '${podsFile}' is invalid: expected an existing file (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    if (!st.isFile()) throw new UsageError(`--pods-file '${podsFile}' is invalid: expected a file, got a directory or device`);
    const maxBytes = Number(flags.get('pods-file-max-bytes'));
    return { source: new PodsFileSource({ path: podsFile, logger, debounceMs: Number(flags.get('reload-debounce-ms')), maxBytes, policies }), localMode: true };
  }
  // Kubernetes mode: informer over pods (controller/kube/), kubeconfig or in-cluster config.
  if (kubeConfigSource(flags, process.env) === undefined) {
    throw new UsageError(
      'no pod source: expected --pods-file <file> (local mode) or --kubeconfig <file> (Kubernetes mode); no $KUBECONFIG, ~/.kube/config or in-cluster service account was found either',
    );
  }
  const { KubeMode } = await import('./kube/kube-mode.ts');
  const kube = new KubeMode(flags, logger, policies);
  return { source: kube.source, localMode: false, kube };
}

/** Components that run beside the core: leader election, reconciler, webhook (Kubernetes mode adds them here). */
async function extraComponents(flags: FlagValues, deps: { registry: EndpointRegistry; mirrorResults: MirrorResults; logger: Logger; kube?: KubeMode }): Promise<ControllerComponent[]> {
  const components: ControllerComponent[] = [];
  if (deps.kube !== undefined) components.push(deps.kube.component(deps.registry, deps.mirrorResults));
  // Sidecar injection (controller/webhook/): only with --webhook-port; needs a kubeconfig for its Secret.
  const webhook = webhookSettings(flags, flags.get('discovery-address') ?? (flags.get('pods-file') !== undefined ? '127.0.0.1' : '0.0.0.0'));
  if (webhook !== undefined) {
    const { webhookComponent } = await import('./webhook/webhook.ts');
    const log = deps.logger.child({ component: 'webhook' });
    components.push(
      webhookComponent(webhook, {
        kubeconfigPath: flags.get('kubeconfig'),
        // In Kubernetes mode only the Lease holder writes the certificate Secret and the caBundle.
        ...(deps.kube !== undefined ? { client: deps.kube.client, isLeader: () => deps.kube!.isLeader() } : {}),
        log: (level, msg, fields) => log[level](fields ?? {}, msg),
      }),
    );
  }
  return components;
}

function waitForSignal(logger: Logger): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      logger.info({ signal: sig }, 'shutting down');
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

export async function main(argv: string[]): Promise<number> {
  let flags: FlagValues;
  let logger: Logger;
  let picked: { source: PodSource; localMode: boolean; kube?: KubeMode };
  let registry: EndpointRegistry;
  const policyStore = new PolicyStore();
  const mirrorResults = new MirrorResults();
  let policies: PolicyIntake;
  try {
    const parsed = parseCommandLine(CONTROLLER_COMMAND, argv, process.env);
    if (parsed === 'help') {
      process.stdout.write(commandUsage(CONTROLLER_COMMAND) + '\n');
      return 0;
    }
    flags = parsed.values;
    logger = pino({ level: flags.get('log-level') ?? 'info', base: { name: 'qbasis-controller', pid: process.pid } });
    // grpc-js writes its own errors to stderr (a port in use would be two lines there); they are log lines.
    const grpcLog = logger.child({ component: 'grpc-js' });
    grpc.setLogger({ error: (...a: unknown[]) => grpcLog.warn(a.join(' ')), info: (...a: unknown[]) => grpcLog.info(a.join(' ')), debug: (...a: unknown[]) => grpcLog.debug(a.join(' ')) });
    registry = new EndpointRegistry({ logger, inboundPort: Number(flags.get('inbound-port')), trustDomain: trustDomainOf(flags) });
    const reg = registry;
    policies = new PolicyIntake({ store: policyStore, logger, apiKnown: (api) => reg.list(api).length > 0 });
    picked = await selectPodSource(flags, logger, policies);
  } catch (err) {
    if (err instanceof UsageError) return reportFailure('controller', err);
    throw err;
  }
  const { localMode, kube } = picked;
  let source = picked.source;
  // Local mode serves loopback only; in a cluster sidecars on other pods must reach us.
  const discoveryAddress = flags.get('discovery-address') ?? (localMode ? '127.0.0.1' : '0.0.0.0');
  const adminAddress = flags.get('admin-address') ?? discoveryAddress;
  const consoleAt = consoleParts(flags);

  const discovery = new DiscoveryServer({
    registry,
    policies: policyStore,
    mirrorResults,
    ...(consoleAt !== undefined ? { callTraffic: consoleAt.traffic } : {}),
    logger,
    host: discoveryAddress,
    port: Number(flags.get('discovery-port')),
    ...(kube !== undefined ? { onPushed: kube.onPushed, onReport: (r) => kube.forwardReport(r) } : {}),
  });
  let components: ControllerComponent[];
  let identity: MeshIdentity | undefined;
  try {
    const idSettings = identitySettings(flags, { localMode, discoveryAddress });
    if (idSettings !== undefined) {
      const { MeshIdentity } = await import('./identity/mesh-identity.ts');
      const where = idSettings.root.kind === 'dir' ? `--identity-dir ${idSettings.root.dir}` : `--identity-secret ${idSettings.root.name}`;
      const kubeDeps = kube === undefined ? undefined : { api: kube.client, isLeader: () => kube.isLeader(), onStartedLeading: (fn: () => void) => kube.onStartedLeading(fn), resyncMs: kube.resyncMs };
      identity = await MeshIdentity.create(idSettings, { logger, discovery, ...(kubeDeps !== undefined ? { kube: kubeDeps } : {}) }).catch((err: Error) => {
        throw new StartupError(`cannot use ${where}: ${err.message}`);
      });
      // The pods reach the authenticator (local tokens, or the pod cache TokenReview checks against) from the same stream as the registry.
      source = new TeedPodSource(source, identity.sink);
    } else {
      warnAllowUnenforced(policyStore, logger);
    }
    components = await extraComponents(flags, { registry, mirrorResults, logger, ...(kube !== undefined ? { kube } : {}) });
    // After the Kubernetes component: leader election runs before a standby waits for the leader's root.
    if (identity !== undefined) components.splice(kube !== undefined ? 1 : 0, 0, identity.component);
  } catch (err) {
    if (err instanceof UsageError) return reportFailure('controller', err);
    if (err instanceof StartupError) return reportFailure('controller', err);
    throw err;
  }
  if (consoleAt !== undefined) {
    components.push(
      consoleAt.component({ registry, intake: policies, store: policyStore, mirror: mirrorResults, discovery, source, mode: localMode ? 'local' : 'kubernetes', ...(kube !== undefined ? { replica: kube.replica, basisServices: kube.basisServices } : {}), ...(identity !== undefined ? { identity: () => identity.health.view() } : {}), logger }),
    );
  }
  const metrics = controllerMetrics({ registry, discovery, source });
  kube?.registerMetrics(metrics);
  identity?.registerMetrics(metrics);
  let discoveryUp = false;
  const checks: ReadinessCheck[] = [
    { name: `pod source ${source.kind} synced`, ok: () => source.synced() },
    { name: 'discovery serving', ok: () => discoveryUp },
    ...components.filter((c) => c.ready !== undefined).map((c) => ({ name: c.name, ok: () => c.ready!() })),
  ];
  const policiesView = (): unknown =>
    policies.objects().map(({ obj, condition }) => {
      const mirror = mirrorResults.forPolicy(`${obj.namespace}/${obj.name}`);
      return { namespace: obj.namespace, name: obj.name, generation: obj.generation, conditions: [condition], ...(mirror !== undefined ? { mirror } : {}) };
    });
  const admin = new AdminServer({ host: adminAddress, port: Number(flags.get('admin-port')), logger, metrics, checks, views: { '/policies': policiesView } });

  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  const signal = waitForSignal(logger);
  try {
    // Admin first: /live must answer while the initial sync waits on an API server, and /ready says what is missing.
    await admin.start().catch((err: Error) => {
      throw new StartupError(`cannot serve admin HTTP on ${adminAddress}:${flags.get('admin-port')}: ${err.message}`);
    });
    stops.push({ name: 'admin', stop: () => admin.stop() });
    const started = source.start(consoleAt === undefined ? registry : teeSink(registry, consoleAt.callers));
    stops.push({ name: 'pod source', stop: () => source.stop() });
    await Promise.race([started, signal]);
    if (!source.synced()) throw new StartupError('stopped before the pod source synced');
    await discovery.start().catch((err: Error) => {
      // grpc-js says "No address added out of total 1 resolved errors: [listen EADDRINUSE: …]": keep the cause.
      const cause = /errors: \[(.*)\]$/.exec(err.message)?.[1] ?? err.message;
      throw new StartupError(`cannot serve discovery on ${discoveryAddress}:${flags.get('discovery-port')}: ${cause}`);
    });
    discoveryUp = true;
    kube?.setDiscoveryAddress(discoveryAddress, discovery.port());
    stops.push({ name: 'discovery', stop: () => discovery.stop() });
    for (const c of components) {
      await c.start();
      stops.push(c);
    }
    logger.info({ mode: localMode ? 'local' : 'kubernetes', discovery: `${discoveryAddress}:${discovery.port()}` }, 'controller ready');
  } catch (err) {
    // Like a flag error, one line on stderr (not a JSON log line on stdout); exit 1, a runtime failure.
    await stopAll(stops, logger);
    return reportFailure('controller', err);
  }
  await signal;
  await stopAll(stops, logger);
  return 0;
}

async function stopAll(stops: Array<{ name: string; stop: () => Promise<void> }>, logger: Logger): Promise<void> {
  for (const s of stops.reverse()) {
    try {
      await s.stop();
    } catch (err) {
      logger.error({ component: s.name, err: (err as Error).message }, 'stop failed');
    }
  }
}
