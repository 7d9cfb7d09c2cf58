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

let events: EventSource | undefined;
let retry: ReturnType<typeof setTimeout> | undefined;

function connect(): void {
  const es = new EventSource('/api/v1/events');
  events = es;
  es.addEventListener('snapshot', (e) => {
    performance.mark('qbasis-snapshot'); // for npm run bench:console
    update({ mesh: JSON.parse((e as MessageEvent<string>).data) as MeshSnapshot, connection: 'live', updatedAt: Date.now() });
  });
  on<ApiView>(es, 'api', withApi);
  on<{ api: string }>(es, 'api-removed', (m, d) => withoutApi(m, d.api));
  on<PolicyView[]>(es, 'policies', withPolicies);
  on<HealthView>(es, 'health', withHealth);
  es.addEventListener('open', () => update({ connection: 'live' }));
  es.addEventListener('error', () => {
    update({ connection: 'reconnecting' });
    // EventSource retries by itself after a dropped stream, but gives up on an answer that is not a
    // stream (a 503 when too many pages are open): then try again a little later.
    if (es.readyState === EventSource.CLOSED && events === es) retry = setTimeout(connect, 5000);
  });
}

// A hidden tab lets its stream go and takes a fresh snapshot when shown again: a browser opens at most
// six HTTP/1.1 connections to one host, and every open stream holds one.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') {
    clearTimeout(retry);
    events?.close();
    events = undefined;
  } else if (events === undefined) connect();
});

if (document.visibilityState !== 'hidden') connect();
update({});
