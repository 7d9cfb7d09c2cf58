// Original file: proto/discovery.proto


export interface NoEndpoints {
  'existsElsewhere'?: (boolean);
}

export interface NoEndpoints__Output {
  'existsElsewhere': (boolean);
}
