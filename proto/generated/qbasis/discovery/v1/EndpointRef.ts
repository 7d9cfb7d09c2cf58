// Original file: proto/discovery.proto


export interface EndpointRef {
  'pod'?: (string);
  'namespace'?: (string);
}

export interface EndpointRef__Output {
  'pod': (string);
  'namespace': (string);
}
