// Peers by address:port, shared by every API's balancer (one HTTP/2 session per peer sidecar).
// Peers no snapshot mentions any more are closed gracefully (open streams finish).
// With mesh identity on, every peer is dialled over mutual TLS and must name the endpoint's identity.
import type { PeerTls } from './connection.ts';
import type { Endpoint } from './discovery-client.ts';
import { Peer, peerKey } from './peer.ts';

export class PeerPool {
  readonly peers = new Map<string, Peer>();
  readonly #tls: PeerTls | undefined;

  constructor(tls?: PeerTls) {
    this.#tls = tls;
  }

  get(ep: Pick<Endpoint, 'address' | 'port'> & Partial<Pick<Endpoint, 'identity'>>): Peer {
    const key = peerKey(ep.address, ep.port);
    let p = this.peers.get(key);
    if (p === undefined) {
      p = new Peer(ep.address, ep.port, performance.now(), this.#tls);
      this.peers.set(key, p);
    }
    if (this.#tls !== undefined) p.conn.expect(ep.identity ?? '');
    return p;
  }

  /** Closes peers that no balancer holds. */
  retain(inUse: Iterable<Peer>): void {
    const keep = new Set(inUse);
    for (const [key, p] of this.peers) {
      if (!keep.has(p)) {
        p.close();
        this.peers.delete(key);
      }
    }
  }

  destroy(): void {
    for (const p of this.peers.values()) p.destroy();
    this.peers.clear();
  }
}
