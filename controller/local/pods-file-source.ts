// Local mode's pod source: a YAML file of Pod manifests, exactly what
// `kubectl get pods -o yaml` prints (a List/PodList with items) or a multi-document
// file of Pods. Edits are picked up by watching the DIRECTORY (editors that save by
// writing a temp file and renaming it replace the inode, which a file watch loses),
// debounced, plus a slow poll as a safety net.
//
// The file is hostile input: each check stats it first and reads it only when its
// identity (device, inode, size, mtime, ctime) changed; a file over the size limit is
// refused without being read; the bytes must be UTF-8; a large file is parsed in a
// worker so the event loop keeps serving discovery. Anything wrong keeps the last good
// state and is logged once per change of the file (code QB_INVALID_PODS_FILE).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { PodInfo, PodSink, PodSource } from '../pod-source.ts';
import type { PolicyIntake } from '../policy-intake.ts';
import { invalidUtf8Offset } from '../../proto/utf8.ts';
import { describeInvalidUtf8, hasNoContent, parseToReply, shown, type ParseReply, type SkippedEntry } from './pods-file-parse.ts';

export { parsePodsFile, PodsFileError, type SkippedEntry } from './pods-file-parse.ts';

/** The default of --pods-file-max-bytes: about 300 pods as kubectl prints them, ~2,300 minimal ones. */
export const DEFAULT_PODS_FILE_MAX_BYTES = 1024 * 1024;
/** Files up to this size are parsed on the main thread (about 10 ms; 30-60 ms with the machine at load 8); larger ones in a worker. */
export const INLINE_PARSE_MAX_BYTES = 16 * 1024;
/** A worker parse that takes longer than this is stopped and reported. */
const PARSE_TIMEOUT_MS = 60_000;
/**
 * mtime has a coarse granularity (4 ms on ext4 here, 2 s on FAT): two same-size writes
 * within one tick leave the stat identity unchanged. A file read less than this long
 * after its mtime/ctime is "racy" and is read again (bytes compared by hash) on the next check.
 */
const RACY_NS = 2_000_000_000n;
/** At most this many per-entry problems are logged per load (then one summary line). */
const MAX_LOGGED_ENTRIES = 20;
const CODE = 'QB_INVALID_PODS_FILE';

export interface PodsFileSourceOptions {
  path: string;
  logger: Logger;
  /** Quiet time after the last change event before re-reading (ms). */
  debounceMs?: number;
  /** Safety-net poll interval (ms); 0 disables. */
  pollMs?: number;
  /** Larger files are refused without being read (default DEFAULT_PODS_FILE_MAX_BYTES). */
  maxBytes?: number;
  /** Receives the file's BasisPolicy documents (local mode's stand-in for the informer). */
  policies?: PolicyIntake;
}

function identity(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** When the file last changed (content: mtime; metadata or a rename onto the path: ctime). */
function changedNs(st: fs.BigIntStats): bigint {
  return st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
}

export class PodsFileSource implements PodSource {
  readonly kind = 'pods-file';
  readonly #file: string;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  readonly #maxBytes: number;
  readonly #policies: PolicyIntake | undefined;
  #sink: PodSink | undefined;
  #watcher: fs.FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  /** Stat identity of the file state last handled (good or bad); unchanged ⇒ not read again. */
  #lastKey = '';
  /** The last read happened within RACY_NS of the file's mtime: compare bytes on the next check. */
  #racy = false;
  /** Hash of the bytes last handled (good or bad): the same bytes are neither parsed nor reported again. */
  #lastHash = '';
  /** Last problem reported that has no content hash (a read error, not a regular file). */
  #lastProblem = '';
  #reported = new Set<string>();
  #lastDuplicates = '';
  #goodPods = 0;
  #busyRetries = 0;
  /** The parser thread, kept between parses (a cold one takes 2-3x as long: its JIT starts over). */
  #parser: Worker | undefined;
  #parsing = false;
  /** When the bytes being parsed were read: the load's log line says how long parse and apply took. */
  #readAt = 0;
  #again = false;
  #synced = false;
  #stopped = false;
  #reloads = 0;
  #onSynced: (() => void) | undefined;

  constructor(opts: PodsFileSourceOptions) {
    this.#file = path.resolve(opts.path);
    this.#log = opts.logger.child({ component: 'pods-file', file: this.#file });
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#pollMs = opts.pollMs ?? 2000;
    this.#maxBytes = opts.maxBytes ?? DEFAULT_PODS_FILE_MAX_BYTES;
    this.#policies = opts.policies;
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
    this.#check();
    await synced;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#onSynced?.(); // a start() still waiting returns; synced() stays false
    this.#watcher?.close();
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    if (this.#poll !== undefined) clearInterval(this.#poll);
    await this.#parser?.terminate();
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#check();
    }, this.#debounceMs);
  }

  /** "; keeping the last good state (3 pods)" or, before the first good load, what that means. */
  #keeping(): string {
    return this.#synced
      ? `; keeping the last good state (${this.#goodPods} pods)`
      : '; nothing is loaded yet: discovery is not served and /ready stays 503 until the file is valid';
  }

  /** Logs a problem with the file as a whole: one line, code QB_INVALID_PODS_FILE. */
  #refuse(problem: string, err: string, fields: Record<string, unknown> = {}): void {
    const msg = problem === 'unreadable' ? `cannot read the pods file (${err})${this.#keeping()}` : `pods file is invalid (${err})${this.#keeping()}`;
    this.#log.error({ code: CODE, problem, err, keptPods: this.#synced ? this.#goodPods : null, ...fields }, msg);
  }

  /** A problem without a content hash (cannot stat/read, not a regular file): reported when it differs from the last one. */
  #refuseOnce(sig: string, problem: string, err: string, fields: Record<string, unknown> = {}): void {
    if (sig === this.#lastProblem) return;
    this.#lastProblem = sig;
    this.#refuse(problem, err, fields);
  }

  /** One check: stat; if changed, read (bounded), validate, parse, deliver. */
  #check(): void {
    if (this.#stopped || this.#sink === undefined) return;
    if (this.#parsing) {
      this.#again = true; // looked at again when the parse in flight is done
      return;
    }
    let st: fs.BigIntStats;
    try {
      st = fs.statSync(this.#file, { bigint: true });
    } catch (err) {
      // mid-rename the file can be briefly absent; the next event or poll retries
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      this.#lastKey = '';
      this.#refuseOnce(`unreadable:${code}`, 'unreadable', (err as Error).message);
      return;
    }
    const key = identity(st);
    if (key === this.#lastKey && !this.#racy) return; // unchanged: not read again
    if (!st.isFile()) {
      // a FIFO would block the read, a device never ends
      this.#lastKey = key;
      this.#racy = false;
      this.#busyRetries = 0;
      this.#refuseOnce(`type:${key}`, 'not-a-file', 'not a regular file (a directory, FIFO, socket or device)');
      return;
    }
    // Changed less than a debounce ago: an in-place writer (`cat > file`) may be mid-write, and a prefix
    // cut at a line end is valid YAML with pods missing. Look again once the file has been quiet that long.
    const ageNs = BigInt(Date.now()) * 1_000_000n - changedNs(st);
    if (ageNs >= 0n && ageNs < BigInt(this.#debounceMs) * 1_000_000n) {
      this.#busy();
      return;
    }
    if (st.size > BigInt(this.#maxBytes)) {
      this.#busyRetries = 0;
      if (key !== this.#lastKey) {
        this.#lastKey = key;
        this.#lastHash = '';
        this.#lastProblem = '';
        this.#refuse('too-large', `${st.size} bytes, over the limit of ${this.#maxBytes} bytes (--pods-file-max-bytes); not read`, {
          bytes: Number(st.size),
          limit: this.#maxBytes,
        });
      }
      this.#racy = false;
      return;
    }
    const read = this.#read();
    if (read === undefined) return;
    const { buf, st: readSt } = read;
    const readKey = identity(readSt);
    this.#busyRetries = 0;
    this.#lastProblem = '';
    this.#lastKey = readKey;
    this.#racy = BigInt(Date.now()) * 1_000_000n - changedNs(readSt) < RACY_NS;
    this.#log.debug({ bytes: buf.length, racy: this.#racy }, 'pods file read');
    this.#readAt = performance.now();
    const hash = createHash('sha256').update(buf).digest('hex');
    if (hash === this.#lastHash) return; // same bytes as last time (touch, racy re-read, rewrite of the same content)
    this.#lastHash = hash;

    const bad = invalidUtf8Offset(buf);
    if (bad >= 0) {
      this.#refuse('not-utf8', `not UTF-8: ${describeInvalidUtf8(buf, bad)}`, { offset: bad });
      return;
    }
    const text = buf.toString('utf8');
    if (this.#synced && hasNoContent(text)) {
      // `cat > file` truncates before it writes: an empty file (or, read mid-write, one with only the
      // leading comments) is far more often a save in progress than a wish to drop every pod
      // (write `kind: List` + `items: []` for that).
      this.#log.warn('pods file is empty (or only comments); keeping the last good state (to remove all pods write a List with items: [])');
      return;
    }
    if (buf.length <= INLINE_PARSE_MAX_BYTES) {
      const parsed = parseToReply(text);
      this.#apply(parsed);
      return;
    }
    this.#parseInWorker(text);
  }

  /**
   * Reads the whole file (it is at most maxBytes), or undefined when it changed while
   * being read (a writer is still at it: check again after the debounce).
   */
  #read(): { buf: Buffer; st: fs.BigIntStats } | undefined {
    let fd: number;
    try {
      // O_NONBLOCK: if a FIFO was swapped in since the stat, opening it must not wait for a writer
      fd = fs.openSync(this.#file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      this.#lastKey = '';
      this.#refuseOnce(`unreadable:${code}`, 'unreadable', (err as Error).message);
      return undefined;
    }
    try {
      const before = fs.fstatSync(fd, { bigint: true });
      if (!before.isFile() || before.size > BigInt(this.#maxBytes)) return this.#busy(); // swapped since the stat: the next check sorts it out
      const size = Number(before.size);
      const buf = Buffer.allocUnsafe(size + 1); // one spare byte notices growth
      let got = 0;
      while (got < buf.length) {
        const n = fs.readSync(fd, buf, got, buf.length - got, got);
        if (n === 0) break;
        got += n;
      }
      const after = fs.fstatSync(fd, { bigint: true });
      if (got !== size || identity(after) !== identity(before)) return this.#busy();
      // Re-stat the path: a rename over it while we read means what we read is already stale.
      const now = fs.statSync(this.#file, { bigint: true });
      if (identity(now) !== identity(before)) return this.#busy();
      return { buf: buf.subarray(0, got), st: before };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      this.#lastKey = '';
      this.#refuseOnce(`unreadable:${code}`, 'unreadable', (err as Error).message);
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  #busy(): undefined {
    this.#busyRetries++;
    if (this.#busyRetries === 50) this.#log.warn({ retries: this.#busyRetries }, 'pods file keeps changing while it is read; still retrying after each change');
    this.#schedule();
    return undefined;
  }

  #parseInWorker(text: string): void {
    // No resourceLimits: a worker that reaches its cap can abort the whole process instead of being
    // terminated (nodejs/node#47224, seen here with a 256 MB cap), and the default heap limit (4 GB here)
    // is far above what a file at the default size limit needs (the worst shape measured, 1 MiB of
    // `[a,a,…]`, peaks at ~1 GB; a kubectl-style 1 MiB file parses within 64 MB).
    if (this.#parser === undefined) {
      this.#parser = new Worker(new URL('./pods-file-worker.ts', import.meta.url), { stdout: false, stderr: false });
      this.#parser.unref(); // idle, it must not keep the process up
    }
    const worker = this.#parser;
    this.#parsing = true;
    this.#log.debug({ bytes: Buffer.byteLength(text) }, 'pods file parse started in a worker');
    let done = false;
    const finish = (parsed: ParseReply, broken: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      this.#parsing = false;
      if (broken) {
        // timed out, failed or gone: the next parse starts a fresh thread
        if (this.#parser === worker) this.#parser = undefined;
        void worker.terminate();
      }
      if (this.#stopped) return;
      this.#apply(parsed);
      if (this.#again) {
        this.#again = false;
        this.#check();
      }
    };
    const onMessage = (m: ParseReply): void => finish(m, false);
    const onError = (err: Error): void => finish({ ok: false, error: `parsing failed: ${err.message}` }, true);
    const onExit = (code: number): void => finish({ ok: false, error: `the parser exited with code ${code} before answering` }, true);
    const timer = setTimeout(() => finish({ ok: false, error: `parsing took longer than ${PARSE_TIMEOUT_MS / 1000} s and was stopped` }, true), PARSE_TIMEOUT_MS);
    timer.unref();
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
    worker.postMessage(text);
  }

  #apply(parsed: ParseReply): void {
    if (this.#stopped || this.#sink === undefined) return;
    if (!parsed.ok) {
      this.#refuse('parse', parsed.error);
      return;
    }
    const { pods, policies, skipped, skippedTotal } = parsed;
    this.#reportSkipped(skipped, skippedTotal);
    this.#reportDuplicates(pods);
    this.#reloads++;
    const parsedAt = performance.now();
    this.#sink.resync(pods);
    // After the pods: NoSuchAPI is judged against what the file provides.
    this.#policies?.resync(policies);
    this.#goodPods = pods.length;
    this.#synced = true;
    this.#onSynced?.();
    this.#onSynced = undefined;
    const parseMs = Math.round(parsedAt - this.#readAt);
    this.#log.info({ pods: pods.length, policies: policies.length, skipped: skippedTotal, reload: this.#reloads, parseMs, applyMs: Math.round(performance.now() - parsedAt) }, 'pods file loaded');
  }

  /** Each distinct entry problem is logged once (not on every reload); a fixed entry can be reported again if it breaks again. */
  #reportSkipped(skipped: SkippedEntry[], total: number): void {
    const now = new Set<string>();
    let logged = 0;
    let unlogged = 0;
    for (const s of skipped) {
      now.add(s.key);
      if (this.#reported.has(s.key)) continue;
      if (logged >= MAX_LOGGED_ENTRIES) {
        unlogged++;
        continue;
      }
      logged++;
      const { where, message, key: _key, ...fields } = s;
      this.#log.error({ code: CODE, problem: message, where, ...fields }, `pods file entry skipped: ${where}: ${message}`);
    }
    unlogged += total - skipped.length; // beyond what the parser handed back
    if (unlogged > 0) this.#log.error({ code: CODE, unlogged, skipped: total }, `pods file: ${unlogged} more entries skipped (not logged one by one)`);
    this.#reported = now;
  }

  #reportDuplicates(pods: PodInfo[]): void {
    const seen = new Set<string>();
    const dups: string[] = [];
    for (const p of pods) {
      const k = `${p.namespace}/${p.name}`;
      if (seen.has(k)) dups.push(k);
      seen.add(k);
    }
    const sig = dups.join('\n');
    if (sig === this.#lastDuplicates) return;
    this.#lastDuplicates = sig;
    for (const k of dups.slice(0, MAX_LOGGED_ENTRIES)) this.#log.warn({ pod: shown(k, 200) }, 'pod listed twice in the pods file; the last one wins');
    if (dups.length > MAX_LOGGED_ENTRIES) this.#log.warn({ duplicates: dups.length }, `pods file: ${dups.length - MAX_LOGGED_ENTRIES} more pods listed twice`);
  }
}
