// The API schema a gateway converts with: a FileDescriptorSet file (`buf build`, `protoc --include_imports
// --descriptor_set_out`) or a directory of .proto files compiled here. Both are untrusted input (a
// ConfigMap), so every size is bounded, and every error is one line naming the file and what is wrong.
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { create, createFileRegistry, fromBinary, getExtension, hasExtension, toBinary, type DescExtension, type DescMessage, type DescMethod, type DescService, type FileRegistry } from '@bufbuild/protobuf';
import * as wkt from '@bufbuild/protobuf/wkt';
import { FileDescriptorSetSchema, type DescriptorProto, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { parseHttpRule, type HttpRule, type HttpRuleMessage } from './http-rule.ts';
import { linkFiles } from './proto-linker.ts';
import { parseProto, type ParsedFile } from './proto-parser.ts';

export interface SchemaLimits {
  /** .proto files in a directory, or files in a set (built-ins not counted). */
  maxFiles: number;
  /** One file's bytes. */
  maxFileBytes: number;
  /** All files' bytes together. */
  maxTotalBytes: number;
  /** Messages (nested and map entries included) over all files. */
  maxMessages: number;
  /** Fields (extensions included) over all files. */
  maxFields: number;
  /** Messages nested in messages; also directories below the schema directory. */
  maxNesting: number;
}

// A large real API (googleapis' compute v1) is about 1,500 messages and 15,000 fields in one 1 MB set.
export const DEFAULT_SCHEMA_LIMITS: SchemaLimits = {
  maxFiles: 500,
  maxFileBytes: 4 << 20,
  maxTotalBytes: 16 << 20,
  maxMessages: 20_000,
  maxFields: 200_000,
  maxNesting: 32,
};

export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

export type StreamingKind = 'unary' | 'server_streaming' | 'client_streaming' | 'bidi_streaming';

export interface MethodInfo {
  /** `/pkg.Service/Method`, the gRPC path. */
  path: string;
  service: string;
  name: string;
  input: DescMessage;
  output: DescMessage;
  streaming: StreamingKind;
  /** The google.api.http rule, if the method declares one. */
  http?: HttpRule;
  desc: DescMethod;
}

export interface Schema {
  /** Where it came from (a file or directory path, or a name given for in-memory sources). */
  source: string;
  registry: FileRegistry;
  /** The files, dependencies first: what a FileDescriptorSet of this schema holds. */
  files: FileDescriptorProto[];
  /** Every service's methods by gRPC path. */
  methods: Map<string, MethodInfo>;
  message(typeName: string): DescMessage | undefined;
  /** The schema as one FileDescriptorSet (for a process that needs the same schema, e.g. a test reference). */
  toDescriptorSet(): Uint8Array;
}

const DESCRIPTOR_SET_FILE = /\.(binpb|pb|desc|protoset)$/;

/** A `.binpb` file, a directory holding one, a directory of `.proto` files, or one `.proto` file. */
export function loadSchema(path: string, limits: SchemaLimits = DEFAULT_SCHEMA_LIMITS): Schema {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new SchemaError(`${path}: cannot read the schema: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (st.isDirectory()) {
    // A ConfigMap holding a descriptor set (binaryData) mounts as a directory with that one file.
    const sets = readdirSync(path).filter((n) => !n.startsWith('..') && DESCRIPTOR_SET_FILE.test(n));
    if (sets.length > 1) throw new SchemaError(`${path}: ${sets.length} descriptor sets (${sets.join(', ')}); expected one FileDescriptorSet, or .proto files`);
    if (sets.length === 1) return loadSchema(join(path, sets[0]!), limits);
    return compileProtoSources(readProtoDir(path, limits), path, limits);
  }
  if (st.size > limits.maxFileBytes) throw new SchemaError(`${path}: ${st.size} bytes is more than the ${limits.maxFileBytes} a schema file may have`);
  // One .proto file on its own (it may import only the built-ins).
  if (path.endsWith('.proto')) return compileProtoSources(new Map([[basename(path), readFileSync(path, 'utf8')]]), path, limits);
  return schemaFromDescriptorSet(readFileSync(path), path, limits);
}

/** A FileDescriptorSet's bytes. Well-known files the set lacks (no --include_imports) are added from the built-ins. */
export function schemaFromDescriptorSet(bytes: Uint8Array, source: string, limits: SchemaLimits = DEFAULT_SCHEMA_LIMITS): Schema {
  if (bytes.length > limits.maxTotalBytes) throw new SchemaError(`${source}: ${bytes.length} bytes is more than the ${limits.maxTotalBytes} a schema may have`);
  let set;
  try {
    set = fromBinary(FileDescriptorSetSchema, bytes);
  } catch (e) {
    throw new SchemaError(`${source}: not a FileDescriptorSet: ${message(e)}`);
  }
  if (set.file.length === 0) throw new SchemaError(`${source}: the descriptor set holds no files`);
  if (set.file.length > limits.maxFiles) throw new SchemaError(`${source}: ${set.file.length} files is more than the ${limits.maxFiles} a schema may have`);
  const have = new Map(set.file.map((f) => [f.name, f]));
  const builtins = builtinFiles();
  const files: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const add = (f: FileDescriptorProto, chain: string[]): void => {
    if (seen.has(f.name)) return;
    if (chain.includes(f.name)) throw new SchemaError(`${source}: import cycle: ${[...chain, f.name].join(' → ')}`);
    for (const dep of f.dependency) {
      const d = have.get(dep) ?? builtins.get(dep);
      if (d === undefined) throw new SchemaError(`${source}: ${f.name} imports "${dep}", which the set lacks (build it with --include_imports)`);
      add(d, [...chain, f.name]);
    }
    seen.add(f.name);
    files.push(f);
  };
  for (const f of set.file) {
    if (f.syntax === 'editions') throw new SchemaError(`${source}: ${f.name} uses editions, which are not supported; use syntax = "proto3" (or "proto2")`);
    add(f, []);
  }
  return finish(files, source, limits);
}

/** `.proto` sources by name (relative, '/'-separated): what a schema directory holds. */
export function compileProtoSources(sources: Map<string, string>, source: string, limits: SchemaLimits = DEFAULT_SCHEMA_LIMITS): Schema {
  if (sources.size === 0) throw new SchemaError(`${source}: no .proto files`);
  const parsed = [...sources].map(([name, text]) => parse(name, text, limits));
  return finish(link(parsed, builtinFiles(), source), source, limits);
}

/** Fails naming every service the schema lacks (and, when short, what it has). */
export function requireServices(schema: Schema, services: string[], why?: string): void {
  const all = new Set<string>();
  for (const f of schema.files) for (const s of f.service) all.add(f.package === '' ? s.name : `${f.package}.${s.name}`);
  const missing = services.filter((s) => !all.has(s));
  if (missing.length === 0) return;
  const known = [...all].sort();
  const hint = known.length === 0 ? 'it defines no service' : `it defines ${known.slice(0, 10).join(', ')}${known.length > 10 ? `, … (${known.length})` : ''}`;
  throw new SchemaError(`${schema.source}: no service ${missing.join(', ')} in the schema${why === undefined ? '' : ` (${why})`}; ${hint}`);
}

// ---- internals ----

function parse(name: string, text: string, limits: SchemaLimits): ParsedFile {
  try {
    return parseProto(name, text, { maxNesting: limits.maxNesting });
  } catch (e) {
    throw new SchemaError(message(e));
  }
}

function link(parsed: ParsedFile[], builtins: Map<string, FileDescriptorProto>, source: string): FileDescriptorProto[] {
  // A schema's own file of a built-in name (e.g. its copy of google/api/http.proto) is the one used.
  const own = new Set(parsed.map((p) => p.name));
  const rest = new Map([...builtins].filter(([n]) => !own.has(n)));
  try {
    return linkFiles(parsed, rest);
  } catch (e) {
    throw new SchemaError(e instanceof Error && e.name === 'ProtoSyntaxError' ? e.message : `${source}: ${message(e)}`);
  }
}

function readProtoDir(dir: string, limits: SchemaLimits): Map<string, string> {
  const root = realpathSync(dir);
  const out = new Map<string, string>();
  let total = 0;
  const walk = (d: string, depth: number): void => {
    if (depth > limits.maxNesting) throw new SchemaError(`${d}: directories nested more than ${limits.maxNesting} deep`);
    for (const ent of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, ent.name);
      // ConfigMap mounts are symlinks (..data/…); follow them, but only to files inside the directory.
      const real = realpathSync(p);
      if (real !== root && !real.startsWith(root + sep) && !isConfigMapLink(p, root)) continue;
      const st = statSync(p);
      if (st.isDirectory()) {
        if (ent.name.startsWith('..')) continue; // the ConfigMap's own ..data/..timestamp dirs
        walk(p, depth + 1);
      } else if (st.isFile() && ent.name.endsWith('.proto')) {
        if (out.size >= limits.maxFiles) throw new SchemaError(`${dir}: more than ${limits.maxFiles} .proto files`);
        if (st.size > limits.maxFileBytes) throw new SchemaError(`${p}: ${st.size} bytes is more than the ${limits.maxFileBytes} a .proto file may have`);
        total += st.size;
        if (total > limits.maxTotalBytes) throw new SchemaError(`${dir}: the .proto files are more than ${limits.maxTotalBytes} bytes`);
        out.set(relative(root, join(realpathSync(d), ent.name)).split(sep).join('/'), readFileSync(p, 'utf8'));
      }
    }
  };
  walk(root, 0);
  if (out.size === 0) throw new SchemaError(`${dir}: no .proto files`);
  return out;
}

function isConfigMapLink(p: string, root: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink() && realpathSync(p).startsWith(join(root, '..data'));
  } catch {
    return false;
  }
}

function finish(files: FileDescriptorProto[], source: string, limits: SchemaLimits): Schema {
  countAndCheck(files, source, limits);
  let registry: FileRegistry;
  try {
    registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files }));
  } catch (e) {
    throw new SchemaError(`${source}: ${message(e)}`);
  }
  const httpExt = registry.getExtension('google.api.http');
  const methods = new Map<string, MethodInfo>();
  for (const f of registry.files) {
    for (const s of f.services) for (const m of s.methods) methods.set(`/${s.typeName}/${m.name}`, methodInfo(s, m, httpExt, source));
  }
  return {
    source,
    registry,
    files,
    methods,
    message: (t) => registry.getMessage(t),
    toDescriptorSet: () => toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: files })),
  };
}

function methodInfo(s: DescService, m: DescMethod, httpExt: DescExtension | undefined, source: string): MethodInfo {
  const streaming: StreamingKind = m.methodKind === 'unary' ? 'unary' : m.methodKind === 'server_streaming' ? 'server_streaming' : m.methodKind === 'client_streaming' ? 'client_streaming' : 'bidi_streaming';
  const info: MethodInfo = { path: `/${s.typeName}/${m.name}`, service: s.typeName, name: m.name, input: m.input, output: m.output, streaming, desc: m };
  const opts = m.proto.options;
  if (httpExt !== undefined && opts !== undefined && hasExtension(opts, httpExt)) {
    try {
      info.http = parseHttpRule(getExtension(opts, httpExt) as unknown as HttpRuleMessage, m.input, m.output);
    } catch (e) {
      throw new SchemaError(`${source}: ${m.parent.file.proto.name}: ${s.typeName}.${m.name}: ${message(e)}`);
    }
  }
  return info;
}

function countAndCheck(files: FileDescriptorProto[], source: string, limits: SchemaLimits): void {
  let messages = 0;
  let fields = 0;
  const walk = (file: string, msgs: DescriptorProto[], depth: number): void => {
    if (depth > limits.maxNesting) throw new SchemaError(`${source}: ${file}: messages nested more than ${limits.maxNesting} deep`);
    for (const m of msgs) {
      messages++;
      fields += m.field.length + m.extension.length;
      walk(file, m.nestedType, depth + 1);
    }
  };
  for (const f of files) {
    fields += f.extension.length;
    walk(f.name, f.messageType, 1);
  }
  if (messages > limits.maxMessages) throw new SchemaError(`${source}: ${messages} messages is more than the ${limits.maxMessages} a schema may have`);
  if (fields > limits.maxFields) throw new SchemaError(`${source}: ${fields} fields is more than the ${limits.maxFields} a schema may have`);
}

let builtinCache: Map<string, FileDescriptorProto> | undefined;

/**
 * google/protobuf/*.proto (bufbuild's embedded copies, as protoc ships them), google/api/{http,annotations}.proto
 * and google/rpc/{status,error_details}.proto (compiled from the copies beside this file), by import name.
 */
export function builtinFiles(): Map<string, FileDescriptorProto> {
  if (builtinCache !== undefined) return builtinCache;
  const m = new Map<string, FileDescriptorProto>();
  for (const d of [wkt.file_google_protobuf_any, wkt.file_google_protobuf_api, wkt.file_google_protobuf_descriptor, wkt.file_google_protobuf_duration, wkt.file_google_protobuf_empty, wkt.file_google_protobuf_field_mask, wkt.file_google_protobuf_source_context, wkt.file_google_protobuf_struct, wkt.file_google_protobuf_timestamp, wkt.file_google_protobuf_type, wkt.file_google_protobuf_wrappers]) {
    m.set(d.proto.name, d.proto);
  }
  const dir = join(import.meta.dirname, 'google-api');
  const parsed = ['google/api/http.proto', 'google/api/annotations.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'].map((n) => parseProto(n, readFileSync(join(dir, n), 'utf8'), { maxNesting: DEFAULT_SCHEMA_LIMITS.maxNesting }));
  for (const f of linkFiles(parsed, new Map(m))) m.set(f.name, f);
  builtinCache = m;
  return m;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

let rpcCache: FileRegistry | undefined;

/** google.rpc.Status and the standard error details, for error bodies whatever a schema imports. */
export function rpcRegistry(): FileRegistry {
  if (rpcCache !== undefined) return rpcCache;
  const b = builtinFiles();
  const names = ['google/protobuf/any.proto', 'google/protobuf/duration.proto', 'google/rpc/status.proto', 'google/rpc/error_details.proto'];
  rpcCache = createFileRegistry(create(FileDescriptorSetSchema, { file: names.map((n) => b.get(n)!) }));
  return rpcCache;
}
