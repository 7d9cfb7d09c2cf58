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

export function withApi(mesh: MeshSnapshot, api: ApiView): MeshSnapshot {
  const apis = mesh.apis.filter((a) => a.api !== api.api);
  apis.push(api);
  apis.sort((a, b) => (a.api < b.api ? -1 : a.api > b.api ? 1 : 0));
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
