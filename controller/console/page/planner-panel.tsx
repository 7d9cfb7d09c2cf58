// The upgrade planner: pick an API and a version or range; the same planRemoval() as `qbasis plan
// remove` says which callers the removal would strand and which still called it lately.
import { useState } from 'preact/hooks';
import type { MeshSnapshot } from '../mesh-snapshot.ts';
import { planRemoval } from '../planner.ts';
import { isRange } from '../../../proto/versions.ts';
import { ago, rate, workload } from './format.ts';

const MINUTES = [1, 5, 15];

export function PlannerPanel({ mesh }: { mesh: MeshSnapshot }) {
  const [api, setApi] = useState('');
  const [range, setRange] = useState('');
  const [minutes, setMinutes] = useState(15);
  const chosen = api !== '' && mesh.apis.some((a) => a.api === api) ? api : (mesh.apis[0]?.api ?? '');
  const view = mesh.apis.find((a) => a.api === chosen);
  const valid = range.trim() !== '' && isRange(range.trim());
  const plan = view !== undefined && valid ? planRemoval(view, chosen, range.trim(), { now: Date.now(), withinMinutes: minutes }) : undefined;
  return (
    <section class="planner" aria-labelledby="planner-h">
      <h2 id="planner-h">Upgrade planner: what if a version went?</h2>
      <form class="plan-form" onSubmit={(e) => e.preventDefault()}>
        <label>
          API{' '}
          <select name="api" value={chosen} onChange={(e) => setApi((e.target as HTMLSelectElement).value)}>
            {mesh.apis.map((a) => (
              <option value={a.api}>{a.api}</option>
            ))}
          </select>
        </label>
        <label>
          Remove version or range{' '}
          <input name="range" type="text" value={range} placeholder="e.g. 1.x or 1.4.0" spellcheck={false} autocomplete="off" onInput={(e) => setRange((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Calls in the last{' '}
          <select name="minutes" value={String(minutes)} onChange={(e) => setMinutes(Number((e.target as HTMLSelectElement).value))}>
            {MINUTES.map((m) => (
              <option value={String(m)}>{m} min</option>
            ))}
          </select>
        </label>
        {view !== undefined && view.versions.length > 0 && (
          <span class="quick">
            Versions:{' '}
            {view.versions.map((v) => (
              <button type="button" onClick={() => setRange(v.version)}>
                {v.version}
              </button>
            ))}
          </span>
        )}
      </form>
      {range.trim() !== '' && !valid && <p class="no-text">'{range}' is not a semver range; expected e.g. 1.4.0, 1.x or &lt;2.</p>}
      {plan !== undefined && (
        <div class="plan-result">
          <p class={plan.safe ? 'verdict ok' : 'verdict no'} data-safe={String(plan.safe)} aria-live="polite">
            <span aria-hidden="true">{plan.safe ? '✔' : '✖'}</span>{' '}
            {plan.safe
              ? `Removing ${plan.api}@${plan.range} strands no caller.`
              : `Removing ${plan.api}@${plan.range} would strand ${plan.stranded.length} caller${plan.stranded.length === 1 ? '' : 's'}.`}
          </p>
          <p>
            Removed: {plan.removed.map((v) => `${v.version} (${v.ready + v.notReady} pod${v.ready + v.notReady === 1 ? '' : 's'})`).join(', ') || 'no version present'}; kept:{' '}
            {plan.kept.map((v) => `${v.version} (${v.ready} ready)`).join(', ') || 'nothing'}.
          </p>
          {plan.stranded.length > 0 && (
            <ul class="stranded-list">
              {plan.stranded.map((c) => (
                <li data-caller={workload(c.workload)}>
                  <strong>{workload(c.workload)}</strong> (requires {c.range}, {c.declared ? `${c.pods} pod${c.pods === 1 ? '' : 's'}` : 'seen only in traffic'}): {c.reason}
                </li>
              ))}
            </ul>
          )}
          {plan.unserved.length > 0 && (
            <p>
              Already without a compatible ready provider: {plan.unserved.map((c) => `${workload(c.workload)} (${c.range})`).join(', ')}
            </p>
          )}
          <h3>Still calling {plan.range} (last {plan.withinMinutes} min)</h3>
          {plan.stillCalling.length === 0 ? (
            <p class="calling-none">No caller sent calls to it.</p>
          ) : (
            <ul class="calling-list">
              {plan.stillCalling.map((c) => (
                <li data-caller={workload(c.workload)}>
                  <strong>{workload(c.workload)}</strong> (requires {c.range}):{' '}
                  {c.versions.map((v) => `${v.version} ${rate(v.lastMinute / 60)} calls/s over the last minute, last call ${ago(Date.now() - v.lastCallAt)}`).join('; ')}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </section>
  );
}
