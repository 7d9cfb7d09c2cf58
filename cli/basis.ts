// `qbasis basis encode|decode`: the header's text form for humans and scripts.
// Flags through cli/flags.ts; names by proto/annotations.ts's rules (the ones the sidecar and the
// controller apply), so a header encoded here is one a sidecar would send.
import process from 'node:process';
import { apiNameProblem, methodNameProblem } from '../proto/annotations.ts';
import { apiId, CODEC_VERSION, formatText, MAX_LENGTH, methodId, parseText, readHeader, type Encoding, type Kind } from '../proto/basis/index.ts';
import { QbasisError } from '../proto/errors.ts';
import { commandUsage, parseOrExit, reportFailure, unknownSubcommand, UsageError, wantsHelp, type CommandSpec } from './flags.ts';

function schemaVersion(text: string): { major: number; minor: number } | string {
  const m = /^(\d{1,9})\.(\d{1,9})$/.exec(text);
  if (m === null) return 'expected major.minor, e.g. 1.4';
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > 255 || minor > 255) {
    throw new QbasisError('QB_FRAME_VERSION_RANGE', 'it does not fit a basis header; expected major and minor from 0 to 255 each, e.g. 1.4');
  }
  return { major, minor };
}

const ENCODE: CommandSpec = {
  name: 'basis encode',
  summary: 'Prints the 16-byte basis header in its text form (RFC 5952, like an IPv6 address).',
  flags: [
    { name: 'api', kind: 'string', arg: '<service>', required: 'a fully-qualified gRPC service name, e.g. shop.orders.v1.OrderService', help: 'fully-qualified gRPC service name (letters, digits, _ and dots; at most 253 characters)', check: apiNameProblem },
    { name: 'method', kind: 'string', arg: '<name>', required: 'a gRPC method name, e.g. Create', help: 'method name (letters, digits, _; at most 253 characters)', check: methodNameProblem },
    {
      name: 'version', kind: 'string', arg: '<major.minor>', required: 'the schema version as major.minor, e.g. 1.4', help: 'schema version, major and minor from 0 to 255',
      check: (v) => { const r = schemaVersion(v); return typeof r === 'string' ? r : undefined; },
    },
    { name: 'kind', kind: 'enum', values: ['request', 'response'], required: 'request or response', help: 'message kind' },
    { name: 'encoding', kind: 'enum', values: ['protobuf', 'json', 'opaque'], required: 'protobuf, json or opaque', help: 'payload encoding' },
    { name: 'gzip', kind: 'bool', default: 'false', help: 'the payload is gzip-compressed (--gzip, --gzip=true|false)' },
    { name: 'length', kind: 'int', min: 0, max: MAX_LENGTH, arg: '<bytes>', expected: `a whole number of bytes from 0 to ${MAX_LENGTH}`, required: `the payload length in bytes (0 to ${MAX_LENGTH})`, help: 'payload length in bytes' },
  ],
  footer: `Example:
  qbasis basis encode --api shop.orders.v1.OrderService --method Create --version 1.4 \\
      --kind request --encoding protobuf --length 42
  → 7101:0:30c0:50e8:7d70:104:0:2a`,
};

const DECODE: CommandSpec = {
  name: 'basis decode',
  summary: "Prints the header's fields as one JSON object: codec, kind, encoding, gzip, apiId, methodId, version, length, text.",
  synopsis: '<text form | 32 hex digits>',
  flags: [],
  operands: { name: 'header', min: 1, max: 1 },
  footer: 'Example:\n  qbasis basis decode 7101:0:30c0:50e8:7d70:104:0:2a',
};

const SUBCOMMANDS = ['encode', 'decode'];

function basisUsage(): string {
  return [
    'Usage: qbasis basis encode|decode …',
    '',
    commandUsage(ENCODE),
    '',
    commandUsage(DECODE),
  ].join('\n');
}

function encode(argv: string[]): number {
  const parsed = parseOrExit(ENCODE, argv);
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values;
  const version = schemaVersion(v.get('version')!) as { major: number; minor: number };
  process.stdout.write(
    formatText({
      codec: CODEC_VERSION,
      kind: v.get('kind') as Kind,
      encoding: v.get('encoding') as Encoding,
      gzip: v.get('gzip') === 'true',
      apiId: apiId(v.get('api')!),
      methodId: methodId(v.get('method')!),
      major: version.major,
      minor: version.minor,
      length: Number(v.get('length')),
    }) + '\n',
  );
  return 0;
}

function decode(argv: string[]): number {
  const parsed = parseOrExit(DECODE, argv);
  if (typeof parsed === 'number') return parsed;
  let h: ReturnType<typeof readHeader>;
  let bytes: Uint8Array;
  try {
    bytes = parseText(parsed.operands[0]!);
    // The CLI inspects headers of any size, so no payload limit here.
    h = readHeader(bytes, 0, { maxPayload: MAX_LENGTH });
  } catch (err) {
    // The header is what was typed: a usage error (exit 2) with the frame rule's own code.
    if (err instanceof QbasisError) throw new UsageError(err.message, { code: err.code });
    throw err;
  }
  process.stdout.write(
    JSON.stringify({
      codec: h.codec,
      kind: h.kind,
      encoding: h.encoding,
      gzip: h.gzip,
      apiId: h.apiId,
      methodId: h.methodId,
      version: `${h.major}.${h.minor}`,
      length: h.length,
      text: formatText(bytes),
    }) + '\n',
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'encode') return encode(rest);
    if (sub === 'decode') return decode(rest);
    if (sub === undefined) {
      process.stderr.write(basisUsage() + '\n');
      return 2;
    }
    if (sub === 'help' || wantsHelp([sub])) {
      process.stdout.write(basisUsage() + '\n');
      return 0;
    }
    throw unknownSubcommand('basis', sub, SUBCOMMANDS);
  } catch (err) {
    return reportFailure(sub === 'encode' || sub === 'decode' ? `basis ${sub}` : 'basis', err);
  }
}
