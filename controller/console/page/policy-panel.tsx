// The BasisPolicies of an API: the Accepted condition, the spec in force (split weights, method routes,
// mirror) and, where a mirror runs, its counts and the last mismatches.
import type { PolicyRouteView, PolicyView } from '../mesh-snapshot.ts';

function Route({ r, i }: { r: PolicyRouteView; i: number }) {
  const total = (r.split ?? []).reduce((n, g) => n + g.weight, 0);
  return (
    <tr>
      <td>{i}</td>
      <td>{r.methods === null ? 'every method' : r.methods.join(', ')}</td>
      <td>
        {r.split === null
          ? 'every version the caller accepts'
          : r.split.map((g) => (
              <span class="split">
                {g.versions}: {total > 0 ? Math.round((g.weight / total) * 100) : 0} % (weight {g.weight})
              </span>
            ))}
      </td>
      <td>{r.mirror === null ? '—' : `${r.mirror.percent} % to ${r.mirror.versions}`}</td>
    </tr>
  );
}

export function PolicyPanel({ p }: { p: PolicyView }) {
  const ok = p.accepted.status === 'True';
  const m = p.mirror;
  return (
    <div class="policy" data-policy={`${p.namespace}/${p.name}`}>
      <h4>
        BasisPolicy {p.namespace}/{p.name} <span class="gen">generation {p.generation}</span>{' '}
        <span class={ok ? 'badge ok' : 'badge no'}>
          <span aria-hidden="true">{ok ? '✔' : '✖'}</span> {p.accepted.reason}
        </span>
      </h4>
      <p class="message">{p.accepted.message}</p>
      {p.inForce === null ? (
        <p>No spec of it is in force.</p>
      ) : (
        <>
          <p>
            In force: generation {p.inForce.generation}
            {p.inForce.timeoutMs !== null && `, timeout ${p.inForce.timeoutMs} ms`}
            {p.inForce.retryAttempts > 0 && `, ${p.inForce.retryAttempts} retries`}
            {`, allow: ${p.inForce.allow === null ? 'every mesh identity' : p.inForce.allow.join(', ') || 'none'}`}
          </p>
          <table class="routes">
            <caption>Routes (first match wins)</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Methods</th>
                <th scope="col">Split</th>
                <th scope="col">Mirror</th>
              </tr>
            </thead>
            <tbody>
              {p.inForce.routes.map((r, i) => (
                <Route r={r} i={i} />
              ))}
            </tbody>
          </table>
        </>
      )}
      {m !== null && (
        <div class="mirror">
          <p>
            Parallel run: {m.compared} compared, <span class="ok-text">{m.matched} matched</span>,{' '}
            <span class={m.mismatched > 0 ? 'no-text' : ''}>{m.mismatched} mismatched</span>, {m.shadowFailed} shadow failed, {m.dropped} dropped
          </p>
          {m.samples.length > 0 && (
            <details>
              <summary>Last {m.samples.length} mismatches</summary>
              <table>
                <thead>
                  <tr>
                    <th scope="col">At</th>
                    <th scope="col">Method</th>
                    <th scope="col">Result</th>
                    <th scope="col">Primary (version, status, frame)</th>
                    <th scope="col">Shadow (version, status, frame)</th>
                    <th scope="col">Pod</th>
                  </tr>
                </thead>
                <tbody>
                  {m.samples.map((s) => (
                    <tr>
                      <td>{s.at}</td>
                      <td>{s.method}</td>
                      <td>{s.result}</td>
                      <td>
                        {s.primaryVersion}, {s.primaryStatus}, <code>{s.primaryFrame || '—'}</code>
                      </td>
                      <td>
                        {s.shadowVersion}, {s.shadowStatus}, <code>{s.shadowFrame || '—'}</code>
                      </td>
                      <td>{s.pod}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </details>
          )}
        </div>
      )}
    </div>
  );
}
