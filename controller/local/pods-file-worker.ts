// Parses a large pods file off the main thread: the controller keeps answering
// discovery, keepalives and /live while the `yaml` package works (about 0.5 s of CPU per
// MiB of kubectl output on an idle core here). Started once per parse by
// pods-file-source.ts and gone when done, so the parse's memory goes back with it.
import { parentPort, workerData } from 'node:worker_threads';
import { parseToReply } from './pods-file-parse.ts';

parentPort!.postMessage(parseToReply((workerData as { text: string }).text));
