// Original file: proto/discovery.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ReportAck as _qbasis_discovery_v1_ReportAck, ReportAck__Output as _qbasis_discovery_v1_ReportAck__Output } from '../../../qbasis/discovery/v1/ReportAck.ts';
import type { SidecarReport as _qbasis_discovery_v1_SidecarReport, SidecarReport__Output as _qbasis_discovery_v1_SidecarReport__Output } from '../../../qbasis/discovery/v1/SidecarReport.ts';
import type { Update as _qbasis_discovery_v1_Update, Update__Output as _qbasis_discovery_v1_Update__Output } from '../../../qbasis/discovery/v1/Update.ts';
import type { WatchRequest as _qbasis_discovery_v1_WatchRequest, WatchRequest__Output as _qbasis_discovery_v1_WatchRequest__Output } from '../../../qbasis/discovery/v1/WatchRequest.ts';

export interface DiscoveryClient extends grpc.Client {
  Report(argument: _qbasis_discovery_v1_SidecarReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  Report(argument: _qbasis_discovery_v1_SidecarReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  Report(argument: _qbasis_discovery_v1_SidecarReport, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  Report(argument: _qbasis_discovery_v1_SidecarReport, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  report(argument: _qbasis_discovery_v1_SidecarReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  report(argument: _qbasis_discovery_v1_SidecarReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  report(argument: _qbasis_discovery_v1_SidecarReport, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  report(argument: _qbasis_discovery_v1_SidecarReport, callback: grpc.requestCallback<_qbasis_discovery_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  
  Watch(argument: _qbasis_discovery_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  Watch(argument: _qbasis_discovery_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  watch(argument: _qbasis_discovery_v1_WatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  watch(argument: _qbasis_discovery_v1_WatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_qbasis_discovery_v1_Update__Output>;
  
}

export interface DiscoveryHandlers extends grpc.UntypedServiceImplementation {
  Report: grpc.handleUnaryCall<_qbasis_discovery_v1_SidecarReport__Output, _qbasis_discovery_v1_ReportAck>;
  
  Watch: grpc.handleServerStreamingCall<_qbasis_discovery_v1_WatchRequest__Output, _qbasis_discovery_v1_Update>;
  
}

export interface DiscoveryDefinition extends grpc.ServiceDefinition {
  Report: MethodDefinition<_qbasis_discovery_v1_SidecarReport, _qbasis_discovery_v1_ReportAck, _qbasis_discovery_v1_SidecarReport__Output, _qbasis_discovery_v1_ReportAck__Output>
  Watch: MethodDefinition<_qbasis_discovery_v1_WatchRequest, _qbasis_discovery_v1_Update, _qbasis_discovery_v1_WatchRequest__Output, _qbasis_discovery_v1_Update__Output>
}
