// Parses large pods files off the main thread: the controller keeps answering discovery,
// keepalives and /live while js-yaml works (~0.2-0.3 s of CPU per MiB of kubectl output on an
// idle core here, warm). One thread, started by pods-file-source.ts at the first large file and
// kept for the next (its JIT and item cache stay warm); one text in, one ParseReply out.
import { parentPort } from 'node:worker_threads';
import { ItemCache, parseToReply } from './pods-file-parse.ts';

const cache = new ItemCache(); // the last file's items: a reload parses only what changed
parentPort!.on('message', (text: string) => parentPort!.postMessage(parseToReply(text, cache)));
