// proto3 JSON ↔ protobuf binary with the API's schema, per the mapping (protobuf.dev/programming-guides/json):
// @bufbuild/protobuf does the conversion (it passes the protobuf conformance suite; measured against Go's
// protojson in test/gateway/), this file bounds the input and turns failures into one message naming the field.
import { fromBinary, fromJsonString, toBinary, toJson, type DescMessage, type Registry } from '@bufbuild/protobuf';
import { locateJsonError } from './json-error-path.ts';
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
    checkDepth(text, this.opts.maxDepth);
    const readOpts = { ignoreUnknownFields: this.opts.ignoreUnknownFields, registry: this.registry, recursionLimit: this.opts.maxDepth };
    let msg;
    try {
      msg = fromJsonString(type, text, readOpts);
    } catch (e) {
      throw this.explain(type, text, e);
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
  private explain(type: DescMessage, text: string, e: unknown): JsonCodecError {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (syntax) {
      return new JsonCodecError('', `invalid JSON: ${syntax instanceof Error ? syntax.message : String(syntax)}`);
    }
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
    throw new JsonCodecError('', 'the JSON body is not valid UTF-8');
  }
}

/** One pass over the text: `[[[[…` deeper than the limit is refused before any parser recurses into it. */
function checkDepth(text: string, max: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 123 || c === 91) {
      if (++depth > max) throw new JsonCodecError('', `the JSON nests deeper than ${max} levels`);
    } else if (c === 125 || c === 93) {
      depth--;
    }
  }
}
