// proto3 JSON ↔ protobuf binary with the API's schema, per the mapping (protobuf.dev/programming-guides/json):
// @bufbuild/protobuf does the conversion (it passes the protobuf conformance suite; measured against Go's
// protojson in test/gateway/), this file bounds the input and turns failures into one message naming the field.
import './uint8array-base64.ts'; // before @bufbuild/protobuf loads (see there)
import { fromBinary, fromJson, toBinary, toJson, type DescMessage, type JsonValue, type Registry } from '@bufbuild/protobuf';
import { invalidUtf8Offset } from '../../proto/utf8.ts';
import { locateJsonError } from './json-error-path.ts';
import { checkStrict } from './json-strict.ts';
import { fixNumbers, stringifyKeepingNegativeZero } from './json-numbers.ts';

export interface JsonCodecOptions {
  /** Emit fields at their default value too (proto3 JSON omits them). */
  emitDefaults: boolean;
  /** Skip JSON members the schema lacks (and unknown enum names) instead of refusing them. */
  ignoreUnknownFields: boolean;
  /** Bytes of JSON text or binary input. */
  maxBytes: number;
  /** Nesting of JSON objects and arrays (and of messages in binary input). */
  maxDepth: number;
}

export const DEFAULT_JSON_OPTIONS: JsonCodecOptions = {
  emitDefaults: false,
  ignoreUnknownFields: false,
  maxBytes: 4 << 20,
  maxDepth: 64,
};

/** Bad input: `path` names the field (`items[2].price.units`; '' for the whole body). */
export class JsonCodecError extends Error {
  readonly path: string;
  constructor(path: string, what: string) {
    super(path === '' ? what : `${path}: ${what}`);
    this.name = 'JsonCodecError';
    this.path = path;
  }
}

export class JsonCodec {
  private readonly registry: Registry;
  private readonly opts: JsonCodecOptions;

  constructor(registry: Registry, opts: Partial<JsonCodecOptions> = {}) {
    this.registry = registry;
    this.opts = { ...DEFAULT_JSON_OPTIONS, ...opts };
  }

  /** proto3 JSON text (or its UTF-8 bytes) → the message's binary encoding. */
  jsonToBinary(type: DescMessage, json: string | Uint8Array): Uint8Array {
    const text = typeof json === 'string' ? json : decodeUtf8(json, this.opts.maxBytes);
    if (text.length > this.opts.maxBytes) throw new JsonCodecError('', `the JSON body is more than ${this.opts.maxBytes} bytes`);
    const inexact = scanStructure(text, this.opts.maxDepth);
    let value: JsonValue;
    try {
      value = JSON.parse(text) as JsonValue;
    } catch (syntax) {
      throw new JsonCodecError('', `invalid JSON at byte ${jsonSyntaxOffset(text)}: ${syntax instanceof Error ? syntax.message : String(syntax)}`);
    }
    const strict = checkStrict(type, value, this.registry, inexact);
    if (strict !== undefined) throw new JsonCodecError(strict.path, strict.what);
    const readOpts = { ignoreUnknownFields: this.opts.ignoreUnknownFields, registry: this.registry, recursionLimit: this.opts.maxDepth };
    let msg;
    try {
      msg = fromJson(type, value, readOpts);
    } catch (e) {
      throw this.explain(type, value, e);
    }
    return toBinary(type, msg);
  }

  /** The message's binary encoding → proto3 JSON text. */
  binaryToJson(type: DescMessage, bytes: Uint8Array): string {
    if (bytes.length > this.opts.maxBytes) throw new JsonCodecError('', `the message is more than ${this.opts.maxBytes} bytes`);
    let msg;
    try {
      msg = fromBinary(type, bytes, { readUnknownFields: false, recursionLimit: this.opts.maxDepth });
    } catch (e) {
      throw new JsonCodecError('', `not a valid ${type.typeName} message: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
      const json = toJson(type, msg, { registry: this.registry, alwaysEmitImplicit: this.opts.emitDefaults });
      return fixNumbers(type, json, this.registry) ? stringifyKeepingNegativeZero(json) : JSON.stringify(json);
    } catch (e) {
      // Values the mapping cannot write: a Timestamp out of range, an Any of an unknown type, …
      throw new JsonCodecError('', `cannot write ${type.typeName} as JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** The library says what failed; find where, by walking the JSON with the schema. */
  private explain(type: DescMessage, value: JsonValue, e: unknown): JsonCodecError {
    const found = locateJsonError(type, value, { registry: this.registry, ignoreUnknownFields: this.opts.ignoreUnknownFields, recursionLimit: this.opts.maxDepth });
    if (found !== undefined) return new JsonCodecError(found.path, found.what);
    return new JsonCodecError('', e instanceof Error ? e.message.replace(/^cannot decode message [\w.]+ from JSON: /, '') : String(e));
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array, max: number): string {
  if (bytes.length > max) throw new JsonCodecError('', `the JSON body is more than ${max} bytes`);
  try {
    return decoder.decode(bytes);
  } catch {
    throw new JsonCodecError('', `the JSON body is not valid UTF-8 (at byte ${invalidUtf8Offset(bytes)})`);
  }
}

/**
 * One pass over the text before any parser sees it: nesting deeper than the limit is refused before a
 * parser recurses into it, and a member named twice in one object is refused (JSON.parse would keep the
 * last silently; protojson refuses it). Returns the integer literals a double cannot hold exactly (what
 * JSON.parse made of them), so a 64-bit field given one is refused rather than silently changed.
 */
function scanStructure(text: string, max: number): Map<number, string> | undefined {
  let inexact: Map<number, string> | undefined;
  const stack: Array<Set<string> | null | false> = []; // per open container: an object's keys so far (null: none yet), false: an array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // The closing quote: the next one with an even number of backslashes before it (indexOf runs
      // natively over long strings, where a loop per character was most of this pass).
      const start = i;
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i === -1) {
          i = text.length;
          break;
        }
        let k = i - 1;
        while (k > start && text.charCodeAt(k) === 92) k--;
        if ((i - 1 - k) % 2 === 0) break;
      }
      if (expectKey) {
        expectKey = false;
        let key = text.slice(start + 1, i);
        try {
          if (key.includes('\\')) key = JSON.parse(text.slice(start, i + 1)) as string;
        } catch {
          return; // JSON.parse reports it
        }
        let keys = stack[stack.length - 1];
        if (keys === null || keys === undefined) stack[stack.length - 1] = keys = new Set();
        if (keys === false) continue;
        if (keys.has(key)) throw new JsonCodecError('', `duplicate member ${JSON.stringify(key)} in one object`);
        keys.add(key);
      }
    } else if (c === 123) {
      if (stack.push(null) > max) throw new JsonCodecError('', `the JSON nests deeper than ${max} levels`);
      expectKey = true;
    } else if (c === 91) {
      if (stack.push(false) > max) throw new JsonCodecError('', `the JSON nests deeper than ${max} levels`);
      expectKey = false;
    } else if (c === 125 || c === 93) {
      stack.pop();
      expectKey = false;
    } else if (c === 44) {
      expectKey = stack[stack.length - 1] !== false && stack.length > 0;
    } else if ((c >= 48 && c <= 57) || c === 45) {
      const start = i;
      while (i + 1 < text.length && isNumberChar(text.charCodeAt(i + 1))) i++;
      if (i - start >= 15) {
        const token = text.slice(start, i + 1);
        if (/^-?\d+$/.test(token) && BigInt(token) !== BigInt(Number(token))) (inexact ??= new Map()).set(Number(token), token);
      }
    }
  }
  return inexact;
}

function isNumberChar(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69;
}

/** Where JSON text first stops being JSON (a byte offset into its UTF-8), for messages: one pass of the grammar. */
export function jsonSyntaxOffset(text: string): number {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const value = (depth: number): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          ws();
          if (text[i] !== '"') fail();
          string();
          ws();
          if (text[i] !== ':') fail();
          i++;
        }
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] !== close) fail();
        i++;
        return;
      }
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (m === null) fail();
    i += m![0].length;
  };
  const string = (): void => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 32) fail();
      if (c === 92) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail();
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail();
      } else i++;
    }
    fail();
  };
  try {
    value(0);
    ws();
    if (i < text.length) fail();
  } catch (at) {
    if (typeof at !== 'number') throw at;
  }
  return Buffer.byteLength(text.slice(0, i));
}
