// Original file: proto/identity.proto

import type { Long } from '@grpc/proto-loader';

export interface CertifyResponse {
  'identity'?: (string);
  'certificateChain'?: (string)[];
  'trustBundle'?: (string);
  'notBeforeUnixMs'?: (number | string | Long);
  'notAfterUnixMs'?: (number | string | Long);
}

export interface CertifyResponse__Output {
  'identity': (string);
  'certificateChain': (string)[];
  'trustBundle': (string);
  'notBeforeUnixMs': (number);
  'notAfterUnixMs': (number);
}
