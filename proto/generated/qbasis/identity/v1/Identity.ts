// Original file: proto/identity.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CertifyRequest as _qbasis_identity_v1_CertifyRequest, CertifyRequest__Output as _qbasis_identity_v1_CertifyRequest__Output } from '../../../qbasis/identity/v1/CertifyRequest.ts';
import type { CertifyResponse as _qbasis_identity_v1_CertifyResponse, CertifyResponse__Output as _qbasis_identity_v1_CertifyResponse__Output } from '../../../qbasis/identity/v1/CertifyResponse.ts';

export interface IdentityClient extends grpc.Client {
  Certify(argument: _qbasis_identity_v1_CertifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  Certify(argument: _qbasis_identity_v1_CertifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  Certify(argument: _qbasis_identity_v1_CertifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  Certify(argument: _qbasis_identity_v1_CertifyRequest, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  certify(argument: _qbasis_identity_v1_CertifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  certify(argument: _qbasis_identity_v1_CertifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  certify(argument: _qbasis_identity_v1_CertifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  certify(argument: _qbasis_identity_v1_CertifyRequest, callback: grpc.requestCallback<_qbasis_identity_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface IdentityHandlers extends grpc.UntypedServiceImplementation {
  Certify: grpc.handleUnaryCall<_qbasis_identity_v1_CertifyRequest__Output, _qbasis_identity_v1_CertifyResponse>;
  
}

export interface IdentityDefinition extends grpc.ServiceDefinition {
  Certify: MethodDefinition<_qbasis_identity_v1_CertifyRequest, _qbasis_identity_v1_CertifyResponse, _qbasis_identity_v1_CertifyRequest__Output, _qbasis_identity_v1_CertifyResponse__Output>
}
