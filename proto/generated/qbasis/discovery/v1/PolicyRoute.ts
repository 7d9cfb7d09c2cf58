// Original file: proto/discovery.proto

import type { SplitGroup as _qbasis_discovery_v1_SplitGroup, SplitGroup__Output as _qbasis_discovery_v1_SplitGroup__Output } from '../../../qbasis/discovery/v1/SplitGroup.ts';
import type { Mirror as _qbasis_discovery_v1_Mirror, Mirror__Output as _qbasis_discovery_v1_Mirror__Output } from '../../../qbasis/discovery/v1/Mirror.ts';

export interface PolicyRoute {
  'methods'?: (string)[];
  'split'?: (_qbasis_discovery_v1_SplitGroup)[];
  'mirror'?: (_qbasis_discovery_v1_Mirror | null);
}

export interface PolicyRoute__Output {
  'methods': (string)[];
  'split': (_qbasis_discovery_v1_SplitGroup__Output)[];
  'mirror': (_qbasis_discovery_v1_Mirror__Output | null);
}
