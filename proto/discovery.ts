// Loads proto/discovery.proto at runtime (@grpc/proto-loader) and gives both sides
// the service definition plus plain, typed endpoint values. Types come from
// proto/generated/ (npm run gen:proto); this file only adds the conversions.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/discovery.ts';
import type { DiscoveryDefinition, DiscoveryClient as GeneratedDiscoveryClient } from './generated/qbasis/discovery/v1/Discovery.ts';
import type { Endpoint as WireEndpoint, Endpoint__Output as WireEndpointOut } from './generated/qbasis/discovery/v1/Endpoint.ts';
import type { Update, Update__Output } from './generated/qbasis/discovery/v1/Update.ts';
import type { WatchRequest, WatchRequest__Output } from './generated/qbasis/discovery/v1/WatchRequest.ts';

export type { Update, Update__Output, WatchRequest, WatchRequest__Output, DiscoveryDefinition, GeneratedDiscoveryClient };

export const DISCOVERY_PROTO_PATH = path.join(import.meta.dirname, 'discovery.proto');
export const DISCOVERY_SERVICE = 'qbasis.discovery.v1.Discovery';
export const DISCOVERY_WATCH_PATH = `/${DISCOVERY_SERVICE}/Watch`;
/** DESIGN.md ports. */
export const DEFAULT_DISCOVERY_PORT = 15010;
export const DEFAULT_INBOUND_PORT = 15006;
/** Discovery and identity over TLS (mesh identity on). */
export const DEFAULT_IDENTITY_PORT = 15012;

/** Must match the flags given to proto-loader-gen-types (package.json gen:proto). */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** One endpoint of one API, as both the controller and the sidecar hold it. */
export interface Endpoint {
  pod: string;
  namespace: string;
  address: string;
  port: number;
  version: string;
  codecs: number[];
  ready: boolean;
  /** The pod's SPIFFE ID (proto/identity.ts spiffeId); '' when the controller does not know it. */
  identity: string;
}

/** A .proto of proto/ loaded as a grpc-js package, once per process (parsing it once is enough). */
export function lazyPackage<T>(file: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS)) as unknown as T);
}

/** The parsed package. */
export const discoveryPackage = lazyPackage<ProtoGrpcType>(DISCOVERY_PROTO_PATH);

export function discoveryServiceDefinition(): DiscoveryDefinition {
  return discoveryPackage().qbasis.discovery.v1.Discovery.service;
}

/** A grpc-js client constructor for the Discovery service. */
export function discoveryClientConstructor(): ProtoGrpcType['qbasis']['discovery']['v1']['Discovery'] {
  return discoveryPackage().qbasis.discovery.v1.Discovery;
}

/** Identity of an endpoint inside one API's set. */
export function endpointKey(ep: { namespace: string; pod: string }): string {
  return `${ep.namespace}/${ep.pod}`;
}

export function endpointToWire(ep: Endpoint): WireEndpoint {
  return { pod: ep.pod, namespace: ep.namespace, address: ep.address, port: ep.port, version: ep.version, codecs: [...ep.codecs], ready: ep.ready, identity: ep.identity };
}

export function endpointFromWire(ep: WireEndpointOut): Endpoint {
  return {
    pod: ep.pod,
    namespace: ep.namespace,
    address: ep.address,
    port: ep.port,
    version: ep.version,
    codecs: [...ep.codecs],
    ready: ep.ready,
    identity: ep.identity,
  };
}

/** True if two endpoints differ in anything a subscriber routes on. */
export function endpointChanged(a: Endpoint, b: Endpoint): boolean {
  return (
    a.address !== b.address ||
    a.port !== b.port ||
    a.version !== b.version ||
    a.ready !== b.ready ||
    a.identity !== b.identity ||
    a.codecs.length !== b.codecs.length ||
    a.codecs.some((c, i) => c !== b.codecs[i])
  );
}

/** Keepalive settings shared by server and client, so a dead peer is noticed in ~15 s. */
export const DISCOVERY_KEEPALIVE = {
  /** client pings every 10 s even with no calls; a missing ack after 5 s closes the channel. */
  client: {
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
  },
  server: {
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 5_000,
    // must allow the client's 10 s pings, or the server answers them with GOAWAY (too_many_pings)
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
  },
} as const;
