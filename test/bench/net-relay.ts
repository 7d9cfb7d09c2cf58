// Spike (issue 13, item 4): the unary pass-through of test/bench/lean-proxy.ts without node:http2, on plain
// node:net sockets with a minimal HTTP/2 frame relay. Same CLI shape:
//   node --max-semi-space-size=4 --max-old-space-size=128 test/bench/net-relay.ts --listen 127.0.50.2:15001 --upstream 127.0.50.1:15006
// Accepts h2c with prior knowledge; keeps one pooled h2c connection to --upstream; every client stream becomes
// a new upstream stream (the stream ids are mapped, the two stream objects point at each other). Header
// blocks (HEADERS + CONTINUATION) are decoded and re-encoded with HPACK from hpack.js (its decoder, tables,
// Huffman code and encoder primitives; only the per-field loop that drives them is here, so that no stream
// object is built per block). DATA is relayed with flow control honoured both ways: the peer's windows
// (SETTINGS_INITIAL_WINDOW_SIZE, including changes and negative windows, WINDOW_UPDATE) bound what is sent,
// the rest is queued; the credit for what a peer sent is returned only once it has been passed on, so the
// memory held is bounded by the windows advertised here (1 MiB a stream, 16 MiB a connection, as the lean
// pair and the sidecar). SETTINGS, PING, GOAWAY, RST_STREAM, PRIORITY (parsed, ignored) are handled;
// PUSH_PROMISE is refused (PROTOCOL_ERROR), unknown frame types are ignored as RFC 9113 requires, any frame
// that breaks the frame, stream-state or header-field rules gets the connection or stream error RFC 9113
// names. Requests and responses are checked as RFC 9113 §8 asks (pseudo-headers, field names and values,
// connection-specific fields, content-length of requests). Limits: 1000 streams a connection, 64 KiB of
// decoded header list (else 431), 128 KiB / 128 frames of one compressed header block, a client resetting
// more than nghttp2 allows (1000 in a burst, then 33/s) is cut (ENHANCE_YOUR_CALM), and the resets sent
// upstream are budgeted (see spendReset). Not done (this is a spike): priorities, server push, CONNECT
// (answered 501), timeouts of any kind (idle, SETTINGS ACK, slow header blocks), limits on PING/SETTINGS
// floods other than cutting a socket with 32 MiB unread, on the number of connections, on the upstream's
// SETTINGS_MAX_HEADER_LIST_SIZE; upstream stream limit answered UNAVAILABLE, not queued; no TLS, no metrics,
// no logging unless NET_RELAY_DEBUG=1. Frames go out through one 64 KiB buffer per connection, written once
// per turn of the event loop. Prints `listening <host>:<port>`.
import { createRequire } from 'node:module';
import module from 'node:module';
import net from 'node:net';
import process from 'node:process';
import { parseArgs } from 'node:util';

// ---------------------------------------------------------------- hpack.js (CommonJS, no types of its own)

interface HpackEntry { name: string; value: string; nameSize: number; totalSize: number; ok?: boolean }
interface HpackTable {
  dynamic: HpackEntry[];
  maxSize: number;
  lookup(index: number): HpackEntry;
  reverseLookup(name: string, value: string): number;
  add(name: string, value: string, nameSize: number, valueSize: number): void;
  updateSize(size: number): void;
}
interface HpackDecoder { isEmpty(): boolean; push(chunk: Buffer): void; decodeBit(): number; decodeInt(): number; decodeStr(): number[] | Buffer }
interface HpackEncoder { encodeBit(bit: number): void; encodeBits(bits: number, len: number): void; encodeInt(n: number): void; encodeStr(bytes: number[], huffman: boolean): void; render(): Buffer[] }
interface Hpack {
  table: { create(o: { maxSize: number }): HpackTable };
  decoder: { create(): HpackDecoder };
  encoder: { create(): HpackEncoder };
  utils: { stringify(a: number[]): string; toArray(s: string): number[] };
  'static-table': { table: HpackEntry[] };
}
const hpack = createRequire(import.meta.url)('hpack.js') as Hpack;
const STATIC_LEN = hpack['static-table'].table.length; // 61

// ---------------------------------------------------------------- protocol constants

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const T_DATA = 0, T_HEADERS = 1, T_PRIORITY = 2, T_RST = 3, T_SETTINGS = 4, T_PUSH = 5, T_PING = 6, T_GOAWAY = 7, T_WU = 8, T_CONT = 9;
const F_END_STREAM = 0x1, F_ACK = 0x1, F_END_HEADERS = 0x4, F_PADDED = 0x8, F_PRIORITY = 0x20;
const E_NO = 0, E_PROTOCOL = 1, E_INTERNAL = 2, E_FLOW = 3, E_STREAM_CLOSED = 5, E_FRAME_SIZE = 6, E_REFUSED = 7, E_CANCEL = 8, E_COMPRESSION = 9, E_CALM = 0xb;
const MAX_WINDOW = 0x7fffffff;
const DEFAULT_WINDOW = 65535;
/** SETTINGS_MAX_FRAME_SIZE here: the default, never raised. */
const MAX_FRAME = 16384;
const STREAM_WINDOW = 1024 * 1024;
const CONN_WINDOW = 16 * 1024 * 1024;
const MAX_STREAMS = 1000;
const TABLE_SIZE = 4096;
const MAX_HEADER_LIST = 64 * 1024;
/** Compressed bytes of one header block (HEADERS + CONTINUATION) before the connection is dropped. */
const MAX_BLOCK = 128 * 1024;
const MAX_FIELDS = 4096;
const MAX_CONTINUATIONS = 128;
const OUT_SIZE = 64 * 1024;
/** DATA payloads up to this size are copied into the output buffer; larger ones are written as they are. */
const COPY_LIMIT = 16384;
/** Bytes queued in a socket (beyond what the windows allow, i.e. control frames nobody reads) before it is cut. */
const MAX_BUFFERED = 32 * 1024 * 1024;
const CLOSED_RING = 64;
const DEBUG = process.env.NET_RELAY_DEBUG === '1';

// ---------------------------------------------------------------- streams and connections

/** One end of a relayed call: a stream on one connection; `other` is its counterpart on the other side. */
class Strm {
  conn: Conn;
  id: number;
  other: Strm | null = null;
  /** What the peer lets us send on this stream. */
  sendWindow: number;
  /** What the peer may still send us on this stream, and what it sent that we passed on but not yet credited. */
  recvWindow = STREAM_WINDOW;
  recvUnacked = 0;
  recvEnded = false;
  sendEnded = false;
  closed = false;
  /** The request headers (server side) or the final response headers (client side) arrived. */
  gotHeaders = false;
  /** The final response headers went out (server side). */
  sentHeaders = false;
  contentLength = -1;
  received = 0;
  /** DATA waiting for window, then END_STREAM or trailers. */
  q: Buffer[] | null = null;
  qEnd = false;
  qTrailers: string[] | null = null;
  blocked = false;
  /** The upstream answered in full and reset NO_ERROR: the rest of the request is dropped, then reset NO_ERROR. */
  discard = false;
  constructor(conn: Conn, id: number, sendWindow: number) {
    this.conn = conn;
    this.id = id;
    this.sendWindow = sendWindow;
  }
}

class Conn {
  readonly sock: net.Socket;
  /** true: a client's connection to us; false: our connection to the upstream. */
  readonly server: boolean;
  dead = false;
  rbuf: Buffer | null = null;
  prefaceLeft: number;
  sawSettings = false;
  // a header block in progress (HEADERS without END_HEADERS, then CONTINUATION)
  contId = 0;
  contFlags = 0;
  contSelfDep = false;
  contParts: Buffer[] = [];
  contLen = 0;
  // the peer's settings
  peerMaxFrame = 16384;
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxStreams = 0xffffffff;
  // connection windows
  sendWindow = DEFAULT_WINDOW;
  recvWindow = CONN_WINDOW;
  recvUnacked = 0;
  readonly streams = new Map<number, Strm>();
  lastPeerId = 0;
  nextId = 1;
  goawayRecv = false;
  draining = false;
  blocked: Strm[] = [];
  /** Reset budget: ours towards the upstream (client side), the client's towards us (server side). */
  resetTokens: number;
  resetAt = performance.now();
  orphans: Strm[] = [];
  readonly dec = hpack.decoder.create();
  readonly decTable = hpack.table.create({ maxSize: TABLE_SIZE });
  readonly encTable = hpack.table.create({ maxSize: TABLE_SIZE });
  encUpdMin = -1;
  encUpdFinal = -1;
  out = Buffer.allocUnsafe(OUT_SIZE);
  outLen = 0;
  dirty = false;
  readonly closedIds = new Int32Array(CLOSED_RING);
  readonly closedByUs = new Uint8Array(CLOSED_RING);
  closedPos = 0;
  constructor(sock: net.Socket, server: boolean) {
    this.sock = sock;
    this.server = server;
    this.prefaceLeft = server ? PREFACE.length : 0;
    this.resetTokens = server ? 1000 : RESET_BURST;
  }
}

// ---------------------------------------------------------------- output

const dirtyConns: Conn[] = [];
let flushScheduled = false;

function markDirty(c: Conn): void {
  if (c.dirty) return;
  c.dirty = true;
  dirtyConns.push(c);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}

function flushAll(): void {
  flushScheduled = false;
  for (let i = 0; i < dirtyConns.length; i++) {
    const c = dirtyConns[i]!;
    c.dirty = false;
    flushConn(c);
  }
  dirtyConns.length = 0;
}

function flushConn(c: Conn): void {
  if (c.outLen === 0) return;
  const sock = c.sock;
  if (sock.destroyed) {
    c.outLen = 0;
    return;
  }
  sock.write(c.out.subarray(0, c.outLen));
  c.outLen = 0;
  // Written at once (the usual case): the buffer is free again. Otherwise the socket holds it: take a new one.
  if (sock.writableLength !== 0) {
    c.out = Buffer.allocUnsafe(OUT_SIZE);
    if (sock.writableLength > MAX_BUFFERED) {
      debug(c, `peer does not read (${sock.writableLength} bytes queued): cut`);
      sock.destroy();
    }
  }
}

/** Writes a frame header and makes room for `reserve` payload bytes after it; returns nothing, c.outLen is the payload offset. */
function begin(c: Conn, len: number, type: number, flags: number, id: number, reserve: number): void {
  if (c.outLen + 9 + reserve > OUT_SIZE) flushConn(c);
  const o = c.out;
  const p = c.outLen;
  o[p] = len >>> 16;
  o[p + 1] = (len >>> 8) & 0xff;
  o[p + 2] = len & 0xff;
  o[p + 3] = type;
  o[p + 4] = flags;
  o.writeUInt32BE(id, p + 5);
  c.outLen = p + 9;
  markDirty(c);
}

function writeU32(c: Conn, v: number): void {
  c.out.writeUInt32BE(v >>> 0, c.outLen);
  c.outLen += 4;
}

function writeRst(c: Conn, id: number, code: number): void {
  begin(c, 4, T_RST, 0, id, 4);
  writeU32(c, code);
}

function writeWindowUpdate(c: Conn, id: number, inc: number): void {
  begin(c, 4, T_WU, 0, id, 4);
  writeU32(c, inc);
}

function writeGoaway(c: Conn, lastId: number, code: number): void {
  begin(c, 8, T_GOAWAY, 0, 0, 8);
  writeU32(c, lastId);
  writeU32(c, code);
}

function writeSettings(c: Conn, pairs: number[]): void {
  begin(c, pairs.length * 3, T_SETTINGS, 0, 0, pairs.length * 3);
  for (let i = 0; i < pairs.length; i += 2) {
    c.out.writeUInt16BE(pairs[i]!, c.outLen);
    c.out.writeUInt32BE(pairs[i + 1]!, c.outLen + 2);
    c.outLen += 6;
  }
}

function writeData(c: Conn, id: number, src: Buffer, s: number, e: number, end: boolean): void {
  const len = e - s;
  if (len <= COPY_LIMIT) {
    begin(c, len, T_DATA, end ? F_END_STREAM : 0, id, len);
    src.copy(c.out, c.outLen, s, e);
    c.outLen += len;
  } else {
    begin(c, len, T_DATA, end ? F_END_STREAM : 0, id, 0);
    flushConn(c);
    if (!c.sock.destroyed) c.sock.write(src.subarray(s, e));
  }
}

// ---------------------------------------------------------------- HPACK

// The header list of the block just decoded: names, values, flags. One list, reused: a block is decoded
// and passed on (re-encoded for the other connection) before the next one is read.
const HN: string[] = [];
const HV: string[] = [];
const HF = new Uint8Array(MAX_FIELDS);
let HC = 0;
let hTooBig = false;
const FL_NEVER = 1; // never-indexed: passed on as never-indexed (RFC 7541 §7.1.3)
const FL_OK = 2; // name and value are valid field syntax (RFC 9113 §8.2.1)

/** Token characters (RFC 9110 §5.6.2), lower case only (RFC 9113 §8.2.1). */
const TOKEN = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TOKEN[ch.charCodeAt(0)] = 1;

function validName(n: string): boolean {
  const len = n.length;
  if (len === 0) return false;
  for (let i = n.charCodeAt(0) === 58 && len > 1 ? 1 : 0; i < len; i++) if (TOKEN[n.charCodeAt(i)] !== 1) return false;
  return true;
}

function validValue(v: string): boolean {
  const len = v.length;
  if (len === 0) return true;
  let ch = v.charCodeAt(0);
  if (ch === 0x20 || ch === 0x09) return false;
  ch = v.charCodeAt(len - 1);
  if (ch === 0x20 || ch === 0x09) return false;
  for (let i = 0; i < len; i++) {
    ch = v.charCodeAt(i);
    if (ch < 0x20 ? ch !== 0x09 : ch === 0x7f) return false;
  }
  return true;
}

function str(raw: number[] | Buffer): string {
  return Buffer.isBuffer(raw) ? raw.toString('latin1') : hpack.utils.stringify(raw);
}

function pushField(name: string, value: string, flags: number, size: number): number {
  size += name.length + value.length + 32;
  if (size > MAX_HEADER_LIST || HC === MAX_FIELDS) hTooBig = true;
  else {
    HN[HC] = name;
    HV[HC] = value;
    HF[HC] = flags;
    HC++;
  }
  return size;
}

/** Decodes one header block into HN/HV/HF; false on any HPACK error (a COMPRESSION_ERROR). Mirrors hpack.js's Decompressor, plus RFC 7541 §4.2. */
function decodeBlock(c: Conn, block: Buffer): boolean {
  const d = c.dec;
  const t = c.decTable;
  HC = 0;
  hTooBig = false;
  let size = 0;
  let updatesAllowed = true;
  if (block.length === 0) return true;
  d.push(block);
  try {
    while (!d.isEmpty()) {
      if (d.decodeBit() === 1) {
        const idx = d.decodeInt();
        const e = t.lookup(idx);
        size = pushField(e.name, e.value, idx <= STATIC_LEN || e.ok === true ? FL_OK : 0, size);
        updatesAllowed = false;
        continue;
      }
      const incremental = d.decodeBit();
      let never = 0;
      if (incremental === 0) {
        if (d.decodeBit() === 1) {
          // dynamic table size update: only at the start of a block (RFC 7541 §4.2), at most SETTINGS_HEADER_TABLE_SIZE (asserted by hpack.js)
          if (!updatesAllowed) return false;
          t.updateSize(d.decodeInt());
          continue;
        }
        never = d.decodeBit();
      }
      updatesAllowed = false;
      const idx = d.decodeInt();
      let name: string;
      let nameSize: number;
      let nameOk: boolean;
      if (idx === 0) {
        const raw = d.decodeStr();
        nameSize = raw.length;
        name = str(raw);
        nameOk = validName(name);
      } else {
        const e = t.lookup(idx);
        name = e.name;
        nameSize = e.nameSize;
        nameOk = idx <= STATIC_LEN || e.ok === true;
      }
      const raw = d.decodeStr();
      const value = str(raw);
      const ok = nameOk && validValue(value);
      if (incremental === 1) {
        t.add(name, value, nameSize, raw.length);
        const dyn = t.dynamic;
        if (dyn.length > 0) dyn[dyn.length - 1]!.ok = ok; // the entry just added (eviction takes the oldest)
      }
      size = pushField(name, value, (ok ? FL_OK : 0) | (never === 1 ? FL_NEVER : 0), size);
    }
  } catch (err) {
    debug(c, `HPACK: ${(err as Error).message}`);
    return false;
  }
  return true;
}

/** Fields whose values change per call: sent without indexing so they do not churn the dynamic table. */
const NO_INDEX = new Set(['grpc-timeout', 'content-length', 'date', 'x-request-id']);
const NEVER_INDEX = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
const toArray = hpack.utils.toArray;

function encodeField(enc: HpackEncoder, table: HpackTable, name: string, value: string, never: boolean): void {
  if (never || NEVER_INDEX.has(name)) {
    // literal never indexed, literal name: 0001 0000
    enc.encodeBits(1, 4);
    enc.encodeInt(0);
    enc.encodeStr(toArray(name), true);
    enc.encodeStr(toArray(value), true);
    return;
  }
  // as hpack.js's Compressor._encodeHeader: index > 0 whole field, < 0 name only, 0 nothing
  const index = table.reverseLookup(name, value);
  if (index > 0) {
    enc.encodeBit(1);
    enc.encodeInt(index);
    return;
  }
  const nameBytes = index === 0 ? toArray(name) : null;
  const valueBytes = toArray(value);
  if (NO_INDEX.has(name)) {
    enc.encodeBits(0, 4); // literal without indexing: 0000
  } else {
    enc.encodeBits(1, 2); // literal with incremental indexing: 01
    table.add(name, value, name.length, valueBytes.length);
  }
  enc.encodeInt(-index);
  if (nameBytes !== null) enc.encodeStr(nameBytes, true);
  enc.encodeStr(valueBytes, true);
}

/** Encodes a header list for connection c and writes it as HEADERS (+ CONTINUATION) on stream id. */
function writeHeaders(c: Conn, id: number, names: string[], values: string[], flags: Uint8Array | null, n: number, end: boolean): void {
  const enc = hpack.encoder.create();
  if (c.encUpdMin >= 0) {
    enc.encodeBits(1, 3);
    enc.encodeInt(c.encUpdMin);
    if (c.encUpdFinal !== c.encUpdMin) {
      enc.encodeBits(1, 3);
      enc.encodeInt(c.encUpdFinal);
    }
    c.encUpdMin = c.encUpdFinal = -1;
  }
  for (let i = 0; i < n; i++) encodeField(enc, c.encTable, names[i]!, values[i]!, flags !== null && (flags[i]! & FL_NEVER) !== 0);
  const parts = enc.render();
  let total = 0;
  for (let i = 0; i < parts.length; i++) total += parts[i]!.length;
  const chunk = Math.min(c.peerMaxFrame, MAX_FRAME);
  let first = true;
  let pi = 0;
  let po = 0;
  do {
    const len = Math.min(total, chunk);
    total -= len;
    begin(c, len, first ? T_HEADERS : T_CONT, (total === 0 ? F_END_HEADERS : 0) | (first && end ? F_END_STREAM : 0), id, len);
    let need = len;
    while (need > 0) {
      const p = parts[pi]!;
      const k = Math.min(need, p.length - po);
      p.copy(c.out, c.outLen, po, po + k);
      c.outLen += k;
      need -= k;
      po += k;
      if (po === p.length) {
        pi++;
        po = 0;
      }
    }
    first = false;
  } while (total > 0);
}

function setEncoderTableSize(c: Conn, size: number): void {
  if (size === c.encTable.maxSize && c.encUpdMin < 0) return;
  c.encTable.updateSize(size);
  c.encUpdMin = c.encUpdMin < 0 ? size : Math.min(c.encUpdMin, size);
  c.encUpdFinal = size;
}

// ---------------------------------------------------------------- HTTP semantics of a decoded list (RFC 9113 §8)

const CONNECTION_FIELDS = new Set(['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade']);
const BAD = -2;
const CONNECT = -3;
/** content-length of the list last checked (-1: none). */
let hContentLength = -1;

function contentLength(prev: number, v: string): number {
  if (!/^[0-9]{1,15}$/.test(v)) return BAD;
  const n = Number(v);
  return prev >= 0 && prev !== n ? BAD : n;
}

/** 0 = a valid request, BAD = malformed, CONNECT = a CONNECT request (not relayed). */
function checkRequest(): number {
  let method: string | undefined;
  let scheme = false;
  let path = false;
  let authority = false;
  let regular = false;
  hContentLength = -1;
  for (let i = 0; i < HC; i++) {
    if ((HF[i]! & FL_OK) === 0) return BAD;
    const n = HN[i]!;
    if (n.charCodeAt(0) === 58) {
      if (regular) return BAD;
      if (n === ':method') {
        if (method !== undefined) return BAD;
        method = HV[i]!;
      } else if (n === ':path') {
        if (path || HV[i]!.length === 0) return BAD;
        path = true;
      } else if (n === ':scheme') {
        if (scheme) return BAD;
        scheme = true;
      } else if (n === ':authority') {
        if (authority) return BAD;
        authority = true;
      } else return BAD;
    } else {
      regular = true;
      if (n === 'te') {
        if (HV[i] !== 'trailers') return BAD;
      } else if (n === 'content-length') {
        hContentLength = contentLength(hContentLength, HV[i]!);
        if (hContentLength === BAD) return BAD;
      } else if (CONNECTION_FIELDS.has(n)) return BAD;
    }
  }
  if (method === undefined || method.length === 0) return BAD;
  if (method === 'CONNECT') return CONNECT;
  return scheme && path ? 0 : BAD;
}

/** The response's :status (100-999), or BAD. */
function checkResponse(): number {
  let status = -1;
  let regular = false;
  hContentLength = -1;
  for (let i = 0; i < HC; i++) {
    if ((HF[i]! & FL_OK) === 0) return BAD;
    const n = HN[i]!;
    if (n.charCodeAt(0) === 58) {
      if (regular || n !== ':status' || status !== -1) return BAD;
      const v = HV[i]!;
      if (!/^[1-9][0-9][0-9]$/.test(v)) return BAD;
      status = Number(v);
    } else {
      regular = true;
      if (n === 'content-length') {
        hContentLength = contentLength(hContentLength, HV[i]!);
        if (hContentLength === BAD) return BAD;
      } else if (CONNECTION_FIELDS.has(n)) return BAD;
    }
  }
  return status === -1 || status === 101 ? BAD : status;
}

function checkTrailers(): boolean {
  for (let i = 0; i < HC; i++) {
    if ((HF[i]! & FL_OK) === 0) return false;
    const n = HN[i]!;
    if (n.charCodeAt(0) === 58 || CONNECTION_FIELDS.has(n)) return false;
  }
  return true;
}

function copyList(): string[] {
  const l: string[] = new Array<string>(HC * 2);
  for (let i = 0; i < HC; i++) {
    l[2 * i] = HN[i]!;
    l[2 * i + 1] = HV[i]!;
  }
  return l;
}

function writeList(c: Conn, id: number, l: string[], end: boolean): void {
  const names: string[] = [];
  const values: string[] = [];
  for (let i = 0; i < l.length; i += 2) {
    names.push(l[i]!);
    values.push(l[i + 1]!);
  }
  writeHeaders(c, id, names, values, null, names.length, end);
}

// ---------------------------------------------------------------- flow control and data

/** Credit for n bytes that arrived on s and are no longer held here. */
function credit(s: Strm, n: number): void {
  const c = s.conn;
  if (c.dead || n === 0) return;
  c.recvUnacked += n;
  if (c.recvUnacked >= CONN_WINDOW / 2) {
    writeWindowUpdate(c, 0, c.recvUnacked);
    c.recvWindow += c.recvUnacked;
    c.recvUnacked = 0;
  }
  if (s.recvEnded || s.closed) return;
  s.recvUnacked += n;
  if (s.recvUnacked >= STREAM_WINDOW / 2) {
    writeWindowUpdate(c, s.id, s.recvUnacked);
    s.recvWindow += s.recvUnacked;
    s.recvUnacked = 0;
  }
}

function creditConn(c: Conn, n: number): void {
  if (c.dead || n === 0) return;
  c.recvUnacked += n;
  if (c.recvUnacked >= CONN_WINDOW / 2) {
    writeWindowUpdate(c, 0, c.recvUnacked);
    c.recvWindow += c.recvUnacked;
    c.recvUnacked = 0;
  }
}

function creditFrom(t: Strm, n: number): void {
  const o = t.other;
  if (o !== null) credit(o, n);
}

/** Sends src[s, e) as DATA on t, as far as the windows allow; the rest waits in t.q. */
function sendData(t: Strm, src: Buffer, s: number, e: number, end: boolean): void {
  const c = t.conn;
  if (t.q !== null) {
    if (e > s) t.q.push(src.subarray(s, e));
    if (end) t.qEnd = true;
    return;
  }
  let p = s;
  for (;;) {
    const left = e - p;
    if (left === 0) {
      if (end) {
        writeData(c, t.id, src, p, p, true);
        t.sendEnded = true;
        maybeClose(t);
      }
      return;
    }
    const n = Math.min(left, t.sendWindow, c.sendWindow, c.peerMaxFrame);
    if (n <= 0) {
      t.q = [src.subarray(p, e)];
      t.qEnd = end;
      if (c.sendWindow <= 0 && !t.blocked) {
        t.blocked = true;
        c.blocked.push(t);
      }
      return;
    }
    const last = end && n === left;
    writeData(c, t.id, src, p, p + n, last);
    t.sendWindow -= n;
    c.sendWindow -= n;
    creditFrom(t, n);
    p += n;
    if (last) {
      t.sendEnded = true;
      maybeClose(t);
      return;
    }
  }
}

/** Sends what t has queued, as far as the windows now allow. */
function drain(t: Strm): void {
  const q = t.q;
  if (q === null || t.closed) return;
  const c = t.conn;
  while (q.length > 0) {
    const b = q[0]!;
    const n = Math.min(b.length, t.sendWindow, c.sendWindow, c.peerMaxFrame);
    if (n <= 0) {
      if (c.sendWindow <= 0 && !t.blocked) {
        t.blocked = true;
        c.blocked.push(t);
      }
      return;
    }
    writeData(c, t.id, b, 0, n, false);
    t.sendWindow -= n;
    c.sendWindow -= n;
    creditFrom(t, n);
    if (n === b.length) q.shift();
    else q[0] = b.subarray(n);
  }
  t.q = null;
  if (t.qTrailers !== null) {
    const tr = t.qTrailers;
    t.qTrailers = null;
    writeList(c, t.id, tr, true);
    t.sendEnded = true;
  } else if (t.qEnd) {
    writeData(c, t.id, b0, 0, 0, true);
    t.sendEnded = true;
  }
  maybeClose(t);
}
const b0 = Buffer.alloc(0);

function drainBlocked(c: Conn): void {
  const list = c.blocked;
  c.blocked = [];
  for (let i = 0; i < list.length; i++) {
    const t = list[i]!;
    t.blocked = false;
    drain(t);
  }
}

/** Passes the list in HN/HV/HF (headers or trailers) on to t. */
function forwardHeaders(t: Strm, end: boolean, final: boolean): void {
  if (t.closed) return;
  if (t.q !== null) {
    // trailers behind queued DATA: they go out (encoded then, in connection order) when the queue drains
    t.qTrailers = copyList();
    t.qEnd = true;
    return;
  }
  writeHeaders(t.conn, t.id, HN, HV, HF, HC, end);
  if (final) t.sentHeaders = true;
  if (end) {
    t.sendEnded = true;
    maybeClose(t);
  }
}

// ---------------------------------------------------------------- stream life

function remember(c: Conn, id: number, byUs: boolean): void {
  c.closedIds[c.closedPos] = id;
  c.closedByUs[c.closedPos] = byUs ? 1 : 0;
  c.closedPos = (c.closedPos + 1) % CLOSED_RING;
}

/** 0: not among the recently closed; 1: closed; 2: closed by a reset we sent. */
function recentlyClosed(c: Conn, id: number): number {
  for (let i = 0; i < CLOSED_RING; i++) if (c.closedIds[i] === id) return c.closedByUs[i] === 1 ? 2 : 1;
  return 0;
}

function isIdle(c: Conn, id: number): boolean {
  return c.server ? id > c.lastPeerId || (id & 1) === 0 : id >= c.nextId || (id & 1) === 0;
}

function closeStrm(s: Strm, byUs: boolean): void {
  if (s.closed) return;
  s.closed = true;
  const c = s.conn;
  c.streams.delete(s.id);
  remember(c, s.id, byUs);
  if (s.q !== null) {
    let held = 0;
    for (let i = 0; i < s.q.length; i++) held += s.q[i]!.length;
    s.q = null;
    creditFrom(s, held);
  }
  s.qTrailers = null;
  if (!c.server && c.draining && c.streams.size === 0 && !c.dead) closeGracefully(c);
  else if (c.server && c.goawayRecv && c.streams.size === 0 && !c.dead) closeGracefully(c);
}

function maybeClose(s: Strm): void {
  if (s.closed || !s.sendEnded || s.q !== null) return;
  if (s.recvEnded) closeStrm(s, false);
  else if (s.discard) resetStream(s, E_NO);
}

function resetStream(s: Strm, code: number): void {
  if (s.closed) return;
  const c = s.conn;
  if (!c.server && !c.dead && !spendReset(c)) {
    if (s.sendEnded) return orphan(s);
    debug(c, 'reset budget exceeded');
  }
  if (!c.dead) writeRst(c, s.id, code);
  closeStrm(s, true);
}

// Resets sent on the pooled upstream connection are budgeted: it carries the cancellations of every client,
// and nghttp2 (node:http2, Envoy, …) ends a connection that resets more than 1000 streams in a burst (then
// 33/s: the CVE-2023-44487 "rapid reset" limit), which would fail every other call on it. Over budget, an
// upstream stream whose request was sent in full is orphaned instead: its answer is read and dropped, and it
// is reset later if it is still open when the budget allows.
const RESET_BURST = 500;
const RESET_RATE = 25;

function spendReset(c: Conn): boolean {
  const now = performance.now();
  c.resetTokens = Math.min(RESET_BURST, c.resetTokens + ((now - c.resetAt) / 1000) * RESET_RATE);
  c.resetAt = now;
  if (c.resetTokens < 1) return false;
  c.resetTokens--;
  return true;
}

function spendClientReset(c: Conn): boolean {
  const now = performance.now();
  c.resetTokens = Math.min(1000, c.resetTokens + ((now - c.resetAt) / 1000) * 33);
  c.resetAt = now;
  if (c.resetTokens < 1) return false;
  c.resetTokens--;
  return true;
}

function orphan(s: Strm): void {
  const c = s.conn;
  s.other = null;
  if (c.orphans.length === 0) setTimeout(retryOrphans, 1000, c).unref();
  c.orphans.push(s);
}

function retryOrphans(c: Conn): void {
  if (c.dead) return;
  const list = c.orphans;
  c.orphans = [];
  for (const s of list) {
    if (s.closed) continue;
    if (spendReset(c)) {
      writeRst(c, s.id, E_CANCEL);
      closeStrm(s, true);
    } else c.orphans.push(s);
  }
  if (c.orphans.length > 0) setTimeout(retryOrphans, 1000, c).unref();
}

/** A down stream whose upstream side failed: a gRPC UNAVAILABLE answer if nothing was answered yet, else a reset. */
function failDown(d: Strm, code: number, why: string): void {
  if (d.closed) return;
  if (!d.sentHeaders && !d.sendEnded && !d.conn.dead) {
    respondLocal(d, '200', '14', why);
    return;
  }
  resetStream(d, code === E_NO ? E_CANCEL : code);
}

const LOCAL_NAMES = [':status', 'content-type', 'grpc-status', 'grpc-message'];
const localValues = ['200', 'application/grpc', '14', ''];

/** Answers stream d here: trailers-only gRPC (grpcStatus set) or a bare status; then stops the request. */
function respondLocal(d: Strm, status: string, grpcStatus: string | null, message: string): void {
  if (d.q !== null) {
    let held = 0;
    for (let i = 0; i < d.q.length; i++) held += d.q[i]!.length;
    d.q = null;
    creditFrom(d, held);
  }
  localValues[0] = status;
  localValues[2] = grpcStatus ?? '';
  localValues[3] = message;
  writeHeaders(d.conn, d.id, LOCAL_NAMES, localValues, null, grpcStatus === null ? 1 : 4, true);
  d.sentHeaders = true;
  d.sendEnded = true;
  const o = d.other;
  d.other = null;
  if (o !== null) resetStream(o, E_CANCEL);
  if (d.recvEnded) closeStrm(d, false);
  else resetStream(d, E_NO);
}

/** A stream error on s (RFC 9113 §5.4.2): reset it, and end its counterpart. */
function streamError(s: Strm, code: number): void {
  debug(s.conn, `stream ${s.id}: error ${code}`);
  resetStream(s, code);
  const o = s.other;
  if (o === null || o.closed) return;
  if (s.conn.server) resetStream(o, E_CANCEL);
  else failDown(o, E_INTERNAL, 'upstream stream error');
}

// ---------------------------------------------------------------- connections

function connError(c: Conn, code: number, why: string): void {
  if (c.dead) return;
  debug(c, `connection error ${code}: ${why}`);
  writeGoaway(c, c.server ? c.lastPeerId : 0, code);
  flushConn(c);
  c.sock.end();
  setTimeout(() => c.sock.destroy(), 2000).unref();
  teardown(c);
}

function closeGracefully(c: Conn): void {
  if (c.dead) return;
  writeGoaway(c, c.server ? c.lastPeerId : 0, E_NO);
  flushConn(c);
  c.sock.end();
  setTimeout(() => c.sock.destroy(), 2000).unref();
  teardown(c);
}

function teardown(c: Conn): void {
  if (c.dead) return;
  c.dead = true;
  debug(c, `closed with ${c.streams.size} streams open`);
  if (pooled === c) pooled = null;
  const streams = [...c.streams.values()];
  c.streams.clear();
  for (const s of streams) {
    s.closed = true;
    s.q = null;
    const o = s.other;
    if (o === null || o.closed) continue;
    if (c.server) resetStream(o, E_CANCEL);
    else failDown(o, E_CANCEL, 'upstream connection closed');
  }
}

function onSocket(c: Conn): void {
  c.sock.on('data', (chunk: Buffer) => onBytes(c, chunk));
  c.sock.on('error', (err: Error) => debug(c, `socket: ${err.message}`));
  c.sock.on('close', () => teardown(c));
}

let pooled: Conn | null = null;

function upstreamConn(): Conn {
  if (pooled !== null && !pooled.dead && !pooled.draining) return pooled;
  const sock = net.connect({ host: upstream.host, port: upstream.port, noDelay: true });
  const c = new Conn(sock, false);
  onSocket(c);
  sock.write(PREFACE);
  writeSettings(c, [2, 0, 4, STREAM_WINDOW, 6, MAX_HEADER_LIST]);
  writeWindowUpdate(c, 0, CONN_WINDOW - DEFAULT_WINDOW);
  pooled = c;
  return c;
}

// ---------------------------------------------------------------- reading frames

function onBytes(c: Conn, chunk: Buffer): void {
  if (c.dead) return;
  let buf = chunk;
  if (c.rbuf !== null) {
    buf = Buffer.concat([c.rbuf, chunk]);
    c.rbuf = null;
  }
  let off = 0;
  if (c.prefaceLeft > 0) {
    const at = PREFACE.length - c.prefaceLeft;
    const n = Math.min(c.prefaceLeft, buf.length);
    if (buf.compare(PREFACE, at, at + n, 0, n) !== 0) {
      debug(c, 'bad connection preface');
      c.dead = true;
      c.sock.destroy();
      return;
    }
    c.prefaceLeft -= n;
    off = n;
  }
  const end = buf.length;
  while (end - off >= 9) {
    const len = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
    if (len > MAX_FRAME) return connError(c, E_FRAME_SIZE, `frame of ${len} bytes`);
    if (end - off - 9 < len) break;
    const type = buf[off + 3]!;
    const flags = buf[off + 4]!;
    const id = buf.readUInt32BE(off + 5) & 0x7fffffff;
    frame(c, type, flags, id, buf, off + 9, len);
    if (c.dead) return;
    off += 9 + len;
  }
  if (off < end) c.rbuf = buf.subarray(off);
}

function frame(c: Conn, type: number, flags: number, id: number, buf: Buffer, s: number, len: number): void {
  if (!c.sawSettings) {
    if (type !== T_SETTINGS || (flags & F_ACK) !== 0) return connError(c, E_PROTOCOL, 'first frame is not SETTINGS');
    c.sawSettings = true;
  }
  if (c.contId !== 0 && type !== T_CONT) return connError(c, E_PROTOCOL, 'frame inside a header block');
  switch (type) {
    case T_DATA: return onData(c, flags, id, buf, s, len);
    case T_HEADERS: return onHeadersFrame(c, flags, id, buf, s, len);
    case T_CONT: return onContinuation(c, flags, id, buf, s, len);
    case T_PRIORITY: return onPriority(c, id, buf, s, len);
    case T_RST: return onRst(c, id, buf, s, len);
    case T_SETTINGS: return onSettings(c, flags, id, buf, s, len);
    case T_PUSH: return connError(c, E_PROTOCOL, 'PUSH_PROMISE');
    case T_PING: return onPing(c, flags, id, buf, s, len);
    case T_GOAWAY: return onGoaway(c, id, buf, s, len);
    case T_WU: return onWindowUpdate(c, id, buf, s, len);
    default: return; // unknown frame types are ignored (RFC 9113 §4.1, §5.5)
  }
}

function onData(c: Conn, flags: number, id: number, buf: Buffer, s: number, len: number): void {
  if (id === 0) return connError(c, E_PROTOCOL, 'DATA on stream 0');
  let p = s;
  let e = s + len;
  if ((flags & F_PADDED) !== 0) {
    if (len < 1) return connError(c, E_FRAME_SIZE, 'padded DATA without pad length');
    const pad = buf[p]!;
    if (pad >= len) return connError(c, E_PROTOCOL, 'DATA padding too long');
    p++;
    e -= pad;
  }
  c.recvWindow -= len;
  if (c.recvWindow < 0) return connError(c, E_FLOW, 'connection window exceeded');
  const st = c.streams.get(id);
  if (st === undefined) {
    if (isIdle(c, id)) return connError(c, E_PROTOCOL, `DATA on idle stream ${id}`);
    creditConn(c, len);
    // Upstream: a stream we reset or finished; its frames are ignored (RFC 9113 §5.1), never answered, so
    // that a burst of cancellations is not doubled (nghttp2 ends a connection after 1000 resets in a burst).
    if (c.server && recentlyClosed(c, id) !== 2) writeRst(c, id, E_STREAM_CLOSED);
    return;
  }
  if (st.recvEnded || !st.gotHeaders) {
    creditConn(c, len);
    return streamError(st, st.recvEnded ? E_STREAM_CLOSED : E_PROTOCOL);
  }
  st.recvWindow -= len;
  if (st.recvWindow < 0) {
    creditConn(c, len);
    return streamError(st, E_FLOW);
  }
  const n = e - p;
  const end = (flags & F_END_STREAM) !== 0;
  if (st.contentLength >= 0) {
    st.received += n;
    if (st.received > st.contentLength || (end && st.received !== st.contentLength)) {
      creditConn(c, len);
      return streamError(st, E_PROTOCOL);
    }
  }
  if (end) st.recvEnded = true;
  if (len > n) credit(st, len - n); // padding is not held
  const o = st.other;
  if (o === null || o.closed || st.discard) credit(st, n);
  else if (n > 0 || end) sendData(o, buf, p, e, end);
  if (end) maybeClose(st);
}

function onHeadersFrame(c: Conn, flags: number, id: number, buf: Buffer, s: number, len: number): void {
  if (id === 0) return connError(c, E_PROTOCOL, 'HEADERS on stream 0');
  let p = s;
  let e = s + len;
  if ((flags & F_PADDED) !== 0) {
    if (len < 1) return connError(c, E_FRAME_SIZE, 'padded HEADERS without pad length');
    const pad = buf[p]!;
    p++;
    if (pad > e - p) return connError(c, E_PROTOCOL, 'HEADERS padding too long');
    e -= pad;
  }
  let selfDep = false;
  if ((flags & F_PRIORITY) !== 0) {
    if (e - p < 5) return connError(c, E_FRAME_SIZE, 'HEADERS priority truncated');
    selfDep = (buf.readUInt32BE(p) & 0x7fffffff) === id;
    p += 5;
  }
  const frag = buf.subarray(p, e);
  if ((flags & F_END_HEADERS) === 0) {
    c.contId = id;
    c.contFlags = flags;
    c.contSelfDep = selfDep;
    c.contParts = [frag];
    c.contLen = frag.length;
    return;
  }
  onHeaderBlock(c, id, flags, frag, selfDep);
}

function onContinuation(c: Conn, flags: number, id: number, buf: Buffer, s: number, len: number): void {
  if (c.contId === 0 || id !== c.contId) return connError(c, E_PROTOCOL, 'CONTINUATION out of place');
  c.contParts.push(buf.subarray(s, s + len));
  c.contLen += len;
  // bounded in bytes and in frames (empty CONTINUATION frames are a flood too: CVE-2024-27316 and kin)
  if (c.contLen > MAX_BLOCK || c.contParts.length > MAX_CONTINUATIONS) return connError(c, E_CALM, 'header block too large');
  if ((flags & F_END_HEADERS) === 0) return;
  const block = Buffer.concat(c.contParts, c.contLen);
  c.contId = 0;
  c.contParts = [];
  onHeaderBlock(c, id, c.contFlags, block, c.contSelfDep);
}

function onHeaderBlock(c: Conn, id: number, flags: number, block: Buffer, selfDep: boolean): void {
  const end = (flags & F_END_STREAM) !== 0;
  if ((id & 1) === 0) return connError(c, E_PROTOCOL, `HEADERS on even stream ${id}`);
  const st = c.streams.get(id);
  if (c.server && st === undefined && id <= c.lastPeerId) {
    return connError(c, recentlyClosed(c, id) !== 0 ? E_STREAM_CLOSED : E_PROTOCOL, `HEADERS on closed stream ${id}`);
  }
  if (!c.server && st === undefined && id >= c.nextId) return connError(c, E_PROTOCOL, `HEADERS on idle stream ${id}`);
  // every block is decoded, even one for a stream that is refused, so the HPACK state stays in step
  if (!decodeBlock(c, block)) return connError(c, E_COMPRESSION, 'header block');
  if (c.server) {
    if (st === undefined) return onRequest(c, id, end, selfDep);
    // trailers, or HEADERS on a half-closed (remote) stream
    if (st.recvEnded) return streamError(st, E_STREAM_CLOSED);
    if (!end || selfDep || hTooBig || !checkTrailers()) return streamError(st, E_PROTOCOL);
    if (st.contentLength >= 0 && st.received !== st.contentLength) return streamError(st, E_PROTOCOL);
    st.recvEnded = true;
    const o = st.other;
    if (o !== null && !o.closed && !st.discard) forwardHeaders(o, true, false);
    maybeClose(st);
    return;
  }
  // a response on the upstream connection
  if (st === undefined) return; // a stream we reset meanwhile
  if (st.recvEnded) return streamError(st, E_STREAM_CLOSED);
  const d = st.other;
  if (!st.gotHeaders) {
    const status = hTooBig ? BAD : checkResponse();
    if (status === BAD || selfDep) return streamError(st, E_PROTOCOL);
    if (status < 200) {
      // informational: passed on, the final answer follows
      if (end) return streamError(st, E_PROTOCOL);
      if (d !== null && !d.closed) forwardHeaders(d, false, false);
      return;
    }
    st.gotHeaders = true; // a response's content-length is not checked (HEAD, 304)
  } else {
    if (!end || hTooBig || !checkTrailers()) return streamError(st, E_PROTOCOL);
    if (st.contentLength >= 0 && st.received !== st.contentLength) return streamError(st, E_PROTOCOL);
  }
  if (end) st.recvEnded = true;
  if (d !== null && !d.closed) forwardHeaders(d, end, true);
  if (end) maybeClose(st);
}

function onRequest(c: Conn, id: number, end: boolean, selfDep: boolean): void {
  c.lastPeerId = id;
  if (selfDep) {
    writeRst(c, id, E_PROTOCOL);
    remember(c, id, true);
    return;
  }
  if (c.streams.size >= MAX_STREAMS) {
    writeRst(c, id, E_REFUSED);
    remember(c, id, true);
    return;
  }
  const check = hTooBig ? 0 : checkRequest();
  if (check === BAD || (end && hContentLength > 0)) {
    writeRst(c, id, E_PROTOCOL);
    remember(c, id, true);
    return;
  }
  const d = new Strm(c, id, c.peerInitialWindow);
  d.gotHeaders = true;
  d.recvEnded = end;
  d.contentLength = hContentLength;
  c.streams.set(id, d);
  if (hTooBig) return respondLocal(d, '431', null, '');
  if (check === CONNECT) return respondLocal(d, '501', null, '');
  const u = upstreamConn();
  if (u.streams.size >= u.peerMaxStreams) return failDown(d, E_REFUSED, 'upstream stream limit');
  const up = new Strm(u, u.nextId, u.peerInitialWindow);
  u.nextId += 2;
  if (u.nextId > MAX_WINDOW) u.draining = true; // stream ids used up: the next call opens a new connection
  up.gotHeaders = false;
  up.other = d;
  d.other = up;
  u.streams.set(up.id, up);
  writeHeaders(u, up.id, HN, HV, HF, HC, end);
  if (end) up.sendEnded = true;
}

function onPriority(c: Conn, id: number, buf: Buffer, s: number, len: number): void {
  if (id === 0) return connError(c, E_PROTOCOL, 'PRIORITY on stream 0');
  const st = c.streams.get(id);
  if (len !== 5) {
    if (st !== undefined) return streamError(st, E_FRAME_SIZE);
    return writeRst(c, id, E_FRAME_SIZE);
  }
  if ((buf.readUInt32BE(s) & 0x7fffffff) === id) {
    if (st !== undefined) return streamError(st, E_PROTOCOL);
    return writeRst(c, id, E_PROTOCOL);
  }
  // priorities are not acted on
}

function onRst(c: Conn, id: number, buf: Buffer, s: number, len: number): void {
  if (len !== 4) return connError(c, E_FRAME_SIZE, 'RST_STREAM length');
  if (id === 0) return connError(c, E_PROTOCOL, 'RST_STREAM on stream 0');
  const st = c.streams.get(id);
  if (st === undefined) {
    if (isIdle(c, id)) return connError(c, E_PROTOCOL, `RST_STREAM on idle stream ${id}`);
    return;
  }
  // a client that resets streams faster than nghttp2 allows (1000 in a burst, then 33/s) is cut: rapid reset
  if (c.server && !spendClientReset(c)) return connError(c, E_CALM, 'too many resets');
  const code = buf.readUInt32BE(s);
  closeStrm(st, false);
  const o = st.other;
  if (o === null || o.closed) return;
  if (c.server) return resetStream(o, E_CANCEL);
  if (code === E_NO && st.recvEnded) {
    // the upstream answered in full and wants no more of the request
    o.discard = true;
    maybeClose(o);
    return;
  }
  if (code === E_REFUSED && !o.sentHeaders) return resetStream(o, E_REFUSED); // the client may retry
  failDown(o, code, 'upstream reset the stream');
}

function onSettings(c: Conn, flags: number, id: number, buf: Buffer, s: number, len: number): void {
  if (id !== 0) return connError(c, E_PROTOCOL, 'SETTINGS on a stream');
  if ((flags & F_ACK) !== 0) {
    if (len !== 0) return connError(c, E_FRAME_SIZE, 'SETTINGS ACK with payload');
    return;
  }
  if (len % 6 !== 0) return connError(c, E_FRAME_SIZE, 'SETTINGS length');
  let delta = 0;
  for (let p = s; p < s + len; p += 6) {
    const k = buf.readUInt16BE(p);
    const v = buf.readUInt32BE(p + 2);
    switch (k) {
      case 1:
        setEncoderTableSize(c, Math.min(v, TABLE_SIZE));
        break;
      case 2:
        if (v > 1 || (!c.server && v !== 0)) return connError(c, E_PROTOCOL, 'SETTINGS_ENABLE_PUSH');
        break;
      case 3:
        c.peerMaxStreams = v;
        break;
      case 4: {
        if (v > MAX_WINDOW) return connError(c, E_FLOW, 'SETTINGS_INITIAL_WINDOW_SIZE');
        const d = v - c.peerInitialWindow;
        c.peerInitialWindow = v;
        delta += d;
        for (const st of c.streams.values()) {
          st.sendWindow += d;
          if (st.sendWindow > MAX_WINDOW) return connError(c, E_FLOW, 'stream window above 2^31-1');
        }
        break;
      }
      case 5:
        if (v < 16384 || v > 16777215) return connError(c, E_PROTOCOL, 'SETTINGS_MAX_FRAME_SIZE');
        c.peerMaxFrame = v;
        break;
      default:
        break; // SETTINGS_MAX_HEADER_LIST_SIZE (advisory) and unknown settings
    }
  }
  begin(c, 0, T_SETTINGS, F_ACK, 0, 0);
  if (delta > 0) for (const st of [...c.streams.values()]) drain(st);
}

function onPing(c: Conn, flags: number, id: number, buf: Buffer, s: number, len: number): void {
  if (id !== 0) return connError(c, E_PROTOCOL, 'PING on a stream');
  if (len !== 8) return connError(c, E_FRAME_SIZE, 'PING length');
  if ((flags & F_ACK) !== 0) return;
  begin(c, 8, T_PING, F_ACK, 0, 8);
  buf.copy(c.out, c.outLen, s, s + 8);
  c.outLen += 8;
}

function onGoaway(c: Conn, id: number, buf: Buffer, s: number, len: number): void {
  if (id !== 0) return connError(c, E_PROTOCOL, 'GOAWAY on a stream');
  if (len < 8) return connError(c, E_FRAME_SIZE, 'GOAWAY length');
  const last = buf.readUInt32BE(s) & 0x7fffffff;
  debug(c, `GOAWAY last ${last} code ${buf.readUInt32BE(s + 4)}`);
  if (c.server) {
    c.goawayRecv = true;
    if (c.streams.size === 0) closeGracefully(c);
    return;
  }
  // the upstream goes away: no new calls on it; those it did not take (id > last) are refused to the client
  c.draining = true;
  if (pooled === c) pooled = null;
  for (const st of [...c.streams.values()]) {
    if (st.id <= last) continue;
    closeStrm(st, false);
    const o = st.other;
    if (o !== null && !o.closed) {
      if (!o.sentHeaders) resetStream(o, E_REFUSED);
      else resetStream(o, E_CANCEL);
    }
  }
  if (c.streams.size === 0) closeGracefully(c);
}

function onWindowUpdate(c: Conn, id: number, buf: Buffer, s: number, len: number): void {
  if (len !== 4) return connError(c, E_FRAME_SIZE, 'WINDOW_UPDATE length');
  const inc = buf.readUInt32BE(s) & 0x7fffffff;
  if (id === 0) {
    if (inc === 0) return connError(c, E_PROTOCOL, 'WINDOW_UPDATE of 0');
    c.sendWindow += inc;
    if (c.sendWindow > MAX_WINDOW) return connError(c, E_FLOW, 'connection window above 2^31-1');
    if (c.blocked.length > 0) drainBlocked(c);
    return;
  }
  const st = c.streams.get(id);
  if (st === undefined) {
    if (isIdle(c, id)) return connError(c, E_PROTOCOL, `WINDOW_UPDATE on idle stream ${id}`);
    return;
  }
  if (inc === 0) return streamError(st, E_PROTOCOL);
  st.sendWindow += inc;
  if (st.sendWindow > MAX_WINDOW) return streamError(st, E_FLOW);
  drain(st);
}

// ---------------------------------------------------------------- main

function debug(c: Conn, msg: string): void {
  if (DEBUG) process.stderr.write(`net-relay: ${c.server ? 'down' : 'up'} ${c.sock.remoteAddress ?? '?'}:${c.sock.remotePort ?? '?'}: ${msg}\n`);
}

function hostPort(s: string | undefined, flag: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(s ?? '');
  if (!m) {
    process.stderr.write(`net-relay: ${flag} host:port is required (got ${s ?? 'nothing'})\n`);
    process.exit(2);
  }
  return { host: m[1]!, port: Number(m[2]) };
}

const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' } } });
const listen = hostPort(values.listen, '--listen');
const upstream = hostPort(values.upstream, '--upstream');

const server = net.createServer({ noDelay: true }, (sock) => {
  const c = new Conn(sock, true);
  onSocket(c);
  writeSettings(c, [3, MAX_STREAMS, 4, STREAM_WINDOW, 6, MAX_HEADER_LIST]);
  writeWindowUpdate(c, 0, CONN_WINDOW - DEFAULT_WINDOW);
});
server.on('error', (err: Error) => {
  process.stderr.write(`net-relay: ${err.message}\n`);
  process.exit(1);
});
server.listen(listen.port, listen.host, () => {
  process.stdout.write(`listening ${listen.host}:${listen.port}\n`);
  module.flushCompileCache?.();
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => process.exit(0));
