// Codec benchmark (not a test): header encode+decode cost, and framing throughput against the
// physical limit (Buffer.copy of the same bytes) and protobufjs encoding an equivalent message.
// Writes test/bench/results/codec.json. Run: npm run bench:codec
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import protobuf from 'protobufjs';
import {
  apiId,
  decodeFrame,
  encodeFrame,
  FrameReader,
  methodId,
  readHeader,
  writeHeader,
  type BasisHeader,
} from '../../proto/basis/index.ts';

const ROUNDS = 7;
let sink = 0; // keeps results alive so the JIT cannot drop the work

let lastMin = 0;
function measure(opsPerRound: number, fn: (n: number) => void): number {
  fn(Math.min(opsPerRound, 20_000)); // warm-up
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    fn(opsPerRound);
    samples.push(Number(process.hrtime.bigint() - t0) / opsPerRound);
  }
  samples.sort((a, b) => a - b);
  lastMin = samples[0]!;
  return samples[Math.floor(ROUNDS / 2)]!; // median ns per op
}

const header: BasisHeader = {
  codec: 1,
  kind: 'request',
  gzip: false,
  encoding: 'protobuf',
  apiId: apiId('shop.orders.v1.OrderService'),
  methodId: methodId('Create'),
  major: 1,
  minor: 4,
  length: 0,
};

const scratch = Buffer.allocUnsafe(16);
const headerNs = measure(2_000_000, (n) => {
  for (let i = 0; i < n; i++) {
    header.length = i & 0xffff;
    writeHeader(header, scratch, 0);
    sink ^= readHeader(scratch, 0).length;
  }
});

const headerMinNs = lastMin;

const root = protobuf.Root.fromJSON({
  nested: { bench: { nested: { Envelope: { fields: { apiId: { type: 'fixed32', id: 1 }, methodId: { type: 'uint32', id: 2 }, version: { type: 'uint32', id: 3 }, payload: { type: 'bytes', id: 4 } } } } } },
});
const Envelope = root.lookupType('bench.Envelope');

interface Row {
  payload_bytes: number;
  frame_mb_s: number;
  unframe_mb_s: number;
  stream_split_unframe_mb_s: number;
  buffer_copy_mb_s: number;
  protobufjs_encode_mb_s: number;
  protobufjs_decode_mb_s: number;
  frame_vs_copy: number;
}

function mbps(bytes: number, nsPerOp: number): number {
  return Math.round((bytes / nsPerOp) * 1e9 / 1e6);
}

function throughput(size: number): Row {
  const payload = Buffer.alloc(size, 7);
  const h = { ...header, length: size };
  const ops = Math.max(2_000, Math.floor(400_000_000 / size / 10));
  const frame = encodeFrame(h, payload);
  const frameNs = measure(ops, (n) => {
    for (let i = 0; i < n; i++) sink ^= encodeFrame(h, payload).length;
  });
  const copyNs = measure(ops, (n) => {
    for (let i = 0; i < n; i++) {
      const out = Buffer.allocUnsafe(16 + size);
      payload.copy(out, 16);
      sink ^= out.length;
    }
  });
  const unframeNs = measure(ops, (n) => {
    for (let i = 0; i < n; i++) sink ^= decodeFrame(frame).payload.length;
  });
  // A frame that arrives in two chunks must be assembled: one allocation, one copy.
  const cut = Math.floor(frame.length / 2);
  const a = frame.subarray(0, cut);
  const b = frame.subarray(cut);
  const reader = new FrameReader({ maxPayload: 1 << 30, onFrame: (_h, p) => (sink ^= p.length) });
  const splitNs = measure(ops, (n) => {
    for (let i = 0; i < n; i++) {
      reader.push(a);
      reader.push(b);
    }
  });
  const msg = Envelope.create({ apiId: h.apiId, methodId: h.methodId, version: 0x104, payload });
  const pbBytes = Envelope.encode(msg).finish();
  const pbEncNs = measure(ops, (n) => {
    for (let i = 0; i < n; i++) sink ^= Envelope.encode(msg).finish().length;
  });
  const pbDecNs = measure(ops, (n) => {
    for (let i = 0; i < n; i++) sink ^= (Envelope.decode(pbBytes) as unknown as { payload: Uint8Array }).payload.length;
  });
  return {
    payload_bytes: size,
    frame_mb_s: mbps(size, frameNs),
    unframe_mb_s: mbps(size, unframeNs),
    stream_split_unframe_mb_s: mbps(size, splitNs),
    buffer_copy_mb_s: mbps(size, copyNs),
    protobufjs_encode_mb_s: mbps(size, pbEncNs),
    protobufjs_decode_mb_s: mbps(size, pbDecNs),
    frame_vs_copy: Math.round((copyNs / frameNs) * 100) / 100,
  };
}

const rows = [throughput(1024), throughput(64 * 1024)];
const result = {
  generated: new Date().toISOString(),
  machine: { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', loadavg_1m: os.loadavg()[0] },
  header_encode_decode_ns: Math.round(headerNs * 10) / 10,
  header_encode_decode_ns_best_round: Math.round(headerMinNs * 10) / 10,
  goals: { header_encode_decode_ns_max: 100, frame_64k_vs_copy_min: 0.5 },
  throughput: rows,
  notes: 'medians of 7 rounds; unframe of a whole frame is a view (no copy), so it is not bounded by memory bandwidth',
};
const out = new URL('./results/codec.json', import.meta.url);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');

console.log(
  `header encode+decode: ${result.header_encode_decode_ns} ns median, ${result.header_encode_decode_ns_best_round} ns best round (goal ≤ 100 ns); load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`,
);
console.table(
  rows.map((r) => ({
    payload: `${r.payload_bytes / 1024} KiB`,
    'frame MB/s': r.frame_mb_s,
    'Buffer.copy MB/s': r.buffer_copy_mb_s,
    'frame/copy': r.frame_vs_copy,
    'unframe MB/s': r.unframe_mb_s,
    'split unframe MB/s': r.stream_split_unframe_mb_s,
    'protobufjs enc MB/s': r.protobufjs_encode_mb_s,
    'protobufjs dec MB/s': r.protobufjs_decode_mb_s,
  })),
);
console.log(`written to ${out.pathname} (sink ${sink & 1})`);
