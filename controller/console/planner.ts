// The upgrade planner, a pure function of the console's snapshot: what removing every provider of
// API@RANGE would do. `qbasis plan remove` (cli/plan.ts) and the page both call it on the same
// /api/v1/mesh data, so they give the same answer.
//   stranded      callers served now (a ready pod provides a version in their range) that would have
//                 none left: the removal breaks them. Only callers the pod source declares: a row seen
//                 only in traffic (its pods gone or replaced) is history, listed under stillCalling;
//   unserved      callers already without a compatible ready provider (the removal is not the cause);
//   stillCalling  callers whose calls reached a version in RANGE in the last N minutes.
// Compatibility is the console's: the version satisfies the caller's range, and the version has a ready
// pod (every sidecar today speaks codec 1, so codecs never split a version).
import { isRange, satisfies } from '../../proto/versions.ts';
import { apiNameProblem } from '../../proto/annotations.ts';
import type { ApiView, VersionColumn, WorkloadRef } from './mesh-snapshot.ts';

export interface PlanCaller {
  workload: WorkloadRef;
  range: string;
  pods: number;
  declared: boolean;
  reason: string;
}

export interface PlanTraffic {
  workload: WorkloadRef;
  range: string;
  /** Versions in RANGE it called, with its calls in the last minute and its last call (unix ms). */
  versions: { version: string; lastMinute: number; lastCallAt: number }[];
  lastCallAt: number;
}

export interface RemovalPlan {
  api: string;
  range: string;
  /** The snapshot knows the API (someone provides, requires or called it). */
  known: boolean;
  removed: VersionColumn[];
  kept: VersionColumn[];
  stranded: PlanCaller[];
  unserved: PlanCaller[];
  stillCalling: PlanTraffic[];
  withinMinutes: number;
  /** Nothing would be stranded. */
  safe: boolean;
}

/** "API@RANGE" → its parts, or why it is not one ("expected …"). */
export function parseRemoval(text: string): { api: string; range: string } | string {
  const at = text.indexOf('@');
  if (at <= 0 || at === text.length - 1) return 'expected API@RANGE, e.g. shop.orders.v1.OrderService@1.x';
  const api = text.slice(0, at);
  const range = text.slice(at + 1).trim();
  const bad = apiNameProblem(api);
  if (bad !== undefined) return `the API ${bad}`;
  if (!isRange(range)) return `'${range}' is not a semver range; expected a version or range such as 1.4.0, 1.x or <2`;
  return { api, range };
}

function served(range: string, versions: readonly VersionColumn[]): boolean {
  return versions.some((v) => v.ready > 0 && satisfies(v.version, range));
}

function describe(versions: readonly VersionColumn[]): string {
  const up = versions.filter((v) => v.ready > 0);
  return up.length === 0 ? 'no ready version' : up.map((v) => `${v.version} (${v.ready} ready)`).join(', ');
}

export function planRemoval(view: ApiView | undefined, api: string, range: string, opts: { now: number; withinMinutes: number }): RemovalPlan {
  const versions = view?.versions ?? [];
  const inRange = (v: string): boolean => satisfies(v, range);
  const removed = versions.filter((v) => inRange(v.version) && v.ready + v.notReady > 0);
  const kept = versions.filter((v) => !inRange(v.version) && v.ready + v.notReady > 0);
  const stranded: PlanCaller[] = [];
  const unserved: PlanCaller[] = [];
  const stillCalling: PlanTraffic[] = [];
  const since = opts.now - opts.withinMinutes * 60_000;
  for (const c of view?.callers ?? []) {
    const who = { workload: c.workload, range: c.range, pods: c.pods.length, declared: c.declared };
    // A row seen only in traffic is history (or a sidecar run by hand): only its calls count, below.
    if (c.declared && !served(c.range, versions)) unserved.push({ ...who, reason: c.reason ?? `no ready version in ${c.range}` });
    else if (c.declared && !served(c.range, kept)) {
      stranded.push({ ...who, reason: kept.some((v) => v.ready > 0) ? `left after the removal: ${describe(kept)}, none in ${c.range}` : 'no ready version would be left' });
    }
    const calls = c.cells.flatMap((x) => (x.calls !== undefined && x.calls.lastCallAt >= since && inRange(x.version) ? [{ version: x.version, ...x.calls }] : []));
    if (calls.length > 0) stillCalling.push({ workload: c.workload, range: c.range, versions: calls, lastCallAt: Math.max(...calls.map((x) => x.lastCallAt)) });
  }
  return { api, range, known: view !== undefined, removed, kept, stranded, unserved, stillCalling, withinMinutes: opts.withinMinutes, safe: stranded.length === 0 };
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

function who(c: { workload: WorkloadRef; range: string }): string {
  return `${c.workload.namespace}/${c.workload.name} (requires ${c.range})`;
}

/** The plan as the lines `qbasis plan remove` prints (the page shows the same facts). */
export function planLines(p: RemovalPlan, now: number): string[] {
  const lines: string[] = [];
  const list = (vs: VersionColumn[]): string => (vs.length === 0 ? 'none' : vs.map((v) => `${v.version} (${v.ready} ready, ${v.notReady} not ready)`).join(', '));
  if (!p.known) lines.push(`${p.api} is not known to this controller: no pod provides or requires it and no sidecar reported calls to it.`);
  lines.push(`Removing ${p.api}@${p.range}: versions removed ${list(p.removed)}; kept ${list(p.kept)}.`);
  if (p.stranded.length === 0) lines.push('Strands no caller: every caller served now keeps a compatible ready provider.');
  else {
    lines.push(`Strands ${p.stranded.length} caller${p.stranded.length === 1 ? '' : 's'}:`);
    for (const c of p.stranded) lines.push(`  ${who(c)}${c.declared ? `, ${c.pods} pod${c.pods === 1 ? '' : 's'}` : ', seen only in traffic'}: ${c.reason}`);
  }
  if (p.unserved.length > 0) {
    lines.push(`Already without a compatible ready provider (not caused by this removal): ${p.unserved.length}`);
    for (const c of p.unserved) lines.push(`  ${who(c)}: ${c.reason}`);
  }
  if (p.stillCalling.length === 0) lines.push(`No caller sent calls to ${p.range} in the last ${p.withinMinutes} min.`);
  else {
    lines.push(`Still called in the last ${p.withinMinutes} min by ${p.stillCalling.length} caller${p.stillCalling.length === 1 ? '' : 's'}:`);
    for (const c of p.stillCalling) {
      lines.push(`  ${who(c)}: ${c.versions.map((v) => `${v.version} ${(v.lastMinute / 60).toFixed(2)} calls/s over the last minute, last call ${ago(now - v.lastCallAt)}`).join('; ')}`);
    }
  }
  return lines;
}
