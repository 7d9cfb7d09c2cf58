// Original file: proto/discovery.proto


export interface WatchRequest {
  'api'?: (string);
  'namespace'?: (string);
  'subscriberPod'?: (string);
  'subscriberNamespace'?: (string);
  'codecs'?: (number)[];
}

export interface WatchRequest__Output {
  'api': (string);
  'namespace': (string);
  'subscriberPod': (string);
  'subscriberNamespace': (string);
  'codecs': (number)[];
}
