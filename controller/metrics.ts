// Controller metrics, read at scrape time from the registry and the discovery server.
import { Counter, Gauge, Registry, registerDefaultMetrics } from '../proto/prom.ts';
import type { DiscoveryServer } from './discovery-server.ts';
import type { EndpointRegistry } from './endpoint-registry.ts';
import type { PodSource } from './pod-source.ts';

export function controllerMetrics(deps: { registry: EndpointRegistry; discovery: DiscoveryServer; source: PodSource }): Registry {
  const reg = new Registry();
  registerDefaultMetrics(reg);
  const { registry, discovery, source } = deps;
  new Gauge({
    name: 'qbasis_controller_endpoints',
    help: 'Endpoints per API and readiness',
    labelNames: ['api', 'ready'],
    registers: [reg],
    collect() {
      this.reset();
      for (const api of registry.apis()) {
        const eps = registry.list(api);
        const ready = eps.filter((e) => e.ready).length;
        this.set({ api, ready: 'true' }, ready);
        this.set({ api, ready: 'false' }, eps.length - ready);
      }
    },
  });
  new Gauge({
    name: 'qbasis_controller_api_version',
    help: "Current version of each API's endpoint set",
    labelNames: ['api'],
    registers: [reg],
    collect() {
      this.reset();
      for (const api of registry.apis()) this.set({ api }, registry.version(api));
    },
  });
  new Gauge({
    name: 'qbasis_controller_pods',
    help: 'Pods known to the controller',
    registers: [reg],
    collect() {
      this.set(registry.pods().length);
    },
  });
  new Gauge({
    name: 'qbasis_controller_rejected_pods',
    help: 'Pods left out of discovery because of invalid qbasis annotations',
    registers: [reg],
    collect() {
      this.set(registry.rejected().length);
    },
  });
  new Gauge({
    name: 'qbasis_controller_pod_source_synced',
    help: '1 once the pod source delivered a complete view',
    labelNames: ['source'],
    registers: [reg],
    collect() {
      this.set({ source: source.kind }, source.synced() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'qbasis_controller_discovery_streams',
    help: 'Open discovery watch streams',
    registers: [reg],
    collect() {
      this.set(discovery.stats().streams);
    },
  });
  // counters mirror the discovery server's running totals at scrape time
  let lastSent = 0;
  let lastCoalesced = 0;
  new Counter({
    name: 'qbasis_controller_discovery_messages_sent_total',
    help: 'Discovery messages written to subscribers',
    registers: [reg],
    collect() {
      const n = discovery.stats().messagesSent;
      this.inc(n - lastSent);
      lastSent = n;
    },
  });
  new Counter({
    name: 'qbasis_controller_discovery_coalesced_total',
    help: 'Registry changes folded into a later message because the stream was still busy',
    registers: [reg],
    collect() {
      const n = discovery.stats().coalesced;
      this.inc(n - lastCoalesced);
      lastCoalesced = n;
    },
  });
  return reg;
}
