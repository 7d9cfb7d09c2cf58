// The one command-line parser of qbasis: every subcommand (basis, sidecar, controller, cluster, demo)
// declares its flags as data and gets the same syntax, the same messages and the same exit codes.
//
// Syntax: `--name value` or `--name=value`; a value-taking flag takes the next argument whatever it
// starts with (`--length -1`, `--version -1.0` are values, refused or accepted on their merits) unless
// that argument is itself a `--flag` (then the flag "needs a value"; write `--name=--x` for such a
// value). A boolean flag is `--name`, `--name=true|false`, or `--name true|false`. `--help`/`-h`
// anywhere before `--` asks for help; `--` ends the flags. The last of a repeated flag wins.
// With `env: true` every flag is also QBASIS_<FLAG> (upper case, dashes to underscores); a flag
// wins over its variable; an empty variable counts as unset.
//
// Exit codes (`failureExit`): 2 for a usage error (anything wrong with what was typed: a flag, its
// value, a variable, an operand), 1 for a failure while running (a port in use, an unreachable API
// server). Every refusal is one line on stderr: `qbasis <command>: QB_<CODE>: --flag 'value' is invalid:
// expected …` (or `unknown flag …`, `--flag needs a value …`, `missing --flag …`).
//
// This module is a leaf: it imports only proto/errors.ts, so sidecar/ and controller/ may import it
// without importing each other or any subcommand (cli/README.md).
import process from 'node:process';
import { QbasisError, type ErrorCode } from '../proto/errors.ts';

/** A mistake in what was typed: the command cannot run as asked. Exit 2. */
export class UsageError extends QbasisError {
  constructor(message: string, options: { code?: ErrorCode; details?: Record<string, unknown> } = {}) {
    super(options.code ?? 'QB_INVALID_FLAG', message, options.details === undefined ? {} : { details: options.details });
    this.name = 'UsageError';
  }
}

export type FlagKind = 'string' | 'bool' | 'port' | 'int' | 'number' | 'enum';

export interface FlagSpec {
  /** Without the leading dashes, e.g. "discovery-port". */
  name: string;
  kind: FlagKind;
  help: string;
  /** Used when neither the flag nor its variable gives a value (also shown in --help). */
  default?: string;
  /** enum: the accepted values. */
  values?: readonly string[];
  /** port (default 0 to 65535), int (default 0 to 999999999), number (decimal; default 0 up). */
  min?: number;
  max?: number;
  /** What a good value is, for messages and --help; default from the kind, e.g. "a port number from 1 to 65535". */
  expected?: string;
  /** Required: what to say when it is missing ("the pod IP address"). */
  required?: string;
  /** An empty value (`--name=`) is accepted; otherwise refused. */
  allowEmpty?: boolean;
  /** The placeholder in --help (default from the kind: <port>, <n>, <value>). */
  arg?: string;
  /** A further rule: return why the value is refused ("expected …"), or throw a QbasisError for its own code. */
  check?: (value: string) => string | undefined;
}

export interface CommandSpec {
  /** As typed after `qbasis`, e.g. "sidecar", "basis encode". */
  name: string;
  /** One line under the usage line. */
  summary?: string;
  /** What follows `qbasis <name>` in the usage line; default "[flags]" (plus the operands). */
  synopsis?: string;
  flags: readonly FlagSpec[];
  /** Each flag is also QBASIS_<FLAG>. */
  env?: boolean;
  /** Positional operands; none if absent. */
  operands?: { name: string; min: number; max: number };
  /** Lines after the flags (examples, notes). */
  footer?: string;
}

export type FlagValues = Map<string, string>;

export interface ParsedCommandLine {
  values: FlagValues;
  operands: string[];
  /** Where each value came from. */
  source: Map<string, 'flag' | 'env' | 'default'>;
}

export function envName(flag: string): string {
  return `QBASIS_${flag.toUpperCase().replaceAll('-', '_')}`;
}

const HELP = new Set(['--help', '-h']);

/** true when argv asks for help (`--help` or `-h` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (HELP.has(a)) return true;
  }
  return false;
}

/** A value as it appears in a message: quoted, control characters escaped, long values cut. */
export function shown(value: string): string {
  // eslint-disable-next-line no-control-regex
  const esc = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return esc.length > 80 ? `'${esc.slice(0, 60)}…' (${value.length} characters)` : `'${esc}'`;
}

function expectedOf(s: FlagSpec): string {
  if (s.expected !== undefined) return s.expected;
  switch (s.kind) {
    case 'bool':
      return 'true or false';
    case 'port':
      return `a port number from ${s.min ?? 0} to ${s.max ?? 65535}`;
    case 'int':
      return `a whole number from ${s.min ?? 0} to ${s.max ?? 999_999_999}`;
    case 'number':
      return s.max !== undefined ? `a number from ${s.min ?? 0} to ${s.max}` : `a number from ${s.min ?? 0}`;
    case 'enum':
      return `one of ${(s.values ?? []).join(', ')}`;
    case 'string':
      return 'a non-empty value';
  }
}

/** Why a value is refused ("expected …"), or undefined if it is good. */
function problem(s: FlagSpec, value: string): string | undefined {
  if (value.includes('\ufffd')) return 'it contains bytes that are not valid UTF-8 (shown as U+FFFD); expected UTF-8 text';
  if (value === '') return s.allowEmpty === true && s.kind === 'string' ? undefined : `expected ${expectedOf(s)}`;
  const bad = `expected ${expectedOf(s)}`;
  switch (s.kind) {
    case 'bool':
      if (value !== 'true' && value !== 'false') return bad;
      break;
    case 'port': {
      const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
      if (!(n >= (s.min ?? 0) && n <= (s.max ?? 65535))) return bad;
      break;
    }
    case 'int': {
      const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
      if (!(n >= (s.min ?? 0) && n <= (s.max ?? 999_999_999))) return bad;
      break;
    }
    case 'number': {
      const n = /^\d{1,16}(\.\d{1,16})?$/.test(value) ? Number(value) : NaN;
      if (!(n >= (s.min ?? 0) && n <= (s.max ?? Number.MAX_SAFE_INTEGER))) return bad;
      break;
    }
    case 'enum':
      if (!(s.values ?? []).includes(value)) return bad;
      break;
    case 'string':
      break;
  }
  return s.check?.(value);
}

function checkValue(s: FlagSpec, value: string, from: 'flag' | 'env'): void {
  const where = from === 'env' ? ` (from ${envName(s.name)})` : '';
  let why: string | undefined;
  try {
    why = problem(s, value);
  } catch (err) {
    if (err instanceof QbasisError) {
      throw new UsageError(`--${s.name} ${shown(value)}${where} is invalid: ${err.message}`, { code: err.code, details: { flag: s.name, value } });
    }
    throw err;
  }
  if (why !== undefined) throw new UsageError(`--${s.name} ${shown(value)}${where} is invalid: ${why}`, { details: { flag: s.name, value, expected: why } });
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function unknownFlag(cmd: CommandSpec, arg: string): UsageError {
  const name = arg.replace(/^-+/, '').split('=')[0]!;
  const close = cmd.flags.map((f) => f.name).filter((f) => distance(f, name) <= (name.length >= 5 ? 2 : 1));
  const hint = close.length > 0 ? `did you mean --${close[0]}? ` : '';
  const all = [...cmd.flags.map((f) => `--${f.name}`), '--help'].join(', ');
  return new UsageError(`unknown flag ${shown(arg.split('=')[0]!)}: ${hint}expected one of ${all}`, { details: { flag: arg } });
}

/**
 * Parses argv (and, with `env`, QBASIS_* variables) against the command's flags.
 * Returns 'help' when help was asked for; throws UsageError for anything wrong.
 */
export function parseCommandLine(cmd: CommandSpec, argv: readonly string[], env: NodeJS.ProcessEnv = {}): ParsedCommandLine | 'help' {
  if (wantsHelp(argv)) return 'help';
  const byName = new Map(cmd.flags.map((s) => [s.name, s]));
  const values: FlagValues = new Map();
  const source = new Map<string, 'flag' | 'env' | 'default'>();
  const operands: string[] = [];
  let flagsDone = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (flagsDone || arg === '-' || !arg.startsWith('-')) {
      operands.push(arg);
      continue;
    }
    if (arg === '--') {
      flagsDone = true;
      continue;
    }
    if (!arg.startsWith('--')) throw unknownFlag(cmd, arg);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = byName.get(name);
    if (spec === undefined) throw unknownFlag(cmd, arg);
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (spec.kind === 'bool') {
      const next = argv[i + 1];
      if (next === 'true' || next === 'false') {
        value = next;
        i++;
      } else value = 'true';
    } else {
      const next = argv[i + 1];
      const wanted = spec.expected ?? (spec.kind === 'string' ? spec.help : expectedOf(spec));
      if (next === undefined) throw new UsageError(`--${name} needs a value: expected ${wanted}`, { details: { flag: name } });
      if (next.startsWith('--') && next !== '--') {
        throw new UsageError(`--${name} needs a value: expected ${wanted}; got the flag ${shown(next)} next (write --${name}=VALUE for a value that starts with --)`, { details: { flag: name } });
      }
      value = next;
      i++;
    }
    checkValue(spec, value, 'flag');
    values.set(name, value);
    source.set(name, 'flag');
  }
  const ops = cmd.operands ?? { name: '', min: 0, max: 0 };
  if (operands.length > ops.max) {
    const extra = operands[ops.max]!;
    const takes = ops.max === 0 ? 'takes only flags' : `takes at most ${ops.max} ${ops.name}`;
    throw new UsageError(`unexpected argument ${shown(extra)}: qbasis ${cmd.name} ${takes}`, { code: 'QB_USAGE' });
  }
  if (operands.length < ops.min) {
    throw new UsageError(`missing ${ops.name}: qbasis ${cmd.name} takes ${ops.min === ops.max ? ops.min : `${ops.min} to ${ops.max}`} (got ${operands.length})`, { code: 'QB_USAGE' });
  }
  for (const o of operands) {
    if (o.includes('\ufffd')) throw new UsageError(`${ops.name} ${shown(o)} is invalid: it contains bytes that are not valid UTF-8 (shown as U+FFFD); expected UTF-8 text`, { code: 'QB_USAGE' });
  }
  if (cmd.env === true) {
    for (const s of cmd.flags) {
      if (values.has(s.name)) continue;
      const e = env[envName(s.name)];
      if (e === undefined || e === '') continue;
      checkValue(s, e, 'env');
      values.set(s.name, e);
      source.set(s.name, 'env');
    }
  }
  for (const s of cmd.flags) {
    if (values.has(s.name)) continue;
    if (s.default !== undefined) {
      values.set(s.name, s.default);
      source.set(s.name, 'default');
    } else if (s.required !== undefined) {
      const as = cmd.env === true ? ` (as --${s.name} or ${envName(s.name)})` : '';
      throw new UsageError(`missing --${s.name}: expected ${s.required}${as}`, { details: { flag: s.name } });
    }
  }
  return { values, operands, source };
}

function placeholder(s: FlagSpec): string {
  if (s.kind === 'bool') return '';
  if (s.arg !== undefined) return ` ${s.arg}`;
  switch (s.kind) {
    case 'port':
      return ' <port>';
    case 'int':
      return ' <n>';
    case 'number':
      return ' <n>';
    case 'enum':
      return ` ${(s.values ?? []).join('|')}`;
    default:
      return ' <value>';
  }
}

/** The --help text: usage line, summary, every flag with its default, the env form, the footer. */
export function commandUsage(cmd: CommandSpec): string {
  const synopsis = cmd.synopsis ?? `[flags]${cmd.operands !== undefined ? ` <${cmd.operands.name}>` : ''}`;
  const lines = [`Usage: qbasis ${cmd.name} ${synopsis}`];
  if (cmd.summary !== undefined) lines.push('', cmd.summary);
  const rows: Array<[string, string]> = cmd.flags.map((s) => {
    const notes: string[] = [];
    if (s.required !== undefined) notes.push('required');
    if (s.default !== undefined && s.kind !== 'bool') notes.push(`default ${s.default === '' ? "''" : s.default}`);
    else if (s.default !== undefined && s.default === 'true') notes.push('default true');
    return [`--${s.name}${placeholder(s)}`, `${s.help}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`];
  });
  rows.push(['-h, --help', 'show this help']);
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  lines.push('', cmd.env === true ? 'Flags (each also as QBASIS_<FLAG>, e.g. ' + envName(cmd.flags[0]?.name ?? 'flag') + '; a flag wins over its variable):' : 'Flags:');
  for (const [left, right] of rows) lines.push(left.length >= width ? `  ${left}\n  ${''.padEnd(width)}${right}` : `  ${left.padEnd(width)}${right}`);
  if (cmd.footer !== undefined) lines.push('', cmd.footer);
  return lines.join('\n');
}

/** Exit code for a failure: 2 for a usage error, 1 for anything else. */
export function failureExit(err: unknown): number {
  return err instanceof UsageError ? 2 : 1;
}

/** The one line for a failure: `qbasis <command>: QB_<CODE>: message` (no stack trace, never two lines). */
export function failureLine(command: string, err: unknown): string {
  const msg = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ').trim();
  const code = err instanceof QbasisError ? `${err.code}: ` : '';
  return `qbasis${command === '' ? '' : ` ${command}`}: ${code}${msg}`;
}

/** Writes the failure's one line to stderr and returns its exit code (2 usage, 1 runtime). */
export function reportFailure(command: string, err: unknown): number {
  process.stderr.write(failureLine(command, err) + '\n');
  return failureExit(err);
}

/** Parses, answers --help on stdout (exit 0) or a usage error on stderr (exit 2); else gives the result. */
export function parseOrExit(cmd: CommandSpec, argv: readonly string[], env: NodeJS.ProcessEnv = {}): ParsedCommandLine | number {
  let parsed: ParsedCommandLine | 'help';
  try {
    parsed = parseCommandLine(cmd, argv, env);
  } catch (err) {
    if (err instanceof UsageError) return reportFailure(cmd.name, err);
    throw err;
  }
  if (parsed === 'help') {
    process.stdout.write(commandUsage(cmd) + '\n');
    return 0;
  }
  return parsed;
}

/** A subcommand that is not one of `known`: a usage error naming them. */
export function unknownSubcommand(command: string, sub: string, known: readonly string[]): UsageError {
  return new UsageError(`unknown subcommand ${shown(sub)}: expected one of ${known.join(', ')}; run 'qbasis ${command} --help'`, { code: 'QB_USAGE' });
}
