/** repair index as an operation: an exclusive lock, then a new index from the pack headers (src/maintenance/repair.ts). */
import { repairIndex, type RepairResult } from '../maintenance/repair.js';
import type { Repository } from '../repo/repository.js';
import { lockRepository, unlockRepository, type LockOptions } from './lock.js';

export type { RepairResult } from '../maintenance/repair.js';

export interface RepairOptions extends LockOptions {
  log?: (line: string) => void;
}

export async function repair(repo: Repository, o: RepairOptions = {}): Promise<RepairResult> {
  const lock = await lockRepository(repo, true, o);
  try {
    return await repairIndex(repo, o.log);
  } finally {
    await unlockRepository(lock, o);
  }
}
