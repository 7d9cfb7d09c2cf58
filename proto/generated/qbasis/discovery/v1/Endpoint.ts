// Original file: proto/discovery.proto


export interface Endpoint {
  'pod'?: (string);
  'namespace'?: (string);
  'address'?: (string);
  'port'?: (number);
  'version'?: (string);
  'codecs'?: (number)[];
  'ready'?: (boolean);
}

export interface Endpoint__Output {
  'pod': (string);
  'namespace': (string);
  'address': (string);
  'port': (number);
  'version': (string);
  'codecs': (number)[];
  'ready': (boolean);
}
