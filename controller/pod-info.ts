// Turns a Kubernetes Pod object (plain JSON/YAML, or a client-node V1Pod, which has
// the same shape) into a PodInfo. Shared by every pod source.
// Read: metadata, spec.serviceAccountName, status.podIP and the Ready condition.
import type { PodInfo } from './pod-source.ts';

/** Why an object is not a usable Pod (the caller logs it with the object's position). */
export class PodShapeError extends Error {}

function record(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === null || typeof v !== 'object') return out;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    // YAML turns `"true"` into a string but a bare `true` or `50051` into a boolean/number;
    // Kubernetes itself would refuse those, but a hand-written pods file should still work.
    if (typeof val === 'string') out[k] = val;
    else if (typeof val === 'number' || typeof val === 'boolean') out[k] = String(val);
  }
  return out;
}

/** spec.serviceAccountName (or the deprecated spec.serviceAccount); Kubernetes fills in `default`. */
function serviceAccountOf(spec: Record<string, unknown> | undefined): string {
  if (spec === null || typeof spec !== 'object') return 'default';
  for (const v of [spec.serviceAccountName, spec.serviceAccount]) if (typeof v === 'string' && v !== '') return v;
  return 'default';
}

export function podInfoFromObject(obj: unknown): PodInfo {
  if (obj === null || typeof obj !== 'object') throw new PodShapeError('expected a Pod object (a mapping)');
  const o = obj as { kind?: unknown; metadata?: Record<string, unknown>; spec?: Record<string, unknown>; status?: Record<string, unknown> };
  if (o.kind !== undefined && o.kind !== 'Pod') throw new PodShapeError(`expected kind: Pod, got kind: ${String(o.kind)}`);
  const md = o.metadata;
  if (md === undefined || typeof md !== 'object' || typeof md.name !== 'string' || md.name === '') {
    throw new PodShapeError('expected metadata.name (a non-empty string)');
  }
  const namespace = typeof md.namespace === 'string' && md.namespace !== '' ? md.namespace : 'default';
  const status = o.status ?? {};
  const ip = typeof status.podIP === 'string' && status.podIP !== '' ? status.podIP : undefined;
  const conditions = Array.isArray(status.conditions) ? (status.conditions as Array<Record<string, unknown>>) : [];
  const readyCond = conditions.find((c) => c !== null && typeof c === 'object' && c.type === 'Ready');
  const ready = readyCond !== undefined && String(readyCond.status) === 'True';
  const info: PodInfo = {
    namespace,
    name: md.name,
    uid: typeof md.uid === 'string' ? md.uid : '',
    ready,
    annotations: record(md.annotations),
    labels: record(md.labels),
    deleting: md.deletionTimestamp !== undefined && md.deletionTimestamp !== null,
    serviceAccount: serviceAccountOf(o.spec),
  };
  if (ip !== undefined) info.ip = ip;
  return info;
}
