/**
 * Taking a repository lock for an operation, the one way: --no-lock, a retry while another holds it
 * (profiles' retry-lock), loading the index during the lock's settle wait and refreshing it once the
 * lock holds, and telling the caller of every lock held (the CLI releases them on a signal).
 */
import { Lock } from '../repo/lock.js';
import { LockError, UserError } from '../repo/errors.js';
import type { Repository } from '../repo/repository.js';
import { formatSystemError, isSystemError } from '../util/syserr.js';

/** where the locks an operation holds are registered (released by the caller on SIGINT/SIGTERM) */
export interface LockRegistry {
  add(l: Lock): void;
  delete(l: Lock): void;
}

export interface LockOptions {
  /** take no lock (--no-lock; only for operations that read) */
  noLock?: boolean;
  /** while another process holds a conflicting lock, try again for this long (ms; 0: fail at once) */
  retryLockMs?: number;
  /** said before each retry */
  onRetry?: (message: string) => void;
  held?: LockRegistry;
  /** the wait between writing the lock and checking for others (ms; default restic's LOCK_WAIT_MS) */
  settleMs?: number;
}

/** restic's wait between writing a lock and checking for others */
export const LOCK_WAIT_MS = 200;

/** a lock that could not be written (a read-only repository: EROFS) is named as such */
function lockFailed(e: unknown): never {
  if (isSystemError(e) && e.path?.includes('locks')) throw new UserError(`unable to create lock in backend: ${formatSystemError(e)}${e.code === 'EROFS' ? ' (--no-lock lets the commands that only read work without a lock)' : ''}`);
  throw e;
}

async function acquire(repo: Repository, exclusive: boolean, o: LockOptions, duringWait?: () => Promise<void>): Promise<Lock> {
  const deadline = Date.now() + (o.retryLockMs ?? 0);
  for (;;) {
    try {
      const l = await Lock.acquire(repo, exclusive, o.settleMs ?? LOCK_WAIT_MS, duringWait).catch(lockFailed);
      o.held?.add(l);
      return l;
    } catch (e) {
      if (!(e instanceof LockError) || Date.now() >= deadline) throw e;
      o.onRetry?.(`repository is locked, retrying: ${e.message}`);
      await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(100, deadline - Date.now()))));
    }
  }
}

export async function lockRepository(repo: Repository, exclusive: boolean, o: LockOptions = {}): Promise<Lock | null> {
  if (o.noLock) return null;
  return acquire(repo, exclusive, o);
}

/**
 * Lock, and load the index (and read the snapshot files) during the lock's 200 ms settle wait; once
 * the lock holds, index files others wrote meanwhile are loaded too (Repository.refreshIndex).
 * Snapshot lists are always taken afresh; only their contents are cached. `afterLoad` runs once the
 * index is loaded, still within the wait (a snapshot starts its walk there), and only once however
 * often the lock is retried.
 */
export async function lockAndLoadIndex(repo: Repository, exclusive: boolean, o: LockOptions = {}, afterLoad?: () => void): Promise<Lock | null> {
  if (o.noLock) {
    await repo.loadIndex();
    afterLoad?.();
    return null;
  }
  let loaded: Promise<void> | null = null;
  // the snapshot files are read as well: the later listing after the lock only fetches new ones
  const l = await acquire(repo, exclusive, o, () => (loaded ??= Promise.all([repo.loadIndex(), repo.listSnapshots()]).then(() => { afterLoad?.(); })));
  try {
    // index files written by others while the lock settled
    await repo.refreshIndex();
  } catch (e) {
    await unlockRepository(l, o).catch(() => {});
    throw e;
  }
  return l;
}

export async function unlockRepository(l: Lock | null, o: LockOptions = {}): Promise<void> {
  if (!l) return;
  o.held?.delete(l);
  await l.release();
}
