// Power of two choices over cost = latency EWMA × (in-flight + 1). Peers that are ejected or waiting
// out a reconnect backoff are skipped; if every candidate is out, they are all tried anyway (a call
// to a maybe-recovered peer beats failing it outright).
import type { Peer } from './peer.ts';

function usable(p: Peer, now: number, exclude: readonly Peer[]): boolean {
  return p.available(now) && !exclude.includes(p);
}

export function pickP2C(peers: readonly Peer[], now: number, exclude: readonly Peer[] = []): Peer | undefined {
  const n = peers.length;
  if (n === 0) return undefined;
  if (n === 1) {
    const only = peers[0]!;
    return exclude.includes(only) ? undefined : only;
  }
  const i = (Math.random() * n) | 0;
  let j = (Math.random() * (n - 1)) | 0;
  if (j >= i) j++;
  const a = peers[i]!;
  const b = peers[j]!;
  const aOk = usable(a, now, exclude);
  const bOk = usable(b, now, exclude);
  if (aOk && bOk) return a.cost(now) <= b.cost(now) ? a : b;
  // Rare path: fall back to a scan over what is usable, else over what is not excluded.
  let pool = peers.filter((p) => usable(p, now, exclude));
  if (pool.length === 0) pool = peers.filter((p) => !exclude.includes(p));
  if (pool.length === 0) return undefined;
  if (pool.length === 1) return pool[0];
  const x = pool[(Math.random() * pool.length) | 0]!;
  const y = pool[(Math.random() * pool.length) | 0]!;
  return x.cost(now) <= y.cost(now) ? x : y;
}
