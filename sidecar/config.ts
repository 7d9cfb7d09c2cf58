// Flags of `qbasis sidecar`, each also settable as QBASIS_<FLAG> (dashes to underscores, upper case).
// A bad flag is one line naming the flag, the value and what is expected (exit 2, no stack trace).
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import type { ApiRange, ApiVersion } from '../proto/annotations.ts';
import { parseProvides, parseRequires } from '../proto/annotations.ts';
import { DEFAULT_MAX_PAYLOAD } from '../proto/basis/index.ts';
import { QbasisError } from '../proto/errors.ts';

export interface SidecarConfig {
  ip: string;
  outboundHost: string;
  discovery: string;
  appPort: number;
  appHost: string;
  appProtocol: 'grpc';
  provides: ApiVersion[];
  requires: ApiRange[];
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  namespace: string;
  podName: string;
  gracePeriodMs: number;
  maxFrameBytes: number;
  maxConcurrentStreams: number;
  maxConnections: number;
  idleTimeoutMs: number;
  frameIdleTimeoutMs: number;
  logLevel: string;
}

const FLAGS = {
  ip: { type: 'string', help: 'pod IP to bind outbound, inbound and admin on (e.g. 127.0.1.5)' },
  discovery: { type: 'string', help: 'controller discovery address host:port' },
  'app-port': { type: 'string', help: 'port the app listens on' },
  'app-host': { type: 'string', help: 'host the app listens on (default: --ip)' },
  'outbound-host': { type: 'string', help: 'address the app dials for outbound calls (default: --ip; in a pod 127.0.0.1, so only the pod reaches it)' },
  'app-protocol': { type: 'string', help: 'grpc (http is not supported yet)' },
  provides: { type: 'string', help: 'comma-separated API@semver the app serves' },
  requires: { type: 'string', help: 'comma-separated API@range the app calls' },
  'outbound-port': { type: 'string', help: 'port the app dials (default 15001)' },
  'inbound-port': { type: 'string', help: 'port peer sidecars dial (default 15006)' },
  'admin-port': { type: 'string', help: '/live /ready /metrics /routes /shutdown (default 15020)' },
  namespace: { type: 'string', help: 'pod namespace; only endpoints in it are used (default: all)' },
  'pod-name': { type: 'string', help: 'pod name (for logs)' },
  'grace-period': { type: 'string', help: 'seconds to finish in-flight calls on SIGTERM (default 30)' },
  'max-frame-bytes': { type: 'string', help: 'largest message accepted, in bytes (default 4194304)' },
  'max-concurrent-streams': { type: 'string', help: 'streams per connection, advertised and enforced on both listeners (default 1000)' },
  'max-connections': { type: 'string', help: 'open connections per listener; more are closed at once (default 4096)' },
  'idle-timeout': { type: 'string', help: 'seconds a connection may stay open with no call before GOAWAY (default 60)' },
  'frame-idle-timeout': { type: 'string', help: 'seconds a started frame may wait for its next byte before the call fails (default 15)' },
  'log-level': { type: 'string', help: 'trace|debug|info|warn|error|fatal|silent (default info)' },
  help: { type: 'boolean', help: 'show this help' },
} as const;

export function usage(): string {
  const lines = ['Usage: qbasis sidecar --ip <pod ip> --discovery <host:port> --app-port <n> [flags]', '', 'Flags (each also as QBASIS_<FLAG>, e.g. QBASIS_APP_PORT):'];
  for (const [name, f] of Object.entries(FLAGS)) lines.push(`  --${name.padEnd(22)} ${f.help}`);
  return lines.join('\n');
}

function flagError(flag: string, value: string, expected: string): QbasisError {
  return new QbasisError('QB_INVALID_FLAG', `invalid --${flag} '${value}': expected ${expected}`, { details: { flag, value, expected } });
}

function port(flag: string, value: string): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 65535)) throw flagError(flag, value, 'a port number from 1 to 65535');
  return n;
}

function hostPort(flag: string, value: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (!m || !(Number(m[2]) >= 1 && Number(m[2]) <= 65535)) throw flagError(flag, value, 'host:port, e.g. 127.0.0.1:15010');
  return value;
}

/** Parses argv plus QBASIS_* environment. Throws QbasisError (QB_INVALID_FLAG); returns 'help' for --help. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig | 'help' {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, f] of Object.entries(FLAGS)) options[name] = { type: f.type };
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
    values = parsed.values as Record<string, string | boolean | undefined>;
  } catch (err) {
    const msg = (err as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(msg);
    if (unknown) throw new QbasisError('QB_INVALID_FLAG', `unknown flag '${unknown[1]}': expected one of ${Object.keys(FLAGS).map((f) => `--${f}`).join(', ')}`);
    const positional = /Unexpected argument '([^']+)'/.exec(msg);
    if (positional) throw new QbasisError('QB_INVALID_FLAG', `unexpected argument '${positional[1]}': expected only --flag value pairs`);
    const missing = /Option '(?:-\w, )?--([\w-]+) <value>' argument missing/.exec(msg);
    if (missing) throw flagError(missing[1]!, '', 'a value');
    const ambiguous = /Option '(?:-\w, )?--([\w-]+)' argument is ambiguous/.exec(msg);
    if (ambiguous) throw new QbasisError('QB_INVALID_FLAG', `invalid --${ambiguous[1]}: its value starts with '-'; expected --${ambiguous[1]}=<value> if that is meant`);
    throw new QbasisError('QB_INVALID_FLAG', msg.split('\n')[0]!);
  }
  if (values.help === true) return 'help';
  const get = (flag: string): string | undefined => {
    const v = values[flag];
    if (typeof v === 'string') return v;
    const e = env[`QBASIS_${flag.toUpperCase().replaceAll('-', '_')}`];
    return e === undefined || e === '' ? undefined : e;
  };
  const required = (flag: string, expected: string): string => {
    const v = get(flag);
    if (v === undefined) throw flagError(flag, '', `${expected} (flag or QBASIS_${flag.toUpperCase().replaceAll('-', '_')})`);
    return v;
  };

  const ip = required('ip', 'the pod IP address');
  if (isIP(ip) === 0) throw flagError('ip', ip, 'an IPv4 or IPv6 address such as 127.0.1.5');
  const discovery = hostPort('discovery', required('discovery', 'host:port of the controller'));
  const appPort = port('app-port', required('app-port', 'the app port'));
  const appHost = get('app-host') ?? ip;
  const outboundHost = get('outbound-host') ?? ip;
  if (isIP(outboundHost) === 0) throw flagError('outbound-host', outboundHost, 'an IPv4 or IPv6 address such as 127.0.0.1');
  const protocol = get('app-protocol') ?? 'grpc';
  if (protocol === 'http') throw flagError('app-protocol', protocol, "'grpc' (the HTTP/JSON gateway for app-protocol http is not implemented yet)");
  if (protocol !== 'grpc') throw flagError('app-protocol', protocol, "'grpc'");
  const list = <T>(flag: string, parse: (v: string, name: string) => T[]): T[] => {
    const v = get(flag);
    if (v === undefined || v.trim() === '') return [];
    try {
      return parse(v, `--${flag}`);
    } catch (err) {
      const why = (err as Error).message.replace(/^--[\w-]+: /, '');
      throw new QbasisError('QB_INVALID_FLAG', `invalid --${flag} '${v}': ${why}`, { details: { flag, value: v } });
    }
  };
  const provides = list('provides', parseProvides);
  const requires = list('requires', parseRequires);
  const grace = get('grace-period') ?? '30';
  const graceSeconds = /^\d+(\.\d+)?$/.test(grace) ? Number(grace) : NaN;
  if (!(graceSeconds >= 0 && graceSeconds <= 3600)) throw flagError('grace-period', grace, 'seconds from 0 to 3600');
  const maxFrame = get('max-frame-bytes') ?? String(DEFAULT_MAX_PAYLOAD);
  const maxFrameBytes = /^\d+$/.test(maxFrame) ? Number(maxFrame) : NaN;
  if (!(maxFrameBytes >= 1024 && maxFrameBytes <= 0xffffffff)) throw flagError('max-frame-bytes', maxFrame, 'bytes from 1024 to 4294967295');
  const count = (flag: string, dflt: number, max: number): number => {
    const v = get(flag) ?? String(dflt);
    const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
    if (!(n >= 1 && n <= max)) throw flagError(flag, v, `a whole number from 1 to ${max}`);
    return n;
  };
  const seconds = (flag: string, dflt: number): number => {
    const v = get(flag) ?? String(dflt);
    const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
    if (!(n >= 0.05 && n <= 86_400)) throw flagError(flag, v, 'seconds from 0.05 to 86400');
    return n * 1000;
  };
  const limits = {
    maxConcurrentStreams: count('max-concurrent-streams', 1000, 2 ** 31 - 1),
    maxConnections: count('max-connections', 4096, 1_000_000),
    idleTimeoutMs: seconds('idle-timeout', 60),
    frameIdleTimeoutMs: seconds('frame-idle-timeout', 15),
  };
  const logLevel = get('log-level') ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) {
    throw flagError('log-level', logLevel, 'one of trace, debug, info, warn, error, fatal, silent');
  }
  const ports = {
    outboundPort: port('outbound-port', get('outbound-port') ?? '15001'),
    inboundPort: port('inbound-port', get('inbound-port') ?? '15006'),
    adminPort: port('admin-port', get('admin-port') ?? '15020'),
  };
  return {
    ip, outboundHost, discovery, appPort, appHost, appProtocol: 'grpc', provides, requires, ...ports,
    namespace: get('namespace') ?? '', podName: get('pod-name') ?? `sidecar-${ip}`,
    gracePeriodMs: graceSeconds * 1000, maxFrameBytes, ...limits, logLevel,
  };
}
