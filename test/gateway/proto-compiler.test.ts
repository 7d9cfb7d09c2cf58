// The gateway's .proto compiler against Go's bufbuild/protocompile (protojson-ref's `compile`): the same
// sources must give the same FileDescriptorProtos, options (custom ones included) compared as values.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { equals, fromBinary, toJson } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { compileProtoSources } from '../../sidecar/gateway/schema.ts';
import { jsonDifference } from './json-compare.ts';
import { ProtojsonRef } from './protojson-ref.ts';

const GOOGLE_API = join(import.meta.dirname, '..', '..', 'sidecar', 'gateway', 'google-api');

let ref: ProtojsonRef;
before(async () => {
  ref = await ProtojsonRef.start();
}, { timeout: 120_000 });
after(() => ref?.stop());

function protoFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.proto')) out[relative(dir, join(e.parentPath, e.name))] = readFileSync(join(e.parentPath, e.name), 'utf8');
  }
  return out;
}

/** Compiles `files` both ways; fails naming the first file and field that differ. */
async function sameAsProtocompile(files: Record<string, string>): Promise<void> {
  const all = { ...files };
  for (const n of ['google/api/http.proto', 'google/api/annotations.proto']) all[n] = readFileSync(join(GOOGLE_API, n), 'utf8');
  const schema = compileProtoSources(new Map(Object.entries(all)), 'test');
  const r = await ref.call({ op: 'compile', files: all, compile: Object.keys(all) });
  assert.equal(r.error, undefined, `protocompile: ${r.error}`);
  const theirs = fromBinary(FileDescriptorSetSchema, Buffer.from(r.set!, 'base64'));
  for (const t of theirs.file) {
    const mine = schema.files.find((f) => f.name === t.name);
    assert.ok(mine !== undefined, `${t.name} missing`);
    if (equals(FileDescriptorProtoSchema, mine, t, { registry: schema.registry, extensions: true })) continue;
    const d = jsonDifference(toJson(FileDescriptorProtoSchema, mine, { registry: schema.registry }), toJson(FileDescriptorProtoSchema, t, { registry: schema.registry }));
    assert.fail(`${t.name}: differs from protocompile's at ${d ?? '(custom option bytes)'}`);
  }
}

test('proto2 and proto3 files with custom options of every target, defaults, extensions, public imports and nested scopes compile as protocompile compiles them', async () => {
  await sameAsProtocompile(protoFiles(join(import.meta.dirname, '..', 'fixtures', 'gateway-compiler')));
});

test('the conformance and benchmark fixtures compile as protocompile compiles them', async () => {
  await sameAsProtocompile(protoFiles(join(import.meta.dirname, '..', 'fixtures', 'gateway')));
  await sameAsProtocompile(protoFiles(join(import.meta.dirname, '..', 'fixtures', 'gateway-bench')));
});

test('what protocompile refuses is refused here too', async () => {
  const cases: Record<string, string> = {
    'duplicate number': 'syntax = "proto3";\nmessage A { int32 a = 1; int32 b = 1; }\n',
    'reserved number used': 'syntax = "proto3";\nmessage A { reserved 2; int32 a = 2; }\n',
    'json name clash': 'syntax = "proto3";\nmessage A { int32 a_b = 1; int32 aB = 2; }\n',
    'proto3 first enum value': 'syntax = "proto3";\nenum E { A = 1; }\n',
    'required in proto3': 'syntax = "proto3";\nmessage A { required int32 a = 1; }\n',
    'undefined type': 'syntax = "proto3";\nmessage A { B b = 1; }\n',
    'unknown option': 'syntax = "proto3";\nmessage A { option nope = true; }\n',
    'bad option value type': 'syntax = "proto3";\noption java_multiple_files = "yes";\n',
    'field number too big': 'syntax = "proto3";\nmessage A { int32 a = 536870912; }\n',
    'reserved implementation range': 'syntax = "proto3";\nmessage A { int32 a = 19000; }\n',
    'map key of float': 'syntax = "proto3";\nmessage A { map<float, int32> m = 1; }\n',
    'duplicate symbol': 'syntax = "proto3";\nmessage A {}\nenum A { X = 0; }\n',
  };
  for (const [what, src] of Object.entries(cases)) {
    const r = await ref.call({ op: 'compile', files: { 'a.proto': src }, compile: ['a.proto'] });
    assert.ok(r.error !== undefined, `${what}: protocompile accepts it`);
    assert.throws(() => compileProtoSources(new Map([['a.proto', src]]), 'test'), /^SchemaError: a\.proto:\d+:\d+: /, `${what}: accepted here (protocompile: ${r.error})`);
  }
});
