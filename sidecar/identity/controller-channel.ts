// How a sidecar with identity on reaches the controller: TLS, the server verified against the trust
// bundle and by the host it dialled (an IP SAN for an IP, a DNS SAN for a name). For an IP target the
// TLS server name (SNI) is a fixed DNS name instead of the IP, which RFC 6066 forbids there (Node warns,
// DEP0123); the check stays the dialled IP's.
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';

export interface ControllerChannel {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
}

export function controllerChannel(target: string, bundle: Buffer): ControllerChannel {
  const host = target.startsWith('[') ? target.slice(1, target.indexOf(']')) : target.slice(0, target.lastIndexOf(':'));
  if (isIP(host) === 0) return { credentials: grpc.credentials.createSsl(bundle), options: {} };
  return {
    credentials: grpc.credentials.createSsl(bundle, null, null, { checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) }),
    options: { 'grpc.ssl_target_name_override': 'qbasis-controller' },
  };
}
