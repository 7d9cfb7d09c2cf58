// Parses a large pods file off the main thread: the controller keeps answering
// discovery, keepalives and /live while the `yaml` package works (about 0.5 s of CPU per
// MiB of kubectl output on an idle core here). Started once per parse by
// pods-file-source.ts and gone when done, so the parse's memory goes back with it.
import { parentPort, workerData } from 'node:worker_threads';
import { MAX_RETURNED_SKIPPED, parsePodsFile, type ParseReply, type SkippedEntry } from './pods-file-parse.ts';

const text = (workerData as { text: string }).text;
let reply: ParseReply;
try {
  const skipped: SkippedEntry[] = [];
  const pods = parsePodsFile(text, skipped);
  reply = { ok: true, pods, skipped: skipped.slice(0, MAX_RETURNED_SKIPPED), skippedTotal: skipped.length };
} catch (err) {
  reply = { ok: false, error: (err as Error).message };
}
parentPort!.postMessage(reply);
