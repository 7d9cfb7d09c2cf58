// Original file: proto/discovery.proto


export interface SplitGroup {
  'versions'?: (string);
  'weight'?: (number);
}

export interface SplitGroup__Output {
  'versions': (string);
  'weight': (number);
}
