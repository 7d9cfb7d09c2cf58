// Local mode's pod source: a YAML file of Pod manifests, exactly what
// `kubectl get pods -o yaml` prints (a List/PodList with items) or a multi-document
// file of Pods. Edits are picked up by watching the DIRECTORY (editors that save by
// writing a temp file and renaming it replace the inode, which a file watch loses),
// debounced, plus a slow poll as a safety net. A file that does not parse keeps the
// last good state and logs what was wrong, once per distinct content.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import YAML from 'yaml';
import { podInfoFromObject } from '../pod-info.ts';
import type { PodInfo, PodSink, PodSource } from '../pod-source.ts';

export interface PodsFileSourceOptions {
  path: string;
  logger: Logger;
  /** Quiet time after the last change event before re-reading (ms). */
  debounceMs?: number;
  /** Safety-net poll interval (ms); 0 disables. */
  pollMs?: number;
}

export class PodsFileError extends Error {}

/** Parses a pods file's text into pods; throws PodsFileError saying what and where. Pod-level problems go to `skipped`. */
export function parsePodsFile(text: string, skipped: string[] = []): PodInfo[] {
  const docs = YAML.parseAllDocuments(text, { prettyErrors: true });
  if (!Array.isArray(docs)) throw new PodsFileError('not a YAML stream');
  const pods: PodInfo[] = [];
  docs.forEach((doc, d) => {
    const err = doc.errors[0];
    if (err !== undefined) throw new PodsFileError(`invalid YAML in document ${d + 1}: ${err.message.split('\n')[0]}`);
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) return; // empty document (e.g. a trailing ---)
    if (typeof obj !== 'object' || Array.isArray(obj)) {
      throw new PodsFileError(`document ${d + 1} is not a mapping; expected a Pod or a List/PodList with items`);
    }
    const o = obj as { kind?: unknown; items?: unknown };
    let items: unknown[];
    if (o.kind === 'List' || o.kind === 'PodList') {
      if (o.items === null || o.items === undefined) items = [];
      else if (Array.isArray(o.items)) items = o.items;
      else throw new PodsFileError(`document ${d + 1}: kind ${o.kind} has 'items' that is not a list`);
    } else if (o.kind === 'Pod' || o.kind === undefined) {
      items = [obj];
    } else {
      throw new PodsFileError(`document ${d + 1} has kind ${String(o.kind)}; expected Pod, List or PodList`);
    }
    items.forEach((item, i) => {
      try {
        pods.push(podInfoFromObject(item));
      } catch (e) {
        skipped.push(`document ${d + 1} item ${i + 1}: ${(e as Error).message}`);
      }
    });
  });
  return pods;
}

export class PodsFileSource implements PodSource {
  readonly kind = 'pods-file';
  readonly #file: string;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  #sink: PodSink | undefined;
  #watcher: fs.FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #lastHash = '';
  #lastBadHash = '';
  #lastSkipped = '';
  #synced = false;
  #stopped = false;
  #reloads = 0;
  #onSynced: (() => void) | undefined;

  constructor(opts: PodsFileSourceOptions) {
    this.#file = path.resolve(opts.path);
    this.#log = opts.logger.child({ component: 'pods-file', file: this.#file });
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#pollMs = opts.pollMs ?? 2000;
  }

  synced(): boolean {
    return this.#synced;
  }

  /** Number of times a changed, valid file was delivered to the sink. */
  reloads(): number {
    return this.#reloads;
  }

  /** Resolves after the first valid load; until then (a file that does not parse) it keeps watching. */
  async start(sink: PodSink): Promise<void> {
    this.#sink = sink;
    const synced = new Promise<void>((resolve) => (this.#onSynced = resolve));
    this.#watcher = fs.watch(path.dirname(this.#file), { persistent: true }, (_event, name) => {
      // name can be null on some platforms: then any event in the directory counts
      if (name === null || name === path.basename(this.#file)) this.#schedule();
    });
    this.#watcher.on('error', (err) => this.#log.error({ err: err.message }, 'watching the pods file directory failed; relying on polling'));
    if (this.#pollMs > 0) {
      this.#poll = setInterval(() => this.#schedule(), this.#pollMs);
      this.#poll.unref();
    }
    this.#reload();
    await synced;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#onSynced?.(); // a start() still waiting returns; synced() stays false
    this.#watcher?.close();
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    if (this.#poll !== undefined) clearInterval(this.#poll);
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#reload();
    }, this.#debounceMs);
  }

  #reload(): void {
    if (this.#stopped || this.#sink === undefined) return;
    let text: string;
    try {
      text = fs.readFileSync(this.#file, 'utf8');
    } catch (err) {
      // mid-rename the file can be briefly absent; the next event or poll retries
      const code = (err as NodeJS.ErrnoException).code ?? '';
      const hash = `read:${code}`;
      if (hash !== this.#lastBadHash) {
        this.#lastBadHash = hash;
        this.#log.error({ err: (err as Error).message }, 'cannot read the pods file; keeping the last good state');
      }
      return;
    }
    // Re-stat: if the size moved on since we read, a writer is still at it; read again later.
    try {
      if (fs.statSync(this.#file).size !== Buffer.byteLength(text)) {
        this.#schedule();
        return;
      }
    } catch {
      this.#schedule();
      return;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.#lastHash || hash === this.#lastBadHash) return;
    if (text.trim() === '' && this.#synced) {
      // `cat > file` truncates before it writes: an empty file is far more often a save
      // in progress than a wish to drop every pod (write `kind: List` + `items: []` for that).
      this.#lastBadHash = hash;
      this.#log.warn('pods file is empty; keeping the last good state (to remove all pods write a List with items: [])');
      return;
    }
    const skipped: string[] = [];
    let pods: PodInfo[];
    try {
      pods = parsePodsFile(text, skipped);
    } catch (err) {
      this.#lastBadHash = hash;
      this.#log.error({ err: (err as Error).message }, `pods file is invalid (${(err as Error).message}); keeping the last good state`);
      return;
    }
    this.#lastHash = hash;
    this.#lastBadHash = '';
    const skippedSig = skipped.join('\n');
    if (skipped.length > 0 && skippedSig !== this.#lastSkipped) {
      for (const s of skipped) this.#log.error({ problem: s }, `pods file entry skipped: ${s}`);
    }
    this.#lastSkipped = skippedSig;
    const seen = new Set<string>();
    for (const p of pods) {
      const k = `${p.namespace}/${p.name}`;
      if (seen.has(k)) this.#log.warn({ pod: k }, 'pod listed twice in the pods file; the last one wins');
      seen.add(k);
    }
    this.#reloads++;
    this.#sink.resync(pods);
    this.#synced = true;
    this.#onSynced?.();
    this.#onSynced = undefined;
    this.#log.info({ pods: pods.length, reload: this.#reloads }, 'pods file loaded');
  }
}
