// The controller's TLS port (default 15012): qbasis.identity.v1.Identity (Certify) and, beside it,
// the same Discovery service as the plain port, with the controller's certificate from the mesh CA.
// Certify is never served in plain text (a token must not cross the network in the clear).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { DISCOVERY_KEEPALIVE } from '../../proto/discovery.ts';
import { identityServiceDefinition } from '../../proto/identity.ts';
import { shutdownServer, type DiscoveryServer } from '../discovery-server.ts';
import type { CertifyService } from './certify-service.ts';
import type { ServingCertificate } from './serving-certificate.ts';

export interface IdentityServerOptions {
  host: string;
  port: number;
  certify: CertifyService;
  discovery: DiscoveryServer;
  serving: ServingCertificate;
  log: Logger;
}

export class IdentityServer {
  readonly #o: IdentityServerOptions;
  readonly #server: grpc.Server;
  #port = 0;

  constructor(o: IdentityServerOptions) {
    this.#o = o;
    // Certify and Watch messages are small; a CSR is at most 8 KiB, a token 16 KiB.
    this.#server = new grpc.Server({ ...DISCOVERY_KEEPALIVE.server, 'grpc.max_receive_message_length': 64 * 1024 });
    this.#server.addService(identityServiceDefinition(), { Certify: o.certify.handler });
    o.discovery.addTo(this.#server);
  }

  async start(): Promise<number> {
    await this.#o.serving.start();
    const hostPort = this.#o.host.includes(':') ? `[${this.#o.host}]:${this.#o.port}` : `${this.#o.host}:${this.#o.port}`;
    // grpc-js's declaration names its first parameter the CA provider, but its code takes the first
    // as the identity (certificate) provider and the second, nullable, as the CA: no client certificates.
    const creds = grpc.experimental.createCertificateProviderServerCredentials(this.#o.serving, null, false);
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(hostPort, creds, (err, port) => (err ? reject(err) : resolve(port)));
    });
    this.#o.log.info({ address: hostPort, port: this.#port }, 'identity server listening (TLS: Certify and Discovery)');
    return this.#port;
  }

  port(): number {
    return this.#port;
  }

  async stop(graceMs = 2000): Promise<void> {
    this.#o.serving.stop();
    this.#o.discovery.endStreams();
    await shutdownServer(this.#server, graceMs);
  }
}
