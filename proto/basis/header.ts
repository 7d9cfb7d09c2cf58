// The 16-byte basis header: eight big-endian uint16 segments (DESIGN.md, codec version 1).
import { QbasisError } from '../errors.ts';

export const HEADER_BYTES = 16;
export const MAGIC = 0x71;
export const CODEC_VERSION = 1;
export const SUPPORTED_CODECS: readonly number[] = [CODEC_VERSION];
export const DEFAULT_MAX_PAYLOAD = 4 * 1024 * 1024;
export const MAX_LENGTH = 0xffffffff;

export type Kind = 'request' | 'response';
export type Encoding = 'protobuf' | 'json' | 'opaque';

export interface BasisHeader {
  codec: number;
  kind: Kind;
  gzip: boolean;
  encoding: Encoding;
  apiId: number;
  methodId: number;
  major: number;
  minor: number;
  length: number;
}

export interface ReadOptions {
  /** Largest payload accepted, in bytes (default 4 MiB). */
  maxPayload?: number;
  /** Codec versions this side speaks (default [1]). */
  codecs?: readonly number[];
}

const KINDS: readonly Kind[] = ['request', 'response'];
const ENCODINGS: readonly Encoding[] = ['protobuf', 'json', 'opaque'];
const FLAG_GZIP = 0b100;
const FLAGS_RESERVED = 0xffe0;

function kindBits(kind: Kind): number {
  if (kind === 'request') return 0;
  if (kind === 'response') return 1;
  throw new QbasisError('QB_FRAME_BAD_FIELD', `kind '${String(kind)}' is not valid; expected 'request' or 'response'`);
}

function encodingBits(encoding: Encoding): number {
  if (encoding === 'protobuf') return 0;
  const i = ENCODINGS.indexOf(encoding);
  if (i < 0) {
    throw new QbasisError('QB_FRAME_BAD_FIELD', `encoding '${String(encoding)}' is not valid; expected protobuf, json or opaque`);
  }
  return i;
}

function checkUint(name: string, value: number, max: number, code: 'QB_FRAME_BAD_FIELD' | 'QB_FRAME_VERSION_RANGE'): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new QbasisError(code, `${name} ${String(value)} is out of range; expected an integer from 0 to ${max}`);
  }
}

function checkFields(h: BasisHeader, target: Uint8Array, offset: number): void {
  checkUint('codec version', h.codec, 0xff, 'QB_FRAME_BAD_FIELD');
  checkUint('API id', h.apiId, 0xffffffff, 'QB_FRAME_BAD_FIELD');
  checkUint('method id', h.methodId, 0xffff, 'QB_FRAME_BAD_FIELD');
  if (!Number.isInteger(h.major) || !Number.isInteger(h.minor) || h.major < 0 || h.minor < 0 || h.major > 255 || h.minor > 255) {
    throw new QbasisError(
      'QB_FRAME_VERSION_RANGE',
      `schema version ${String(h.major)}.${String(h.minor)} does not fit the header; expected major and minor from 0 to 255`,
    );
  }
  checkUint('payload length', h.length, MAX_LENGTH, 'QB_FRAME_BAD_FIELD');
  if (target.length - offset < HEADER_BYTES) {
    throw new QbasisError('QB_FRAME_BAD_FIELD', `target has ${target.length - offset} bytes at offset ${offset}; expected at least 16`);
  }
}

/** Writes `h` into `target` at `offset`. Throws QbasisError on a field that cannot be encoded. */
export function writeHeader(h: BasisHeader, target: Uint8Array, offset = 0): void {
  // One cheap range test on the hot path (integers in range survive the bit ops unchanged);
  // the precise message is worked out only when it fails.
  if (
    (h.codec & 0xff) !== h.codec ||
    h.apiId >>> 0 !== h.apiId ||
    (h.methodId & 0xffff) !== h.methodId ||
    (h.major & 0xff) !== h.major ||
    (h.minor & 0xff) !== h.minor ||
    h.length >>> 0 !== h.length ||
    target.length - offset < HEADER_BYTES
  ) {
    checkFields(h, target, offset);
  }
  const flags = kindBits(h.kind) | (h.gzip ? FLAG_GZIP : 0) | (encodingBits(h.encoding) << 3);
  const t = target;
  const o = offset;
  t[o] = MAGIC;
  t[o + 1] = h.codec;
  t[o + 2] = flags >>> 8;
  t[o + 3] = flags & 0xff;
  t[o + 4] = h.apiId >>> 24;
  t[o + 5] = (h.apiId >>> 16) & 0xff;
  t[o + 6] = (h.apiId >>> 8) & 0xff;
  t[o + 7] = h.apiId & 0xff;
  t[o + 8] = h.methodId >>> 8;
  t[o + 9] = h.methodId & 0xff;
  t[o + 10] = h.major;
  t[o + 11] = h.minor;
  t[o + 12] = h.length >>> 24;
  t[o + 13] = (h.length >>> 16) & 0xff;
  t[o + 14] = (h.length >>> 8) & 0xff;
  t[o + 15] = h.length & 0xff;
}

export function encodeHeader(h: BasisHeader): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES);
  writeHeader(h, buf, 0);
  return buf;
}

function hex4(n: number): string {
  return '0x' + n.toString(16).padStart(4, '0');
}

/**
 * Reads and checks the header at `offset`. Checks run in wire order so the first problem is the one
 * reported: length, magic, codec, reserved bits, payload limit.
 */
export function readHeader(buf: Uint8Array, offset = 0, opts: ReadOptions = {}): BasisHeader {
  const available = buf.length - offset;
  if (available < HEADER_BYTES) {
    throw new QbasisError(
      'QB_FRAME_TRUNCATED',
      `basis header truncated: got ${Math.max(available, 0)} bytes; expected 16`,
      { details: { got: Math.max(available, 0), expected: HEADER_BYTES } },
    );
  }
  const o = offset;
  const magic = buf[o]!;
  const codec = buf[o + 1]!;
  if (magic !== MAGIC) {
    throw new QbasisError(
      'QB_FRAME_BAD_MAGIC',
      `not a basis frame: segment 0 is ${hex4((magic << 8) | codec)}; expected 0x71 ('q') in the high byte, e.g. 0x7101`,
      { details: { segment0: (magic << 8) | codec } },
    );
  }
  const codecs = opts.codecs ?? SUPPORTED_CODECS;
  if (!codecs.includes(codec)) {
    throw new QbasisError(
      'QB_FRAME_UNKNOWN_CODEC',
      `unknown codec version ${codec}; expected one this side speaks: ${codecs.join(', ')}`,
      { details: { codec, supported: [...codecs] } },
    );
  }
  const flags = (buf[o + 2]! << 8) | buf[o + 3]!;
  const kind = flags & 0b11;
  const encoding = (flags >>> 3) & 0b11;
  if ((flags & FLAGS_RESERVED) !== 0 || kind > 1 || encoding > 2) {
    throw new QbasisError(
      'QB_FRAME_RESERVED_BITS',
      `flags ${hex4(flags)} use reserved values; expected kind 0 or 1 (bits 0-1), encoding 0-2 (bits 3-4) and bits 5-15 zero`,
      { details: { flags } },
    );
  }
  const length = ((buf[o + 12]! << 24) | (buf[o + 13]! << 16) | (buf[o + 14]! << 8) | buf[o + 15]!) >>> 0;
  const maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  if (length > maxPayload) {
    throw new QbasisError(
      'QB_FRAME_TOO_LARGE',
      `payload of ${length} bytes exceeds the limit; expected at most ${maxPayload} bytes`,
      { details: { length, limit: maxPayload } },
    );
  }
  return {
    codec,
    kind: KINDS[kind]!,
    gzip: (flags & FLAG_GZIP) !== 0,
    encoding: ENCODINGS[encoding]!,
    apiId: ((buf[o + 4]! << 24) | (buf[o + 5]! << 16) | (buf[o + 6]! << 8) | buf[o + 7]!) >>> 0,
    methodId: (buf[o + 8]! << 8) | buf[o + 9]!,
    major: buf[o + 10]!,
    minor: buf[o + 11]!,
    length,
  };
}
