// Original file: proto/discovery.proto

import type { Snapshot as _qbasis_discovery_v1_Snapshot, Snapshot__Output as _qbasis_discovery_v1_Snapshot__Output } from '../../../qbasis/discovery/v1/Snapshot.ts';
import type { Diff as _qbasis_discovery_v1_Diff, Diff__Output as _qbasis_discovery_v1_Diff__Output } from '../../../qbasis/discovery/v1/Diff.ts';
import type { NoEndpoints as _qbasis_discovery_v1_NoEndpoints, NoEndpoints__Output as _qbasis_discovery_v1_NoEndpoints__Output } from '../../../qbasis/discovery/v1/NoEndpoints.ts';
import type { Policy as _qbasis_discovery_v1_Policy, Policy__Output as _qbasis_discovery_v1_Policy__Output } from '../../../qbasis/discovery/v1/Policy.ts';
import type { Long } from '@grpc/proto-loader';

export interface Update {
  'api'?: (string);
  'version'?: (number | string | Long);
  'snapshot'?: (_qbasis_discovery_v1_Snapshot | null);
  'diff'?: (_qbasis_discovery_v1_Diff | null);
  'noEndpoints'?: (_qbasis_discovery_v1_NoEndpoints | null);
  'policy'?: (_qbasis_discovery_v1_Policy | null);
  'kind'?: "snapshot"|"diff"|"noEndpoints";
}

export interface Update__Output {
  'api': (string);
  'version': (number);
  'snapshot'?: (_qbasis_discovery_v1_Snapshot__Output | null);
  'diff'?: (_qbasis_discovery_v1_Diff__Output | null);
  'noEndpoints'?: (_qbasis_discovery_v1_NoEndpoints__Output | null);
  'policy': (_qbasis_discovery_v1_Policy__Output | null);
  'kind'?: "snapshot"|"diff"|"noEndpoints";
}
