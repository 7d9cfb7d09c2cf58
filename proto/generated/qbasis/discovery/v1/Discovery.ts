// Original file: proto/discovery.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Update as _qbasis_discovery_v1_Update, Update__Output as _qbasis_discovery_v1_Update__Output } from '../../../qbasis/discovery/v1/Update.ts';
import type { WatchRequest as _qbasis_discovery_v1_WatchRequest, WatchRequest__Output as _qbasis_discovery_v1_WatchRequest__Output } from '../../../qbasis/discovery/v1/WatchRequest.ts';

export interface DiscoveryClient extends grpc.Client {
  Watch(argument: _qbasis_discovery_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  Watch(argument: _qbasis_discovery_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  watch(argument: _qbasis_discovery_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  watch(argument: _qbasis_discovery_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  
}

export interface DiscoveryHandlers extends grpc.UntypedServiceImplementation {
  Watch: grpc.handleServerStreamingCall<_qbasis_discovery_v1_WatchRequest__Output, _qbasis_discovery_v1_Update>;
  
}

export interface DiscoveryDefinition extends grpc.ServiceDefinition {
  Watch: MethodDefinition<_qbasis_discovery_v1_WatchRequest, _qbasis_discovery_v1_Update, _qbasis_discovery_v1_WatchRequest__Output, _qbasis_discovery_v1_Update__Output>
}
