// Original file: proto/discovery.proto


export interface Mirror {
  'versions'?: (string);
  'percent'?: (number | string);
}

export interface Mirror__Output {
  'versions': (string);
  'percent': (number);
}
