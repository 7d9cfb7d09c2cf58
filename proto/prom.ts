// prom-client, loaded file by file. Its index also loads the Pushgateway (http, https, tls) and the
// cluster aggregator (node:cluster), which no qbasis process uses; the sidecar pays for every module it
// loads in RSS on every pod. The types are prom-client's own.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry.js') as typeof Prom.Registry;
export const Counter = load('prom-client/lib/counter.js') as typeof Prom.Counter;
export const Gauge = load('prom-client/lib/gauge.js') as typeof Prom.Gauge;
export const Histogram = load('prom-client/lib/histogram.js') as typeof Prom.Histogram;
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;
export type Metric = Prom.Metric;

type DefaultMetric = (registry: Prom.Registry, config: { eventLoopMonitoringPrecision?: number }) => void;

/** prom-client's default metrics (its defaultMetrics.js list). */
const DEFAULT_METRICS = ['processCpuTotal', 'processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors',
  'eventLoopLag', 'processResources', 'processHandles', 'processRequests', 'heapSizeAndUsed', 'heapSpacesSizeAndUsed', 'version', 'gc'];
/** Gauges named *_total, which promlint refuses (a gauge is not a counter); their per-type gauges carry the same numbers. */
const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * The standard process_* and nodejs_* series, as every Node exporter names them (the component is the
 * scrape job's label, not a prefix).
 */
export function registerDefaultMetrics(registry: Prom.Registry): void {
  for (const name of DEFAULT_METRICS) (load(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(registry, { eventLoopMonitoringPrecision: 10 });
  for (const name of GAUGES_NAMED_TOTAL) registry.removeSingleMetric(name);
}
