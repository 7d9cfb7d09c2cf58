// Original file: proto/discovery.proto


export interface RetryPolicy {
  'attempts'?: (number);
  'on'?: (number)[];
  'perTryTimeoutMs'?: (number);
  'backoffBaseMs'?: (number);
  'backoffMaxMs'?: (number);
  'budgetPercent'?: (number | string);
  'budgetMinPerSecond'?: (number);
}

export interface RetryPolicy__Output {
  'attempts': (number);
  'on': (number)[];
  'perTryTimeoutMs': (number);
  'backoffBaseMs': (number);
  'backoffMaxMs': (number);
  'budgetPercent': (number);
  'budgetMinPerSecond': (number);
}
