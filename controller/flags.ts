// The controller's flags: `--name value` or `--name=value`, each also settable as
// QBASIS_<NAME> in the environment (flags win). A bad flag is one line naming the
// flag, the value and what is expected; main exits 2.

export class FlagError extends Error {}

export interface FlagSpec {
  /** Without the leading dashes, e.g. "discovery-port". */
  name: string;
  kind: 'string' | 'port' | 'int' | 'bool' | 'enum';
  values?: readonly string[];
  default?: string;
  help: string;
}

export type FlagValues = Map<string, string>;

function envName(flag: string): string {
  return `QBASIS_${flag.toUpperCase().replaceAll('-', '_')}`;
}

function check(spec: FlagSpec, value: string): void {
  const bad = (expected: string): FlagError => new FlagError(`--${spec.name} '${value}' is invalid: expected ${expected}`);
  switch (spec.kind) {
    case 'port': {
      if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw bad('a port number from 0 to 65535');
      break;
    }
    case 'int': {
      if (!/^\d{1,9}$/.test(value)) throw bad('a non-negative integer');
      break;
    }
    case 'bool': {
      if (value !== 'true' && value !== 'false') throw bad('true or false');
      break;
    }
    case 'enum': {
      if (!(spec.values ?? []).includes(value)) throw bad(`one of ${(spec.values ?? []).join(', ')}`);
      break;
    }
    case 'string': {
      if (value === '') throw bad('a non-empty value');
      break;
    }
  }
}

/** Parses argv + env against the specs. Returns undefined when --help was asked for. */
export function parseFlags(specs: readonly FlagSpec[], argv: readonly string[], env: NodeJS.ProcessEnv): FlagValues | undefined {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: FlagValues = new Map();
  for (const s of specs) {
    const e = env[envName(s.name)];
    if (e !== undefined && e !== '') {
      check(s, e);
      out.set(s.name, e);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return undefined;
    if (!arg.startsWith('--')) throw new FlagError(`unexpected argument '${arg}': expected --flag value`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = byName.get(name);
    if (spec === undefined) throw new FlagError(`unknown flag --${name}: expected one of ${specs.map((s) => `--${s.name}`).join(', ')}`);
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (spec.kind === 'bool' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) value = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new FlagError(`--${name} needs a value: expected ${spec.help}`);
      value = next;
      i++;
    }
    check(spec, value);
    out.set(name, value);
  }
  for (const s of specs) if (!out.has(s.name) && s.default !== undefined) out.set(s.name, s.default);
  return out;
}

export function flagUsage(command: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage: qbasis ${command} [flags]`, '', 'Flags (each also settable as QBASIS_<FLAG>, e.g. QBASIS_DISCOVERY_PORT):'];
  for (const s of specs) {
    const def = s.default !== undefined ? ` (default ${s.default})` : '';
    lines.push(`  --${s.name.padEnd(20)} ${s.help}${def}`);
  }
  return lines.join('\n');
}
