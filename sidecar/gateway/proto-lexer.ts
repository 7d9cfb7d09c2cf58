// Tokens of a .proto file, each with its line and column, so every syntax error can say file:line:col.

export type TokenKind = 'ident' | 'int' | 'float' | 'string' | 'symbol' | 'eof';

export interface Token {
  kind: TokenKind;
  /** The source text (for strings: the decoded value, read as UTF-8). */
  text: string;
  /** Strings only: the bytes the literal stands for (\x and octal escapes are bytes, not characters). */
  bytes?: Uint8Array;
  line: number;
  col: number;
  /** Offset of the token's first character in the source (aggregate option values are kept as text). */
  start: number;
  end: number;
}

/** A problem in one .proto file, always `file:line:col: what`. */
export class ProtoSyntaxError extends Error {
  constructor(file: string, line: number, col: number, what: string) {
    super(`${file}:${line}:${col}: ${what}`);
    this.name = 'ProtoSyntaxError';
  }
}

const SYMBOLS = new Set(';{}[]()<>=,.:-+/'.split(''));

export function tokenize(file: string, src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const fail = (at: number, what: string): never => {
    throw new ProtoSyntaxError(file, line, at - lineStart + 1, what);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const at = i;
      const [atLine, atLineStart] = [line, lineStart];
      i += 2;
      while (i < src.length && !(src[i] === '*' && src[i + 1] === '/')) {
        if (src[i] === '\n') {
          line++;
          lineStart = i + 1;
        }
        i++;
      }
      if (i >= src.length) {
        [line, lineStart] = [atLine, atLineStart];
        fail(at, 'unterminated /* comment');
      }
      i += 2;
      continue;
    }
    const start = i;
    const col = i - lineStart + 1;
    const push = (kind: TokenKind, text: string): void => {
      out.push({ kind, text, line, col, start, end: i });
    };
    if (isLetter(c)) {
      while (i < src.length && (isLetter(src[i]!) || isDigit(src[i]!))) i++;
      push('ident', src.slice(start, i));
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(src[i + 1] ?? ''))) {
      const m = /^(?:0[xX][0-9a-fA-F]+|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)/.exec(src.slice(i, i + 400));
      const text = m![0];
      i += text.length;
      if (isLetter(src[i] ?? '') || src[i] === '.') fail(i, `invalid number '${text}${src[i]}'`);
      const isFloat = !/^0[xX]/.test(text) && /[.eE]/.test(text);
      if (!isFloat && /^0\d/.test(text) && !/^0[0-7]*$/.test(text)) fail(start, `invalid octal number '${text}'`);
      push(isFloat ? 'float' : 'int', text);
      continue;
    }
    if (c === '"' || c === "'") {
      i++;
      const bytes: number[] = [];
      while (true) {
        if (i >= src.length || src[i] === '\n') fail(start, 'unterminated string');
        const ch = src[i]!;
        if (ch === c) {
          i++;
          break;
        }
        if (ch === '\\') {
          const [decoded, next] = unescape(src, i, (at, what) => fail(at, what));
          bytes.push(...decoded);
          i = next;
          continue;
        }
        const cp = src.codePointAt(i)!;
        bytes.push(...utf8.encode(String.fromCodePoint(cp)));
        i += cp > 0xffff ? 2 : 1;
      }
      const b = Uint8Array.from(bytes);
      out.push({ kind: 'string', text: Buffer.from(b).toString('utf8'), bytes: b, line, col, start, end: i });
      continue;
    }
    if (SYMBOLS.has(c)) {
      i++;
      push('symbol', c);
      continue;
    }
    fail(i, `unexpected character '${c}'`);
  }
  out.push({ kind: 'eof', text: '', line, col: i - lineStart + 1, start: i, end: i });
  return out;
}

function isLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

const utf8 = new TextEncoder();

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63 };

// C-style escapes as protoc reads them: \x and octal are one byte each, \u and \U a code point as UTF-8.
function unescape(src: string, i: number, fail: (at: number, what: string) => never): [number[], number] {
  const e = src[i + 1] ?? '';
  if (e in SIMPLE_ESCAPES) return [[SIMPLE_ESCAPES[e]!], i + 2];
  let m = /^[0-7]{1,3}/.exec(src.slice(i + 1, i + 4));
  if (m !== null) return [[parseInt(m[0], 8) & 0xff], i + 1 + m[0].length];
  if (e === 'x' || e === 'X') {
    m = /^[0-9a-fA-F]{1,2}/.exec(src.slice(i + 2, i + 4));
    if (m === null) fail(i, 'invalid \\x escape');
    return [[parseInt(m![0], 16)], i + 2 + m![0].length];
  }
  if (e === 'u' || e === 'U') {
    const n = e === 'u' ? 4 : 8;
    m = new RegExp(`^[0-9a-fA-F]{${n}}`).exec(src.slice(i + 2, i + 2 + n));
    if (m === null) fail(i, `invalid \\${e} escape`);
    const cp = parseInt(m![0], 16);
    if (cp > 0x10ffff) fail(i, `invalid \\${e} escape`);
    return [[...utf8.encode(String.fromCodePoint(cp))], i + 2 + n];
  }
  return fail(i, `invalid escape '\\${e}'`);
}
