// The controller's flags go through the one parser, cli/flags.ts (syntax, QBASIS_<FLAG>, messages,
// exit codes). This file only keeps the names kube/ and webhook/ import: a FlagError is a UsageError
// (QB_INVALID_FLAG, exit 2).
export { UsageError as FlagError, type FlagSpec, type FlagValues } from '../cli/flags.ts';
