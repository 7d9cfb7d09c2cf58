// RFC 5952 text form of a basis header: the eight segments written like an IPv6 address.
import { QbasisError } from '../errors.ts';
import { HEADER_BYTES, writeHeader, type BasisHeader } from './header.ts';

function segmentsOf(bytes: Uint8Array): number[] {
  const segs = new Array<number>(8);
  for (let i = 0; i < 8; i++) segs[i] = (bytes[2 * i]! << 8) | bytes[2 * i + 1]!;
  return segs;
}

/** Canonical text: lower-case hex, no leading zeros, the longest (first on ties) run of ≥ 2 zero segments as `::`. */
export function formatText(header: BasisHeader | Uint8Array): string {
  let bytes: Uint8Array;
  if (header instanceof Uint8Array) {
    if (header.length < HEADER_BYTES) {
      throw new QbasisError('QB_FRAME_TRUNCATED', `cannot format ${header.length} bytes; expected a 16-byte header`);
    }
    bytes = header;
  } else {
    bytes = new Uint8Array(HEADER_BYTES);
    writeHeader(header, bytes);
  }
  const segs = segmentsOf(bytes);
  let bestStart = -1;
  let bestLen = 1; // a single zero segment is never shortened
  for (let i = 0; i < 8; ) {
    if (segs[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && segs[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = segs.map((s) => s.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

const GROUP = /^[0-9a-fA-F]{1,4}$/;
const HEX32 = /^(?:0x)?[0-9a-fA-F]{32}$/;

function badText(text: string, why: string): QbasisError {
  return new QbasisError(
    'QB_FRAME_BAD_TEXT',
    `'${text.length > 80 ? text.slice(0, 80) + '…' : text}' is not a basis header: ${why}; expected eight hex segments like 7101:0:30c0:50e8:7d70:104:0:2a, or 32 hex digits`,
  );
}

/**
 * Parses the text form (canonical or any valid IPv6-style spelling of eight segments) or 32 hex digits
 * into the 16 header bytes. Only the syntax is checked here; `readHeader` checks the fields.
 */
export function parseText(input: string): Buffer {
  const text = input.trim();
  const out = Buffer.alloc(HEADER_BYTES);
  if (HEX32.test(text)) {
    out.write(text.replace(/^0x/, ''), 'hex');
    return out;
  }
  if (text.length === 0) throw badText(input, 'it is empty');
  if (text.length > 39) throw badText(input, `it is ${text.length} characters long (at most 39)`);
  const halves = text.split('::');
  if (halves.length > 2) throw badText(input, "'::' appears more than once");
  const parse = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').map((g) => {
      if (!GROUP.test(g)) throw badText(input, `segment '${g}' is not 1-4 hex digits`);
      return parseInt(g, 16);
    });
  };
  let segs: number[];
  if (halves.length === 2) {
    const head = parse(halves[0]!);
    const tail = parse(halves[1]!);
    const missing = 8 - head.length - tail.length;
    if (missing < 1) throw badText(input, "'::' stands for no segment");
    segs = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    segs = parse(text);
    if (segs.length !== 8) throw badText(input, `it has ${segs.length} segments`);
  }
  segs.forEach((s, i) => out.writeUInt16BE(s, 2 * i));
  return out;
}
