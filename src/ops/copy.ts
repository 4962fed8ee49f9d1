/**
 * copy as an operation: snapshots from one opened repository to another (src/maintenance/copy.ts),
 * the source locked unless noLock (restic's copy honours --no-lock for the source only), the
 * destination always.
 */
import { copySnapshots, type CopyResult } from '../maintenance/copy.js';
import type { Repository } from '../repo/repository.js';
import { lockRepository, unlockRepository, type LockOptions } from './lock.js';
import { selectSnapshots, type SnapshotSelection } from './select.js';

export type { CopyResult } from '../maintenance/copy.js';

export interface CopyOptions extends LockOptions, SnapshotSelection {
  log?: (line: string) => void;
}

export async function copy(src: Repository, dst: Repository, o: CopyOptions = {}): Promise<CopyResult> {
  const l1 = await lockRepository(src, false, o);
  let l2 = null;
  try {
    l2 = await lockRepository(dst, false, { ...o, noLock: false });
    await src.loadIndex();
    await dst.loadIndex();
    return await copySnapshots(src, dst, await selectSnapshots(src, o), o.log);
  } finally {
    await unlockRepository(l2, o);
    await unlockRepository(l1, o);
  }
}
