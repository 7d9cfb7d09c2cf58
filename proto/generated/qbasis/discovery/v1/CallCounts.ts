// Original file: proto/discovery.proto

import type { Long } from '@grpc/proto-loader';

export interface CallCounts {
  'api'?: (string);
  'version'?: (string);
  'range'?: (string);
  'calls'?: (number | string | Long);
  'failed'?: (number | string | Long);
}

export interface CallCounts__Output {
  'api': (string);
  'version': (string);
  'range': (string);
  'calls': (number);
  'failed': (number);
}
