import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { CallCounts as _qbasis_discovery_v1_CallCounts, CallCounts__Output as _qbasis_discovery_v1_CallCounts__Output } from './qbasis/discovery/v1/CallCounts.ts';
import type { Diff as _qbasis_discovery_v1_Diff, Diff__Output as _qbasis_discovery_v1_Diff__Output } from './qbasis/discovery/v1/Diff.ts';
import type { DiscoveryClient as _qbasis_discovery_v1_DiscoveryClient, DiscoveryDefinition as _qbasis_discovery_v1_DiscoveryDefinition } from './qbasis/discovery/v1/Discovery.ts';
import type { Endpoint as _qbasis_discovery_v1_Endpoint, Endpoint__Output as _qbasis_discovery_v1_Endpoint__Output } from './qbasis/discovery/v1/Endpoint.ts';
import type { EndpointRef as _qbasis_discovery_v1_EndpointRef, EndpointRef__Output as _qbasis_discovery_v1_EndpointRef__Output } from './qbasis/discovery/v1/EndpointRef.ts';
import type { Mirror as _qbasis_discovery_v1_Mirror, Mirror__Output as _qbasis_discovery_v1_Mirror__Output } from './qbasis/discovery/v1/Mirror.ts';
import type { MirrorCounts as _qbasis_discovery_v1_MirrorCounts, MirrorCounts__Output as _qbasis_discovery_v1_MirrorCounts__Output } from './qbasis/discovery/v1/MirrorCounts.ts';
import type { MirrorSample as _qbasis_discovery_v1_MirrorSample, MirrorSample__Output as _qbasis_discovery_v1_MirrorSample__Output } from './qbasis/discovery/v1/MirrorSample.ts';
import type { NoEndpoints as _qbasis_discovery_v1_NoEndpoints, NoEndpoints__Output as _qbasis_discovery_v1_NoEndpoints__Output } from './qbasis/discovery/v1/NoEndpoints.ts';
import type { Policy as _qbasis_discovery_v1_Policy, Policy__Output as _qbasis_discovery_v1_Policy__Output } from './qbasis/discovery/v1/Policy.ts';
import type { PolicyRoute as _qbasis_discovery_v1_PolicyRoute, PolicyRoute__Output as _qbasis_discovery_v1_PolicyRoute__Output } from './qbasis/discovery/v1/PolicyRoute.ts';
import type { ReportAck as _qbasis_discovery_v1_ReportAck, ReportAck__Output as _qbasis_discovery_v1_ReportAck__Output } from './qbasis/discovery/v1/ReportAck.ts';
import type { RetryPolicy as _qbasis_discovery_v1_RetryPolicy, RetryPolicy__Output as _qbasis_discovery_v1_RetryPolicy__Output } from './qbasis/discovery/v1/RetryPolicy.ts';
import type { SidecarReport as _qbasis_discovery_v1_SidecarReport, SidecarReport__Output as _qbasis_discovery_v1_SidecarReport__Output } from './qbasis/discovery/v1/SidecarReport.ts';
import type { Snapshot as _qbasis_discovery_v1_Snapshot, Snapshot__Output as _qbasis_discovery_v1_Snapshot__Output } from './qbasis/discovery/v1/Snapshot.ts';
import type { SplitGroup as _qbasis_discovery_v1_SplitGroup, SplitGroup__Output as _qbasis_discovery_v1_SplitGroup__Output } from './qbasis/discovery/v1/SplitGroup.ts';
import type { Update as _qbasis_discovery_v1_Update, Update__Output as _qbasis_discovery_v1_Update__Output } from './qbasis/discovery/v1/Update.ts';
import type { WatchRequest as _qbasis_discovery_v1_WatchRequest, WatchRequest__Output as _qbasis_discovery_v1_WatchRequest__Output } from './qbasis/discovery/v1/WatchRequest.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  qbasis: {
    discovery: {
      v1: {
        CallCounts: MessageTypeDefinition<_qbasis_discovery_v1_CallCounts, _qbasis_discovery_v1_CallCounts__Output>
        Diff: MessageTypeDefinition<_qbasis_discovery_v1_Diff, _qbasis_discovery_v1_Diff__Output>
        Discovery: SubtypeConstructor<typeof grpc.Client, _qbasis_discovery_v1_DiscoveryClient> & { service: _qbasis_discovery_v1_DiscoveryDefinition }
        Endpoint: MessageTypeDefinition<_qbasis_discovery_v1_Endpoint, _qbasis_discovery_v1_Endpoint__Output>
        EndpointRef: MessageTypeDefinition<_qbasis_discovery_v1_EndpointRef, _qbasis_discovery_v1_EndpointRef__Output>
        Mirror: MessageTypeDefinition<_qbasis_discovery_v1_Mirror, _qbasis_discovery_v1_Mirror__Output>
        MirrorCounts: MessageTypeDefinition<_qbasis_discovery_v1_MirrorCounts, _qbasis_discovery_v1_MirrorCounts__Output>
        MirrorSample: MessageTypeDefinition<_qbasis_discovery_v1_MirrorSample, _qbasis_discovery_v1_MirrorSample__Output>
        NoEndpoints: MessageTypeDefinition<_qbasis_discovery_v1_NoEndpoints, _qbasis_discovery_v1_NoEndpoints__Output>
        Policy: MessageTypeDefinition<_qbasis_discovery_v1_Policy, _qbasis_discovery_v1_Policy__Output>
        PolicyRoute: MessageTypeDefinition<_qbasis_discovery_v1_PolicyRoute, _qbasis_discovery_v1_PolicyRoute__Output>
        ReportAck: MessageTypeDefinition<_qbasis_discovery_v1_ReportAck, _qbasis_discovery_v1_ReportAck__Output>
        RetryPolicy: MessageTypeDefinition<_qbasis_discovery_v1_RetryPolicy, _qbasis_discovery_v1_RetryPolicy__Output>
        SidecarReport: MessageTypeDefinition<_qbasis_discovery_v1_SidecarReport, _qbasis_discovery_v1_SidecarReport__Output>
        Snapshot: MessageTypeDefinition<_qbasis_discovery_v1_Snapshot, _qbasis_discovery_v1_Snapshot__Output>
        SplitGroup: MessageTypeDefinition<_qbasis_discovery_v1_SplitGroup, _qbasis_discovery_v1_SplitGroup__Output>
        Update: MessageTypeDefinition<_qbasis_discovery_v1_Update, _qbasis_discovery_v1_Update__Output>
        WatchRequest: MessageTypeDefinition<_qbasis_discovery_v1_WatchRequest, _qbasis_discovery_v1_WatchRequest__Output>
      }
    }
  }
}

