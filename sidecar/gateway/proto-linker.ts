// Parsed .proto files → complete FileDescriptorProtos, as protoc would write them: type names resolved
// by protobuf's scoping rules (only through what a file imports), and options interpreted, custom ones
// (google.api.http) included. Built-in files (the well-known types) arrive already complete.
import { create, createFileRegistry, fromBinary, toBinary, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { fromText } from '@bufbuild/protobuf/txtpb';
import * as wkt from '@bufbuild/protobuf/wkt';
import { FieldDescriptorProto_Type as Type, FileDescriptorSetSchema, type DescriptorProto, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { ProtoSyntaxError } from './proto-lexer.ts';
import type { OptionStatement, OptionsKind, ParsedFile, PendingOptions, PendingRef, Pos } from './proto-parser.ts';

type SymbolKind = 'package' | 'message' | 'enum' | 'service' | 'extension' | 'other';

interface Sym {
  kind: SymbolKind;
  file: string;
}

const OPTIONS_SCHEMAS: Record<OptionsKind, DescMessage> = {
  FileOptions: wkt.FileOptionsSchema,
  MessageOptions: wkt.MessageOptionsSchema,
  FieldOptions: wkt.FieldOptionsSchema,
  OneofOptions: wkt.OneofOptionsSchema,
  EnumOptions: wkt.EnumOptionsSchema,
  EnumValueOptions: wkt.EnumValueOptionsSchema,
  ServiceOptions: wkt.ServiceOptionsSchema,
  MethodOptions: wkt.MethodOptionsSchema,
  ExtensionRangeOptions: wkt.ExtensionRangeOptionsSchema,
};

/**
 * Links `parsed` (in any order) against each other and `builtins`. Returns every file the parsed ones
 * need, dependencies first (a FileDescriptorSet in the order protoc writes with --include_imports).
 */
export function linkFiles(parsed: ParsedFile[], builtins: Map<string, FileDescriptorProto>): FileDescriptorProto[] {
  const byName = new Map(parsed.map((p) => [p.name, p]));
  const ordered = topoOrder(parsed, byName, builtins);
  const symbols = new Map<string, Sym>();
  for (const f of ordered) addSymbols(f, symbols, byName.get(f.name));
  for (const p of parsed) {
    const visible = visibleFiles(p.proto, byName, builtins);
    for (const ref of p.refs) resolveRef(p, ref, symbols, visible);
    checkMessages(p, p.proto.messageType);
  }
  // Custom options need the extensions they name: a registry of the linked files without their options.
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  for (const p of parsed) {
    const visible = visibleFiles(p.proto, byName, builtins);
    for (const po of p.options) interpretOptions(p, po, symbols, visible, registry);
  }
  return ordered;
}

/** Dependencies before dependents; an import of a file that is neither parsed nor built in fails at the import. */
function topoOrder(parsed: ParsedFile[], byName: Map<string, ParsedFile>, builtins: Map<string, FileDescriptorProto>): FileDescriptorProto[] {
  const out: FileDescriptorProto[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new Error(`${chain[chain.length - 1]}: import cycle: ${[...chain.slice(chain.indexOf(name)), name].join(' → ')}`);
    const p = byName.get(name);
    const proto = p?.proto ?? builtins.get(name)!;
    state.set(name, 'visiting');
    for (const dep of proto.dependency) {
      if (!byName.has(dep) && !builtins.has(dep)) {
        const at = p?.importPos.get(dep);
        throw new ProtoSyntaxError(name, at?.line ?? 1, at?.col ?? 1, `import "${dep}" was not found (imports resolve inside the schema directory; google/protobuf/*.proto and google/api/{annotations,http}.proto are built in)`);
      }
      visit(dep, [...chain, name]);
    }
    state.set(name, 'done');
    out.push(proto);
  };
  for (const p of [...parsed].sort((a, b) => (a.name < b.name ? -1 : 1))) visit(p.name, []);
  return out;
}

/** The file itself, its imports, and what those re-export with `import public` (transitively). */
function visibleFiles(f: FileDescriptorProto, byName: Map<string, ParsedFile>, builtins: Map<string, FileDescriptorProto>): Set<string> {
  const out = new Set([f.name]);
  const addPublic = (name: string): void => {
    if (out.has(name)) return;
    out.add(name);
    const d = byName.get(name)?.proto ?? builtins.get(name);
    for (const i of d?.publicDependency ?? []) addPublic(d!.dependency[i]!);
  };
  for (const dep of f.dependency) addPublic(dep);
  return out;
}

function addSymbols(f: FileDescriptorProto, symbols: Map<string, Sym>, parsed: ParsedFile | undefined): void {
  const add = (full: string, kind: SymbolKind): void => {
    const prev = symbols.get(full);
    if (prev !== undefined && !(prev.kind === 'package' && kind === 'package')) {
      const at = parsed?.declared.get(full) ?? { line: 1, col: 1 };
      const what = prev.kind === 'package' || kind === 'package' ? `"${full}" is both a package and a ${prev.kind === 'package' ? kind : prev.kind}` : `"${full}" is already defined in ${prev.file}`;
      throw new ProtoSyntaxError(f.name, at.line, at.col, what);
    }
    symbols.set(full, { kind, file: f.name });
  };
  const pkg = f.package;
  if (pkg !== '') {
    const parts = pkg.split('.');
    for (let i = 1; i <= parts.length; i++) add(parts.slice(0, i).join('.'), 'package');
  }
  const prefix = pkg === '' ? '' : `${pkg}.`;
  const addEnum = (scope: string, e: wkt.EnumDescriptorProto): void => {
    add(scope + e.name, 'enum');
    for (const v of e.value) add(scope + v.name, 'other');
  };
  const addMessage = (scope: string, m: DescriptorProto): void => {
    const full = scope + m.name;
    add(full, 'message');
    for (const fd of m.field) add(`${full}.${fd.name}`, 'other');
    for (const o of m.oneofDecl) add(`${full}.${o.name}`, 'other');
    for (const x of m.extension) add(`${full}.${x.name}`, 'extension');
    for (const n of m.nestedType) addMessage(`${full}.`, n);
    for (const e of m.enumType) addEnum(`${full}.`, e);
  };
  for (const m of f.messageType) addMessage(prefix, m);
  for (const e of f.enumType) addEnum(prefix, e);
  for (const x of f.extension) add(prefix + x.name, 'extension');
  for (const s of f.service) {
    add(prefix + s.name, 'service');
    for (const m of s.method) add(`${prefix}${s.name}.${m.name}`, 'other');
  }
}

/**
 * protoc's lookup: `.a.b` is absolute; otherwise the first part of the name is searched from the
 * innermost scope outwards, and once it names a message or package the rest must be inside it.
 */
function lookup(name: string, scope: string, symbols: Map<string, Sym>, accept: (s: Sym) => boolean): { full: string; sym: Sym } | undefined {
  if (name.startsWith('.')) {
    const sym = symbols.get(name.slice(1));
    return sym === undefined ? undefined : { full: name.slice(1), sym };
  }
  const dot = name.indexOf('.');
  const first = dot === -1 ? name : name.slice(0, dot);
  let s = scope;
  while (true) {
    const cand = s === '' ? first : `${s}.${first}`;
    const found = symbols.get(cand);
    if (found !== undefined) {
      if (dot === -1) {
        if (accept(found)) return { full: cand, sym: found };
      } else if (found.kind === 'message' || found.kind === 'package') {
        const full = s === '' ? name : `${s}.${name}`;
        const sym = symbols.get(full);
        return sym === undefined ? undefined : { full, sym };
      }
    }
    if (s === '') return undefined;
    const cut = s.lastIndexOf('.');
    s = cut === -1 ? '' : s.slice(0, cut);
  }
}

function resolveRef(p: ParsedFile, ref: PendingRef, symbols: Map<string, Sym>, visible: Set<string>): void {
  const fail = (what: string): never => {
    throw new ProtoSyntaxError(p.name, ref.pos.line, ref.pos.col, what);
  };
  const wantsType = (s: Sym): boolean => s.kind === 'message' || (ref.kind === 'field' && s.kind === 'enum');
  const r = lookup(ref.name, ref.scope, symbols, wantsType);
  const role = ref.kind === 'field' ? 'type' : ref.kind === 'extendee' ? 'extended message' : ref.kind === 'input' ? 'request type' : 'response type';
  if (r === undefined) fail(`${role} "${ref.name}" is not defined`);
  if (!wantsType(r!.sym)) fail(`${role} "${ref.name}" is not a ${ref.kind === 'field' ? 'message or enum' : 'message'} (it is ${r!.full}, a ${r!.sym.kind})`);
  if (!visible.has(r!.sym.file)) fail(`${role} "${ref.name}" is defined in "${r!.sym.file}", which ${p.name} does not import`);
  const typeName = `.${r!.full}`;
  if (ref.kind === 'field') {
    ref.field!.type = r!.sym.kind === 'enum' ? Type.ENUM : Type.MESSAGE;
    ref.field!.typeName = typeName;
    if (r!.sym.kind === 'message' && ref.defaultPos !== undefined) fail('message fields take no default');
  } else if (ref.kind === 'extendee') {
    ref.field!.extendee = typeName;
  } else if (ref.kind === 'input') {
    ref.method!.inputType = typeName;
  } else {
    ref.method!.outputType = typeName;
  }
}

/** Duplicate numbers or names, reserved ones, and clashing JSON names (the JSON mapping needs them unique). */
function checkMessages(p: ParsedFile, msgs: DescriptorProto[], scope = p.proto.package): void {
  for (const m of msgs) {
    const full = scope === '' ? m.name : `${scope}.${m.name}`;
    const at = (): Pos => p.declared.get(full) ?? { line: 1, col: 1 };
    const fail = (what: string): never => {
      throw new ProtoSyntaxError(p.name, at().line, at().col, `message ${full}: ${what}`);
    };
    const numbers = new Map<number, string>();
    const jsonNames = new Map<string, string>();
    for (const f of m.field) {
      const prev = numbers.get(f.number);
      if (prev !== undefined) fail(`fields ${prev} and ${f.name} both use number ${f.number}`);
      numbers.set(f.number, f.name);
      if (m.reservedRange.some((r) => f.number >= r.start && f.number < r.end)) fail(`field ${f.name} uses reserved number ${f.number}`);
      if (m.reservedName.includes(f.name)) fail(`field ${f.name} uses a reserved name`);
      if (p.proto.syntax === 'proto3') {
        const jn = f.jsonName;
        const clash = jsonNames.get(jn);
        if (clash !== undefined) fail(`fields ${clash} and ${f.name} have the same JSON name "${jn}"`);
        jsonNames.set(jn, f.name);
      }
    }
    checkMessages(p, m.nestedType, full);
  }
}

// ---- options ----

interface OptionNode {
  key: string;
  children: OptionNode[];
  leaves: string[];
}

function interpretOptions(p: ParsedFile, po: PendingOptions, symbols: Map<string, Sym>, visible: Set<string>, registry: FileRegistry): void {
  const schema = registry.getMessage(`google.protobuf.${po.kind}`) ?? OPTIONS_SCHEMAS[po.kind];
  const root: OptionNode = { key: '', children: [], leaves: [] };
  for (const st of po.statements) {
    const keys = st.name.map((n) => (n.ext ? `[${resolveExtension(p, st, n.name, po.scope, symbols, visible)}]` : n.name));
    // Each statement alone first: an error then points at the statement that caused it.
    parseOptions(p, st, schema, registry, emit(pathNode(keys, st.text)));
    let node = root;
    for (const k of keys.slice(0, -1)) {
      let child = node.children.find((c) => c.key === k);
      if (child === undefined) node.children.push((child = { key: k, children: [], leaves: [] }));
      node = child;
    }
    node.children.push({ key: keys[keys.length - 1]!, children: [], leaves: [st.text] });
  }
  const text = emit(root);
  const msg = parseOptions(p, po.statements[0]!, schema, registry, text);
  // Re-read with the built-in options schema: extensions stay as unknown fields, which the set keeps.
  const own = OPTIONS_SCHEMAS[po.kind];
  const target = po.target as { options?: unknown };
  const merged = target.options === undefined ? new Uint8Array() : toBinary(own, target.options as never);
  const bytes = new Uint8Array([...merged, ...toBinary(schema, msg)]);
  target.options = fromBinary(own, bytes);
}

function pathNode(keys: string[], text: string): OptionNode {
  let node: OptionNode = { key: keys[keys.length - 1]!, children: [], leaves: [text] };
  for (let i = keys.length - 2; i >= 0; i--) node = { key: keys[i]!, children: [node], leaves: [] };
  return { key: '', children: [node], leaves: [] };
}

function emit(node: OptionNode): string {
  const parts: string[] = [];
  for (const c of node.children) {
    if (c.children.length === 0) {
      for (const l of c.leaves) parts.push(`${c.key}: ${l}`);
      continue;
    }
    // `(rule) = { … }` then `(rule).level = LOW`: one message, as protoc merges them.
    const aggregates = c.leaves.filter((l) => l.startsWith('{'));
    for (const l of c.leaves) if (!l.startsWith('{')) parts.push(`${c.key}: ${l}`);
    parts.push(`${c.key} { ${aggregates.map((l) => l.slice(1, -1)).join(' ')} ${emit(c)} }`);
  }
  return parts.join('\n');
}

function parseOptions(p: ParsedFile, st: OptionStatement, schema: DescMessage, registry: FileRegistry, text: string) {
  try {
    return fromText(schema, text, { registry });
  } catch (e) {
    const name = st.name.map((n) => (n.ext ? `(${n.name})` : n.name)).join('.');
    throw new ProtoSyntaxError(p.name, st.pos.line, st.pos.col, `option ${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function resolveExtension(p: ParsedFile, st: OptionStatement, name: string, scope: string, symbols: Map<string, Sym>, visible: Set<string>): string {
  const r = lookup(name, scope, symbols, (s) => s.kind === 'extension');
  const fail = (what: string): never => {
    throw new ProtoSyntaxError(p.name, st.pos.line, st.pos.col, what);
  };
  if (r === undefined || r.sym.kind !== 'extension') fail(`option (${name}) is not defined${name.startsWith('google.api.') ? ' (import "google/api/annotations.proto")' : ''}`);
  if (!visible.has(r!.sym.file)) fail(`option (${name}) is defined in "${r!.sym.file}", which ${p.name} does not import`);
  return r!.full;
}
