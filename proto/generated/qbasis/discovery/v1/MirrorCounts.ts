// Original file: proto/discovery.proto

import type { MirrorSample as _qbasis_discovery_v1_MirrorSample, MirrorSample__Output as _qbasis_discovery_v1_MirrorSample__Output } from '../../../qbasis/discovery/v1/MirrorSample.ts';
import type { Long } from '@grpc/proto-loader';

export interface MirrorCounts {
  'policyNamespace'?: (string);
  'policyName'?: (string);
  'api'?: (string);
  'method'?: (string);
  'matched'?: (number | string | Long);
  'statusMismatched'?: (number | string | Long);
  'payloadMismatched'?: (number | string | Long);
  'shadowFailed'?: (number | string | Long);
  'dropped'?: (number | string | Long);
  'samples'?: (_qbasis_discovery_v1_MirrorSample)[];
}

export interface MirrorCounts__Output {
  'policyNamespace': (string);
  'policyName': (string);
  'api': (string);
  'method': (string);
  'matched': (number);
  'statusMismatched': (number);
  'payloadMismatched': (number);
  'shadowFailed': (number);
  'dropped': (number);
  'samples': (_qbasis_discovery_v1_MirrorSample__Output)[];
}
