/**
 * restore as an operation: lock (non-exclusive; none with noLock) and load the index, pick the
 * snapshot ("latest" filtered by host/paths/tags), restore it (the algorithm: src/restorer).
 */
import { makeMatcher } from '../archiver/exclude.js';
import type { Repository } from '../repo/repository.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { Restorer, type RestoreProgress as RestorerProgress, type RestoreSummary } from '../restorer/restorer.js';
import { lockAndLoadIndex, unlockRepository, type LockOptions } from './lock.js';

export interface RestoreProgress extends RestorerProgress {
  /** the snapshot chosen, before anything is written */
  snapshot?(snap: SnapshotWithId): void;
}

export interface RestoreOptions extends LockOptions {
  /** snapshot id, prefix or "latest" */
  snapshot: string;
  /** for "latest": only snapshots of this host / with these paths / these tags */
  host?: string;
  paths?: string[];
  tags?: string[];
  /** path inside the snapshot to restore (default "/") */
  subpath?: string;
  target: string;
  includes?: string[];
  iincludes?: string[];
  excludes?: string[];
  iexcludes?: string[];
  /** read every restored file back and compare */
  verify?: boolean;
  progress?: RestoreProgress;
}

export type RestoreResult = RestoreSummary & { snapshot: SnapshotWithId };

export async function restore(repo: Repository, o: RestoreOptions): Promise<RestoreResult> {
  const lock = await lockAndLoadIndex(repo, false, o);
  try {
    const snap = await repo.findSnapshot(o.snapshot, { host: o.host, paths: o.paths ?? [], tags: o.tags ?? [] });
    o.progress?.snapshot?.(snap);
    const r = new Restorer(repo, {
      target: o.target,
      subpath: o.subpath,
      includes: makeMatcher(o.includes ?? [], o.iincludes ?? []),
      excludes: makeMatcher(o.excludes ?? [], o.iexcludes ?? []),
      verify: o.verify,
      progress: o.progress,
    });
    return { ...(await r.run(snap.tree)), snapshot: snap };
  } finally {
    await unlockRepository(lock, o);
  }
}
