// Original file: proto/discovery.proto

import type { RetryPolicy as _qbasis_discovery_v1_RetryPolicy, RetryPolicy__Output as _qbasis_discovery_v1_RetryPolicy__Output } from '../../../qbasis/discovery/v1/RetryPolicy.ts';
import type { PolicyRoute as _qbasis_discovery_v1_PolicyRoute, PolicyRoute__Output as _qbasis_discovery_v1_PolicyRoute__Output } from '../../../qbasis/discovery/v1/PolicyRoute.ts';
import type { Long } from '@grpc/proto-loader';

export interface Policy {
  'namespace'?: (string);
  'name'?: (string);
  'generation'?: (number | string | Long);
  'timeoutMs'?: (number);
  'retry'?: (_qbasis_discovery_v1_RetryPolicy | null);
  'routes'?: (_qbasis_discovery_v1_PolicyRoute)[];
  'allowAll'?: (boolean);
  'allow'?: (string)[];
}

export interface Policy__Output {
  'namespace': (string);
  'name': (string);
  'generation': (number);
  'timeoutMs': (number);
  'retry': (_qbasis_discovery_v1_RetryPolicy__Output | null);
  'routes': (_qbasis_discovery_v1_PolicyRoute__Output)[];
  'allowAll': (boolean);
  'allow': (string)[];
}
