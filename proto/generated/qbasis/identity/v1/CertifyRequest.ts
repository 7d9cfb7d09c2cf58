// Original file: proto/identity.proto


export interface CertifyRequest {
  'csr'?: (Buffer | Uint8Array | string);
  'token'?: (string);
}

export interface CertifyRequest__Output {
  'csr': (Buffer);
  'token': (string);
}
