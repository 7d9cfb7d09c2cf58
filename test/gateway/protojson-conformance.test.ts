// The gateway's JSON codec against Go's (test/protojson: protodesc + dynamicpb + encoding/protojson; the
// .proto compiler against protocompile is proto-compiler.test.ts). Messages of every kind are generated from the
// fixture schema (test/fixtures/gateway), encoded to binary, and converted both ways by both sides.
// QBASIS_FC_SEED reruns one seed; QBASIS_CONFORMANCE_CASES sets the cases per direction (default 600).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
// First, as in the sidecar: @bufbuild/protobuf then writes bytes with the Buffer-backed toBase64 that ships.
import '../../sidecar/gateway/uint8array-base64.ts';
import { create, equals, fromBinary, toBinary, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import { JsonCodec } from '../../sidecar/gateway/json-codec.ts';
import { loadSchema, type Schema } from '../../sidecar/gateway/schema.ts';
import { messageArb, scalarArb } from './arbitrary-message.ts';
import { jsonDifference } from './json-compare.ts';
import { vary, type Variation } from './json-variants.ts';
import { ProtojsonRef, type RefResponse } from './protojson-ref.ts';
import { ScalarType } from '@bufbuild/protobuf';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'gateway');
const CASES = Number(process.env['QBASIS_CONFORMANCE_CASES'] ?? 600);
const SEED = Number(process.env['QBASIS_FC_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const PKG = 'qbasis.conformance.v1';
const ANY_TYPES = [`${PKG}.Nested`, 'shop.common.Money', 'google.protobuf.Timestamp', 'google.protobuf.Duration', 'google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.Int64Value', 'google.protobuf.FloatValue', 'google.protobuf.Empty', 'google.protobuf.FieldMask', 'google.protobuf.Any'];

let ref: ProtojsonRef;
let schema: Schema;
let set: string;
let type: DescMessage;
let binaries: Uint8Array[];
/** Go's JSON of each generated message (direction 2 reads these). */
let goJson: string[] = [];

before(async () => {
  process.stdout.write(`# seed ${SEED} (QBASIS_FC_SEED=${SEED} reruns it), ${CASES} cases per direction\n`);
  ref = await ProtojsonRef.start();
  schema = loadSchema(FIXTURES);
  set = Buffer.from(schema.toDescriptorSet()).toString('base64');
  type = schema.message(`${PKG}.Everything`)!;
  const arb = messageArb(type, { registry: schema.registry, maxDepth: 3, anyTypes: ANY_TYPES });
  binaries = fc.sample(arb, { numRuns: CASES, seed: SEED }).map((init) => toBinary(type, create(type, init as never)));
}, { timeout: 120_000 });

after(() => ref?.stop());

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** Runs every case, collects the differences, and fails listing the first few. */
function report(what: string, diffs: string[], cases: number): void {
  process.stdout.write(`# ${what}: ${cases} cases, ${diffs.length} differences\n`);
  assert.equal(diffs.length, 0, `${what}: ${diffs.length} of ${cases} cases differ (seed ${SEED}):\n${diffs.slice(0, 8).join('\n')}`);
}

test('binary → JSON: the codec writes what Go protojson writes, for every generated message', async () => {
  const codec = new JsonCodec(schema.registry);
  const go = await ref.all(binaries.map((b) => ({ op: 'toJson' as const, set, type: type.typeName, binary: b64(b) })));
  const diffs: string[] = [];
  goJson = [];
  binaries.forEach((b, i) => {
    const g = go[i]!;
    let ts: string | undefined;
    let tsErr: string | undefined;
    try {
      ts = codec.binaryToJson(type, b);
    } catch (e) {
      tsErr = String(e);
    }
    goJson.push(g.json ?? '');
    if (g.error !== undefined || tsErr !== undefined) {
      if ((g.error === undefined) !== (tsErr === undefined)) diffs.push(`case ${i}: Go ${g.error ?? 'ok'}, TS ${tsErr ?? 'ok'}`);
      return;
    }
    const d = jsonDifference(JSON.parse(ts!), JSON.parse(g.json!));
    if (d !== undefined) diffs.push(`case ${i}: TS ≠ Go at ${d}\n  binary ${b64(b)}`);
  });
  report('binary → JSON', diffs, binaries.length);
  assert.ok(goJson.filter((j) => j !== '').length >= CASES * 0.99, 'Go refused more than 1% of the generated messages');
});

test('binary → JSON with emitDefaults: the same as Go with EmitDefaultValues; EmitUnpopulated adds only nulls', async () => {
  const codec = new JsonCodec(schema.registry, { emitDefaults: true });
  const some = binaries.slice(0, Math.ceil(CASES / 3));
  const go = await ref.all(some.map((b) => ({ op: 'toJson' as const, set, type: type.typeName, binary: b64(b), emitDefaultValues: true })));
  const unpop = await ref.all(some.map((b) => ({ op: 'toJson' as const, set, type: type.typeName, binary: b64(b), emitUnpopulated: true })));
  const diffs: string[] = [];
  some.forEach((b, i) => {
    if (go[i]!.error !== undefined) return;
    const mine = JSON.parse(codec.binaryToJson(type, b)) as JsonValue;
    const d = jsonDifference(mine, JSON.parse(go[i]!.json!));
    if (d !== undefined) diffs.push(`case ${i}: TS ≠ Go(EmitDefaultValues) at ${d}`);
    // EmitUnpopulated also writes unset message and optional fields as null: drop those, the rest is equal.
    const d2 = jsonDifference(mine, dropNulls(JSON.parse(unpop[i]!.json!) as JsonValue, mine));
    if (d2 !== undefined) diffs.push(`case ${i}: TS ≠ Go(EmitUnpopulated) beyond nulls at ${d2}`);
  });
  report('binary → JSON, defaults emitted', diffs, some.length);
});

/** Removes members that are null in `a` but absent in `shape`, at any depth (not inside Struct/Value values). */
function dropNulls(a: JsonValue, shape: JsonValue): JsonValue {
  if (a === null || typeof a !== 'object' || shape === null || typeof shape !== 'object') return a;
  if (Array.isArray(a)) return a.map((x, i) => dropNulls(x, (shape as JsonValue[])[i] ?? null));
  const s = shape as Record<string, JsonValue>;
  return Object.fromEntries(Object.entries(a).filter(([k, v]) => !(v === null && !(k in s))).map(([k, v]) => [k, k in s ? dropNulls(v, s[k]!) : v]));
}

const variationArb: fc.Arbitrary<Variation> = fc.record({
  protoNames: fc.boolean(), int64AsNumber: fc.boolean(), int32AsString: fc.boolean(), enumAsNumber: fc.boolean(), urlSafeBase64: fc.boolean(), floatAsString: fc.boolean(),
});

test('JSON → binary: Go protojson output, and other spellings the mapping accepts, read to the same message on both sides', async () => {
  assert.ok(goJson.length > 0, 'runs after the binary → JSON test');
  const codec = new JsonCodec(schema.registry);
  const variations = fc.sample(variationArb, { numRuns: goJson.length, seed: SEED + 1 });
  const inputs = goJson.map((j, i) => (j === '' || i % 2 === 0 ? j : JSON.stringify(vary(type, JSON.parse(j) as JsonValue, variations[i]!, schema.registry))));
  const go = await ref.all(inputs.map((json) => ({ op: 'fromJson' as const, set, type: type.typeName, json })));
  const diffs: string[] = [];
  let cases = 0;
  inputs.forEach((json, i) => {
    if (json === '') return;
    cases++;
    // Go's own output (or a spelling of it) must be read by both.
    if (go[i]!.error !== undefined) diffs.push(`case ${i}: Go refuses: ${go[i]!.error}\n  ${json.slice(0, 300)}`);
    const d = compareFromJson(codec, json, go[i]!);
    if (d !== undefined) diffs.push(`case ${i}: ${d}`);
  });
  report('JSON → binary', diffs, cases);
});

/** One JSON input read by both sides: a difference, or undefined when both refuse it or read the same message. */
function compareFromJson(codec: JsonCodec, json: string, g: RefResponse): string | undefined {
  let mine: Uint8Array | undefined;
  let err: string | undefined;
  try {
    mine = codec.jsonToBinary(type, json);
  } catch (e) {
    err = String(e);
  }
  if ((g.error === undefined) !== (err === undefined)) return `Go ${g.error ?? 'accepts'}; TS ${err ?? 'accepts'}\n  ${json.slice(0, 400)}`;
  if (g.error !== undefined) return undefined;
  const d = sameMessage(type, mine!, Buffer.from(g.binary!, 'base64'));
  return d === undefined ? undefined : `${d}\n  ${json.slice(0, 400)}`;
}

/** Equal as messages (Any contents unpacked); NaN equals NaN, compared through the JSON both write. */
function sameMessage(t: DescMessage, a: Uint8Array, b: Uint8Array): string | undefined {
  const ma = fromBinary(t, a);
  const mb = fromBinary(t, b);
  if (equals(t, ma, mb, { registry: schema.registry, unpackAny: true })) return undefined;
  const codec = new JsonCodec(schema.registry);
  const d = jsonDifference(JSON.parse(codec.binaryToJson(t, a)), JSON.parse(codec.binaryToJson(t, b)));
  if (d === undefined && (JSON.stringify(JSON.parse(codec.binaryToJson(t, a))).includes('"NaN"'))) return undefined;
  return `messages differ (TS vs Go) ${d ?? '(same JSON, different binary)'}`;
}

// Values that probe each parser's edges: wrong types, out of range, odd spellings.
const ODD_VALUES: JsonValue[] = [
  null, true, false, 0, -0, 1, -1, 1.5, 1e3, -1e3, 1e300, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, '', ' 1', '1 ', '1.0', '1e3', '0x10', '-0',
  '01', '+1', 'NaN', 'Infinity', '-Infinity', 'nan', '9223372036854775807', '9223372036854775808', '-9223372036854775809', '18446744073709551615',
  '18446744073709551616', '4294967296', '2147483648', 'AAA=', 'AA==', 'A', 'A===', '_-8=', '-_', 'AAA', '1970-01-01T00:00:00Z', '1970-01-01T00:00:00.1+01:00',
  '0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999999999Z', '1s', '-1.5s', '1.0000000001s', '315576000001s', 'a,b', 'fooBar', 'foo_bar',
  'STATUS_OPEN', 'RED', 'status_open', [], [1], {}, { a: 1 }, { '@type': 'type.googleapis.com/shop.common.Money', units: '1' },
];

test('hostile values: the codec refuses exactly what Go refuses, and what both accept reads the same', async () => {
  assert.ok(goJson.length > 0, 'runs after the binary → JSON test');
  const codec = new JsonCodec(schema.registry);
  const base = goJson.filter((j) => j !== '').map((j) => JSON.parse(j) as Record<string, JsonValue>);
  const picks = fc.sample(fc.record({ doc: fc.nat(base.length - 1), path: fc.array(fc.nat(1000), { minLength: 1, maxLength: 4 }), value: fc.oneof(fc.constantFrom(...ODD_VALUES), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>) }), { numRuns: CASES, seed: SEED + 2 });
  const inputs = picks.map((p) => JSON.stringify(mutate(structuredClone(base[p.doc]!), p.path, p.value)));
  // Found by a seed once (1668254416): a bare null where Go's null is a value, not "unset".
  for (const key of ['rNullValue', 'rValue', 'nullValue', 'value']) inputs.push(JSON.stringify({ wellKnown: { [key]: null } }));
  const go = await ref.all(inputs.map((json) => ({ op: 'fromJson' as const, set, type: type.typeName, json })));
  const diffs: string[] = [];
  let refused = 0;
  inputs.forEach((json, i) => {
    if (go[i]!.error !== undefined) refused++;
    const d = compareFromJson(codec, json, go[i]!);
    if (d !== undefined) diffs.push(`case ${i}: ${d}`);
  });
  process.stdout.write(`# hostile values: ${refused} of ${inputs.length} refused by Go\n`);
  report('hostile values', diffs, inputs.length);
});

/** Replaces the value at a path (each step picks a member or item by index modulo the count). */
function mutate(doc: Record<string, JsonValue>, path: number[], value: JsonValue): JsonValue {
  let node: JsonValue = doc;
  for (let k = 0; k < path.length; k++) {
    if (node === null || typeof node !== 'object') break;
    const keys: string[] = Array.isArray(node) ? node.map((_, i) => String(i)) : Object.keys(node);
    if (keys.length === 0) break;
    const key: string = keys[path[k]! % keys.length]!;
    const child: JsonValue = (node as Record<string, JsonValue>)[key]!;
    if (k === path.length - 1 || child === null || typeof child !== 'object') {
      (node as Record<string, JsonValue>)[key] = value;
      return doc;
    }
    node = child;
  }
  doc['unknownField'] = value; // nowhere to descend: an unknown member instead
  return doc;
}

test('floats: 5,000 random float32 values are written exactly as Go writes them', async () => {
  const r = schema.message(`${PKG}.Repeated`)!;
  const values = fc.sample(scalarArb(ScalarType.FLOAT) as fc.Arbitrary<number>, { numRuns: 5000, seed: SEED + 3 });
  const bin = toBinary(r, create(r, { rFloat: values }));
  const [g] = await ref.all([{ op: 'toJson', set, type: r.typeName, binary: b64(bin) }]);
  const d = jsonDifference(JSON.parse(new JsonCodec(schema.registry).binaryToJson(r, bin)), JSON.parse(g!.json!));
  assert.equal(d, undefined, d);
});
