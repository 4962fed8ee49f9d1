/**
 * The one snapshot orchestration, used by `jbackup snapshot` and by profile runs: restic's rule for
 * missing targets, the directory prescan while the key is derived, the lock (with an optional retry),
 * the index loaded during the lock's settle wait and refreshed once it holds, the write gate that
 * keeps anything from being published before the lock holds, abort on failure, the parent choice,
 * and the summary.
 */
import { Archiver, existingTargets, type ArchiveProgress, type ArchiveSummary } from '../archiver/archiver.js';
import { makeMatcher } from '../archiver/exclude.js';
import { Prescan } from '../archiver/prescan.js';
import { scan } from '../archiver/scanner.js';
import type { Lock } from '../repo/lock.js';
import type { Repository } from '../repo/repository.js';
import { lockAndLoadIndex, unlockRepository, type LockOptions } from './lock.js';

export type { ArchiveSummary as BackupSummary } from '../archiver/archiver.js';

export interface BackupProgress extends ArchiveProgress {
  /** before the repository is opened (when backup() is given a function that opens it) */
  opening?(): void;
  /** before the lock is taken and the index loaded */
  locking?(): void;
  /** the lock holds: from here on the snapshot's data is written */
  locked?(): void;
  /** the counting walk (options.scan): files and bytes found since the last call */
  scanned?(files: number, bytes: number): void;
  /** the counting walk ended (not said when the backup ended first) */
  scanFinished?(files: number, bytes: number, seconds: number): void;
}

export interface BackupOptions extends LockOptions {
  /** files and directories to back up; those that do not exist are skipped (progress.missing) */
  targets: string[];
  tags?: string[];
  host?: string;
  /** exclude patterns (restic's --exclude), and those matched ignoring case (--iexclude) */
  excludes?: string[];
  iexcludes?: string[];
  excludeLargerThan?: number;
  oneFileSystem?: boolean;
  /** the parent snapshot (an id, a prefix or "latest"); default: the newest with the same paths */
  parent?: string;
  /** read every file again (no parent) */
  force?: boolean;
  /** count the targets' files and bytes in a second walk (progress totals) */
  scan?: boolean;
  progress?: BackupProgress;
}

/**
 * Back up `o.targets` into `repo` (an opened repository, or a function that opens it: the prescan then
 * overlaps the key derivation). The caller closes the repository.
 */
export async function backup(repo: Repository | (() => Promise<Repository>), o: BackupOptions): Promise<ArchiveSummary> {
  const p = o.progress ?? {};
  // restic's rule: missing targets are skipped with a warning; none left = fatal, nothing written
  const targets = existingTargets(o.targets, (t) => p.missing?.(t));
  const excludes = o.excludes ?? [];
  const iexcludes = o.iexcludes ?? [];
  const matcher = makeMatcher(excludes, iexcludes);
  // read the targets' directories while the key is derived and the lock settles (main thread idle)
  const prescan = new Prescan(targets, matcher, !!o.oneFileSystem);
  const stopScan = { stop: false };
  let r: Repository;
  try {
    if (typeof repo === 'function') {
      p.opening?.();
      r = await repo();
    } else {
      r = repo;
    }
  } catch (e) {
    prescan.stop();
    throw e;
  }
  const startScan = () => {
    if (!o.scan) return;
    const t0 = performance.now();
    let files = 0;
    let bytes = 0;
    void scan(targets, matcher, (f, b) => { files += f; bytes += b; p.scanned?.(f, b); }, stopScan)
      .then(() => { if (!stopScan.stop) p.scanFinished?.(files, bytes, (performance.now() - t0) / 1000); });
  };
  let lock: Lock | null = null;
  let running: Promise<ArchiveSummary> | null = null;
  let archiver: Archiver;
  try {
    try {
      const parent = o.parent ? await r.findSnapshot(o.parent) : undefined;
      archiver = new Archiver(r, {
        targets,
        tags: o.tags,
        host: o.host,
        excludes: matcher,
        excludePatterns: [...excludes, ...iexcludes],
        excludeLargerThan: o.excludeLargerThan,
        oneFileSystem: o.oneFileSystem,
        parent: o.force ? null : parent,
        force: o.force,
        progress: {
          ...p,
          // the counting walk starts once the parent is chosen, with the backup's own walk
          parent: (id) => { p.parent?.(id); startScan(); },
        },
        prescan,
      });
      // The walk starts while the lock settles (its 200 ms wait), once the index is loaded; nothing
      // it produces is published before the lock holds (the repository's write gate), and if the
      // lock fails the run is stopped and its pending writes fail.
      const a = archiver;
      let open!: () => void;
      let refuse!: (e: Error) => void;
      r.gateWrites(new Promise<void>((resolve, reject) => { open = resolve; refuse = reject; }));
      p.locking?.();
      try {
        lock = await lockAndLoadIndex(r, false, o, () => {
          running = a.run();
          running.catch(() => {});
        });
      } catch (e) {
        refuse(e as Error);
        if (running) {
          a.abort(e as Error);
          await (running as Promise<unknown>).catch(() => {});
        }
        throw e;
      }
      open();
    } catch (e) {
      stopScan.stop = true;
      prescan.stop();
      throw e;
    }
    p.locked?.();
    return await (running ?? archiver.run());
  } finally {
    stopScan.stop = true;
    await unlockRepository(lock, o);
  }
}
