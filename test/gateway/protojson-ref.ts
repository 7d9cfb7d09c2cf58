// The Go reference (test/protojson, the stamped tool protojson-ref) as one long-lived process: requests
// are JSON lines, answered in order, so many cases cost one process start.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ensureTools } from '../cluster/build.ts';

export type RefRequest =
  | { op: 'toJson'; set: string; type: string; binary: string; emitUnpopulated?: boolean; emitDefaultValues?: boolean }
  | { op: 'fromJson'; set: string; type: string; json: string; discardUnknown?: boolean }
  | { op: 'compile'; files: Record<string, string>; compile: string[] };

export interface RefResponse {
  json?: string;
  binary?: string;
  set?: string;
  error?: string;
}

export class ProtojsonRef {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<{ resolve: (r: RefResponse) => void; reject: (e: Error) => void }> = [];
  private stderr = '';

  private constructor(bin: string) {
    this.child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: this.child.stdout }).on('line', (line) => this.waiting.shift()?.resolve(JSON.parse(line) as RefResponse));
    this.child.on('exit', (code, sig) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`protojson-ref exited (${sig ?? code}): ${this.stderr}`));
    });
  }

  /** Builds the tool if needed (seconds: a small module), then starts it. */
  static async start(): Promise<ProtojsonRef> {
    const bin = await ensureTools({ tools: ['protojson-ref'] });
    return new ProtojsonRef(join(bin, 'protojson-ref'));
  }

  call(req: RefRequest): Promise<RefResponse> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(JSON.stringify(req) + '\n');
    });
  }

  /** Many requests, written at once and answered in order. */
  all(reqs: RefRequest[]): Promise<RefResponse[]> {
    return Promise.all(reqs.map((r) => this.call(r)));
  }

  stop(): void {
    this.child.stdin.end();
  }
}
