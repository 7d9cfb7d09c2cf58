// The console's one page: callers without a provider first, then the planner, each API (matrix,
// chart, policies) and the health block.
import { Component } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { useSeen } from './use-seen.ts';
import type { ApiView, CallerRow, MeshSnapshot, PolicyView } from '../mesh-snapshot.ts';
import type { PageState } from './mesh-state.ts';
import { anchor, clock, workload } from './format.ts';
import { HealthPanel } from './health-panel.tsx';
import { Matrix } from './matrix.tsx';
import { PlannerPanel } from './planner-panel.tsx';
import { PolicyPanel } from './policy-panel.tsx';
import { TrafficChart } from './traffic-chart.tsx';

function Stranded({ mesh }: { mesh: MeshSnapshot }) {
  // A row seen only in traffic counts while it still calls (a pod replaced minutes ago is history).
  const rows = mesh.apis.flatMap((a) => a.callers.filter((c) => !c.served && (c.declared || c.lastMinute > 0)).map((c) => ({ api: a.api, c })));
  if (rows.length === 0) {
    return (
      <section class="alerts ok" aria-labelledby="alerts-h">
        <h2 id="alerts-h">
          <span aria-hidden="true">✔</span> Every caller has a compatible ready provider
        </h2>
      </section>
    );
  }
  return (
    <section class="alerts stranded" aria-labelledby="alerts-h">
      <h2 id="alerts-h">
        <span aria-hidden="true">✖</span> {rows.length} caller{rows.length === 1 ? ' has' : 's have'} no compatible ready provider
      </h2>
      <StrandedList rows={rows.slice(0, SHOWN)} />
      {rows.length > SHOWN && (
        <details>
          <summary>{rows.length - SHOWN} more</summary>
          <StrandedList rows={rows.slice(SHOWN)} />
        </details>
      )}
    </section>
  );
}

/** Longer lists fold away (a closed <details> is not laid out), so a big mesh's page opens quickly. */
const SHOWN = 20;

function StrandedList({ rows }: { rows: { api: string; c: CallerRow }[] }) {
  return (
    <ul>
      {rows.map(({ api, c }) => (
        <li data-caller={workload(c.workload)} data-api={api}>
          <strong>{workload(c.workload)}</strong> requires <code>{api}@{c.range}</code>: {c.reason}{' '}
          <a href={`#${anchor(api)}`}>see {api}</a>
        </li>
      ))}
    </ul>
  );
}

/**
 * One API: redrawn only when its own view or the policies changed (an `api` event replaces one view
 * object and keeps the others), so a mesh of hundreds of APIs re-renders only what moved.
 */
class ApiSection extends Component<{ api: ApiView; policies: PolicyView[] }> {
  override shouldComponentUpdate(next: { api: ApiView; policies: PolicyView[] }): boolean {
    return next.api !== this.props.api || next.policies !== this.props.policies;
  }

  override render() {
    return <ApiSectionBody api={this.props.api} policies={this.props.policies} />;
  }
}

function ApiSectionBody({ api, policies }: { api: ApiView; policies: PolicyView[] }) {
  const id = anchor(api.api);
  const ref = useRef<HTMLElement>(null);
  // Its body is built once it comes near the view (or is linked to): the page's first render builds
  // only what can be seen, whatever the number of APIs.
  const seen = useSeen(ref) || (typeof location !== 'undefined' && location.hash === `#${id}`);
  return (
    <section class="api" id={id} aria-labelledby={`${id}-h`} data-api={api.api} ref={ref}>
      <h2 id={`${id}-h`}>
        {api.api} <span class="api-id">API id 0x{api.apiId}</span>
      </h2>
      {seen ? <ApiBody api={api} policies={policies} /> : <p class="pending">{api.versions.length} versions, {api.callers.length} callers (shown when scrolled to)</p>}
    </section>
  );
}

function ApiBody({ api, policies }: { api: ApiView; policies: PolicyView[] }) {
  const mine = policies.filter((p) => api.policies.includes(`${p.namespace}/${p.name}`));
  return (
    <>
      <Matrix api={api} />
      <TrafficChart api={api} />
      <h3>BasisPolicy</h3>
      {mine.length === 0 ? <p class="empty">No BasisPolicy for this API: calls go to every compatible version by latency.</p> : mine.map((p) => <PolicyPanel p={p} />)}
    </>
  );
}

function Status({ state }: { state: PageState }) {
  const label = state.connection === 'live' ? '● live' : state.connection === 'connecting' ? '○ connecting…' : '○ reconnecting… (showing the last state received)';
  return (
    <p class={`status ${state.connection}`}>
      {/* only the connection is announced, not every update's time */}
      <span role="status">{label}</span>
      {state.updatedAt > 0 && ` — updated ${clock(state.updatedAt)}`}
    </p>
  );
}

/** Kubernetes mode: a standby's traffic figures are only its own sidecars' (they forward to the leader). */
function ReplicaNote({ mesh }: { mesh: MeshSnapshot }) {
  const r = mesh.health.replica;
  if (r === undefined || r.traffic === 'all') return null;
  return (
    <p class="replica-note warn-text" data-replica={r.identity}>
      ◐ This is replica {r.identity}, not the leader ({r.leader ?? 'none yet'}): the matrix, policies and health are the mesh's, but traffic figures count only the sidecars connected to this replica. For the whole mesh's traffic open the leader's console (qbasis console picks the leader).
    </p>
  );
}

/** The list of APIs, folded away in a big mesh: its items are built only once it is opened. */
function ApiIndex({ apis }: { apis: ApiView[] }) {
  const [open, setOpen] = useState(apis.length <= SHOWN);
  return (
    <nav aria-label="APIs">
      <details open={open} onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
        <summary>
          <h2>APIs ({apis.length})</h2>
        </summary>
        {open && (
          <ul>
            {apis.map((a) => (
              <li>
                <a href={`#${anchor(a.api)}`}>{a.api}</a>
              </li>
            ))}
          </ul>
        )}
      </details>
    </nav>
  );
}

export function App({ state }: { state: PageState }) {
  const mesh = state.mesh;
  const orphans = mesh === null ? [] : mesh.policies.filter((p) => !mesh.apis.some((a) => a.policies.includes(`${p.namespace}/${p.name}`)));
  return (
    <>
      <header>
        <h1>qbasis console</h1>
        <Status state={state} />
      </header>
      {mesh === null ? (
        <main>
          <p>Waiting for the controller's first snapshot…</p>
        </main>
      ) : (
        <main>
          <ReplicaNote mesh={mesh} />
          <Stranded mesh={mesh} />
          <ApiIndex apis={mesh.apis} />
          <PlannerPanel mesh={mesh} />
          {mesh.apis.map((a) => (
            <ApiSection key={a.api} api={a} policies={mesh.policies} />
          ))}
          {orphans.length > 0 && (
            <section class="api" aria-labelledby="orphans-h">
              <h2 id="orphans-h">BasisPolicies for no known API</h2>
              {orphans.map((p) => (
                <PolicyPanel p={p} />
              ))}
            </section>
          )}
          <HealthPanel h={mesh.health} />
        </main>
      )}
    </>
  );
}
