// The BasisService work queue's key: `namespace/api`. Namespaces hold no '/', so the key splits at
// the first one and API names (with their dots) come back whole. The caller index emits these keys.
export function reconcileKey(namespace: string, api: string): string {
  return `${namespace}/${api}`;
}

export function splitKey(key: string): { namespace: string; api: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), api: key.slice(i + 1) };
}
