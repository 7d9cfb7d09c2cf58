// Original file: proto/discovery.proto

import type { MirrorCounts as _qbasis_discovery_v1_MirrorCounts, MirrorCounts__Output as _qbasis_discovery_v1_MirrorCounts__Output } from '../../../qbasis/discovery/v1/MirrorCounts.ts';

export interface SidecarReport {
  'pod'?: (string);
  'namespace'?: (string);
  'runId'?: (string);
  'mirror'?: (_qbasis_discovery_v1_MirrorCounts)[];
  'forwarded'?: (boolean);
}

export interface SidecarReport__Output {
  'pod': (string);
  'namespace': (string);
  'runId': (string);
  'mirror': (_qbasis_discovery_v1_MirrorCounts__Output)[];
  'forwarded': (boolean);
}
