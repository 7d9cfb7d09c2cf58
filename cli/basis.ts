// `qbasis basis encode|decode`: the header's text form for humans and scripts.
import { parseArgs } from 'node:util';
import { isQbasisError, QbasisError } from '../errors.ts';
import {
  apiId,
  CODEC_VERSION,
  formatText,
  MAX_LENGTH,
  methodId,
  parseText,
  readHeader,
  type Encoding,
  type Kind,
} from '../basis/index.ts';

const USAGE = `Usage:
  qbasis basis encode --api <service> --method <name> --version <major.minor>
                      --kind request|response --encoding protobuf|json|opaque
                      [--gzip] --length <bytes>
      Prints the 16-byte basis header in its text form (RFC 5952, like an IPv6 address).
  qbasis basis decode <text form | 32 hex digits>
      Prints the header's fields as one JSON object.

Example:
  qbasis basis encode --api shop.orders.v1.OrderService --method Create --version 1.4 \\
      --kind request --encoding protobuf --length 42
  → 7101:0:30c0:50e8:7d70:104:0:2a
  qbasis basis decode 7101:0:30c0:50e8:7d70:104:0:2a`;

class UsageError extends Error {}

function need(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${name}; run 'qbasis basis --help'`);
  return v;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} '${value}' is not valid; expected ${allowed.join(', ')}`);
  }
  return value as T;
}

function parseSchemaVersion(text: string): { major: number; minor: number } {
  const m = /^(\d+)\.(\d+)$/.exec(text);
  if (m === null) throw new UsageError(`--version '${text}' is not major.minor; expected e.g. 1.4`);
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > 255 || minor > 255) {
    throw new QbasisError('QB_FRAME_VERSION_RANGE', `--version ${text} does not fit a basis header; expected major and minor from 0 to 255`);
  }
  return { major, minor };
}

function encode(argv: string[]): string {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string' },
      method: { type: 'string' },
      version: { type: 'string' },
      kind: { type: 'string' },
      encoding: { type: 'string' },
      gzip: { type: 'boolean', default: false },
      length: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'; encode takes only flags`);
  const lengthText = need(values, 'length');
  if (!/^\d+$/.test(lengthText) || Number(lengthText) > MAX_LENGTH) {
    throw new UsageError(`--length '${lengthText}' is not valid; expected a whole number of bytes from 0 to ${MAX_LENGTH}`);
  }
  const { major, minor } = parseSchemaVersion(need(values, 'version'));
  return formatText({
    codec: CODEC_VERSION,
    kind: oneOf<Kind>('kind', need(values, 'kind'), ['request', 'response']),
    encoding: oneOf<Encoding>('encoding', need(values, 'encoding'), ['protobuf', 'json', 'opaque']),
    gzip: values.gzip === true,
    apiId: apiId(need(values, 'api')),
    methodId: methodId(need(values, 'method')),
    major,
    minor,
    length: Number(lengthText),
  });
}

function decode(argv: string[]): string {
  const { positionals } = parseArgs({ args: argv, options: {}, strict: true, allowPositionals: true });
  if (positionals.length !== 1) {
    throw new UsageError(`decode takes one header (text form or 32 hex digits); got ${positionals.length} arguments`);
  }
  const bytes = parseText(positionals[0]!);
  // The CLI inspects headers of any size, so no payload limit here.
  const h = readHeader(bytes, 0, { maxPayload: MAX_LENGTH });
  return JSON.stringify({
    codec: h.codec,
    kind: h.kind,
    encoding: h.encoding,
    gzip: h.gzip,
    apiId: h.apiId,
    methodId: h.methodId,
    version: `${h.major}.${h.minor}`,
    length: h.length,
    text: formatText(bytes),
  });
}

// parseArgs reports unknown flags and missing values with ERR_PARSE_ARGS_* codes; keep its long hints out.
function usageMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const flag = /'(-[^']*)'/.exec(e.message ?? '')?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown flag '${flag}'; run 'qbasis basis --help' for the flags`;
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return `${flag ?? 'a flag'} needs a value; run 'qbasis basis --help'`;
  return (e.message ?? String(err)).split('\n')[0]!;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return sub === undefined ? 2 : 0;
  }
  try {
    if (sub === 'encode') process.stdout.write(encode(rest) + '\n');
    else if (sub === 'decode') process.stdout.write(decode(rest) + '\n');
    else throw new UsageError(`unknown subcommand '${sub}'; expected encode or decode`);
    return 0;
  } catch (err) {
    if (isQbasisError(err)) {
      process.stderr.write(`qbasis basis: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`qbasis basis: ${usageMessage(err)}\n`);
    return 2;
  }
}
