// One .proto file (proto2 or proto3) → a FileDescriptorProto whose type references are still as written;
// the linker (proto-linker.ts) resolves them and interprets options. Written here rather than taken from
// protobufjs because its parser reports no columns and its descriptor export loses file boundaries.
import { create } from '@bufbuild/protobuf';
import {
  DescriptorProto_ExtensionRangeSchema,
  DescriptorProto_ReservedRangeSchema,
  DescriptorProtoSchema,
  EnumDescriptorProto_EnumReservedRangeSchema,
  EnumDescriptorProtoSchema,
  EnumValueDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  MessageOptionsSchema,
  MethodDescriptorProtoSchema,
  OneofDescriptorProtoSchema,
  ServiceDescriptorProtoSchema,
  type DescriptorProto,
  type EnumDescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
  type MethodDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { shortestFloat32 } from './json-numbers.ts';
import { ProtoSyntaxError, tokenize, type Token } from './proto-lexer.ts';

export const SCALAR_TYPES: Record<string, Type> = {
  double: Type.DOUBLE, float: Type.FLOAT, int64: Type.INT64, uint64: Type.UINT64, int32: Type.INT32,
  fixed64: Type.FIXED64, fixed32: Type.FIXED32, bool: Type.BOOL, string: Type.STRING, bytes: Type.BYTES,
  uint32: Type.UINT32, sfixed32: Type.SFIXED32, sfixed64: Type.SFIXED64, sint32: Type.SINT32, sint64: Type.SINT64,
};

const MAP_KEY_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'bool', 'string']);

export const MAX_FIELD_NUMBER = 536_870_911;

/** Where a construct was written, for the linker's messages. */
export interface Pos {
  line: number;
  col: number;
}

/** `(google.api.http).get` → [{name:'google.api.http', ext:true}, {name:'get', ext:false}]. */
export interface OptionName {
  name: string;
  ext: boolean;
}

/** An option value as protobuf text format (what txtpb's fromText reads). */
export interface OptionStatement {
  name: OptionName[];
  text: string;
  /** Set for plain identifiers (enum values, true/false) and strings: the value itself. */
  ident?: string;
  str?: string;
  /** For strings: the bytes (a bytes field's default is written C-escaped from them). */
  bytes?: Uint8Array;
  pos: Pos;
}

export type OptionsKind = 'FileOptions' | 'MessageOptions' | 'FieldOptions' | 'OneofOptions' | 'EnumOptions' | 'EnumValueOptions' | 'ServiceOptions' | 'MethodOptions' | 'ExtensionRangeOptions';

/** Options to interpret once every file is linked (custom options need the extensions). */
export interface PendingOptions {
  kind: OptionsKind;
  target: { options?: unknown };
  statements: OptionStatement[];
  /** The scope custom option names resolve in (the enclosing message or the package). */
  scope: string;
}

/** A type name to resolve: a field's type, an extension's extendee, a method's input or output. */
export interface PendingRef {
  kind: 'field' | 'extendee' | 'input' | 'output';
  name: string;
  scope: string;
  pos: Pos;
  field?: FieldDescriptorProto;
  method?: MethodDescriptorProto;
  /** proto2 `default = X` of an enum field, checked once the enum is known. */
  defaultPos?: Pos;
}

export interface ParsedFile {
  name: string;
  proto: FileDescriptorProto;
  refs: PendingRef[];
  options: PendingOptions[];
  /** Where each import was written (missing-import messages point at it). */
  importPos: Map<string, Pos>;
  /** Full name → where it was declared (duplicate-symbol messages). */
  declared: Map<string, Pos>;
}

export interface ParseLimits {
  /** Messages nested in messages (and braces in option values). */
  maxNesting: number;
}

export function parseProto(file: string, src: string, limits: ParseLimits): ParsedFile {
  return new Parser(file, src, limits).parseFile();
}

class Parser {
  private readonly toks: Token[];
  private i = 0;
  private readonly file: string;
  private readonly src: string;
  private readonly limits: ParseLimits;
  private proto3 = false;
  private pkg = '';
  private readonly out: ParsedFile;

  constructor(file: string, src: string, limits: ParseLimits) {
    this.file = file;
    this.src = src;
    this.limits = limits;
    this.toks = tokenize(file, src);
    this.out = { name: file, proto: create(FileDescriptorProtoSchema, { name: file }), refs: [], options: [], importPos: new Map(), declared: new Map() };
  }

  parseFile(): ParsedFile {
    const f = this.out.proto;
    const fileOptions: OptionStatement[] = [];
    if (this.isIdent('syntax')) {
      this.next();
      this.expect('=');
      const t = this.expectKind('string', 'a syntax string');
      if (t.text !== 'proto2' && t.text !== 'proto3') this.failAt(t, `unknown syntax "${t.text}"; expected "proto2" or "proto3"`);
      this.proto3 = t.text === 'proto3';
      if (this.proto3) f.syntax = 'proto3';
      this.expect(';');
    } else if (this.isIdent('edition')) {
      this.failAt(this.peek(), 'editions are not supported; use syntax = "proto3" (or "proto2")');
    }
    let sawPackage = false;
    while (this.peek().kind !== 'eof') {
      const t = this.peek();
      if (this.accept(';')) continue;
      if (t.kind !== 'ident') this.failAt(t, `expected a top-level statement (message, enum, service, import, option, package), got '${t.text}'`);
      switch (t.text) {
        case 'package': {
          if (sawPackage) this.failAt(t, 'more than one package statement');
          sawPackage = true;
          this.next();
          this.pkg = this.fullIdent();
          f.package = this.pkg;
          this.expect(';');
          break;
        }
        case 'import': {
          this.next();
          let kind = '';
          if (this.isIdent('public') || this.isIdent('weak')) kind = this.next().text;
          const p = this.expectKind('string', 'an import path');
          if (this.out.importPos.has(p.text)) this.failAt(p, `"${p.text}" is imported twice`);
          this.out.importPos.set(p.text, { line: p.line, col: p.col });
          if (kind === 'public') f.publicDependency.push(f.dependency.length);
          if (kind === 'weak') f.weakDependency.push(f.dependency.length);
          f.dependency.push(p.text);
          this.expect(';');
          break;
        }
        case 'option':
          this.next();
          fileOptions.push(this.optionStatement());
          this.expect(';');
          break;
        case 'message':
          f.messageType.push(this.message(this.pkg, 1));
          break;
        case 'enum':
          f.enumType.push(this.enumDecl(this.pkg));
          break;
        case 'service':
          this.service(f);
          break;
        case 'extend':
          this.extend(this.pkg, f.extension, undefined, 1);
          break;
        default:
          this.failAt(t, `expected a top-level statement (message, enum, service, import, option, package), got '${t.text}'`);
      }
    }
    if (fileOptions.length > 0) this.out.options.push({ kind: 'FileOptions', target: f, statements: fileOptions, scope: this.pkg });
    return this.out;
  }

  // ---- declarations ----

  private message(scope: string, depth: number): DescriptorProto {
    if (depth > this.limits.maxNesting) this.failAt(this.peek(), `messages nested more than ${this.limits.maxNesting} deep`);
    this.next(); // message
    const nameTok = this.expectKind('ident', 'a message name');
    const full = this.declareSymbol(scope, nameTok);
    const m = create(DescriptorProtoSchema, { name: nameTok.text });
    this.expect('{');
    this.messageBody(m, full, depth);
    return m;
  }

  private messageBody(m: DescriptorProto, full: string, depth: number): void {
    const opts: OptionStatement[] = [];
    const proto3Optionals: FieldDescriptorProto[] = [];
    while (!this.endOfBlock(`message ${full}`)) {
      const t = this.peek();
      if (t.kind === 'ident' && this.peekAt(1).kind === 'ident' && this.peekAt(2).text === '{' && (t.text === 'message' || t.text === 'enum' || t.text === 'oneof')) {
        if (t.text === 'message') m.nestedType.push(this.message(full, depth + 1));
        else if (t.text === 'enum') m.enumType.push(this.enumDecl(full));
        else this.oneof(m, full);
        continue;
      }
      if (this.blockOption(opts)) continue;
      if (this.isIdent('extend') && this.peekAt(1).text !== '=') {
        this.extend(full, m.extension, m, depth + 1);
        continue;
      }
      if (this.isIdent('reserved') && this.peekAt(1).text !== '=') {
        this.reserved(m);
        continue;
      }
      if (this.isIdent('extensions') && this.peekAt(1).text !== '=') {
        this.extensions(m, full);
        continue;
      }
      if (this.isIdent('map') && this.peekAt(1).text === '<') {
        this.mapField(m, full);
        continue;
      }
      const f = this.field(full, m, undefined);
      if (f.proto3Optional) proto3Optionals.push(f);
    }
    // protoc puts the synthetic oneofs of proto3 `optional` fields after the real ones.
    for (const f of proto3Optionals) {
      let name = `_${f.name}`;
      while (m.oneofDecl.some((o) => o.name === name) || m.field.some((x) => x.name === name)) name = `X${name}`;
      f.oneofIndex = m.oneofDecl.length;
      m.oneofDecl.push(create(OneofDescriptorProtoSchema, { name }));
    }
    if (opts.length > 0) this.out.options.push({ kind: 'MessageOptions', target: m, statements: opts, scope: full });
  }

  /** A field in a message, a oneof or an extend block. */
  private field(scope: string, m: DescriptorProto | undefined, oneofIndex: number | undefined, extendee?: { name: string; pos: Pos }): FieldDescriptorProto {
    const start = this.peek();
    let label: Label | undefined;
    const labelled = (this.isIdent('optional') || this.isIdent('required') || this.isIdent('repeated')) && (this.peekAt(1).kind === 'ident' || this.peekAt(1).text === '.');
    if (oneofIndex === undefined && labelled) {
      const l = this.next();
      if (l.text === 'required' && this.proto3) this.failAt(l, "required fields are not allowed in proto3");
      label = l.text === 'optional' ? Label.OPTIONAL : l.text === 'required' ? Label.REQUIRED : Label.REPEATED;
    } else if (oneofIndex !== undefined && labelled) {
      this.failAt(this.peek(), `fields in a oneof take no label ('${this.peek().text}')`);
    } else if (!this.proto3 && oneofIndex === undefined) {
      this.failAt(start, `expected a label (optional, required or repeated) before the field: proto2 needs one`);
    }
    if (this.isIdent('group')) this.failAt(this.peek(), 'groups are not supported');
    const typeTok = this.peek();
    const typeName = this.typeName();
    const nameTok = this.expectKind('ident', 'a field name');
    this.expect('=');
    const number = this.fieldNumber();
    const f = create(FieldDescriptorProtoSchema, { name: nameTok.text, number });
    f.label = label ?? Label.OPTIONAL;
    if (label === Label.OPTIONAL && this.proto3 && extendee === undefined) f.proto3Optional = true;
    if (oneofIndex !== undefined) f.oneofIndex = oneofIndex;
    const ref: PendingRef = { kind: 'field', name: typeName, scope, pos: pos(typeTok), field: f };
    const scalar = SCALAR_TYPES[typeName];
    if (scalar !== undefined) f.type = scalar;
    else this.out.refs.push(ref);
    // protoc fills json_name for every field (a set's reader need not compute it).
    f.jsonName = jsonName(f.name);
    if (extendee !== undefined) f.extendee = extendee.name;
    const opts = this.fieldOptions(f, ref, extendee !== undefined);
    this.expect(';');
    if (extendee === undefined) {
      m!.field.push(f);
    } else {
      this.declareSymbol(scope, nameTok);
      this.out.refs.push({ kind: 'extendee', name: extendee.name, scope, pos: extendee.pos, field: f });
    }
    if (opts.length > 0) this.out.options.push({ kind: 'FieldOptions', target: f, statements: opts, scope });
    return f;
  }

  private mapField(m: DescriptorProto, scope: string): void {
    this.next(); // map
    this.expect('<');
    const keyTok = this.expectKind('ident', 'a map key type');
    if (!MAP_KEY_TYPES.has(keyTok.text)) this.failAt(keyTok, `'${keyTok.text}' cannot be a map key; expected an integer type, bool or string`);
    this.expect(',');
    const valueTok = this.peek();
    const valueType = this.typeName();
    this.expect('>');
    const nameTok = this.expectKind('ident', 'a field name');
    this.expect('=');
    const number = this.fieldNumber();
    const entryName = mapEntryName(nameTok.text);
    const entryFull = this.declareSymbol(scope, { ...nameTok, text: entryName });
    const entry = create(DescriptorProtoSchema, { name: entryName, options: create(MessageOptionsSchema, { mapEntry: true }) });
    const key = create(FieldDescriptorProtoSchema, { name: 'key', number: 1, label: Label.OPTIONAL, type: SCALAR_TYPES[keyTok.text]!, jsonName: 'key' });
    const value = create(FieldDescriptorProtoSchema, { name: 'value', number: 2, label: Label.OPTIONAL, jsonName: 'value' });
    const vs = SCALAR_TYPES[valueType];
    if (vs !== undefined) value.type = vs;
    else this.out.refs.push({ kind: 'field', name: valueType, scope, pos: pos(valueTok), field: value });
    entry.field.push(key, value);
    m.nestedType.push(entry);
    const f = create(FieldDescriptorProtoSchema, { name: nameTok.text, number, label: Label.REPEATED, type: Type.MESSAGE, typeName: `.${entryFull}`, jsonName: jsonName(nameTok.text) });
    const opts = this.fieldOptions(f, undefined);
    this.expect(';');
    m.field.push(f);
    if (opts.length > 0) this.out.options.push({ kind: 'FieldOptions', target: f, statements: opts, scope });
  }

  private oneof(m: DescriptorProto, scope: string): void {
    this.next(); // oneof
    const nameTok = this.expectKind('ident', 'a oneof name');
    const index = m.oneofDecl.length;
    const o = create(OneofDescriptorProtoSchema, { name: nameTok.text });
    m.oneofDecl.push(o);
    this.expect('{');
    const opts: OptionStatement[] = [];
    let fields = 0;
    while (!this.endOfBlock(`oneof ${nameTok.text}`)) {
      if (this.blockOption(opts)) continue;
      if (this.isIdent('map') && this.peekAt(1).text === '<') this.failAt(this.peek(), 'map fields cannot be in a oneof');
      this.field(scope, m, index);
      fields++;
    }
    if (fields === 0) this.failAt(nameTok, `oneof ${nameTok.text} has no fields`);
    if (opts.length > 0) this.out.options.push({ kind: 'OneofOptions', target: o, statements: opts, scope });
  }

  private extend(scope: string, into: FieldDescriptorProto[], _m: DescriptorProto | undefined, depth: number): void {
    if (depth > this.limits.maxNesting + 1) this.failAt(this.peek(), `messages nested more than ${this.limits.maxNesting} deep`);
    this.next(); // extend
    const t = this.peek();
    const extendee = this.typeName();
    this.expect('{');
    while (!this.endOfBlock(`extend ${extendee}`)) {
      into.push(this.field(scope, undefined, undefined, { name: extendee, pos: pos(t) }));
    }
  }

  private enumDecl(scope: string): EnumDescriptorProto {
    this.next(); // enum
    const nameTok = this.expectKind('ident', 'an enum name');
    const full = this.declareSymbol(scope, nameTok);
    const e = create(EnumDescriptorProtoSchema, { name: nameTok.text });
    this.expect('{');
    const opts: OptionStatement[] = [];
    while (!this.endOfBlock(`enum ${full}`)) {
      const t = this.peek();
      if (this.blockOption(opts)) continue;
      if (this.isIdent('reserved') && this.peekAt(1).text !== '=') {
        this.next();
        if (this.peek().kind === 'string') {
          do e.reservedName.push(this.expectKind('string', 'a reserved name').text);
          while (this.accept(','));
        } else {
          do {
            const [start, end] = this.range(-0x80000000, 0x7fffffff, true);
            e.reservedRange.push(create(EnumDescriptorProto_EnumReservedRangeSchema, { start, end }));
          } while (this.accept(','));
        }
        this.expect(';');
        continue;
      }
      const vName = this.expectKind('ident', 'an enum value name');
      // Enum values are siblings of their enum (C++ scoping): their full name is in the enum's scope.
      this.declareSymbol(scope, vName);
      this.expect('=');
      const neg = this.accept('-');
      const numTok = this.expectKind('int', 'an enum value number');
      const n = (neg ? -1 : 1) * parseIntLiteral(numTok.text);
      if (n < -0x80000000 || n > 0x7fffffff) this.failAt(numTok, `enum value ${vName.text} = ${neg ? '-' : ''}${numTok.text} is out of the int32 range`);
      if (e.value.length === 0 && this.proto3 && n !== 0) this.failAt(numTok, `the first value of enum ${full} must be 0 in proto3`);
      const v = create(EnumValueDescriptorProtoSchema, { name: vName.text, number: n });
      const vOpts = this.accept('[') ? this.optionList() : [];
      this.expect(';');
      e.value.push(v);
      if (vOpts.length > 0) this.out.options.push({ kind: 'EnumValueOptions', target: v, statements: vOpts, scope });
    }
    if (e.value.length === 0) this.failAt(nameTok, `enum ${full} has no values`);
    if (opts.length > 0) this.out.options.push({ kind: 'EnumOptions', target: e, statements: opts, scope });
    return e;
  }

  private service(f: FileDescriptorProto): void {
    this.next(); // service
    const nameTok = this.expectKind('ident', 'a service name');
    const full = this.declareSymbol(this.pkg, nameTok);
    const s = create(ServiceDescriptorProtoSchema, { name: nameTok.text });
    f.service.push(s);
    this.expect('{');
    const opts: OptionStatement[] = [];
    while (!this.endOfBlock(`service ${full}`)) {
      const t = this.peek();
      if (this.blockOption(opts)) continue;
      if (!this.isIdent('rpc')) this.failAt(t, `expected 'rpc' or 'option' in service ${full}, got '${t.text}'`);
      this.next();
      const mName = this.expectKind('ident', 'a method name');
      this.declareSymbol(full, mName);
      const m = create(MethodDescriptorProtoSchema, { name: mName.text });
      // Set only when streamed: descriptor.proto is proto2, so an explicit false would be written out.
      if (this.methodType('input', full, m)) m.clientStreaming = true;
      if (!this.isIdent('returns')) this.failAt(this.peek(), `expected 'returns' after the request type of ${mName.text}, got '${this.peek().text}'`);
      this.next();
      if (this.methodType('output', full, m)) m.serverStreaming = true;
      const mOpts: OptionStatement[] = [];
      if (this.accept('{')) {
        while (!this.endOfBlock(`rpc ${mName.text}`)) {
          if (!this.isIdent('option')) this.failAt(this.peek(), `expected 'option' in rpc ${mName.text}, got '${this.peek().text}'`);
          this.next();
          mOpts.push(this.optionStatement());
          this.expect(';');
        }
        this.accept(';');
      } else {
        this.expect(';');
      }
      s.method.push(m);
      if (mOpts.length > 0) this.out.options.push({ kind: 'MethodOptions', target: m, statements: mOpts, scope: full });
    }
    if (opts.length > 0) this.out.options.push({ kind: 'ServiceOptions', target: s, statements: opts, scope: full });
  }

  /** Inside `{ … }`: skips empty statements; true once the closing '}' is consumed. */
  private endOfBlock(what: string): boolean {
    while (this.accept(';'));
    if (this.accept('}')) return true;
    if (this.peek().kind === 'eof') this.failAt(this.peek(), `missing '}' closing ${what}`);
    return false;
  }

  /** An `option name = value;` statement in a block (not a field whose type is named option). */
  private blockOption(into: OptionStatement[]): boolean {
    if (!this.isIdent('option') || this.peekAt(1).text === '=') return false;
    this.next();
    into.push(this.optionStatement());
    this.expect(';');
    return true;
  }

  /** `( [stream] Type )`: records the type to resolve; true if streamed. */
  private methodType(kind: 'input' | 'output', scope: string, m: MethodDescriptorProto): boolean {
    this.expect('(');
    const streamed = this.isIdent('stream') && this.peekAt(1).text !== ')';
    if (streamed) this.next();
    const t = this.peek();
    this.out.refs.push({ kind, name: this.typeName(), scope, pos: pos(t), method: m });
    this.expect(')');
    return streamed;
  }

  private reserved(m: DescriptorProto): void {
    this.next(); // reserved
    if (this.peek().kind === 'string') {
      do m.reservedName.push(this.expectKind('string', 'a reserved name').text);
      while (this.accept(','));
    } else {
      do {
        const [start, end] = this.range(1, MAX_FIELD_NUMBER, false);
        m.reservedRange.push(create(DescriptorProto_ReservedRangeSchema, { start, end }));
      } while (this.accept(','));
    }
    this.expect(';');
  }

  private extensions(m: DescriptorProto, scope: string): void {
    this.next(); // extensions
    const ranges = [];
    do {
      const [start, end] = this.range(1, MAX_FIELD_NUMBER, false);
      ranges.push(create(DescriptorProto_ExtensionRangeSchema, { start, end }));
    } while (this.accept(','));
    const opts = this.accept('[') ? this.optionList() : [];
    this.expect(';');
    for (const r of ranges) {
      m.extensionRange.push(r);
      if (opts.length > 0) this.out.options.push({ kind: 'ExtensionRangeOptions', target: r, statements: opts, scope });
    }
  }

  /** `N`, `N to M`, `N to max`: descriptor ranges are end-exclusive, except enums' (inclusive). */
  private range(min: number, max: number, inclusive: boolean): [number, number] {
    const num = (): number => {
      const neg = this.accept('-');
      const t = this.expectKind('int', 'a number');
      const n = (neg ? -1 : 1) * parseIntLiteral(t.text);
      if (n < min || n > max) this.failAt(t, `${neg ? '-' : ''}${t.text} is out of range ${min} to ${max}`);
      return n;
    };
    const start = num();
    let end = start;
    if (this.isIdent('to')) {
      this.next();
      if (this.isIdent('max')) {
        this.next();
        end = max;
      } else {
        end = num();
      }
      if (end < start) this.failAt(this.peek(), `range ${start} to ${end} ends before it starts`);
    }
    return [start, inclusive ? end : end + 1];
  }

  // ---- options ----

  private fieldOptions(f: FieldDescriptorProto, ref: PendingRef | undefined, isExtension = false): OptionStatement[] {
    if (!this.accept('[')) return [];
    const all = this.optionList();
    const rest: OptionStatement[] = [];
    for (const o of all) {
      const simple = o.name.length === 1 && !o.name[0]!.ext ? o.name[0]!.name : undefined;
      if (simple === 'json_name') {
        if (o.str === undefined) this.failAtPos(o.pos, 'json_name must be a string');
        if (isExtension) this.failAtPos(o.pos, 'json_name is not allowed on extensions');
        f.jsonName = o.str!;
      } else if (simple === 'default') {
        if (this.proto3) this.failAtPos(o.pos, 'default values are not allowed in proto3');
        // A field still to resolve (ref) is an enum or a message; f.type would read descriptor.proto's proto2 default.
        const scalar = ref === undefined || SCALAR_TYPES[ref.name] !== undefined;
        f.defaultValue = defaultText(scalar ? f.type : undefined, o, (what) => this.failAtPos(o.pos, what));
        if (ref !== undefined) ref.defaultPos = o.pos;
      } else {
        rest.push(o);
      }
    }
    return rest;
  }

  /** After '[': `name = value, ...]`. */
  private optionList(): OptionStatement[] {
    const out: OptionStatement[] = [];
    do out.push(this.optionStatement());
    while (this.accept(','));
    this.expect(']');
    return out;
  }

  /** `name = constant` (after the `option` keyword, if any). */
  private optionStatement(): OptionStatement {
    const start = this.peek();
    const name: OptionName[] = [];
    do {
      if (this.accept('(')) {
        const lead = this.accept('.') ? '.' : '';
        name.push({ name: lead + this.fullIdent(), ext: true });
        this.expect(')');
      } else {
        name.push({ name: this.expectKind('ident', 'an option name').text, ext: false });
      }
    } while (this.accept('.'));
    this.expect('=');
    return { name, ...this.constant(), pos: pos(start) };
  }

  private constant(): { text: string; ident?: string; str?: string; bytes?: Uint8Array } {
    const t = this.peek();
    if (t.kind === 'string') {
      const parts: Uint8Array[] = [];
      while (this.peek().kind === 'string') parts.push(this.next().bytes!);
      const bytes = Buffer.concat(parts);
      return { text: quoteBytes(bytes), str: bytes.toString('utf8'), bytes };
    }
    if (t.text === '{') return { text: this.aggregate() };
    if (t.kind === 'ident') {
      const id = this.fullIdent();
      return { text: id, ident: id };
    }
    let sign = '';
    if (t.text === '-' || t.text === '+') {
      sign = this.next().text === '-' ? '-' : '';
      const n = this.peek();
      if (n.kind === 'ident' && (n.text === 'inf' || n.text === 'nan')) return { text: sign + this.next().text };
    }
    const n = this.peek();
    if (n.kind === 'int' || n.kind === 'float') return { text: sign + this.next().text };
    return this.failAt(n, `expected an option value (a number, string, identifier or {…}), got '${n.text || 'end of file'}'`);
  }

  /** `{ … }` kept as its source text: an aggregate is protobuf text format already. */
  private aggregate(): string {
    const open = this.next();
    let depth = 1;
    while (depth > 0) {
      const t = this.next();
      if (t.kind === 'eof') this.failAt(open, "missing '}' closing this option value");
      if (t.text === '{' && t.kind === 'symbol') {
        if (++depth > this.limits.maxNesting) this.failAt(t, `option value nested more than ${this.limits.maxNesting} deep`);
      } else if (t.text === '}' && t.kind === 'symbol') {
        depth--;
      }
    }
    const close = this.toks[this.i - 1]!;
    // Re-emit strings from their decoded values so escapes mean the same to the text-format reader.
    let text = '';
    let at = open.start;
    for (let k = this.toks.indexOf(open); k < this.i; k++) {
      const tok = this.toks[k]!;
      if (tok.kind !== 'string') continue;
      text += this.src.slice(at, tok.start) + quoteBytes(tok.bytes!);
      at = tok.end;
    }
    return text + this.src.slice(at, close.end);
  }

  // ---- tokens ----

  private typeName(): string {
    const lead = this.accept('.') ? '.' : '';
    return lead + this.fullIdent();
  }

  private fullIdent(): string {
    let s = this.expectKind('ident', 'a name').text;
    while (this.peek().text === '.' && this.peekAt(1).kind === 'ident') {
      this.next();
      s += '.' + this.next().text;
    }
    return s;
  }

  private fieldNumber(): number {
    const t = this.expectKind('int', 'a field number');
    const n = parseIntLiteral(t.text);
    if (n < 1 || n > MAX_FIELD_NUMBER) this.failAt(t, `field number ${t.text} is out of range 1 to ${MAX_FIELD_NUMBER}`);
    if (n >= 19000 && n <= 19999) this.failAt(t, `field number ${n} is reserved for the protobuf implementation (19000 to 19999)`);
    return n;
  }

  /** Records a symbol in this file; the full name, or an error if the file declares it twice. */
  private declareSymbol(scope: string, t: Token): string {
    const full = scope === '' ? t.text : `${scope}.${t.text}`;
    const prev = this.out.declared.get(full);
    if (prev !== undefined) this.failAt(t, `"${full}" is already defined at ${this.file}:${prev.line}:${prev.col}`);
    this.out.declared.set(full, pos(t));
    return full;
  }

  private peek(): Token {
    return this.toks[this.i]!;
  }

  private peekAt(k: number): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)]!;
  }

  private next(): Token {
    const t = this.toks[this.i]!;
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  private isIdent(text: string): boolean {
    const t = this.peek();
    return t.kind === 'ident' && t.text === text;
  }

  private accept(sym: string): boolean {
    const t = this.peek();
    if (t.kind === 'symbol' && t.text === sym) {
      this.i++;
      return true;
    }
    return false;
  }

  private expect(sym: string): void {
    if (!this.accept(sym)) this.failAt(this.peek(), `expected '${sym}', got ${describe(this.peek())}`);
  }

  private expectKind(kind: Token['kind'], what: string): Token {
    const t = this.peek();
    if (t.kind !== kind) this.failAt(t, `expected ${what}, got ${describe(t)}`);
    return this.next();
  }

  private failAt(t: Token, what: string): never {
    throw new ProtoSyntaxError(this.file, t.line, t.col, what);
  }

  private failAtPos(p: Pos, what: string): never {
    throw new ProtoSyntaxError(this.file, p.line, p.col, what);
  }
}

function pos(t: Token): Pos {
  return { line: t.line, col: t.col };
}

function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of file';
  if (t.kind === 'string') return `string ${JSON.stringify(t.text)}`;
  return `'${t.text}'`;
}

function parseIntLiteral(s: string): number {
  if (/^0[xX]/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0[0-7]+$/.test(s)) return parseInt(s.slice(1), 8);
  return Number(s);
}

/** protoc's ToJsonName: drop underscores, upper-case the letter after each. */
export function jsonName(name: string): string {
  return camel(name, false);
}

/** protoc's MapEntryName: `item_counts` → `ItemCountsEntry`. */
function mapEntryName(field: string): string {
  return camel(field, true) + 'Entry';
}

function camel(name: string, upFirst: boolean): string {
  let out = '';
  let up = upFirst;
  for (const c of name) {
    if (c === '_') up = true;
    else if (up) {
      out += c >= 'a' && c <= 'z' ? c.toUpperCase() : c;
      up = false;
    } else out += c;
  }
  return out;
}

/**
 * A proto2 default as protocompile writes it in default_value: integers in decimal, floats as Go's %v
 * (shortest digits; exponent form below 1e-4 or from 1e6), a bytes default C-escaped, a string as it is,
 * enum values and bools by name. (protoc writes floats with %.15g: 1234567 where this writes 1.234567e+06.)
 */
function defaultText(type: Type | undefined, o: OptionStatement, fail: (what: string) => never): string {
  if (type === Type.BYTES || type === Type.STRING) {
    if (o.bytes === undefined) fail(`the default of a ${type === Type.BYTES ? 'bytes' : 'string'} field must be a string`);
    return type === Type.BYTES ? cEscape(o.bytes!) : o.str!;
  }
  if (type === Type.DOUBLE || type === Type.FLOAT) {
    const neg = o.text.startsWith('-');
    const body = neg ? o.text.slice(1) : o.text;
    let v = body === 'inf' ? Infinity : body === 'nan' ? NaN : /^0[xX]|^0[0-7]+$/.test(body) ? parseIntLiteral(body) : Number(body);
    if (Number.isNaN(v) && body !== 'nan') fail(`default ${o.text} is not a number`);
    if (neg) v = -v;
    if (type === Type.FLOAT) v = shortestFloat32(Math.fround(v));
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    if (v === 0) return Object.is(v, -0) && /[.eE]/.test(body) ? '-0' : '0';
    return goFloat(v);
  }
  if (type !== undefined && type !== Type.BOOL && type !== Type.ENUM && type !== Type.MESSAGE) {
    const neg = o.text.startsWith('-');
    const body = neg ? o.text.slice(1) : o.text;
    if (!/^(0[xX][0-9a-fA-F]+|\d+)$/.test(body)) fail(`default ${o.text} is not an integer`);
    const n = /^0[xX]/.test(body) ? BigInt(body) : /^0[0-7]+$/.test(body) ? BigInt('0o' + body.slice(1)) : BigInt(body);
    return String(neg ? -n : n);
  }
  return o.ident ?? o.str ?? o.text;
}

/** Go's %v of a float64: shortest digits, exponent form when the exponent is < -4 or >= 6 ("1e+06", "1e-05"). */
function goFloat(v: number): string {
  const [mant, e] = v.toExponential().split('e') as [string, string];
  const exp = Number(e);
  if (exp >= -4 && exp < 6) return String(v);
  return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** A string literal as text format reads it: printable ASCII as it is, every other byte \ooo. */
function quoteBytes(b: Uint8Array): string {
  let out = '"';
  for (const c of b) {
    if (c === 34 || c === 92) out += '\\' + String.fromCharCode(c);
    else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
    else out += '\\' + c.toString(8).padStart(3, '0');
  }
  return out + '"';
}

/** protoc's CEscape (how a bytes field's default_value is stored). */
function cEscape(b: Uint8Array): string {
  const named: Record<number, string> = { 10: '\\n', 13: '\\r', 9: '\\t', 34: '\\"', 39: "\\'", 92: '\\\\' };
  let out = '';
  for (const c of b) out += named[c] ?? (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '\\' + c.toString(8).padStart(3, '0'));
  return out;
}
