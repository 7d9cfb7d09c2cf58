// Original file: proto/discovery.proto

import type { Long } from '@grpc/proto-loader';

export interface MirrorSample {
  'method'?: (string);
  'primaryVersion'?: (string);
  'shadowVersion'?: (string);
  'primaryStatus'?: (number);
  'shadowStatus'?: (number);
  'primaryFrame'?: (string);
  'shadowFrame'?: (string);
  'result'?: (string);
  'atUnixMs'?: (number | string | Long);
}

export interface MirrorSample__Output {
  'method': (string);
  'primaryVersion': (string);
  'shadowVersion': (string);
  'primaryStatus': (number);
  'shadowStatus': (number);
  'primaryFrame': (string);
  'shadowFrame': (string);
  'result': (string);
  'atUnixMs': (number);
}
