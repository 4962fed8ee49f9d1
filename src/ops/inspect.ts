/**
 * The read-only inspections as operations: find, diff, dump, stats (algorithms: src/maintenance).
 * Each takes its lock (non-exclusive; none with noLock) and loads the index.
 */
import type { Writable } from 'node:stream';
import { diff as diffTrees, find as findIn, lookup, stats as statsOf, type DiffOptions as TreeDiffOptions, type DiffStatistics, type FindMatch, type RepoStats, type StatsMode } from '../maintenance/inspect.js';
import { dumpFile, dumpTar } from '../maintenance/dump.js';
import { UserError } from '../repo/errors.js';
import type { Repository } from '../repo/repository.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { lockAndLoadIndex, unlockRepository, type LockOptions } from './lock.js';
import { selectSnapshots, type SnapshotSelection } from './select.js';

export { STATS_MODES, type DiffStatistics, type FindMatch, type RepoStats, type StatsMode } from '../maintenance/inspect.js';

/** run `f` under a lock with the index loaded */
export async function withIndex<T>(repo: Repository, exclusive: boolean, o: LockOptions, f: () => Promise<T>): Promise<T> {
  const lock = await lockAndLoadIndex(repo, exclusive, o);
  try {
    return await f();
  } finally {
    await unlockRepository(lock, o);
  }
}

export interface FindOptions extends LockOptions, SnapshotSelection {
  /** glob patterns, matched against the base name, or the path when it contains "/" */
  patterns: string[];
  ignoreCase?: boolean;
  /** each match, snapshot by snapshot */
  onMatch: (m: FindMatch) => void;
}

export async function find(repo: Repository, o: FindOptions): Promise<void> {
  await withIndex(repo, false, o, async () => {
    await findIn(repo, await selectSnapshots(repo, o), o.patterns, !!o.ignoreCase, o.onMatch);
  });
}

export interface DiffOptions extends LockOptions, Omit<TreeDiffOptions, 'warn'> {
  warn?: (message: string) => void;
  /** the snapshots chosen, before the comparison starts */
  snapshots?: (a: SnapshotWithId, b: SnapshotWithId) => void;
  /** each change: restic's modifier ("+", "-", "M", "T", "U", "?") and the path */
  onChange: (modifier: string, path: string) => void;
}

export async function diff(repo: Repository, a: string, b: string, o: DiffOptions): Promise<DiffStatistics> {
  return withIndex(repo, false, o, async () => {
    const s1 = await repo.findSnapshot(a);
    const s2 = await repo.findSnapshot(b);
    o.snapshots?.(s1, s2);
    return diffTrees(repo, s1.tree, s2.tree, { ...o, warn: o.warn ?? (() => {}) }, o.onChange);
  });
}

export interface DumpOptions extends LockOptions {
  /** a directory's files that cannot be read (the rest of the archive is written) */
  onError?: (path: string, e: Error) => void;
}

/** a file's content, or a directory as a tar archive, to `out`; returns the number of damaged files */
export async function dump(repo: Repository, snapshot: string, path: string, out: Writable, o: DumpOptions = {}): Promise<number> {
  return withIndex(repo, false, o, async () => {
    const s = await repo.findSnapshot(snapshot);
    const n = await lookup(repo, s.tree, path);
    if (!n) throw new UserError(`path "${path}" not found in snapshot ${s.id.slice(0, 8)}`);
    if (n.type === 'file') { await dumpFile(repo, n, out); return 0; }
    if (n.type === 'dir') return dumpTar(repo, n, out, o.onError);
    throw new UserError(`path "${path}" is a ${n.type}, not a file or directory`);
  });
}

export interface StatsOptions extends LockOptions, SnapshotSelection {
  mode?: StatsMode;
  /** the index is loaded, the walk starts */
  scanning?: () => void;
}

export async function stats(repo: Repository, o: StatsOptions = {}): Promise<RepoStats> {
  return withIndex(repo, false, o, async () => {
    o.scanning?.();
    return statsOf(repo, await selectSnapshots(repo, o), o.mode ?? 'restore-size');
  });
}
