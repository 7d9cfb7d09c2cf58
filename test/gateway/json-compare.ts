// Compares two JSON documents as values: member order free, everything else exact — a number against a
// number (-0 is not 0), a string against a string (so "1" and 1 differ, as the mapping says they must).
export function jsonDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) ? undefined : `${path || '(root)'}: ${show(a)} ≠ ${show(b)}`;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    return a === b ? undefined : `${path || '(root)'}: ${show(a)} ≠ ${show(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path || '(root)'}: ${show(a)} ≠ ${show(b)}`;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return `${path || '(root)'}: ${a.length} items ≠ ${bb.length} items`;
    for (let i = 0; i < a.length; i++) {
      const d = jsonDifference(a[i], bb[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ao), ...Object.keys(bo)])) {
    const p = path === '' ? k : `${path}.${k}`;
    if (!(k in ao)) return `${p}: missing ≠ ${show(bo[k])}`;
    if (!(k in bo)) return `${p}: ${show(ao[k])} ≠ missing`;
    const d = jsonDifference(ao[k], bo[k], p);
    if (d !== undefined) return d;
  }
  return undefined;
}

function show(v: unknown): string {
  if (Object.is(v, -0)) return '-0';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}…` : s;
}
