// Original file: proto/discovery.proto

import type { Endpoint as _qbasis_discovery_v1_Endpoint, Endpoint__Output as _qbasis_discovery_v1_Endpoint__Output } from '../../../qbasis/discovery/v1/Endpoint.ts';
import type { EndpointRef as _qbasis_discovery_v1_EndpointRef, EndpointRef__Output as _qbasis_discovery_v1_EndpointRef__Output } from '../../../qbasis/discovery/v1/EndpointRef.ts';

export interface Diff {
  'added'?: (_qbasis_discovery_v1_Endpoint)[];
  'removed'?: (_qbasis_discovery_v1_EndpointRef)[];
  'changed'?: (_qbasis_discovery_v1_Endpoint)[];
}

export interface Diff__Output {
  'added': (_qbasis_discovery_v1_Endpoint__Output)[];
  'removed': (_qbasis_discovery_v1_EndpointRef__Output)[];
  'changed': (_qbasis_discovery_v1_Endpoint__Output)[];
}
