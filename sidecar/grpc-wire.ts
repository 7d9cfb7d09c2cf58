// gRPC-over-HTTP/2 details the sidecar needs on the hot path, written against node:http2 directly:
// the 5-byte message prefix, grpc-timeout, grpc-message encoding and ending a stream with a status.
import http2 from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import { QbasisError } from '../proto/errors.ts';

export const GRPC_PREFIX_BYTES = 5;
const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

export type OnMessage = (compressed: boolean, payload: Buffer) => void;

/**
 * Splits gRPC's length-prefixed messages out of DATA chunks. Whole messages in one chunk are views (no
 * copy); a split one is kept as the chunks that arrived and joined once complete, so a declared length
 * costs nothing until its bytes come.
 */
export class GrpcMessageReader {
  readonly #onMessage: OnMessage;
  readonly #max: number;
  /** Allocated only when a prefix arrives split (most messages come whole: no buffer per reader). */
  #prefix: Buffer | undefined;
  #prefixFill = 0;
  #compressed = false;
  /** Declared size of the message being assembled; -1 when none. */
  #size = -1;
  #parts: Buffer[] = [];
  #fill = 0;

  constructor(maxMessage: number, onMessage: OnMessage) {
    this.#max = maxMessage;
    this.#onMessage = onMessage;
  }

  get idle(): boolean {
    return this.#prefixFill === 0 && this.#size < 0;
  }

  /** Throws QB_FRAME_TOO_LARGE when a message exceeds the limit, QB_BAD_MESSAGE for a prefix that is not gRPC. */
  push(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.#size < 0) {
        if (this.#prefixFill === 0 && len - off >= GRPC_PREFIX_BYTES) {
          const compressed = compressedFlag(chunk[off]!);
          const size = chunk.readUInt32BE(off + 1);
          if (size > this.#max) throw tooLarge(size, this.#max);
          off += GRPC_PREFIX_BYTES;
          if (len - off >= size) {
            this.#onMessage(compressed, chunk.subarray(off, off + size));
            off += size;
            continue;
          }
          this.#compressed = compressed;
          this.#begin(size);
          continue;
        }
        const take = Math.min(GRPC_PREFIX_BYTES - this.#prefixFill, len - off);
        const prefix = (this.#prefix ??= Buffer.allocUnsafe(GRPC_PREFIX_BYTES));
        chunk.copy(prefix, this.#prefixFill, off, off + take);
        this.#prefixFill += take;
        off += take;
        if (this.#prefixFill < GRPC_PREFIX_BYTES) return;
        this.#prefixFill = 0;
        const size = prefix.readUInt32BE(1);
        if (size > this.#max) throw tooLarge(size, this.#max);
        this.#compressed = compressedFlag(prefix[0]!);
        if (size === 0) {
          this.#onMessage(this.#compressed, Buffer.alloc(0));
          continue;
        }
        this.#begin(size);
        continue;
      }
      const size = this.#size;
      const take = Math.min(size - this.#fill, len - off);
      this.#parts.push(off === 0 && take === len ? chunk : chunk.subarray(off, off + take));
      this.#fill += take;
      off += take;
      if (this.#fill === size) {
        const parts = this.#parts;
        const p = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
        this.#parts = [];
        this.#size = -1;
        this.#onMessage(this.#compressed, p);
      }
    }
  }

  #begin(size: number): void {
    this.#size = size;
    this.#parts = [];
    this.#fill = 0;
  }
}

function tooLarge(size: number, max: number): QbasisError {
  return new QbasisError('QB_FRAME_TOO_LARGE', `gRPC message of ${size} bytes exceeds the limit; expected at most ${max} bytes (--max-frame-bytes)`);
}

/** gRPC's Compressed-Flag is 0 or 1; anything else is not gRPC, and guessing would pass it on wrongly. */
function compressedFlag(byte: number): boolean {
  if (byte > 1) throw new QbasisError('QB_BAD_MESSAGE', `gRPC message prefix has compressed flag ${byte}; expected 0 or 1`);
  return byte === 1;
}

/** One gRPC message (prefix + payload) in one buffer. */
export function grpcMessage(compressed: boolean, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + payload.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(payload.length, 1);
  payload.copy(out, GRPC_PREFIX_BYTES);
  return out;
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** grpc-timeout → milliseconds; undefined when absent or malformed (gRPC then means "no deadline"). */
export function parseTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || value.length < 2 || value.length > 9) return undefined;
  const unit = UNIT_MS[value[value.length - 1]!];
  const n = Number(value.slice(0, -1));
  if (unit === undefined || !Number.isInteger(n) || n < 0) return undefined;
  return n * unit;
}

/** Milliseconds → grpc-timeout (at most 8 digits, as the spec requires). */
export function formatTimeout(ms: number): string {
  if (ms < 1) return `${Math.max(1, Math.ceil(ms * 1000))}u`;
  const m = Math.ceil(ms);
  if (m < 1e8) return `${m}m`;
  const s = Math.ceil(ms / 1000);
  if (s < 1e8) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(ms / 3_600_000))}H`;
}

/** grpc-message is percent-encoded outside printable ASCII (and '%'). */
export function encodeGrpcMessage(message: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(message) ? message : encodeURIComponent(message).replace(/%20/g, ' ');
}

export function decodeGrpcMessage(value: string | string[] | undefined): string {
  if (typeof value !== 'string') return '';
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

export function statusTrailers(status: number, message: string, qbCode?: string): Record<string, string> {
  const t: Record<string, string> = { 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message) };
  if (qbCode !== undefined) t['qbasis-error-code'] = qbCode;
  return t;
}

/** Answers a stream that has sent nothing yet with a trailers-only gRPC status. */
export function respondTrailersOnly(stream: ServerHttp2Stream, trailers: Record<string, string>): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...trailers }, { endStream: true });
  } catch {
    stream.close(NGHTTP2_CANCEL);
  }
}

/**
 * Ends a call with a status of the sidecar's own: trailers-only when nothing was sent yet, then, if
 * the peer is still sending, RST_STREAM NO_ERROR so it stops (RFC 9113 §8.1: a complete response
 * may be followed by that instead of reading the rest of the request).
 */
export function endWithStatus(stream: ServerHttp2Stream, trailers: Record<string, string>): void {
  respondTrailersOnly(stream, trailers);
  if (!stream.readableEnded && !stream.destroyed && !stream.closed) stream.close(NGHTTP2_NO_ERROR);
}

/**
 * Answers a request that is not gRPC (content-type not application/grpc…) with 415 and a one-line
 * text body, as gRPC servers should, and reads (discards) the rest of the request. Both keep it an
 * ordinary HTTP/2 exchange: a bodiless answer ends the stream in the turn it opened, before the
 * client's WINDOW_UPDATE or PRIORITY for it arrive, and an unread stream is reset by node:http2 once
 * the answer is sent, so nghttp2 never checks the request's remaining frames (h2spec generic/2/2,
 * generic/2/3, 5.1.2/1, 6.1/3, 8.1.2.6/2).
 */
export function respondNotGrpc(stream: ServerHttp2Stream, contentType: unknown): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.resume();
    stream.respond({ ':status': 415, 'content-type': 'text/plain; charset=utf-8' });
    stream.end(`unsupported content-type '${String(contentType ?? '').slice(0, 64)}'; expected application/grpc\n`);
  } catch {
    stream.close(NGHTTP2_CANCEL);
  }
}

/** Headers a proxy must not pass on (HTTP/2 pseudo-headers are rebuilt; qbasis-* are ours to set). */
export function isOwnHeader(name: string): boolean {
  return name.startsWith('qbasis-');
}
