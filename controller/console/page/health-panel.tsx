// The controller's health as the console sees it, each fact with what to do about it.
import { ROOT_WARN_DAYS, type BasisServicesHealth, type HealthView, type IdentityHealthView, type ReplicaView } from '../mesh-snapshot.ts';

const DAY_MS = 86_400_000;
const day = (unixMs: number): string => new Date(unixMs).toISOString().slice(0, 10);
const lifetime = (ms: number): string => (ms >= 3_600_000 ? `${Math.round(ms / 3_600_000)} h` : ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`);

function BasisServicesFacts({ b }: { b: BasisServicesHealth }) {
  const standby = b.writer ? '' : ' (this replica does not write them: the leader\'s console has the current answer)';
  return (
    <>
      <dt>BasisServices not Synced</dt>
      <dd class={b.notSyncedTotal > 0 ? 'no-text' : 'ok-text'} data-not-synced={b.notSyncedTotal}>
        {b.notSyncedTotal === 0 ? (
          `✔ none of ${b.total}${standby}`
        ) : (
          <>
            ✖ {b.notSyncedTotal} of {b.total}{standby} — kubectl describe bsvc NAME -n NAMESPACE; the leader writes them:
            <ul>
              {b.notSynced.map((x) => (
                <li data-bsvc={`${x.namespace}/${x.name}`}>
                  <strong>{`${x.namespace}/${x.name}`}</strong> ({x.api}): {x.why}
                </li>
              ))}
            </ul>
          </>
        )}
      </dd>
    </>
  );
}

function IdentityFacts({ id, now }: { id: IdentityHealthView; now: number }) {
  const left = Math.floor((id.rootNotAfter - now) / DAY_MS);
  const refused = Object.entries(id.refused).map(([code, n]) => `${code} ${n}`).join(', ');
  return (
    <>
      <dt>Mesh root</dt>
      <dd class={left < ROOT_WARN_DAYS ? 'no-text' : 'ok-text'} data-root-days={left}>
        {left < ROOT_WARN_DAYS ? '✖' : '✔'} expires {day(id.rootNotAfter)} ({left} days)
        {left < ROOT_WARN_DAYS && ' — rotate it before then (docs/root-rotation.md): every certificate chains to it'}
        {id.trustedRootsNotAfter.length > 1 && `; ${id.trustedRootsNotAfter.length} roots trusted (a rotation), until ${id.trustedRootsNotAfter.map(day).join(', ')}`}
      </dd>
      <dt>Workload certificates</dt>
      <dd class={id.overdueTotal > 0 ? 'no-text' : 'ok-text'} data-overdue={id.overdueTotal}>
        {id.issued} issued here ({lifetime(id.leafLifetimeMs)} each){refused !== '' && `, refused: ${refused}`};{' '}
        {id.overdueTotal === 0 ? (
          '✔ none overdue for renewal'
        ) : (
          <>
            ✖ {id.overdueTotal} not renewed by three quarters of their lifetime{id.expiredTotal > 0 && ` (${id.expiredTotal} expired: their calls fail)`} — kubectl logs POD -c qbasis-sidecar says why Certify failed:
            <ul>
              {id.overdue.map((o) => (
                <li data-pod={`${o.namespace}/${o.pod}`}>
                  <strong>{`${o.namespace}/${o.pod}`}</strong> ({o.identity}) {o.notAfter <= now ? 'expired' : 'expires'} {new Date(o.notAfter).toISOString()}
                </li>
              ))}
            </ul>
          </>
        )}
      </dd>
    </>
  );
}

// Each replica with its state in words and colour; the leader and this replica named, so an operator
// sees at a glance which pod to read the logs of.
function ReplicaPods({ r }: { r: ReplicaView }) {
  const pods = r.replicas ?? [];
  const ready = pods.filter((p) => p.state === 'ready').length;
  return (
    <>
      <dt>Controller replicas</dt>
      <dd class={r.replicasError !== undefined || ready < pods.length ? 'warn-text' : 'ok-text'}>
        {pods.length > 0 && `${ready} of ${pods.length} ready`}
        <ul class="replicas">
          {pods.map((p) => (
            <li data-replica-pod={p.name} data-state={p.state} class={p.state === 'ready' ? 'ok-text' : 'warn-text'}>
              {p.state === 'ready' ? '✔ ' : '◐ '}
              <strong>{p.name}</strong> {p.state}
              {p.name === r.leader && ' — the leader'}
              {p.name === r.identity && ' — this replica'}
            </li>
          ))}
        </ul>
        {r.replicasError !== undefined && <p class="warn-text">◐ {r.replicasError} (the list above is the last one read; the controller's ServiceAccount needs list on pods in its namespace)</p>}
      </dd>
    </>
  );
}

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
            {(h.replica.replicas !== undefined || h.replica.replicasError !== undefined) && <ReplicaPods r={h.replica} />}
          </>
        )}
        {h.basisServices !== undefined && <BasisServicesFacts b={h.basisServices} />}
        {h.identity !== undefined && <IdentityFacts id={h.identity} now={Date.now()} />}
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
