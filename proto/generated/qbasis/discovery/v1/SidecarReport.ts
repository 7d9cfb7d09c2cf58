// Original file: proto/discovery.proto

import type { MirrorCounts as _qbasis_discovery_v1_MirrorCounts, MirrorCounts__Output as _qbasis_discovery_v1_MirrorCounts__Output } from '../../../qbasis/discovery/v1/MirrorCounts.ts';
import type { CallCounts as _qbasis_discovery_v1_CallCounts, CallCounts__Output as _qbasis_discovery_v1_CallCounts__Output } from '../../../qbasis/discovery/v1/CallCounts.ts';
import type { Long } from '@grpc/proto-loader';

export interface SidecarReport {
  'pod'?: (string);
  'namespace'?: (string);
  'runId'?: (string);
  'mirror'?: (_qbasis_discovery_v1_MirrorCounts)[];
  'calls'?: (_qbasis_discovery_v1_CallCounts)[];
  'runAgeMs'?: (number | string | Long);
  'forwarded'?: (boolean);
}

export interface SidecarReport__Output {
  'pod': (string);
  'namespace': (string);
  'runId': (string);
  'mirror': (_qbasis_discovery_v1_MirrorCounts__Output)[];
  'calls': (_qbasis_discovery_v1_CallCounts__Output)[];
  'runAgeMs': (number);
  'forwarded': (boolean);
}
