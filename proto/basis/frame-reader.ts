// Splits a byte stream into frames. A frame that arrives in one chunk is handed on as a view
// (no copy); a split payload is assembled into one buffer allocated once at its final size.
import { QbasisError } from '../errors.ts';
import { DEFAULT_MAX_PAYLOAD, HEADER_BYTES, readHeader, SUPPORTED_CODECS, type BasisHeader } from './header.ts';

export interface FrameReaderOptions {
  maxPayload?: number;
  codecs?: readonly number[];
  onFrame(header: BasisHeader, payload: Buffer): void;
}

export class FrameReader {
  readonly #opts: { maxPayload: number; codecs: readonly number[] };
  readonly #onFrame: (header: BasisHeader, payload: Buffer) => void;
  readonly #head = Buffer.allocUnsafe(HEADER_BYTES);
  #headFill = 0;
  #header: BasisHeader | undefined;
  #payload: Buffer | undefined;
  #payloadFill = 0;
  #failed: QbasisError | undefined;
  /** Frames handed on so far. */
  frames = 0;

  constructor(opts: FrameReaderOptions) {
    this.#opts = { maxPayload: opts.maxPayload ?? DEFAULT_MAX_PAYLOAD, codecs: opts.codecs ?? SUPPORTED_CODECS };
    this.#onFrame = opts.onFrame;
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
        chunk.copy(this.#head, this.#headFill, off, off + take);
        this.#headFill += take;
        off += take;
        if (this.#headFill < HEADER_BYTES) return;
        this.#headFill = 0;
        const header = readHeader(this.#head, 0, this.#opts);
        if (header.length === 0) {
          this.frames++;
          this.#onFrame(header, Buffer.alloc(0));
          continue;
        }
        this.#begin(header);
        continue;
      }
      const payload = this.#payload!;
      const take = Math.min(payload.length - this.#payloadFill, len - off);
      chunk.copy(payload, this.#payloadFill, off, off + take);
      this.#payloadFill += take;
      off += take;
      if (this.#payloadFill === payload.length) {
        const header = this.#header;
        this.#header = undefined;
        this.#payload = undefined;
        this.#payloadFill = 0;
        this.frames++;
        this.#onFrame(header, payload);
      }
    }
  }

  #begin(header: BasisHeader): void {
    this.#header = header;
    this.#payload = Buffer.allocUnsafe(header.length);
    this.#payloadFill = 0;
  }

  /** Call at end of stream: a partial frame is a truncated frame. */
  end(): void {
    if (this.#failed) throw this.#failed;
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
