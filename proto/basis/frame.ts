// Frames: a header and `length` payload bytes. Building copies the payload at most once;
// splitting a whole frame never copies.
import { QbasisError } from '../errors.ts';
import { HEADER_BYTES, readHeader, writeHeader, type BasisHeader, type ReadOptions } from './header.ts';

function checkLength(h: BasisHeader, payload: Uint8Array): void {
  if (h.length !== payload.length) {
    throw new QbasisError(
      'QB_FRAME_BAD_FIELD',
      `header length ${h.length} does not match the payload's ${payload.length} bytes; expected them equal`,
    );
  }
}

/** One contiguous buffer (a single payload copy). */
export function encodeFrame(h: BasisHeader, payload: Uint8Array): Buffer {
  checkLength(h, payload);
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  writeHeader(h, out, 0);
  out.set(payload, HEADER_BYTES);
  return out;
}

export interface DecodedFrame {
  header: BasisHeader;
  /** A view into the input: no copy. */
  payload: Buffer;
}

/** Decodes exactly one frame; too few bytes are truncated, extra bytes over-long. */
export function decodeFrame(buf: Buffer, opts?: ReadOptions): DecodedFrame {
  const header = readHeader(buf, 0, opts);
  const expected = HEADER_BYTES + header.length;
  if (buf.length < expected) {
    throw new QbasisError(
      'QB_FRAME_TRUNCATED',
      `frame truncated: got ${buf.length - HEADER_BYTES} payload bytes; expected ${header.length}`,
      { details: { got: buf.length - HEADER_BYTES, expected: header.length } },
    );
  }
  if (buf.length > expected) {
    throw new QbasisError(
      'QB_FRAME_OVERLONG',
      `frame over-long: ${buf.length - expected} bytes follow the ${header.length}-byte payload; expected the frame to end there`,
      { details: { extra: buf.length - expected, length: header.length } },
    );
  }
  return { header, payload: buf.subarray(HEADER_BYTES, expected) };
}
