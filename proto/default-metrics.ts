// The standard process_* and nodejs_* series, as every Node exporter names them (the component is
// the scrape job's label, not a prefix), minus prom-client's three gauges named *_total, which
// promlint refuses (a gauge is not a counter); their per-type gauges carry the same numbers.
import { collectDefaultMetrics, type Registry } from 'prom-client';

const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function registerDefaultMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of GAUGES_NAMED_TOTAL) registry.removeSingleMetric(name);
}
