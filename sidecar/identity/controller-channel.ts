// How a sidecar with identity on reaches the controller: TLS, the server verified against the trust
// bundle and by the host it dialled (an IP SAN for an IP, a DNS SAN for a name). For an IP target the
// TLS server name (SNI) is a fixed DNS name instead of the IP, which RFC 6066 forbids there (Node warns,
// DEP0123); the check stays the dialled IP's. One TLS context shared by Certify and Discovery, so a
// root added to the bundle during a rotation reaches both (`trust`; Node cannot remove a CA from a
// context, so a root removed later stays trusted for the controller until the sidecar restarts).
import { checkServerIdentity, createSecureContext, type PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { pemCertificates } from '../../proto/pem-certificates.ts';

export interface ControllerChannel {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
  /** Trust the roots of `bundle` too, for new connections. */
  trust(bundle: Buffer): void;
}

export function controllerChannel(target: string, bundle: Buffer): ControllerChannel {
  const host = target.startsWith('[') ? target.slice(1, target.indexOf(']')) : target.slice(0, target.lastIndexOf(':'));
  const ctx = createSecureContext({ ca: bundle });
  const known = new Set(pemCertificates(bundle.toString('utf8')));
  const trust = (b: Buffer): void => {
    for (const pem of pemCertificates(b.toString('utf8'))) {
      if (known.has(pem)) continue;
      known.add(pem);
      (ctx.context as { addCACert(pem: string): void }).addCACert(pem);
    }
  };
  if (isIP(host) === 0) return { credentials: grpc.credentials.createFromSecureContext(ctx), options: {}, trust };
  return {
    credentials: grpc.credentials.createFromSecureContext(ctx, { checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) }),
    options: { 'grpc.ssl_target_name_override': 'qbasis-controller' },
    trust,
  };
}
