// The JSON codec's refusals: one message naming the field's path and what was expected, and the bounds.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { invalidUtf8Offset } from '../../proto/utf8.ts';
import { JsonCodec, JsonCodecError } from '../../sidecar/gateway/json-codec.ts';
import { loadSchema } from '../../sidecar/gateway/schema.ts';

const schema = loadSchema(join(import.meta.dirname, '..', 'fixtures', 'gateway'));
const everything = schema.message('qbasis.conformance.v1.Everything')!;
const codec = new JsonCodec(schema.registry);

/** A decoded Everything, as a plain record (the schema is loaded at run time: no generated types). */
function decode(bin: Uint8Array): Record<string, any> {
  return fromBinary(everything, bin) as unknown as Record<string, any>;
}

function refusal(json: string | Uint8Array, c = codec): JsonCodecError {
  try {
    c.jsonToBinary(everything, json);
  } catch (e) {
    assert.ok(e instanceof JsonCodecError, `not a JsonCodecError: ${String(e)}`);
    return e;
  }
  assert.fail(`accepted ${json}`);
}

test('an unknown field is named with its full path through lists', () => {
  const e = refusal('{"repeated":{"rMessage":[{},{},{"price":{"unitz":"12"}}]}}');
  assert.equal(e.path, 'repeated.rMessage[2].price.unitz');
  assert.match(e.message, /^repeated\.rMessage\[2\]\.price\.unitz: unknown field; shop\.common\.Money has no field "unitz"$/);
});

test('a bad value deep in a list is named by its path and says what was expected', () => {
  const e = refusal('{"repeated":{"rMessage":[{},{},{"price":{"units":"12x"}}]}}');
  assert.equal(e.path, 'repeated.rMessage[2].price.units');
  assert.match(e.message, /"12x" is not an integer; expected an integer/);
});

test('an unknown field is skipped when ignoreUnknownFields is set', () => {
  const lax = new JsonCodec(schema.registry, { ignoreUnknownFields: true });
  const bin = lax.jsonToBinary(everything, '{"nope":1,"status":"STATUS_OPEN","nested":{"whatever":[1]}}');
  assert.equal(decode(bin)['status'], 1);
});

test('a bad enum name names the field and lists the names', () => {
  const e = refusal('{"optionals":{"oEnum":"STATUS_OPN"}}');
  assert.equal(e.path, 'optionals.oEnum');
  assert.match(e.message, /unknown value "STATUS_OPN"; expected a qbasis\.conformance\.v1\.Status name \(STATUS_UNSPECIFIED, STATUS_OPEN, STATUS_CLOSED, STATUS_NEGATIVE\) or number/);
});

test('an int64 out of range is refused, as a string and as a number', () => {
  for (const v of ['"9223372036854775808"', '9223372036854775808', '"-9223372036854775809"']) {
    const e = refusal(`{"scalars":{"fInt64":${v}}}`);
    assert.equal(e.path, 'scalars.fInt64');
    assert.match(e.message, /expected an int64 \(a decimal string, or a number, from -9223372036854775808 to 9223372036854775807\)/);
  }
  const e = refusal('{"maps":{"fixed64Uint64":{"1":"18446744073709551616"}}}');
  assert.equal(e.path, 'maps.fixed64Uint64["1"]');
});

test('bad base64 is refused naming the field; standard and URL-safe, padded or not, are read', () => {
  for (const v of ['@@@', 'A===', 'A', 'ab+_']) assert.equal(refusal(`{"scalars":{"fBytes":"${v}"}}`).path, 'scalars.fBytes');
  for (const v of ['+/8=', '-_8=', '-_8', '+/8']) {
    const m = decode(codec.jsonToBinary(everything, `{"scalars":{"fBytes":"${v}"}}`));
    assert.deepEqual([...m['scalars'].fBytes], [0xfb, 0xff]);
  }
});

test('a bad Timestamp is refused naming the field and the form it must have', () => {
  for (const v of ['2024-13-01T00:00:00Z', '2024-01-01 00:00:00', '10000-01-01T00:00:00Z', '2024-01-01T00:00:00']) {
    const e = refusal(`{"wellKnown":{"timestamp":"${v}"}}`);
    assert.equal(e.path, 'wellKnown.timestamp');
    assert.match(e.message, /expected an RFC 3339 UTC timestamp string/);
  }
  assert.equal(refusal('{"wellKnown":{"rTimestamp":["2024-01-01T00:00:00Z",5]}}').path, 'wellKnown.rTimestamp[1]');
});

test('a bad map key, a oneof set twice and a field set under both names are refused', () => {
  assert.match(refusal('{"maps":{"int32Int64":{"x":"1"}}}').message, /^maps\.int32Int64\["x"\]: invalid map key "x"; expected an int32/);
  assert.match(refusal('{"oneofs":{"cString":"a","cInt64":"1"}}').message, /^oneofs\.cInt64: oneof choice is already set by "cString"$/);
  assert.match(refusal('{"scalars":{"f_int32":1,"fInt32":2}}').message, /^scalars\.fInt32: field f_int32 is set twice/);
});

test('bad JSON, a duplicate member and a body that is not an object are one clear line', () => {
  assert.match(refusal('{"scalars":').message, /^invalid JSON at byte 11: /);
  assert.equal(refusal('{"status":1,"status":2}').message, 'duplicate member "status" in one object');
  assert.equal(refusal('{"st\\u0061tus":1,"status":2}').message, 'duplicate member "status" in one object');
  assert.equal(refusal('[1]').message, 'expected an object (qbasis.conformance.v1.Everything), got an array');
});

test('a duplicate member is found however the strings around it are escaped, and a map of any keys and values reads back exactly', () => {
  // Strings full of quotes and backslashes: the duplicate check skips over each string without parsing it.
  const text = fc.string({ unit: fc.constantFrom('"', '\\', '\\"', 'a', 'é', '\n', '\u0000', '😀', '/', '{', '}', ','), maxLength: 12 });
  fc.assert(fc.property(fc.dictionary(text, text, { minKeys: 1, maxKeys: 6 }), (dict) => {
    const map = { ...dict };
    const json = JSON.stringify({ maps: { stringString: map } });
    assert.deepEqual(JSON.parse(codec.binaryToJson(everything, codec.jsonToBinary(everything, json))), { maps: { stringString: map } });
    const [k, v] = Object.entries(map)[0]!;
    // The same key again, its first character written as a \u escape.
    const again = k === '' ? '""' : `"\\u${k.charCodeAt(0).toString(16).padStart(4, '0')}${JSON.stringify(k.slice(1)).slice(1)}`;
    assert.equal(refusal(`${json.slice(0, -3)},${again}:${JSON.stringify(v)}}}}`).message, `duplicate member ${JSON.stringify(k)} in one object`);
  }), { numRuns: 300 });
});

test('bytes that are not UTF-8 are refused naming the first bad byte, exactly where a strict decoder stops', () => {
  const strict = new TextDecoder('utf-8', { fatal: true });
  const valid = (b: Uint8Array): boolean => {
    try {
      strict.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  // Random bytes, and valid text with one byte changed (overlongs, surrogates, truncated sequences).
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.tuple(fc.string({ unit: 'grapheme', maxLength: 8 }), fc.nat(40), fc.integer({ min: 0, max: 255 })).map(([t, at, v]) => {
    const b = new TextEncoder().encode(t);
    if (b.length > 0) b[at % b.length] = v;
    return b;
  }));
  fc.assert(fc.property(bytes, (b) => {
    const at = invalidUtf8Offset(b);
    assert.equal(at === -1, valid(b));
    if (at !== -1) assert.ok(valid(b.subarray(0, at)) && !valid(b.subarray(0, at + 4 <= b.length ? at + 4 : b.length)), `bad at ${at}`);
  }), { numRuns: 2000 });
  assert.match(refusal(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])).message, /^the JSON body is not valid UTF-8 \(at byte 2\)$/);
});

test('a 64-bit integer as a JSON number a double cannot hold is refused naming the field; one it holds reads exactly', () => {
  assert.match(refusal('{"scalars":{"fInt64":9007199254740993}}').message, /^scalars\.fInt64: 9007199254740993 as a JSON number is beyond 2\^53 and cannot be read exactly; expected .* as a decimal string, "9007199254740993"$/);
  assert.match(refusal('{"scalars":{"fUint64":18446744073709551615}}').message, /^scalars\.fUint64: .*beyond 2\^53/);
  const exact = JSON.parse(codec.binaryToJson(everything, codec.jsonToBinary(everything, '{"scalars":{"fInt64":9007199254740992,"fDouble":9007199254740995}}'))) as { scalars: { fInt64: string } };
  assert.equal(exact.scalars.fInt64, '9007199254740992', '2^53 itself is exact, and a double field takes any number');
  assert.equal(JSON.parse(codec.binaryToJson(everything, codec.jsonToBinary(everything, '{"scalars":{"fInt64":"9007199254740993"}}'))).scalars.fInt64, '9007199254740993');
});

test('input bounds: bytes, nesting depth and binary size', () => {
  const small = new JsonCodec(schema.registry, { maxBytes: 100, maxDepth: 8 });
  assert.match(refusal(`{"renamed":"${'x'.repeat(200)}"}`, small).message, /more than 100 bytes/);
  assert.match(refusal(`{"wellKnown":{"value":${'['.repeat(20)}${']'.repeat(20)}}}`, small).message, /nests deeper than 8 levels/);
  // Strings are not structure: brackets inside them do not count.
  assert.doesNotThrow(() => small.jsonToBinary(everything, '{"renamed":"[[[[[[[[[[[[[[[[[[[["}'));
  assert.throws(() => small.binaryToJson(everything, new Uint8Array(200)), /more than 100 bytes/);
  assert.throws(() => codec.binaryToJson(everything, new Uint8Array([0x0a, 0x05, 1])), /not a valid qbasis\.conformance\.v1\.Everything message/);
});

test('output follows the mapping: lowerCamelCase or json_name, int64 as strings, unknown enum numbers as numbers, defaults only on request', () => {
  const m = create(everything, { snakeCaseName: 3, renamed: 'r', status: 77, scalars: { fInt64: 5n, fUint64: 2n ** 64n - 1n, fDouble: Number.NaN, fFloat: 0.1 } });
  const bin = toBinary(everything, m);
  assert.deepEqual(JSON.parse(codec.binaryToJson(everything, bin)), {
    snakeCaseName: 3, customName: 'r', status: 77, scalars: { fInt64: '5', fUint64: '18446744073709551615', fDouble: 'NaN', fFloat: 0.1 },
  });
  const withDefaults = JSON.parse(new JsonCodec(schema.registry, { emitDefaults: true }).binaryToJson(everything, toBinary(everything, create(everything, {})))) as Record<string, unknown>;
  assert.equal(withDefaults['status'], 'STATUS_UNSPECIFIED');
  assert.equal(withDefaults['nameWith2Digits'], 0);
  assert.ok(!('scalars' in withDefaults), 'an unset message stays out');
  // Both spellings in: proto name and json_name.
  assert.equal(decode(codec.jsonToBinary(everything, '{"renamed":"a","snake_case_name":4}'))['snakeCaseName'], 4);
  assert.equal(decode(codec.jsonToBinary(everything, '{"customName":"b"}'))['renamed'], 'b');
});
