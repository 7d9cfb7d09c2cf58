// The compatibility matrix of one API: rows are calling workloads with their required range, columns
// the provided versions with pod counts; each cell says (in words and a symbol, and by colour) whether
// that version can serve that caller, and what share of the caller's calls it served in the last minute.
import type { ApiView, CallerCell, CallerRow, VersionColumn } from '../mesh-snapshot.ts';
import { percent, rate, workload } from './format.ts';

function cellState(cell: CallerCell, col: VersionColumn): { cls: string; symbol: string; text: string } {
  if (!cell.compatible) return { cls: 'no', symbol: '✖', text: 'incompatible' };
  if (col.ready === 0) return { cls: 'warn', symbol: '◐', text: 'in range, no ready pod' };
  return { cls: 'ok', symbol: '✔', text: 'compatible' };
}

function Cell({ cell, col, row }: { cell: CallerCell; col: VersionColumn; row: CallerRow }) {
  const s = cellState(cell, col);
  const title = !cell.compatible ? `${col.version} is outside ${row.range}` : s.cls === 'warn' ? `${col.version} satisfies ${row.range} but none of its pods is ready` : `${col.version} satisfies ${row.range}`;
  const share = row.lastMinute > 0 ? (cell.calls?.lastMinute ?? 0) / row.lastMinute : null;
  return (
    <td class={`cell ${s.cls}`} title={title} data-version={cell.version}>
      <span class="state">
        <span aria-hidden="true">{s.symbol}</span> {s.text}
      </span>
      <span class="share">{share === null ? '—' : `${percent(share)} of calls`}</span>
    </td>
  );
}

function CallerHeader({ row }: { row: CallerRow }) {
  return (
    <th scope="row" class={row.served ? 'caller' : 'caller stranded'}>
      <span class="name">{workload(row.workload)}</span>
      {!row.served && (
        <span class="badge stranded" title={row.reason}>
          <span aria-hidden="true">✖</span> no compatible ready provider
        </span>
      )}
    </th>
  );
}

export function Matrix({ api }: { api: ApiView }) {
  if (api.callers.length === 0 && api.versions.length === 0) return <p class="empty">No provider and no caller.</p>;
  return (
    <div class="matrix-wrap">
      <table class="matrix">
        <caption>Compatibility of callers (rows) and provided versions (columns); share of each caller's calls in the last minute</caption>
        <thead>
          <tr>
            <th scope="col">Caller workload</th>
            <th scope="col">Requires</th>
            <th scope="col">Pods</th>
            <th scope="col">Calls/s (1 min)</th>
            {api.versions.map((v) => (
              <th scope="col" class="version" data-version={v.version}>
                <span class="v">{v.version}</span>
                <span class={v.ready > 0 ? 'pods' : 'pods none'}>
                  {v.ready} ready · {v.notReady} not ready
                </span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {api.callers.length === 0 && (
            <tr>
              <td colSpan={4 + api.versions.length} class="empty">
                No pod requires this API and no sidecar reported calls to it.
              </td>
            </tr>
          )}
          {api.callers.map((row) => (
            <tr data-caller={workload(row.workload)} data-range={row.range}>
              <CallerHeader row={row} />
              <td class="range">{row.range}</td>
              <td class="pods">{row.declared ? `${row.podsReady}/${row.pods.length} ready` : 'seen only in traffic'}</td>
              <td class="rate">{rate(row.lastMinute / 60)}</td>
              {row.cells.map((c, i) => (
                <Cell cell={c} col={api.versions[i]!} row={row} />
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
