/**
 * prune as an operation: the algorithm is src/maintenance/prune.ts (plan from the index, repack,
 * new index, deletions in a kill-safe order). The caller holds an exclusive lock.
 */
export { prune, PruneError, type PruneOptions, type PruneStats } from '../maintenance/prune.js';
