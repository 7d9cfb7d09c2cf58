// Original file: proto/discovery.proto

import type { MirrorCounts as _qbasis_discovery_v1_MirrorCounts, MirrorCounts__Output as _qbasis_discovery_v1_MirrorCounts__Output } from '../../../qbasis/discovery/v1/MirrorCounts.ts';

export interface MirrorReport {
  'pod'?: (string);
  'namespace'?: (string);
  'runId'?: (string);
  'counts'?: (_qbasis_discovery_v1_MirrorCounts)[];
}

export interface MirrorReport__Output {
  'pod': (string);
  'namespace': (string);
  'runId': (string);
  'counts': (_qbasis_discovery_v1_MirrorCounts__Output)[];
}
