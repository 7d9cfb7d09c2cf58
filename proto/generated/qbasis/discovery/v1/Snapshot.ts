// Original file: proto/discovery.proto

import type { Endpoint as _qbasis_discovery_v1_Endpoint, Endpoint__Output as _qbasis_discovery_v1_Endpoint__Output } from '../../../qbasis/discovery/v1/Endpoint.ts';

export interface Snapshot {
  'endpoints'?: (_qbasis_discovery_v1_Endpoint)[];
}

export interface Snapshot__Output {
  'endpoints': (_qbasis_discovery_v1_Endpoint__Output)[];
}
