/**
 * Reading the backup targets' directories and metadata ahead of the archiver, while the main
 * thread would otherwise wait (key derivation, the lock's settle time). The archiver takes each
 * directory's listing from here when it is ready and reads it itself otherwise, so the prescan is
 * only ever a head start. It walks in the archiver's order (depth first, names sorted) in slices of
 * a few milliseconds, and stops at `maxEntries` (a memory bound: ~0.25 KiB per entry).
 *
 * The metadata is taken a moment earlier than the archiver would take it. That is the same race
 * every backup has between stat and read: a file changed in between is recorded with the older
 * metadata, so the next run sees it as changed and reads it again.
 */
import { lstatSync } from 'node:fs';
import * as path from 'node:path';
import type { Matcher } from './exclude.js';
import { DirScan } from './dirscan.js';

const SLICE_MS = 4;

export class Prescan {
  private dirs = new Map<string, DirScan>();
  private stack: Buffer[] = [];
  private entries = 0;
  private stopped = false;
  private rootDev: number | null = null;
  /** resolves when the walk has finished or stopped */
  readonly finished: Promise<void>;

  constructor(targets: string[], private excludes: Matcher | null | undefined, private oneFileSystem: boolean, private maxEntries = 120_000) {
    // targets in reverse so that the first is walked first (a stack)
    for (const t of [...new Set(targets.map((x) => path.resolve(x)))].sort().reverse()) this.stack.push(Buffer.from(t));
    this.finished = new Promise((resolve) => {
      const step = () => {
        if (this.stopped || !this.slice()) { this.stopped = true; resolve(); return; }
        setImmediate(step);
      };
      setImmediate(step);
    });
  }

  /** stop walking (what has been read stays available) */
  stop(): void {
    this.stopped = true;
  }

  /** the listing of `dir`, once (it is forgotten after) */
  takeDir(dir: Buffer): DirScan | undefined {
    const k = dir.toString('latin1');
    const d = this.dirs.get(k);
    if (d) this.dirs.delete(k);
    return d;
  }

  /** one slice of the walk; false when there is nothing more to do */
  private slice(): boolean {
    const until = performance.now() + SLICE_MS;
    while (this.stack.length > 0) {
      if (this.entries >= this.maxEntries) return false;
      const dir = this.stack.pop()!;
      this.readDir(dir);
      if (performance.now() >= until) return this.stack.length > 0;
    }
    return false;
  }

  private readDir(dir: Buffer): void {
    let scan: DirScan;
    try {
      const st = lstatSync(dir, { bigint: true });
      if (!st.isDirectory()) return;
      this.rootDev ??= Number(st.dev);
      scan = DirScan.read(dir);
    } catch {
      return; // the archiver reports it
    }
    const sep = Buffer.from(dir.at(-1) === 0x2f ? '' : '/');
    const subdirs: Buffer[] = [];
    for (let i = 0; i < scan.length; i++) {
      if (!scan.ok(i) || !scan.isDir(i) || (this.oneFileSystem && scan.dev(i) !== this.rootDev)) continue;
      const full = Buffer.concat([dir, sep, scan.names[i]!]);
      if (!this.excludes?.(full.toString())) subdirs.push(full);
    }
    this.entries += scan.length;
    this.dirs.set(dir.toString('latin1'), scan);
    for (let i = subdirs.length - 1; i >= 0; i--) this.stack.push(subdirs[i]!);
  }
}
