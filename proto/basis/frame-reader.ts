// Splits a byte stream into frames. A frame that arrives in one chunk is handed on as a view
// (no copy); a split payload is kept as the chunks that arrived and joined once when complete, so a
// header that declares a large payload costs nothing until the bytes really come (a 16-byte header
// must not make anyone allocate 4 MiB).
import { QbasisError } from '../errors.ts';
import { DEFAULT_MAX_PAYLOAD, HEADER_BYTES, readHeader, SUPPORTED_CODECS, type BasisHeader } from './header.ts';

/** Bytes of partial frames held, shared by the readers of one connection; take() false = over budget. */
export interface ByteBudget {
  take(bytes: number): boolean;
  give(bytes: number): void;
}

export interface FrameReaderOptions {
  maxPayload?: number;
  codecs?: readonly number[];
  /** Caps the partial-frame bytes held across readers (one connection); over it a push throws QB_FRAME_TOO_LARGE. */
  budget?: ByteBudget;
  onFrame(header: BasisHeader, payload: Buffer): void;
}

export class FrameReader {
  readonly #opts: { maxPayload: number; codecs: readonly number[] };
  readonly #onFrame: (header: BasisHeader, payload: Buffer) => void;
  readonly #budget: ByteBudget | undefined;
  /** Allocated only when a header arrives split (most frames come whole: no buffer per reader). */
  #head: Buffer | undefined;
  #headFill = 0;
  #header: BasisHeader | undefined;
  #parts: Buffer[] = [];
  #payloadFill = 0;
  #failed: QbasisError | undefined;
  /** Frames handed on so far. */
  frames = 0;

  constructor(opts: FrameReaderOptions) {
    this.#opts = { maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD, codecs: opts.codecs ?? SUPPORTED_CODECS };
    this.#onFrame = opts.onFrame;
    this.#budget = opts.budget;
  }

  /** The first bad frame's error, once one was seen. */
  get failed(): QbasisError | undefined {
    return this.#failed;
  }

  /** True when no partial frame is buffered. */
  get idle(): boolean {
    return this.#headFill === 0 && this.#header === undefined;
  }

  /** Feeds bytes; throws the first bad frame's QbasisError (and keeps failing after it). */
  push(chunk: Buffer): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk);
    } catch (err) {
      this.#failed = err instanceof QbasisError ? err : new QbasisError('QB_INTERNAL', 'frame handler failed', { cause: err });
      this.discard();
      throw err;
    }
  }

  #push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.#header === undefined) {
        if (this.#headFill === 0 && len - off >= HEADER_BYTES) {
          const header = readHeader(chunk, off, this.#opts);
          off += HEADER_BYTES;
          if (len - off >= header.length) {
            // Fast path: the whole frame is in this chunk.
            const payload = chunk.subarray(off, off + header.length);
            off += header.length;
            this.frames++;
            this.#onFrame(header, payload);
            continue;
          }
          this.#begin(header);
          continue;
        }
        const take = Math.min(HEADER_BYTES - this.#headFill, len - off);
        chunk.copy((this.#head ??= Buffer.allocUnsafe(HEADER_BYTES)), this.#headFill, off, off + take);
        this.#headFill += take;
        off += take;
        if (this.#headFill < HEADER_BYTES) return;
        this.#headFill = 0;
        const header = readHeader(this.#head!, 0, this.#opts);
        if (header.length === 0) {
          this.frames++;
          this.#onFrame(header, Buffer.alloc(0));
          continue;
        }
        this.#begin(header);
        continue;
      }
      const header = this.#header;
      const take = Math.min(header.length - this.#payloadFill, len - off);
      // A view: the chunk is not copied until the frame is complete.
      this.#hold(off === 0 && take === len ? chunk : chunk.subarray(off, off + take));
      off += take;
      if (this.#payloadFill === header.length) {
        const parts = this.#parts;
        const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts, header.length);
        this.#release();
        this.#header = undefined;
        this.frames++;
        this.#onFrame(header, payload);
      }
    }
  }

  #begin(header: BasisHeader): void {
    this.#header = header;
    this.#parts = [];
    this.#payloadFill = 0;
  }

  #hold(part: Buffer): void {
    if (this.#budget !== undefined && !this.#budget.take(part.length)) {
      throw new QbasisError('QB_FRAME_TOO_LARGE',
        `partial frames on this connection exceed its buffer budget (frame ${this.#header!.length} bytes, ${this.#payloadFill} arrived); expected fewer large frames in flight at once`);
    }
    this.#parts.push(part);
    this.#payloadFill += part.length;
  }

  #release(): void {
    if (this.#budget !== undefined && this.#payloadFill > 0) this.#budget.give(this.#payloadFill);
    this.#parts = [];
    this.#payloadFill = 0;
  }

  /** Drops a partial frame (the stream was abandoned) and gives its bytes back to the budget. */
  discard(): void {
    this.#release();
    this.#header = undefined;
    this.#headFill = 0;
  }

  /** Call at end of stream: a partial frame is a truncated frame. */
  end(): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#checkEnd();
    } finally {
      if (this.#failed) this.discard();
    }
  }

  #checkEnd(): void {
    if (this.#headFill > 0) {
      this.#failed = new QbasisError(
        'QB_FRAME_TRUNCATED',
        `stream ended inside a basis header: got ${this.#headFill} bytes; expected 16`,
      );
      throw this.#failed;
    }
    if (this.#header !== undefined) {
      this.#failed = new QbasisError(
        'QB_FRAME_TRUNCATED',
        `stream ended inside a frame: got ${this.#payloadFill} payload bytes; expected ${this.#header.length}`,
      );
      throw this.#failed;
    }
  }
}
