// The trust bundle file (`--trust-bundle`: the mounted `qbasis-root-ca` ConfigMap, or local mode's
// <identity dir>/ca.pem), read again every `pollMs`: during a root rotation it gains the next root and
// later loses the old one. A change that parses (every block a CA certificate valid now, at most
// MAX_BUNDLE_BYTES) is announced ('bundle'); one that does not keeps the last good bundle and is
// logged once with the reason. A poll, not fs.watch: a ConfigMap volume swaps a symlink, which
// inotify on the file does not see.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { bundleRoots, fingerprints } from '../../proto/pem-certificates.ts';

export const MAX_BUNDLE_BYTES = 1024 * 1024;
const DEFAULT_POLL_MS = 1000;

export interface TrustBundle {
  pem: Buffer;
  roots: X509Certificate[];
}

/** The bundle in `file`, or why it cannot be used. */
export function readTrustBundle(file: string): TrustBundle | string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    return `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); expected the PEM roots (local mode: <identity dir>/ca.pem)`;
  }
  if (st.size > MAX_BUNDLE_BYTES) return `it is ${st.size} bytes; at most ${MAX_BUNDLE_BYTES} expected (a few PEM roots)`;
  let text: string;
  try {
    // The read itself is bounded too: the file may grow between stat and read.
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(MAX_BUNDLE_BYTES + 1);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      if (n > MAX_BUNDLE_BYTES) return `it is over ${MAX_BUNDLE_BYTES} bytes; a few PEM roots expected`;
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  const b = bundleRoots(text);
  if (typeof b === 'string') return b;
  return { pem: Buffer.from(b.pem), roots: b.roots };
}

/** Events: 'bundle' (b: TrustBundle) the file holds a new, usable bundle. */
export class TrustBundleFile extends EventEmitter {
  readonly file: string;
  #current: TrustBundle;
  #timer: NodeJS.Timeout | undefined;
  #refused = '';
  readonly #log: Logger;
  readonly #pollMs: number;

  constructor(file: string, first: TrustBundle, log: Logger, pollMs = DEFAULT_POLL_MS) {
    super();
    this.file = file;
    this.#current = first;
    this.#log = log.child({ component: 'trust-bundle' });
    this.#pollMs = pollMs;
  }

  current(): TrustBundle {
    return this.#current;
  }

  start(): void {
    this.#timer = setInterval(() => this.poll(), this.#pollMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  poll(): void {
    const b = readTrustBundle(this.file);
    if (typeof b === 'string') {
      if (b !== this.#refused) this.#log.warn({ file: this.file, roots: fingerprints(this.#current.roots) }, `trust bundle ${this.file} not used: ${b}; the last good bundle stays in use`);
      this.#refused = b;
      return;
    }
    this.#refused = '';
    if (b.pem.equals(this.#current.pem)) return;
    const before = fingerprints(this.#current.roots);
    this.#current = b;
    this.#log.info({ file: this.file, roots: fingerprints(b.roots), before }, `trust bundle reloaded: ${b.roots.length} root(s) trusted for new connections`);
    this.emit('bundle', b);
  }
}
