// Calls per second by provided version over the last 15 minutes (uPlot, one line per version, each
// with its own colour and dash), and the same figures as text under it.
import { useEffect, useRef } from 'preact/hooks';
import { useSeen } from './use-seen.ts';
import uPlot from 'uplot';
import type { ApiView } from '../mesh-snapshot.ts';
import { rate, SERIES_STYLES } from './format.ts';

/** One line per version column (a version with pods but no traffic yet is a flat line at 0). */
function chartData(api: ApiView): { versions: string[]; data: uPlot.AlignedData } {
  const t = api.traffic;
  const versions = api.versions.map((v) => v.version);
  const n = t.buckets;
  // No series: the view may be older than the clock (it is rebuilt only when the API changes), so the
  // flat lines end now.
  const start = t.series.length === 0 ? (Math.floor(Date.now() / t.bucketMs) - n) * t.bucketMs : t.startMs;
  const xs = Array.from({ length: n }, (_, i) => (start + i * t.bucketMs) / 1000);
  const byVersion = new Map(t.series.map((s) => [s.version, s.rates]));
  const ys = versions.map((v) => byVersion.get(v) ?? new Array<number>(n).fill(0));
  return { versions, data: [xs, ...ys] };
}

function options(versions: string[], width: number): uPlot.Options {
  return {
    width,
    height: 180,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{}, { label: 'calls/s', size: 50 }],
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    series: [
      { label: 'time' },
      ...versions.map((v, i) => {
        const s = SERIES_STYLES[i % SERIES_STYLES.length]!;
        return { label: v, stroke: s.stroke, dash: s.dash, width: 2, points: { show: false } };
      }),
    ],
  };
}

export function TrafficChart({ api }: { api: ApiView }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<{ u: uPlot; key: string } | null>(null);
  // Drawn once it first scrolls into view: hundreds of APIs must not build hundreds of canvases at once.
  const seen = useSeen(box);
  const { versions, data } = chartData(api);
  const key = versions.join('\u0000');

  useEffect(() => {
    const el = box.current;
    if (el === null || !seen) return;
    if (plot.current !== null && plot.current.key === key) {
      plot.current.u.setData(data);
      return;
    }
    plot.current?.u.destroy();
    const width = Math.max(320, Math.min(900, el.clientWidth || 640));
    plot.current = { u: new uPlot(options(versions, width), data, el), key };
  });
  useEffect(() => () => plot.current?.u.destroy(), []);

  const last = data[0].length - 1;
  const now = versions.map((v, i) => ({ v, r: last >= 0 ? (data[i + 1]![last] ?? 0) : 0 }));
  return (
    <figure class="chart">
      <figcaption>Calls per second by provided version, last 15 minutes (5 s buckets)</figcaption>
      <div ref={box} class="plot" data-versions={versions.join(' ')} />
      <p class="chart-now">
        {versions.length === 0
          ? 'No version to chart.'
          : <>Last 5 s: {now.map((x, i) => (
              <span class={`now ${SERIES_STYLES[i % SERIES_STYLES.length]!.className}`} data-version={x.v}>
                {x.v} {rate(x.r)} calls/s
              </span>
            ))}</>}
      </p>
    </figure>
  );
}
