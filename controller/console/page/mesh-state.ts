// The page's copy of the mesh: the first `snapshot` event, then each change event applied to it
// (controller/console/mesh-snapshot.ts, MeshEvents). Pure functions: the page keeps no other state.
import type { ApiView, HealthView, MeshSnapshot, PolicyView } from '../mesh-snapshot.ts';

export type Connection = 'connecting' | 'live' | 'reconnecting';

export interface PageState {
  mesh: MeshSnapshot | null;
  connection: Connection;
  /** Date.now() of the last event. */
  updatedAt: number;
}

/** Replaces (or inserts, in name order) one API's view; the other view objects stay as they were. */
export function withApi(mesh: MeshSnapshot, api: ApiView): MeshSnapshot {
  const apis = mesh.apis.slice();
  let lo = 0;
  let hi = apis.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (apis[mid]!.api < api.api) lo = mid + 1;
    else hi = mid;
  }
  if (apis[lo]?.api === api.api) apis[lo] = api;
  else apis.splice(lo, 0, api);
  return { ...mesh, apis };
}

export function withoutApi(mesh: MeshSnapshot, api: string): MeshSnapshot {
  return { ...mesh, apis: mesh.apis.filter((a) => a.api !== api) };
}

export function withPolicies(mesh: MeshSnapshot, policies: PolicyView[]): MeshSnapshot {
  return { ...mesh, policies };
}

export function withHealth(mesh: MeshSnapshot, health: HealthView): MeshSnapshot {
  return { ...mesh, health };
}
