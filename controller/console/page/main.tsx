// Entry point of the console's page: one EventSource on /api/v1/events (a snapshot, then changes),
// the state in one place, rendered at most once per animation frame.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import type { ApiView, HealthView, MeshSnapshot, PolicyView } from '../mesh-snapshot.ts';
import { App } from './app.tsx';
import { withApi, withHealth, withoutApi, withPolicies, type PageState } from './mesh-state.ts';

const root = document.getElementById('app')!;
root.textContent = ''; // the server's "Loading…" line
let state: PageState = { mesh: null, connection: 'connecting', updatedAt: 0 };
let queued = false;

function update(next: Partial<PageState>): void {
  state = { ...state, ...next };
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    render(<App state={state} />, root);
    document.body.dataset.revision = String(Date.now());
  });
}

function on<T>(events: EventSource, name: string, apply: (mesh: MeshSnapshot, data: T) => MeshSnapshot): void {
  events.addEventListener(name, (e) => {
    const mesh = state.mesh;
    if (mesh === null) return;
    update({ mesh: apply(mesh, JSON.parse((e as MessageEvent<string>).data) as T), connection: 'live', updatedAt: Date.now() });
  });
}

function connect(): void {
  const events = new EventSource('/api/v1/events');
  events.addEventListener('snapshot', (e) => {
    update({ mesh: JSON.parse((e as MessageEvent<string>).data) as MeshSnapshot, connection: 'live', updatedAt: Date.now() });
  });
  on<ApiView>(events, 'api', withApi);
  on<{ api: string }>(events, 'api-removed', (m, d) => withoutApi(m, d.api));
  on<PolicyView[]>(events, 'policies', withPolicies);
  on<HealthView>(events, 'health', withHealth);
  events.addEventListener('open', () => update({ connection: 'live' }));
  events.addEventListener('error', () => {
    update({ connection: 'reconnecting' });
    // EventSource retries by itself after a dropped stream, but gives up on an answer that is not a
    // stream (a 503 when too many pages are open): then try again a little later.
    if (events.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
  });
}

connect();
update({});
