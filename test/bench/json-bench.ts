// JSON codec benchmark and library comparison (not a test): ops/s of JSON → binary and binary → JSON on a
// realistic order (test/fixtures/gateway-bench/orders.proto) for the gateway's codec (@bufbuild/protobuf
// plus its checks), bare @bufbuild/protobuf, protobufjs's protojson extension, and protobufjs's
// toObject/fromObject (not proto3 JSON; the floor of what protobufjs can do); then each candidate's
// differences from Go's protojson over generated messages of the conformance schema (test/fixtures/gateway).
// Writes test/bench/results/json.json. Run: npm run bench:json   (BENCH_CASES: generated cases, default 300)
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { create, fromBinary, fromJsonString, toBinary, toJsonString, type DescMessage } from '@bufbuild/protobuf';
import protobuf from 'protobufjs';
import 'protobufjs/ext/descriptor/index.js';
import protojson from 'protobufjs/ext/protojson.js';
import { JsonCodec } from '../../sidecar/gateway/json-codec.ts';
import { loadSchema, type Schema } from '../../sidecar/gateway/schema.ts';
import { messageArb } from '../gateway/arbitrary-message.ts';
import { jsonDifference } from '../gateway/json-compare.ts';
import { ProtojsonRef } from '../gateway/protojson-ref.ts';

const ROUNDS = 7;
const OPS = 20_000;
const CASES = Number(process.env['BENCH_CASES'] ?? 300);
let sink = 0;

/** Median ns per op over ROUNDS rounds, after a warm-up. */
function measure(fn: () => number): number {
  for (let i = 0; i < 5_000; i++) sink ^= fn();
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < OPS; i++) sink ^= fn();
    samples.push(Number(process.hrtime.bigint() - t0) / OPS);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(ROUNDS / 2)]!;
}

const opsPerSec = (ns: number): number => Math.round(1e9 / ns);

function protobufjsRoot(schema: Schema): protobuf.Root {
  return (protobuf.Root as unknown as { fromDescriptor(b: Uint8Array): protobuf.Root }).fromDescriptor(schema.toDescriptorSet());
}

// ---- speed ----

const benchSchema = loadSchema(join(import.meta.dirname, '..', 'fixtures', 'gateway-bench'));
const orderDesc = benchSchema.message('bench.shop.v1.Order')!;
const orderJson = JSON.stringify({
  orderId: 'ord_01HZX3Q9K7M2', customerId: 'cus_8842917', state: 'ORDER_STATE_PAID',
  items: Array.from({ length: 5 }, (_, i) => ({ sku: `SKU-${1000 + i}`, title: `Item number ${i} with a longer title`, quantity: i + 1, unitPrice: { currencyCode: 'EUR', units: String(10 + i * 7), nanos: 990_000_000 }, tags: ['new', 'sale'] })),
  total: { currencyCode: 'EUR', units: '249', nanos: 500_000_000 },
  shippingAddress: { name: 'Ada Lovelace', lines: ['12 Example Street', 'Flat 3'], city: 'London', postalCode: 'N1 9GU', countryCode: 'GB' },
  createdAt: '2026-05-01T12:34:56.789Z', updatedAt: '2026-05-02T08:00:00Z',
  labels: { channel: 'web', campaign: 'spring', region: 'eu-west' },
  version: '42', gift: false, weightKg: 2.75,
});
const codec = new JsonCodec(benchSchema.registry);
const orderBin = codec.jsonToBinary(orderDesc, orderJson);
const pbRoot = protobufjsRoot(benchSchema);
const pbOrder = pbRoot.lookupType('bench.shop.v1.Order');
// protobufjs's own object form of the same order (Timestamps as {seconds, nanos}, not proto3 JSON).
const pbObjectJson = JSON.stringify(pbOrder.toObject(pbOrder.decode(orderBin), { longs: String, enums: String, bytes: String, json: true }));

const speed = {
  qbasisCodec: {
    jsonToBinaryOpsPerSec: opsPerSec(measure(() => codec.jsonToBinary(orderDesc, orderJson).length)),
    binaryToJsonOpsPerSec: opsPerSec(measure(() => codec.binaryToJson(orderDesc, orderBin).length)),
  },
  bufbuild: {
    jsonToBinaryOpsPerSec: opsPerSec(measure(() => toBinary(orderDesc, fromJsonString(orderDesc, orderJson, { registry: benchSchema.registry })).length)),
    binaryToJsonOpsPerSec: opsPerSec(measure(() => toJsonString(orderDesc, fromBinary(orderDesc, orderBin), { registry: benchSchema.registry }).length)),
  },
  protobufjsProtojson: {
    jsonToBinaryOpsPerSec: opsPerSec(measure(() => pbOrder.encode(protojson.fromJsonString(pbOrder, orderJson)).finish().length)),
    binaryToJsonOpsPerSec: opsPerSec(measure(() => protojson.toJsonString(pbOrder, pbOrder.decode(orderBin)).length)),
  },
  protobufjsToObjectNotProto3Json: {
    jsonToBinaryOpsPerSec: opsPerSec(measure(() => pbOrder.encode(pbOrder.fromObject(JSON.parse(pbObjectJson) as Record<string, unknown>)).finish().length)),
    binaryToJsonOpsPerSec: opsPerSec(measure(() => JSON.stringify(pbOrder.toObject(pbOrder.decode(orderBin), { longs: String, enums: String, bytes: String, json: true })).length)),
  },
};

// ---- conformance against Go ----

interface Candidate {
  toJson(t: DescMessage, bin: Uint8Array): string;
  fromJson(t: DescMessage, json: string): Uint8Array;
}

const confSchema = loadSchema(join(import.meta.dirname, '..', 'fixtures', 'gateway'));
const everything = confSchema.message('qbasis.conformance.v1.Everything')!;
const confRoot = protobufjsRoot(confSchema);
const candidates: Record<string, Candidate> = {
  qbasisCodec: (() => {
    const c = new JsonCodec(confSchema.registry);
    return { toJson: (t, b) => c.binaryToJson(t, b), fromJson: (t, j) => c.jsonToBinary(t, j) };
  })(),
  bufbuild: {
    toJson: (t, b) => toJsonString(t, fromBinary(t, b), { registry: confSchema.registry }),
    fromJson: (t, j) => toBinary(t, fromJsonString(t, j, { registry: confSchema.registry })),
  },
  protobufjsProtojson: {
    toJson: (t, b) => protojson.toJsonString(confRoot.lookupType(t.typeName), confRoot.lookupType(t.typeName).decode(b)),
    fromJson: (t, j) => confRoot.lookupType(t.typeName).encode(protojson.fromJsonString(confRoot.lookupType(t.typeName), j)).finish(),
  },
};

const set = Buffer.from(confSchema.toDescriptorSet()).toString('base64');
const ref = await ProtojsonRef.start();
const arb = messageArb(everything, { registry: confSchema.registry, maxDepth: 3, anyTypes: ['qbasis.conformance.v1.Nested', 'google.protobuf.Timestamp', 'google.protobuf.Struct', 'google.protobuf.Int64Value'] });
const bins = fc.sample(arb, { numRuns: CASES, seed: 17 }).map((init) => toBinary(everything, create(everything, init as never)));
const goOut = await ref.all(bins.map((b) => ({ op: 'toJson' as const, set, type: everything.typeName, binary: Buffer.from(b).toString('base64') })));
const goBack = await ref.all(goOut.map((g) => ({ op: 'fromJson' as const, set, type: everything.typeName, json: g.json ?? '{}' })));
ref.stop();

const conformance: Record<string, { binaryToJsonDifferences: number; jsonToBinaryDifferences: number; examples: string[] }> = {};
for (const [name, c] of Object.entries(candidates)) {
  const r = { binaryToJsonDifferences: 0, jsonToBinaryDifferences: 0, examples: [] as string[] };
  // One example per kind of difference (the field path without indexes and map keys).
  const kinds = new Set<string>();
  const example = (what: string): void => {
    const kind = `${what.split(':')[0]}:${what.split(':')[1]?.replace(/\[\d+\]/g, '[]').replace(/\.-?\d+\b/g, '.N')}`;
    if (kinds.has(kind) || r.examples.length >= 8) return;
    kinds.add(kind);
    r.examples.push(what.slice(0, 200));
  };
  bins.forEach((b, i) => {
    const g = goOut[i]!;
    if (g.json === undefined) return;
    let d: string | undefined;
    try {
      d = jsonDifference(JSON.parse(c.toJson(everything, b)), JSON.parse(g.json));
    } catch (e) {
      d = `throws: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (d !== undefined) {
      r.binaryToJsonDifferences++;
      example(`binary → JSON: ${d}`);
    }
    // JSON → binary, compared through the gateway codec's JSON of both results (order of fields free).
    let d2: string | undefined;
    try {
      const mine = c.fromJson(everything, g.json);
      d2 = jsonDifference(JSON.parse(candidates['qbasisCodec']!.toJson(everything, mine)), JSON.parse(candidates['qbasisCodec']!.toJson(everything, Buffer.from(goBack[i]!.binary ?? '', 'base64'))));
    } catch (e) {
      d2 = `throws: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (d2 !== undefined) {
      r.jsonToBinaryDifferences++;
      example(`JSON → binary: ${d2}`);
    }
  });
  conformance[name] = r;
}

const result = {
  when: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg() },
  versions: { bufbuild: '2.17.0', protobufjs: '8.8.1' },
  message: { type: orderDesc.typeName, jsonBytes: orderJson.length, binaryBytes: orderBin.length },
  rounds: ROUNDS, opsPerRound: OPS,
  speed,
  conformance: { cases: bins.length, seed: 17, reference: 'google.golang.org/protobuf v1.36.12 encoding/protojson', candidates: conformance },
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results', 'json.json'), JSON.stringify(result, null, 2) + '\n');
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
if (sink === 0.5) process.stdout.write('');
