// The API-id collision rule, the one copy: basis frames name an API by a 32-bit hash of its name
// (proto/basis, FNV-1a), so two names can share an id, and sidecars could not tell their frames
// apart. Known APIs collide when their ids are equal. The endpoint registry logs it
// (QB_API_ID_COLLISION); the BasisService reconciler makes Compatible False (ApiIdCollision).
import { apiId } from '../proto/basis/index.ts';

/** An API's id as labels, logs and conditions print it: 8 hex digits, no prefix. */
export function apiIdHex(api: string): string {
  return apiId(api).toString(16).padStart(8, '0');
}

/** The APIs known now, grouped by id. */
export class ApiIdCollisions {
  readonly #byId = new Map<number, Set<string>>();

  /** Adds `api`; false when it was known already. */
  add(api: string): boolean {
    const id = apiId(api);
    let names = this.#byId.get(id);
    if (names === undefined) this.#byId.set(id, (names = new Set()));
    if (names.has(api)) return false;
    names.add(api);
    return true;
  }

  /** Forgets `api`; false when it was not known. */
  remove(api: string): boolean {
    const id = apiId(api);
    const names = this.#byId.get(id);
    if (names === undefined || !names.delete(api)) return false;
    if (names.size === 0) this.#byId.delete(id);
    return true;
  }

  /** The other known APIs with `api`'s id, in the order they became known (empty: no collision). */
  collidesWith(api: string): string[] {
    return [...(this.#byId.get(apiId(api)) ?? [])].filter((a) => a !== api);
  }
}
