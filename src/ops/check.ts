/**
 * check as an operation: the algorithm is src/maintenance/check.ts. The caller holds a lock (or
 * none: --no-lock), and gives a repository whose index was not changed in memory by an earlier
 * operation (check loads its own view).
 */
export { checkRepository as check, type CheckOptions, type CheckResult, type CheckProblem } from '../maintenance/check.js';
