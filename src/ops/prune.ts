/**
 * prune as an operation: the algorithm is src/maintenance/prune.ts (plan from the index, repack,
 * new index, deletions in a kill-safe order). The caller holds an exclusive lock.
 */
import { assertDeletable } from '../backend/backend.js';
import { prune as prunePlan, type PruneOptions, type PruneStats } from '../maintenance/prune.js';
import type { Repository } from '../repo/repository.js';

export { PruneError, type PruneOptions, type PruneStats } from '../maintenance/prune.js';

/**
 * prune; on storage that refuses deletions (an append-only REST server) it fails before anything is
 * planned, written or deleted, with one line (DeleteRefusedError), instead of after writing a new
 * index it could not then put in place.
 */
export async function prune(repo: Repository, o: PruneOptions = {}): Promise<PruneStats> {
  if (!o.dryRun) await assertDeletable(repo.backend);
  return prunePlan(repo, o);
}
