// Text the page shows for numbers, times and names (always as text nodes, never markup).
import type { WorkloadRef } from '../mesh-snapshot.ts';

export function workload(w: WorkloadRef): string {
  return `${w.namespace}/${w.name}`;
}

export function rate(callsPerSecond: number): string {
  return callsPerSecond >= 100 ? callsPerSecond.toFixed(0) : callsPerSecond.toFixed(1);
}

export function percent(share: number): string {
  return `${Math.round(share * 100)} %`;
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

export function clock(unixMs: number): string {
  return new Date(unixMs).toLocaleTimeString([], { hour12: false });
}

/** An id for anchors made of an API name (ASCII identifiers and dots only). */
export function anchor(api: string): string {
  return `api-${api.replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

/**
 * Colour-blind-safe series colours (Okabe & Ito) with a dash pattern each, so lines differ by more
 * than hue; the legend names every line.
 */
export const SERIES_STYLES: readonly { stroke: string; dash: number[]; className: string }[] = [
  { stroke: '#0072b2', dash: [], className: 's0' },
  { stroke: '#e69f00', dash: [8, 4], className: 's1' },
  { stroke: '#009e73', dash: [2, 3], className: 's2' },
  { stroke: '#cc79a7', dash: [10, 3, 2, 3], className: 's3' },
  { stroke: '#56b4e9', dash: [4, 4], className: 's4' },
  { stroke: '#d55e00', dash: [1, 2], className: 's5' },
  { stroke: '#000000', dash: [12, 6], className: 's6' },
];
