// Schema loading: a FileDescriptorSet file or a directory of .proto files; every refusal is one line naming
// the file and what is wrong (file:line:col for .proto text); services and google.api.http rules per method.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { DEFAULT_SCHEMA_LIMITS, loadSchema, requireServices, SchemaError, type Schema } from '../../sidecar/gateway/schema.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'gateway');
const root = mkdtempSync(join(tmpdir(), 'qbasis-schema-'));
after(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A fresh schema directory holding these files. */
function dir(files: Record<string, string>): string {
  const d = join(root, `s${n++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(d, name)), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

function refusal(load: () => Schema): string {
  try {
    load();
  } catch (e) {
    assert.ok(e instanceof SchemaError, `not a SchemaError: ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `more than one line: ${e.message}`);
    return e.message;
  }
  assert.fail('loaded');
}

const ORDERS = `syntax = "proto3";
package shop.orders.v1;
import "google/api/annotations.proto";
import "shop/common.proto";
message GetOrderRequest { string order_id = 1; shop.common.Money min = 2; }
message Order { string order_id = 1; shop.common.Money total = 2; }
service OrderService {
  rpc GetOrder(GetOrderRequest) returns (Order) {
    option (google.api.http) = { get: "/v1/orders/{order_id}" additional_bindings { post: "/v1/orders:get" body: "*" } };
  }
  rpc WatchOrders(GetOrderRequest) returns (stream Order);
  rpc Upload(stream Order) returns (Order);
  rpc Chat(stream Order) returns (stream Order);
}
`;
const COMMON = 'syntax = "proto3";\npackage shop.common;\nmessage Money { string currency_code = 1; int64 units = 2; int32 nanos = 3; }\n';

test('a directory of .proto files loads with imports inside it, methods, streaming kinds and google.api.http rules', () => {
  const s = loadSchema(dir({ 'shop/orders.proto': ORDERS, 'shop/common.proto': COMMON }));
  requireServices(s, ['shop.orders.v1.OrderService']);
  const get = s.methods.get('/shop.orders.v1.OrderService/GetOrder')!;
  assert.equal(get.input.typeName, 'shop.orders.v1.GetOrderRequest');
  assert.equal(get.output.typeName, 'shop.orders.v1.Order');
  assert.equal(get.streaming, 'unary');
  assert.equal(get.http?.method, 'GET');
  assert.equal(get.http?.path, '/v1/orders/{order_id}');
  assert.deepEqual(get.http?.segments, [{ kind: 'literal', value: 'v1' }, { kind: 'literal', value: 'orders' }, { kind: 'variable', fieldPath: ['order_id'], segments: [{ kind: 'wildcard' }] }]);
  assert.equal(get.http?.additionalBindings[0]?.method, 'POST');
  assert.equal(get.http?.additionalBindings[0]?.verb, 'get');
  assert.equal(get.http?.additionalBindings[0]?.body, '*');
  assert.deepEqual(['WatchOrders', 'Upload', 'Chat'].map((m) => s.methods.get(`/shop.orders.v1.OrderService/${m}`)?.streaming), ['server_streaming', 'client_streaming', 'bidi_streaming']);
  assert.equal(s.methods.get('/shop.orders.v1.OrderService/Chat')?.http, undefined);
});

test('a FileDescriptorSet file loads the same schema, and one without the well-known files gets them built in', () => {
  const fromDir = loadSchema(FIXTURES);
  const f = join(root, 'everything.binpb');
  writeFileSync(f, fromDir.toDescriptorSet());
  const fromSet = loadSchema(f);
  assert.deepEqual([...fromSet.methods.keys()], [...fromDir.methods.keys()]);
  assert.equal(fromSet.methods.get('/qbasis.conformance.v1.ConformanceService/GetEverything')?.http?.path, '/v1/everything/{id}');
  const own = fromDir.files.filter((x) => !x.name.startsWith('google/'));
  const g = join(root, 'no-imports.binpb');
  writeFileSync(g, toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: own })));
  assert.ok(loadSchema(g).message('qbasis.conformance.v1.Everything') !== undefined);
});

test('a syntax error names file:line:col and what was expected', () => {
  const d = dir({ 'a.proto': 'syntax = "proto3";\nmessage A {\n  int32 x = ;\n}\n' });
  assert.equal(refusal(() => loadSchema(d)), "a.proto:3:13: expected a field number, got ';'");
  assert.equal(refusal(() => loadSchema(dir({ 'b/c.proto': 'syntax = "proto4";' }))), 'b/c.proto:1:10: unknown syntax "proto4"; expected "proto2" or "proto3"');
  assert.equal(refusal(() => loadSchema(dir({ 'a.proto': 'syntax = "proto3";\nmessage A { string s = 1; }\nmessage A { }\n' }))), 'a.proto:3:9: "A" is already defined at a.proto:2:9');
  assert.equal(refusal(() => loadSchema(dir({ 'a.proto': 'syntax = "proto3";\n/* never closed\n' }))), 'a.proto:2:1: unterminated /* comment');
  assert.equal(refusal(() => loadSchema(dir({ 'a.proto': 'syntax = "proto3";\nenum E { ONE = 1; }\n' }))), 'a.proto:2:16: the first value of enum E must be 0 in proto3');
});

test('a missing import names the importing file, the import and where imports are looked for', () => {
  const msg = refusal(() => loadSchema(dir({ 'shop/orders.proto': ORDERS })));
  assert.match(msg, /^shop\/orders\.proto:4:8: import "shop\/common\.proto" was not found \(imports resolve inside the schema directory; /);
});

test('a type that is undefined, or defined in a file not imported, is refused at its use', () => {
  assert.equal(refusal(() => loadSchema(dir({ 'a.proto': 'syntax = "proto3";\nmessage A {\n  Missing m = 1;\n}\n' }))), 'a.proto:3:3: type "Missing" is not defined');
  const msg = refusal(() => loadSchema(dir({ 'a.proto': 'syntax = "proto3";\npackage p;\nmessage A { q.B b = 1; }\n', 'b.proto': 'syntax = "proto3";\npackage q;\nmessage B {}\n' })));
  assert.equal(msg, 'a.proto:3:13: type "q.B" is defined in "b.proto", which a.proto does not import');
});

test('an unknown option, a custom option without its import, and a bad http template are refused naming them', () => {
  assert.match(refusal(() => loadSchema(dir({ 'a.proto': 'syntax = "proto3";\noption java_pakage = "x";\n' }))), /^a\.proto:2:8: option java_pakage: /);
  const noImport = 'syntax = "proto3";\nmessage M {}\nservice S { rpc X(M) returns (M) { option (google.api.http) = { get: "/x" }; } }\n';
  assert.equal(refusal(() => loadSchema(dir({ 'a.proto': noImport }))), 'a.proto:3:43: option (google.api.http) is not defined (import "google/api/annotations.proto")');
  const bad = `syntax = "proto3";\npackage p;\nimport "google/api/annotations.proto";\nmessage M { string id = 1; }\nservice S { rpc X(M) returns (M) { option (google.api.http) = { get: "/v1/{name}" }; } }\n`;
  assert.match(refusal(() => loadSchema(dir({ 'a.proto': bad }))), /: a\.proto: p\.S\.X: path variable \{name\}: p\.M has no field "name"$/);
  const badTemplate = bad.replace('/v1/{name}', 'v1/x');
  assert.match(refusal(() => loadSchema(dir({ 'a.proto': badTemplate }))), /p\.S\.X: path template "v1\/x": must start with "\/"/);
});

test('requireServices names every missing service and what the schema has', () => {
  const s = loadSchema(dir({ 'shop/orders.proto': ORDERS, 'shop/common.proto': COMMON }));
  const e = assert.throws(() => requireServices(s, ['shop.orders.v1.OrderService', 'shop.orders.v1.Refunds', 'shop.Cart']), (err: Error) => {
    assert.match(err.message, /no service shop\.orders\.v1\.Refunds, shop\.Cart in the schema; it defines shop\.orders\.v1\.OrderService$/);
    return true;
  });
  void e;
});

test('bounds: file count, file and total bytes, messages, fields and nesting are refused with the limit', () => {
  const many = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`f${i}.proto`, `syntax = "proto3";\nmessage M${i} {}\n`]));
  assert.match(refusal(() => loadSchema(dir(many), { ...DEFAULT_SCHEMA_LIMITS, maxFiles: 3 })), /more than 3 \.proto files$/);
  assert.match(refusal(() => loadSchema(dir({ 'a.proto': `syntax = "proto3";\n// ${'x'.repeat(2000)}\n` }), { ...DEFAULT_SCHEMA_LIMITS, maxFileBytes: 1000 })), /a\.proto: \d+ bytes is more than the 1000 a \.proto file may have$/);
  assert.match(refusal(() => loadSchema(dir(many), { ...DEFAULT_SCHEMA_LIMITS, maxMessages: 3 })), /4 messages is more than the 3 a schema may have$/);
  assert.match(refusal(() => loadSchema(dir({ 'a.proto': 'syntax = "proto3";\nmessage M { int32 a = 1; int32 b = 2; int32 c = 3; }\n' }), { ...DEFAULT_SCHEMA_LIMITS, maxFields: 2 })), /3 fields is more than the 2/);
  const deep = `syntax = "proto3";\n${'message M { '.repeat(40)}${'}'.repeat(40)}\n`;
  assert.match(refusal(() => loadSchema(dir({ 'a.proto': deep }))), /^a\.proto:2:\d+: messages nested more than 32 deep$/);
  assert.match(refusal(() => loadSchema(join(root, 'nope'))), /nope: cannot read the schema: ENOENT$/);
  const garbage = join(root, 'garbage.binpb');
  writeFileSync(garbage, Buffer.from([0xff, 0xff, 0xff]));
  assert.match(refusal(() => loadSchema(garbage)), /garbage\.binpb: not a FileDescriptorSet: /);
});

test('a ConfigMap-style mount (files symlinked through ..data) loads; links out of the directory are not followed', () => {
  const d = join(root, 'cm');
  mkdirSync(join(d, '..2024_01_01'), { recursive: true });
  writeFileSync(join(d, '..2024_01_01', 'common.proto'), COMMON.replace('package shop.common;', 'package shop.common;'));
  symlinkSync('..2024_01_01', join(d, '..data'));
  symlinkSync('..data/common.proto', join(d, 'common.proto'));
  const outside = dir({ 'evil.proto': 'syntax = "proto3";\nmessage Evil {}\n' });
  symlinkSync(join(outside, 'evil.proto'), join(d, 'evil.proto'));
  const s = loadSchema(d);
  assert.ok(s.message('shop.common.Money') !== undefined);
  assert.equal(s.message('Evil'), undefined);
});
