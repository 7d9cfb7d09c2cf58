// Flags of `qbasis sidecar`, declared for the one parser (cli/flags.ts), each also settable as
// QBASIS_<FLAG> (dashes to underscores, upper case). A bad flag is one line naming the flag, the value
// and what is expected (QB_INVALID_FLAG, exit 2, no stack trace).
import { isIP } from 'node:net';
import type { ApiRange, ApiVersion } from '../proto/annotations.ts';
import { parseProvides, parseRequires } from '../proto/annotations.ts';
import { DEFAULT_MAX_PAYLOAD } from '../proto/basis/index.ts';
import { commandUsage, parseCommandLine, UsageError, type CommandSpec } from '../cli/flags.ts';

export interface SidecarConfig {
  ip: string;
  outboundHost: string;
  discovery: string;
  /** Absent only in a pod that provides nothing (a caller, a Job): no call ever goes to its app. */
  appPort: number | undefined;
  appHost: string;
  /** http: a legacy HTTP/JSON app; the sidecar is its protocol gateway, converting with `schema`. */
  appProtocol: 'grpc' | 'http';
  /** --schema: a FileDescriptorSet file or a directory of .proto files (a ConfigMap mount); set with app-protocol http only. */
  schema: string | undefined;
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
  /** Mesh identity on (both flags given): the pod's token and the trust bundle (PEM roots). */
  identity: { tokenFile: string; trustBundle: string } | undefined;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function ipProblem(example: string): (v: string) => string | undefined {
  return (v) => (isIP(v) === 0 ? `expected an IPv4 or IPv6 address such as ${example}` : undefined);
}

function hostPortProblem(v: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  return m && Number(m[2]) >= 1 && Number(m[2]) <= 65535 ? undefined : 'expected host:port, e.g. 127.0.0.1:15010';
}

/** The message of an annotation-style list parser, without its "--flag: " prefix. */
function listProblem(parse: (v: string, name: string) => unknown, flag: string): (v: string) => string | undefined {
  return (v) => {
    if (v.trim() === '') return undefined;
    try {
      parse(v, `--${flag}`);
      return undefined;
    } catch (err) {
      return (err as Error).message.replace(/^--[\w-]+: /, '');
    }
  };
}

const PORT = { kind: 'port', min: 1, max: 65535 } as const;

export const SIDECAR_COMMAND: CommandSpec = {
  name: 'sidecar',
  synopsis: '--ip <pod ip> --discovery <host:port> [--app-port <port>] [flags]',
  summary: 'The per-pod proxy: outbound for the app, inbound for peer sidecars, admin.',
  env: true,
  flags: [
    { name: 'ip', kind: 'string', arg: '<ip>', required: 'the pod IP address', check: ipProblem('127.0.1.5'), help: 'pod IP to bind inbound and admin on (e.g. 127.0.1.5)' },
    { name: 'discovery', kind: 'string', arg: '<host:port>', required: 'host:port of the controller', check: hostPortProblem, help: 'controller discovery address' },
    { name: 'app-port', ...PORT, help: 'port the app listens on (needed when the pod provides an API)' },
    { name: 'app-host', kind: 'string', arg: '<host>', help: 'host the app listens on (default: --ip)' },
    { name: 'outbound-host', kind: 'string', arg: '<ip>', check: ipProblem('127.0.0.1'), help: 'address the app dials for outbound calls (default: --ip; in a pod 127.0.0.1, so only the pod reaches it)' },
    { name: 'app-protocol', kind: 'enum', values: ['grpc', 'http'], default: 'grpc', help: 'grpc, or http: a legacy HTTP/JSON app, the sidecar converting with --schema (sidecar/gateway/README.md)' },
    { name: 'schema', kind: 'string', arg: '<path>', help: 'app-protocol http: the API schema, a FileDescriptorSet file (*.binpb) or a directory of .proto files (the qbasis.io/schema ConfigMap, mounted)' },
    { name: 'provides', kind: 'string', arg: '<API@semver,…>', allowEmpty: true, check: listProblem(parseProvides, 'provides'), help: 'comma-separated API@semver the app serves' },
    { name: 'requires', kind: 'string', arg: '<API@range,…>', allowEmpty: true, check: listProblem(parseRequires, 'requires'), help: 'comma-separated API@range the app calls' },
    { name: 'outbound-port', ...PORT, default: '15001', help: 'port the app dials' },
    { name: 'inbound-port', ...PORT, default: '15006', help: 'port peer sidecars dial' },
    { name: 'admin-port', ...PORT, default: '15020', help: '/live /ready /metrics /routes /shutdown' },
    { name: 'namespace', kind: 'string', allowEmpty: true, help: 'pod namespace; only endpoints in it are used (default: all)' },
    { name: 'pod-name', kind: 'string', help: 'pod name, for logs (default sidecar-<ip>)' },
    { name: 'grace-period', kind: 'number', min: 0, max: 3600, default: '30', expected: 'seconds from 0 to 3600', help: 'seconds to finish in-flight calls on SIGTERM' },
    { name: 'max-frame-bytes', kind: 'int', min: 1024, max: 0xffffffff, default: String(DEFAULT_MAX_PAYLOAD), expected: 'bytes from 1024 to 4294967295', help: 'largest message accepted, in bytes' },
    { name: 'max-concurrent-streams', kind: 'int', min: 1, max: 2 ** 31 - 1, default: '1000', help: 'streams per connection, advertised and enforced on both listeners' },
    { name: 'max-connections', kind: 'int', min: 1, max: 1_000_000, default: '4096', help: 'open connections per listener; more are closed at once' },
    { name: 'idle-timeout', kind: 'number', min: 0.05, max: 86_400, default: '60', expected: 'seconds from 0.05 to 86400', help: 'seconds a connection may stay open with no call before GOAWAY' },
    { name: 'frame-idle-timeout', kind: 'number', min: 0.05, max: 86_400, default: '15', expected: 'seconds from 0.05 to 86400', help: 'seconds a started frame may wait for its next byte before the call fails' },
    { name: 'log-level', kind: 'enum', values: LOG_LEVELS, default: 'info', help: 'log level' },
    { name: 'token-file', kind: 'string', arg: '<file>', help: 'mesh identity: the pod token Certify checks (local mode: <identity dir>/tokens/<ns>/<pod>); with --trust-bundle, --discovery is the controller\'s TLS port (15012)' },
    { name: 'trust-bundle', kind: 'string', arg: '<file>', help: 'mesh identity: PEM roots the controller and every peer are verified against (local mode: <identity dir>/ca.pem)' },
  ],
};

export function usage(): string {
  return commandUsage(SIDECAR_COMMAND);
}

/** Parses argv plus QBASIS_* environment (cli/flags.ts). Throws UsageError (QB_INVALID_FLAG, exit 2); returns 'help' for --help. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig | 'help' {
  const parsed = parseCommandLine(SIDECAR_COMMAND, argv, env);
  if (parsed === 'help') return 'help';
  const v = parsed.values;
  const get = (flag: string): string | undefined => v.get(flag);
  const num = (flag: string): number => Number(v.get(flag));
  const ip = get('ip')!;
  const list = <T>(flag: string, parse: (value: string, name: string) => T[]): T[] => {
    const value = get(flag);
    return value === undefined || value.trim() === '' ? [] : parse(value, `--${flag}`);
  };
  const tokenFile = get('token-file');
  const trustBundle = get('trust-bundle');
  if ((tokenFile === undefined) !== (trustBundle === undefined)) {
    const [have, missing] = tokenFile === undefined ? ['--trust-bundle', '--token-file'] : ['--token-file', '--trust-bundle'];
    throw new UsageError(`${have} needs ${missing} too: mesh identity takes both (the pod's token and the trust bundle)`);
  }
  const appProtocol = get('app-protocol') as 'grpc' | 'http';
  const schema = get('schema');
  if (appProtocol === 'http' && schema === undefined) throw new UsageError('--app-protocol http needs --schema <path>: the gateway converts JSON with the API\'s protobuf schema (a FileDescriptorSet file or a directory of .proto files)');
  if (appProtocol === 'grpc' && schema !== undefined) throw new UsageError(`--schema ${schema} is used only with --app-protocol http (a gRPC app needs no schema)`);
  const provides = list('provides', parseProvides);
  const appPort = get('app-port') === undefined ? undefined : num('app-port');
  if (appPort === undefined && provides.length > 0) {
    throw new UsageError(`--app-port is needed: the pod provides ${provides.map((p) => `${p.api}@${p.version}`).join(', ')}, and its sidecar passes those calls to the app on that port (qbasis.io/app-port)`);
  }
  return {
    schema,
    identity: tokenFile === undefined ? undefined : { tokenFile, trustBundle: trustBundle! },
    ip,
    outboundHost: get('outbound-host') ?? ip,
    discovery: get('discovery')!,
    appPort,
    appHost: get('app-host') ?? ip,
    appProtocol,
    provides,
    requires: list('requires', parseRequires),
    outboundPort: num('outbound-port'),
    inboundPort: num('inbound-port'),
    adminPort: num('admin-port'),
    namespace: get('namespace') ?? '',
    podName: get('pod-name') ?? `sidecar-${ip}`,
    gracePeriodMs: num('grace-period') * 1000,
    maxFrameBytes: num('max-frame-bytes'),
    maxConcurrentStreams: num('max-concurrent-streams'),
    maxConnections: num('max-connections'),
    idleTimeoutMs: num('idle-timeout') * 1000,
    frameIdleTimeoutMs: num('frame-idle-timeout') * 1000,
    logLevel: get('log-level')!,
  };
}
