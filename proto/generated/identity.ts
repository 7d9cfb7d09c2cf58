import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { CertifyRequest as _qbasis_identity_v1_CertifyRequest, CertifyRequest__Output as _qbasis_identity_v1_CertifyRequest__Output } from './qbasis/identity/v1/CertifyRequest.ts';
import type { CertifyResponse as _qbasis_identity_v1_CertifyResponse, CertifyResponse__Output as _qbasis_identity_v1_CertifyResponse__Output } from './qbasis/identity/v1/CertifyResponse.ts';
import type { IdentityClient as _qbasis_identity_v1_IdentityClient, IdentityDefinition as _qbasis_identity_v1_IdentityDefinition } from './qbasis/identity/v1/Identity.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  qbasis: {
    identity: {
      v1: {
        CertifyRequest: MessageTypeDefinition<_qbasis_identity_v1_CertifyRequest, _qbasis_identity_v1_CertifyRequest__Output>
        CertifyResponse: MessageTypeDefinition<_qbasis_identity_v1_CertifyResponse, _qbasis_identity_v1_CertifyResponse__Output>
        Identity: SubtypeConstructor<typeof grpc.Client, _qbasis_identity_v1_IdentityClient> & { service: _qbasis_identity_v1_IdentityDefinition }
      }
    }
  }
}

