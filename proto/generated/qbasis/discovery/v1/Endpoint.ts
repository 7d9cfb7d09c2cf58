// Original file: proto/discovery.proto


export interface Endpoint {
  'pod'?: (string);
  'namespace'?: (string);
  'address'?: (string);
  'port'?: (number);
  'version'?: (string);
  'codecs'?: (number)[];
  'ready'?: (boolean);
  'identity'?: (string);
}

export interface Endpoint__Output {
  'pod': (string);
  'namespace': (string);
  'address': (string);
  'port': (number);
  'version': (string);
  'codecs': (number)[];
  'ready': (boolean);
  'identity': (string);
}
