// `qbasis sidecar`: wires discovery → balancers → outbound, the inbound checks, admin and drain.
import './gateway/uint8array-base64.ts'; // before @bufbuild/protobuf loads (see there)
import module from 'node:module';
import process from 'node:process';
import { pino } from 'pino';
import { QbasisError } from '../proto/errors.ts';
import { startAdmin } from './admin-server.ts';
import { parseConfig, usage, type SidecarConfig } from './config.ts';
import { DiscoveryClient } from './discovery-client.ts';
import { Provided } from './inbound/provided.ts';
import { startInbound } from './inbound/server.ts';
import { Metrics, type EndpointCounts } from './metrics.ts';
import { startOutbound } from './outbound/server.ts';
import type { H2Listener, ListenerLimits } from './h2-listener.ts';
import { Router } from './outbound/router.ts';
import { Mirrors } from './outbound/mirror.ts';
import { SidecarReporter } from './sidecar-reporter.ts';
import { H2Connection } from './connection.ts';
import { PeerPool } from './peer-pool.ts';
import { SIDECAR_CODECS } from './balancer.ts';
import { samePolicy } from '../proto/policy.ts';
import { drain } from './shutdown.ts';
import { reexecWithRuntimeSettings } from './runtime-flags.ts';
import path from 'node:path';
import type { PeerTls } from './connection.ts';
import { InboundAuthorization } from './inbound/authorization.ts';
import { controllerChannel } from './identity/controller-channel.ts';
import { WorkloadCertificate } from './identity/workload-certificate.ts';
import { loadGateway, type Gateway } from './gateway/gateway.ts';
import { OutboundGateway } from './gateway/outbound-gateway.ts';
import { HttpApp } from './gateway/http-app.ts';
import type { AppConnection } from './inbound/call.ts';
import type { OutboundContext } from './outbound/call.ts';

/** The app of a pod that provides nothing: inbound refuses its calls as not provided before asking for it. */
const NO_APP: AppConnection = {
  key: 'no app (the pod provides no API and has no app port)',
  acquire: (cb) => cb(new Error('the pod has no app port'), undefined),
  cancel: () => {},
  destroy: () => {},
};
import { readTrustBundle, TrustBundleFile, type TrustBundle } from './identity/trust-bundle-file.ts';
import { fingerprints } from '../proto/pem-certificates.ts';

export async function main(argv: string[]): Promise<number> {
  let cfg: SidecarConfig | 'help';
  try {
    cfg = parseConfig(argv, process.env);
  } catch (err) {
    process.stderr.write(`qbasis sidecar: ${err instanceof QbasisError ? `${err.code}: ${err.message}` : String(err)}\n`);
    return 2;
  }
  if (cfg === 'help') {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  reexecWithRuntimeSettings();
  return run(cfg);
}

async function run(cfg: SidecarConfig): Promise<number> {
  let gateway: Gateway | undefined;
  if (cfg.appProtocol === 'http') {
    try {
      gateway = loadGateway(cfg.schema!, cfg.provides, cfg.requires, cfg.maxFrameBytes);
    } catch (err) {
      const msg = (err as Error).message.replaceAll('\n', ' ');
      // A .proto error names the file inside the schema directory: say which directory too.
      process.stderr.write(`qbasis sidecar: QB_INVALID_SCHEMA: ${msg.startsWith(cfg.schema!) ? msg : `${cfg.schema!.endsWith('.proto') ? path.dirname(cfg.schema!) : cfg.schema}/${msg}`}\n`);
      return 1;
    }
  }
  const log = pino({ level: cfg.logLevel, base: { component: 'sidecar', pod: cfg.podName, namespace: cfg.namespace || undefined } });
  const metrics = new Metrics();
  const router = new Router(cfg.requires, metrics);
  const provided = new Provided(cfg.provides, metrics);
  // Mesh identity: a certificate from the controller, mutual TLS both ways, `allow` on inbound.
  let bundle: Buffer | undefined;
  let bundleFile: TrustBundleFile | undefined;
  if (cfg.identity !== undefined) {
    const first = readTrustBundle(cfg.identity.trustBundle);
    if (typeof first === 'string') {
      process.stderr.write(`qbasis sidecar: --trust-bundle ${cfg.identity.trustBundle}: ${first}\n`);
      return 1;
    }
    bundle = first.pem;
    bundleFile = new TrustBundleFile(cfg.identity.trustBundle, first, log);
  }
  const controller = bundle === undefined ? undefined : controllerChannel(cfg.discovery, bundle);
  const cert = cfg.identity === undefined || bundle === undefined ? undefined : new WorkloadCertificate({ target: cfg.discovery, tokenFile: cfg.identity.tokenFile, bundle, log, ...(controller !== undefined ? { channel: controller } : {}) });
  const authz = cert === undefined ? undefined : new InboundAuthorization(log);
  const peerTls: PeerTls | undefined = cert === undefined ? undefined : {
    context: () => cert.current()?.clientContext,
    onIdentityMismatch: (peer, expected, named) => {
      metrics.peerIdentityMismatches.inc();
      log.warn({ peer, expected: expected || null, named, code: 'QB_PEER_IDENTITY' }, `peer ${peer} refused: its certificate names ${named}, not ${expected || 'the (missing) identity discovery gave'}; calls go to other endpoints`);
    },
  };
  const pool = new PeerPool(peerTls);
  const inflight = { outbound: 0, inbound: 0 };
  let lastOutbound = 0;
  let draining = false;

  const discovery = new DiscoveryClient({
    target: cfg.discovery, logger: log, codecs: [...SIDECAR_CODECS], pod: cfg.podName, podNamespace: cfg.namespace,
    ...(cfg.namespace ? { namespace: cfg.namespace } : {}),
    ...(controller !== undefined ? { channel: controller } : {}),
  });
  discovery.on('error', (err: unknown) => log.warn({ err }, 'discovery error'));
  discovery.on('snapshot', (snap) => {
    if (authz !== undefined && provided.list.some((p) => p.api === snap.api)) authz.update(snap.api, snap.policy);
    const b = router.balancers.get(snap.api);
    if (b === undefined) return;
    const before = b.policy;
    b.update(snap, (ep) => pool.get(ep));
    if (!samePolicy(before, b.policy)) {
      const p = b.policy;
      log.info({ api: snap.api, policy: p === undefined ? null : `${p.namespace}/${p.name}`, generation: p?.generation ?? null, routes: p?.policy.routes.length ?? 0 },
        p === undefined ? `no BasisPolicy applies to ${snap.api} any more` : `BasisPolicy ${p.namespace}/${p.name} (generation ${p.generation}) applies to new calls to ${snap.api}`);
    }
    pool.retain([...router.balancers.values()].flatMap((x) => x.peers));
    log.debug({ api: snap.api, version: snap.version, endpoints: snap.endpoints.length, compatible: b.peers.length }, 'discovery snapshot');
  });
  for (const api of router.balancers.keys()) discovery.watch(api);
  const mirrors = new Mirrors(metrics, log, cfg.maxFrameBytes);
  const reporter = new SidecarReporter({ tally: mirrors.tally, calls: [...router.balancers.values()].map((b) => b.calls), pod: cfg.podName, namespace: cfg.namespace, send: (r) => discovery.report(r), log });
  reporter.start();

  const app: AppConnection = cfg.appPort === undefined ? NO_APP : gateway !== undefined ? new HttpApp(cfg.appHost, cfg.appPort, gateway) : new H2Connection(cfg.appHost, cfg.appPort, { keepalive: false });
  const limits: ListenerLimits = {
    maxConcurrentStreams: cfg.maxConcurrentStreams, maxConnections: cfg.maxConnections, idleTimeoutMs: cfg.idleTimeoutMs,
    partialFrameBytes: 4 * cfg.maxFrameBytes, resetBurst: RESET_BURST, resetRate: RESET_RATE, rapidResetBurst: RAPID_RESET_BURST, rapidResetRate: RAPID_RESET_RATE,
  };
  const started = await Promise.allSettled([
    startOutbound({ host: cfg.outboundHost, port: cfg.outboundPort, router, log, metrics, maxFrameBytes: cfg.maxFrameBytes, inflight, limits: { ...limits, resetBurst: APP_RESET_BURST, resetRate: APP_RESET_RATE }, onIdle: () => {}, onCall: () => { lastOutbound = performance.now(); }, mirrors,
      ...(gateway !== undefined ? { gateway: (ctx: OutboundContext) => new OutboundGateway({ gateway, router, ctx, metrics, log, onCall: () => { lastOutbound = performance.now(); } }) } : {}) }),
    startInbound({
      host: cfg.ip, port: cfg.inboundPort, provided, log, metrics, maxFrameBytes: cfg.maxFrameBytes, frameIdleTimeoutMs: cfg.frameIdleTimeoutMs, app, inflight, limits, onIdle: () => {}, onCall: () => {},
      ...(authz !== undefined && bundle !== undefined ? { identity: { authz, tls: { ca: bundle, onHandshakeError: (err) => {
        metrics.tlsHandshakeFailures.inc();
        log.debug({ direction: 'inbound', err: err.message }, 'inbound TLS handshake failed');
      } } } } : {}),
    }),
  ]);
  const [out, inb] = started;
  if (out.status === 'rejected' || inb.status === 'rejected') {
    // Release whatever did bind, so nothing keeps a port or the process alive.
    for (const r of started) if (r.status === 'fulfilled') closeListener(r.value);
    const failed = out.status === 'rejected' ? { what: 'outbound', addr: `${cfg.outboundHost}:${cfg.outboundPort}`, err: out.reason as Error } : { what: 'inbound', addr: `${cfg.ip}:${cfg.inboundPort}`, err: (inb as PromiseRejectedResult).reason as Error };
    process.stderr.write(`qbasis sidecar: cannot listen on ${failed.addr} (${failed.what}): ${listenError(failed.err)}\n`);
    discovery.close();
    return 1;
  }
  const listeners = { outbound: out.value, inbound: inb.value };
  if (cert !== undefined) {
    let first = true;
    cert.on('renewal', (ok: boolean) => metrics.certificateRenewals.inc({ result: ok ? 'ok' : 'failed' }));
    cert.on('certificate', (c: { key: string; chain: string; parts: { namespace: string } }) => {
      listeners.inbound.setCertificate!(c.key, c.chain, cert.bundle()); // new handshakes; open connections keep theirs
      if (!first) return;
      first = false;
      // Who may call what this pod provides: the policy in the namespace of its own identity.
      authz!.setNamespace(c.parts.namespace);
      for (const p of provided.list) discovery.watch(p.api, c.parts.namespace);
    });
    cert.start();
    // A root rotation: the bundle file gains the next root, later loses the old one.
    bundleFile?.on('bundle', (b: TrustBundle) => cert.setBundle(b.pem));
    bundleFile?.start();
  }

  let stop: (reason: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => { stop = resolve; });
  const now = (): number => performance.now();
  const admin = await startAdmin({
    hosts: adminHosts(cfg), port: cfg.adminPort, log, metrics, app: cfg.appPort !== undefined && cfg.provides.length > 0 ? { host: cfg.appHost, port: cfg.appPort } : undefined,
    missingSnapshots: () => [...router.balancers.keys(), ...(authz !== undefined ? provided.list.map((p) => p.api) : [])].filter((api) => discovery.snapshot(api) === undefined),
    ...(cert !== undefined ? { identity: () => (cert.current() !== undefined ? undefined : `no certificate yet${cert.lastError !== undefined ? ` (${cert.lastError})` : ' (waiting for Certify)'}`) } : {}),
    draining: () => draining,
    routes: () => ({ ...(routesView(cfg, router, discovery.state(), inflight, now()) as object), identity: identityView(cert, bundleFile) }),
    shutdown: (reason) => stop(reason),
  }).catch((err: Error) => err);
  if (admin instanceof Error) {
    process.stderr.write(`qbasis sidecar: cannot listen on ${adminHosts(cfg).join(' and ')} port ${cfg.adminPort} (admin): ${listenError(admin)}\n`);
    closeListener(listeners.outbound);
    closeListener(listeners.inbound);
    discovery.close();
    return 1;
  }
  metrics.sources({
    endpoints: () => endpointCounts(router, now()),
    discovery: () => discovery.state(),
    inflight: () => ({ ...inflight }),
    ...(cert !== undefined ? { certificateExpiry: () => cert.current()?.notAfter } : {}),
  });

  const onSignal = (sig: string) => () => stop(sig);
  process.once('SIGTERM', onSignal('SIGTERM'));
  process.once('SIGINT', onSignal('SIGINT'));
  // Persist the compile cache now (it is otherwise written at exit, which a SIGKILL never reaches).
  module.flushCompileCache?.();
  log.info({ ip: cfg.ip, outbound: cfg.outboundPort, inbound: cfg.inboundPort, admin: cfg.adminPort, app: cfg.appPort === undefined ? null : `${cfg.appHost}:${cfg.appPort}`, provides: provided.describe(), requires: cfg.requires, discovery: cfg.discovery, mtls: cert !== undefined }, 'sidecar listening');

  const reason = await stopped;
  draining = true;
  await drain({ log, graceMs: cfg.gracePeriodMs, inbound: listeners.inbound, outbound: listeners.outbound, inflight, lastOutboundCall: () => lastOutbound }, reason);
  listeners.inbound.stopSweep();
  listeners.outbound.stopSweep();
  reporter.stop();
  await reporter.flush(); // the last counts, while the discovery connection is still up
  bundleFile?.stop();
  cert?.stop();
  discovery.close();
  pool.destroy();
  app.destroy();
  admin.close();
  // Anything still holding the loop open (a stuck socket) must not keep a finished sidecar alive.
  setTimeout(() => process.exit(0), 500).unref();
  return 0;
}

/** Resets a peer sidecar may send per connection: nghttp2's CVE-2023-44487 defaults, set explicitly (callers rotate connections below them). */
const RESET_BURST = 1000;
const RESET_RATE = 33;
/** The app's own cancels (a deadline storm) are legitimate: only same-turn resets are limited on outbound. */
const APP_RESET_BURST = 100_000;
const APP_RESET_RATE = 10_000;
/** Streams reset before the sidecar opened them to the app: legitimate cancels come later than that. */
const RAPID_RESET_BURST = 200;
const RAPID_RESET_RATE = 20;

/** The pod IP (probes, Prometheus) and, in pods (outbound on 127.0.0.1), the pod's loopback too. */
function adminHosts(cfg: SidecarConfig): string[] {
  const loopback = cfg.outboundHost === '127.0.0.1' || cfg.outboundHost === '::1';
  return loopback && cfg.outboundHost !== cfg.ip ? [cfg.ip, cfg.outboundHost] : [cfg.ip];
}

function closeListener(l: H2Listener): void {
  l.stopSweep();
  l.server.close();
  for (const s of l.sessions) s.destroy();
}

function listenError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return 'the port is already in use; expected a free port (stop what holds it or choose another with the port flags)';
  if (code === 'EADDRNOTAVAIL') return 'no such address on this host; expected the pod IP (--ip)';
  return err.message;
}

function identityView(cert: WorkloadCertificate | undefined, bundle: TrustBundleFile | undefined): unknown {
  if (cert === undefined) return { mtls: false };
  const c = cert.current();
  return {
    mtls: true, id: c?.identity ?? null, not_after: c === undefined ? null : new Date(c.notAfter).toISOString(), last_error: cert.lastError ?? null,
    // A root rotation is finished for this sidecar when its issuer is the new root and the bundle holds it.
    issuer: c?.issuer ?? null,
    trust_bundle: bundle === undefined ? null : fingerprints(bundle.current().roots),
  };
}

function routesView(cfg: SidecarConfig, router: Router, discoveryState: string, inflight: { outbound: number; inbound: number }, now: number): unknown {
  const apis: Record<string, unknown> = {};
  for (const [api, b] of router.balancers) {
    apis[api] = {
      range: b.range,
      snapshot_version: b.snapshot?.version ?? null,
      policy: b.policy === undefined ? null : {
        name: `${b.policy.namespace}/${b.policy.name}`,
        generation: b.policy.generation,
        timeout_ms: b.policy.policy.timeoutMs ?? null,
        retry: b.policy.policy.retry ?? null,
        routes: b.plans.map((r) => ({
          methods: r.methods === undefined ? null : [...r.methods],
          split: r.groups?.map((g) => ({ versions: g.versions, weight: g.weight, endpoints: g.peers.length })) ?? null,
          mirror: r.mirror === undefined ? null : { versions: r.mirror.versions, percent: r.mirror.percent, endpoints: r.mirror.peers.length },
        })),
      },
      endpoints: b.views.map((v) => {
        const p = b.peers.find((x) => x.address === v.address && x.port === v.port);
        return {
          ...v,
          ...(p === undefined ? {} : {
            ewma_ms: Number(p.ewma.value(now).toFixed(3)),
            inflight: p.inflight,
            connection: p.connState(now),
            ejection: p.accrual.state(now),
            consecutive_failures: p.accrual.consecutiveFailures,
            ejected_for_ms: Math.max(0, Math.round(p.accrual.ejectedUntil - now)),
            ejections: p.accrual.ejections,
            last_error: p.lastError ?? null,
          }),
        };
      }),
    };
  }
  return { pod: cfg.podName, namespace: cfg.namespace, discovery: discoveryState, inflight, provides: cfg.provides, requires: apis };
}

function endpointCounts(router: Router, now: number): EndpointCounts[] {
  const out: EndpointCounts[] = [];
  for (const [api, b] of router.balancers) {
    const counts: Record<string, number> = { ready: 0, ejected: 0, backoff: 0, incompatible: b.views.filter((v) => !v.compatible).length };
    for (const p of b.peers) {
      if (p.accrual.isEjected(now)) counts.ejected!++;
      else if (!p.available(now)) counts.backoff!++;
      else counts.ready!++;
    }
    for (const [state, count] of Object.entries(counts)) out.push({ api, state, count });
  }
  return out;
}
