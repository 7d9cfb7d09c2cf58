// The controller's health as the console sees it, each fact with what to do about it.
import type { HealthView } from '../mesh-snapshot.ts';

export function HealthPanel({ h }: { h: HealthView }) {
  return (
    <section class="health" aria-labelledby="health-h">
      <h2 id="health-h">Health</h2>
      <dl>
        {h.replica !== undefined && (
          <>
            <dt>Controller replica</dt>
            <dd class={h.replica.leader === null ? 'warn-text' : 'ok-text'} data-leader={h.replica.leader ?? ''}>
              {h.replica.identity}
              {h.replica.isLeader ? ' — ✔ the leader (traffic from every sidecar)' : h.replica.leader === null ? ' — ◐ no leader yet (no Lease holder seen; statuses are not written)' : ` — standby; the leader is ${h.replica.leader} (traffic here: only sidecars connected to this replica)`}
            </dd>
          </>
        )}
        <dt>Pod source</dt>
        <dd class={h.podSource.synced ? 'ok-text' : 'no-text'}>
          {h.podSource.kind}: {h.podSource.synced ? '✔ synced' : '✖ not synced (discovery waits for it; see the controller log)'}
        </dd>
        <dt>Discovery streams connected</dt>
        <dd>
          {h.discovery.streams} ({h.discovery.messagesSent} messages sent, {h.discovery.coalesced} changes coalesced)
        </dd>
        <dt>Sidecars reporting (last 10 s)</dt>
        <dd>{h.sidecarsReporting}</dd>
        <dt>Ready caller pods without a discovery stream</dt>
        <dd class={h.callersNotConnectedTotal > 0 ? 'warn-text' : 'ok-text'}>
          {h.callersNotConnectedTotal === 0 ? (
            '✔ none'
          ) : (
            <>
              ◐ {h.callersNotConnectedTotal}: {h.callersNotConnected.map((p) => `${p.namespace}/${p.pod}`).join(', ')}
              {h.callersNotConnectedTotal > h.callersNotConnected.length && ' …'} — check that the sidecar runs and reaches this controller (its --discovery address)
            </>
          )}
        </dd>
        <dt>Pods left out for invalid annotations</dt>
        <dd class={h.rejectedTotal > 0 ? 'no-text' : 'ok-text'}>
          {h.rejectedTotal === 0 ? (
            '✔ none'
          ) : (
            <ul class="rejected">
              {h.rejectedPods.map((p) => (
                <li data-pod={`${p.namespace}/${p.name}`}>
                  ✖ <strong>{`${p.namespace}/${p.name}`}</strong>:{' '}
                  {p.problems.map((x) => `${x.annotation}="${x.value}" (expected ${x.expected})`).join('; ')} — fix the annotation; the pod joins discovery once it is valid
                </li>
              ))}
            </ul>
          )}
        </dd>
        {h.trafficDropped > 0 && (
          <>
            <dt>Traffic figures dropped (caps reached)</dt>
            <dd class="warn-text">{h.trafficDropped}</dd>
          </>
        )}
        <dt>Console pages open</dt>
        <dd>{h.consoleClients}</dd>
      </dl>
    </section>
  );
}
