// The console's flags and its wiring for main.ts: `--console HOST:PORT` turns it on. Three parts join
// the controller at three points: the caller pods (a PodSink teed beside the registry), the call
// traffic (fed by Discovery/Report) and the server (a ControllerComponent started after discovery).
import type { Logger } from 'pino';
import type { FlagSpec, FlagValues } from '../../cli/flags.ts';
import type { ControllerComponent } from '../component.ts';
import type { DiscoveryServer } from '../discovery-server.ts';
import type { EndpointRegistry } from '../endpoint-registry.ts';
import type { MirrorResults } from '../mirror-results.ts';
import type { PodSource } from '../pod-source.ts';
import type { PolicyIntake } from '../policy-intake.ts';
import type { PolicyStore } from '../policy-store.ts';
import { CallTraffic } from './call-traffic.ts';
import { CallerPods } from './caller-pods.ts';
import { ConsoleServer, DEFAULT_CONSOLE_PORT, parseConsoleAddress, type ConsoleAddress } from './console-server.ts';
import { EVENT_STREAM_DEFAULTS } from './event-stream.ts';
import type { BasisServicesHealth, IdentityHealthView, ReplicaView } from './mesh-snapshot.ts';
import { MeshView } from './mesh-view.ts';

export const CONSOLE_FLAG_SPECS: FlagSpec[] = [
  {
    name: 'console', kind: 'string', arg: '<host:port>',
    help: `serve the read-only web console (/, /api/v1/mesh, /api/v1/events) on this address, e.g. 127.0.0.1:${DEFAULT_CONSOLE_PORT} (off when absent)`,
    check: (v) => { const a = parseConsoleAddress(v); return typeof a === 'string' ? a : undefined; },
  },
  {
    name: 'console-allowed-hosts', kind: 'string', arg: '<host:port,…>',
    help: 'Host header values the console answers besides its own address (e.g. a port-forward\'s localhost:8014); any other is refused',
    check: (v) => (v.split(',').every((h) => /^[a-z0-9.\-[\]:]+:\d{1,5}$/i.test(h.trim())) ? undefined : 'expected comma-separated host:port values, e.g. localhost:8014'),
  },
  { name: 'console-max-clients', kind: 'int', min: 1, max: 1000, default: String(EVENT_STREAM_DEFAULTS.maxClients), help: 'open event streams (pages) the console serves at once; more get 503' },
];

export interface ConsoleDeps {
  registry: EndpointRegistry;
  intake: PolicyIntake;
  store: PolicyStore;
  mirror: MirrorResults;
  discovery: DiscoveryServer;
  source: PodSource;
  mode: 'local' | 'kubernetes';
  /** Kubernetes mode: this replica and the leader, for the health block. */
  replica?: () => ReplicaView;
  basisServices?: () => BasisServicesHealth | undefined;
  identity?: () => IdentityHealthView;
  logger: Logger;
}

export interface ConsoleParts {
  /** Feed it the same pods as the registry. */
  callers: CallerPods;
  /** Hand it to the discovery server (Discovery/Report). */
  traffic: CallTraffic;
  component(deps: ConsoleDeps): ControllerComponent;
}

/** undefined when --console is absent. */
export function consoleParts(flags: FlagValues): ConsoleParts | undefined {
  const text = flags.get('console');
  if (text === undefined) return undefined;
  const address = parseConsoleAddress(text) as ConsoleAddress;
  const allowedHosts = (flags.get('console-allowed-hosts') ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '');
  const callers = new CallerPods();
  const traffic = new CallTraffic({ workloadOf: (ns, pod) => callers.workloadOf(ns, pod) });
  return {
    callers,
    traffic,
    component(deps) {
      let server: ConsoleServer | undefined;
      const view = new MeshView({ ...deps, callers, traffic, clients: () => server?.clients ?? 0 });
      server = new ConsoleServer({ view, address, allowedHosts, logger: deps.logger, maxClients: Number(flags.get('console-max-clients')) });
      const s = server;
      return {
        name: 'console',
        start: async () => {
          view.start();
          await s.start();
        },
        stop: async () => {
          view.stop();
          await s.stop();
        },
        ready: () => s.ready(),
      };
    },
  };
}
