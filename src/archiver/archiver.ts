/** The snapshot operation: walk, compare with the parent, chunk new content in workers, save trees bottom-up. */
import { lstatSync, readlinkSync, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { hostname, userInfo } from 'node:os';
import { DEFAULT_PARAMS, type ChunkerParams } from '../chunker/fastcdc.js';
import type { Repository } from '../repo/repository.js';
import { sameSet } from '../repo/repository.js';
import { formatTimeNs, parseTimeNs, sameInstant } from '../format/gotime.js';
import { goFileModeFromPosix, nodeTypeFromGoMode } from '../format/gomode.js';
import { decodeTree, encodeTree, type Node } from '../repo/tree.js';
import { sha256hex } from '../repo/ids.js';
import type { Snapshot, SnapshotWithId } from '../repo/snapshot.js';
import { lookupGroupName, lookupUserName, nodeFromStat } from './node.js';
import { DirScan, type EntryStat } from './dirscan.js';
import { readXattrs } from './xattr.js';
import { hasXattr, xattrUnavailableReason } from '../native/native.js';
import { ChunkPool, FileReadError, type FileResult } from './pool.js';
import type { Matcher } from './exclude.js';
import { VERSION } from '../version.js';
import type { Prescan } from './prescan.js';
import { UserError } from '../repo/errors.js';
import { GcEvery } from '../util/gc.js';

export interface SnapshotOptions {
  /** backup targets as the user gave them */
  targets: string[];
  tags?: string[];
  host?: string;
  excludes?: Matcher | null;
  /** recorded in the snapshot's `excludes` */
  excludePatterns?: string[];
  excludeLargerThan?: number;
  oneFileSystem?: boolean;
  /** explicit parent snapshot id; undefined = automatic */
  parent?: SnapshotWithId | null;
  force?: boolean;
  chunker?: ChunkerParams;
  threads?: number;
  progress?: ArchiveProgress;
  /** ns since epoch; defaults to now */
  time?: bigint;
  /** directory listings read ahead (see Prescan); stopped when the walk starts */
  prescan?: Prescan;
}

export interface ArchiveProgress {
  /** a file is done (its path, when wanted, comes with `item`: building it costs a string per file) */
  fileDone?(bytes: number): void;
  bytesRead?(bytes: number): void;
  error?(path: string, err: Error): void;
  /** something the snapshot lacks that is not one item's fault (said once; no effect on the exit code) */
  warning?(message: string): void;
  /** a target that does not exist: skipped, and not recorded in the snapshot's `paths` */
  missing?(target: string): void;
  /** the parent snapshot chosen (null: none), before the walk starts */
  parent?(id: string | null): void;
  /**
   * Every file and directory once it is saved (restic's -vv lines). Given only when wanted: it
   * costs a clock read per file. `path` of a directory ends in '/'; `added` = new data bytes
   * (plaintext) of a file, `meta` = new tree bytes of a directory; `seconds` since it was started.
   */
  item?(kind: 'file' | 'dir', status: 'new' | 'modified' | 'unchanged', path: string, seconds: number, added: number, meta: number): void;
}

/** restic's message when no target exists (exit 1, nothing written) */
export const NO_TARGETS = 'all target directories/files do not exist';

/**
 * restic's rule for targets that do not exist (a typo in a scheduled profile must not produce an
 * empty snapshot that becomes the newest one): each missing one is reported and dropped; if none
 * is left, nothing is written. A target that exists but cannot be read stays (an error later, exit 3).
 */
export function existingTargets(targets: string[], missing?: (t: string) => void): string[] {
  const out: string[] = [];
  for (const t of targets) {
    try {
      lstatSync(t);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOTDIR: a component of the path is a file, so the target does not exist either
      if (code === 'ENOENT' || code === 'ENOTDIR') { missing?.(t); continue; }
    }
    out.push(t);
  }
  if (out.length === 0) throw new UserError(NO_TARGETS);
  return out;
}

/** parent trees read ahead of the walk at most */
const READ_AHEAD_TREES = 32;

export interface ArchiveSummary {
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  dirs_new: number;
  dirs_changed: number;
  dirs_unmodified: number;
  data_blobs: number;
  tree_blobs: number;
  data_added: number;
  total_files_processed: number;
  total_bytes_processed: number;
  total_duration: number;
  snapshot_id: string;
  /** files or dirs that could not be read (exit code 3) */
  errors: number;
  parent?: string;
}

/** restic's parent choice: newest snapshot not in the future with the same host and the same path set */
export function findParent(all: SnapshotWithId[], host: string, paths: string[], nowNs: bigint): SnapshotWithId | null {
  let best: SnapshotWithId | null = null;
  for (const s of all) {
    if (s.hostname !== host || !sameSet(s.paths, paths)) continue;
    if (parseTimeNs(s.time) > nowNs) continue;
    if (!best || parseTimeNs(s.time) > parseTimeNs(best.time)) best = s;
  }
  return best;
}

interface Spec {
  children: Map<string, Spec>;
  /** absolute path on disk of this item */
  abs: string;
  /** true when the whole item (recursively) is a backup target */
  target: boolean;
}

/** Where each target goes in the snapshot tree: components of the cleaned path, leading . and .. dropped. */
export function targetComponents(t: string): string[] {
  const n = path.normalize(t);
  return n.split('/').filter((c) => c !== '' && c !== '.').filter((c, i, a) => !(c === '..' && a.slice(0, i).every((x) => x === '..')));
}

const nameKey = (b: Buffer) => b.toString('latin1');

interface ParentTree {
  nodes: Node[];
  sorted: boolean;
  byName?: Map<string, Node>;
}
const NO_PARENT: ParentTree = { nodes: [], sorted: true };

export class Archiver {
  private pool: ChunkPool;
  private s: ArchiveSummary = {
    files_new: 0, files_changed: 0, files_unmodified: 0, dirs_new: 0, dirs_changed: 0, dirs_unmodified: 0, data_blobs: 0,
    tree_blobs: 0, data_added: 0, total_files_processed: 0, total_bytes_processed: 0, total_duration: 0, snapshot_id: '', errors: 0,
  };
  private rootDev: bigint | null = null;

  constructor(private repo: Repository, private o: SnapshotOptions) {
    // before anything else (no pool threads started for a run that will not happen)
    this.targets = existingTargets(o.targets, (t) => o.progress?.missing?.(t));
    this.pool = new ChunkPool(repo, o.chunker ?? DEFAULT_PARAMS, o.threads);
    this.absPaths = [...new Set(this.targets.map((t) => path.resolve(t)))].sort();
  }

  /** the targets that exist, as given */
  private readonly targets: string[];

  /** the targets as absolute cleaned paths, sorted (the snapshot's `paths`, and the parent's) */
  private readonly absPaths: string[];


  private async findParent(nowNs: bigint): Promise<SnapshotWithId | null> {
    const o = this.o;
    if (o.force) return null;
    if (o.parent !== undefined) return o.parent;
    return findParent(await this.repo.listSnapshots(), o.host ?? hostname(), this.absPaths, nowNs);
  }

  /**
   * Load the parent snapshot's trees ahead of the walk (depth first, as the walk needs them), until
   * `deadline` (performance.now() ms) or `maxNodes` nodes: meant for the lock's settle wait, once
   * the index is loaded. Read-only: trees are immutable, so nothing here depends on the lock.
   */
  private aborted: Error | null = null;

  /** stop a run early (its lock failed): the walk and the workers' jobs fail with `e` */
  abort(e: Error): void {
    this.aborted ??= e;
    this.pool.abort(e);
  }

  async run(): Promise<ArchiveSummary> {
    const started = process.hrtime.bigint();
    this.o.prescan?.stop();
    try {
      const o = this.o;
      const nowNs = o.time ?? BigInt(Date.now()) * 1_000_000n;
      const absPaths = this.absPaths;
      const host = o.host ?? hostname();
      const parent = await this.findParent(nowNs);
      if (parent) this.s.parent = parent.id;
      o.progress?.parent?.(parent?.id ?? null);

      // the virtual root: targets placed by their path components
      const root: Spec = { children: new Map(), abs: '', target: false };
      for (const t of this.targets) {
        const comps = targetComponents(t);
        const abs = path.resolve(t);
        if (comps.length === 0) { root.abs = abs; root.target = true; continue; }
        let cur = root;
        let prefix = path.resolve(t, ...comps.map(() => '..'));
        for (const c of comps) {
          prefix = path.join(prefix, c);
          let next = cur.children.get(c);
          if (!next) { next = { children: new Map(), abs: prefix, target: false }; cur.children.set(c, next); }
          cur = next;
        }
        cur.target = true;
      }
      // temp files a killed run left (its process is gone), removed while the walk runs; never a live
      // process's (backend's rule), so no exclusive lock is needed
      const tidy = this.repo.backend.removeDeadTemp?.().catch(() => undefined);
      const treeId = await this.saveSpec(root, parent?.tree);
      await this.pool.drain();
      await this.repo.flush();
      await tidy;

      let username = '';
      let uid = 0;
      let gid = 0;
      try { const u = userInfo(); username = u.username; uid = u.uid; gid = u.gid; } catch { /* none */ }
      const snap: Snapshot = {
        time: formatTimeNs(nowNs / 1_000_000_000n, Number(nowNs % 1_000_000_000n)),
        parent: parent?.id,
        tree: treeId,
        paths: absPaths,
        hostname: host,
        username,
        uid,
        gid,
        excludes: o.excludePatterns,
        tags: o.tags,
        program_version: `jbackup ${VERSION}`,
      };
      this.s.snapshot_id = await this.repo.saveSnapshot(snap);
      this.s.data_blobs = this.pool.stats.dataBlobs;
      this.s.data_added += this.pool.stats.dataAdded;
      this.s.total_duration = Number(process.hrtime.bigint() - started) / 1e9;
      return this.s;
    } catch (e) {
      // a failed run leaves no temp files of unfinished packs behind
      await this.pool.close();
      await this.repo.discard();
      throw e;
    } finally {
      await this.pool.close();
    }
  }

  /**
   * A full collection every 25,000 parent nodes decoded. They die within their directory, but with
   * jbackup's 1 MiB semi-space many are promoted first, and V8 lets the old generation grow. Real-data
   * re-run (66k entries), 7 pairs: peak RSS 160 → 137 MiB, wall ratio 1.006, CPU +4 % (every 10,000:
   * 131 MiB, wall +5 %, CPU +9 %). Not counted on a first backup (no parent): there, 20k new files,
   * the collections saved 4 MiB and cost ~5 % of wall time.
   */
  private parentGc = new GcEvery(25_000);

  /** parent trees being read ahead of the walk, by id (each is taken once) */
  private treeLoads = new Map<string, Promise<Node[]>>();

  private fetchTree(id: string): Promise<Node[]> {
    let p = this.treeLoads.get(id);
    if (!p) {
      p = this.repo.loadBlob('tree', id).then((b) => decodeTree(b, id));
      p.catch(() => {}); // reported (ignored) where it is taken
      this.treeLoads.set(id, p);
    }
    return p;
  }

  /**
   * A parent tree's nodes (none when there is no parent or it cannot be read: that only costs
   * change detection). `sorted`: in strictly increasing name order, as restic writes them (the walk
   * then pairs names with one pass); otherwise looked up by name.
   */
  private async loadTree(id: string | undefined): Promise<ParentTree> {
    if (!id) return NO_PARENT;
    let nodes: Node[];
    try {
      const p = this.fetchTree(id);
      this.treeLoads.delete(id);
      nodes = await p;
    } catch {
      return NO_PARENT;
    }
    // the subdirectories' parent trees are read while this directory is walked (the reads
    // overlap the work instead of each one stalling the walk)
    for (const n of nodes) {
      if (this.treeLoads.size >= READ_AHEAD_TREES) break;
      if (n.type === 'dir' && n.subtree) this.fetchTree(n.subtree);
    }
    let sorted = true;
    for (let k = 1; k < nodes.length && sorted; k++) sorted = Buffer.compare(nodes[k - 1]!.name, nodes[k]!.name) < 0;
    if (sorted) return { nodes, sorted };
    const byName = new Map<string, Node>();
    for (const n of nodes) byName.set(nameKey(n.name), n);
    return { nodes, sorted, byName };
  }

  private async saveSpec(spec: Spec, parentTree: string | undefined): Promise<string> {
    return (await this.saveSpecSized(spec, parentTree)).id;
  }

  /** a target directory or one above the targets; `added` = its tree's bytes if new, `unreadable` as in saveDirContents */
  private async saveSpecSized(spec: Spec, parentTree: string | undefined): Promise<{ id: string; added: number; unreadable?: boolean }> {
    if (spec.target) {
      const d = await this.saveDirContents(spec.abs, parentTree);
      return { id: await d.id, added: (await d.added) ?? 0, unreadable: d.unreadable };
    }
    const parent = await this.loadTree(parentTree);
    const pmap = parent.byName ?? new Map(parent.nodes.map((n) => [nameKey(n.name), n]));
    const nodes: Node[] = [];
    for (const [name, child] of spec.children) {
      const nb = Buffer.from(name);
      const pnode = pmap.get(nameKey(nb));
      let st: BigIntStats;
      try {
        st = lstatSync(child.abs, { bigint: true });
      } catch (e) {
        this.error(child.abs, e as Error);
        continue;
      }
      if (child.target && !st.isDirectory()) {
        const n = await this.saveEntry(Buffer.from(child.abs), nb, st, pnode);
        const node = n ? await n.done : null;
        if (node) nodes.push(node);
        continue;
      }
      if (child.target && this.rootDev === null) this.rootDev = st.dev;
      const node = nodeFromStat(nb, st);
      this.addXattrs(Buffer.from(child.abs), node);
      const item = this.o.progress?.item;
      const t0 = item ? performance.now() : 0;
      const sub = await this.saveSpecSized(child, pnode?.type === 'dir' ? pnode.subtree : undefined);
      node.subtree = sub.id;
      // counted as restic counts them (the directories above a target too)
      if (!sub.unreadable) this.countDir(pnode, sub.id, child.abs, t0, sub.added);
      nodes.push(node);
    }
    return this.saveTreeSized(nodes);
  }

  /**
   * A saved directory counted as restic counts it (new / unchanged / modified against its parent
   * node) and said at -vv. Not called for a directory that could not be read (saved empty, not counted).
   */
  private countDir(pnode: Node | undefined, id: string, dirPath: string, t0: number, added: number): void {
    const status = !pnode || pnode.type !== 'dir' ? 'new' : pnode.subtree === id ? 'unchanged' : 'modified';
    if (status === 'new') this.s.dirs_new++;
    else if (status === 'unchanged') this.s.dirs_unmodified++;
    else this.s.dirs_changed++;
    this.o.progress?.item?.('dir', status, `${dirPath}/`, (performance.now() - t0) / 1000, 0, added);
  }

  private xattrWarned = false;

  /**
   * The node's extended attributes, read as restic 0.14 does for every node but symlinks (also for
   * unchanged files: restic builds each node afresh). An attribute that cannot be read is an error
   * of the item (exit 3; restic only prints it), and the node keeps the others.
   */
  private addXattrs(full: Buffer, node: Node): void {
    if (node.type === 'symlink') return;
    if (!hasXattr) {
      if (!this.xattrWarned) this.o.progress?.warning?.(`extended attributes are not saved: ${xattrUnavailableReason()}`);
      this.xattrWarned = true;
      return;
    }
    const r = readXattrs(full);
    if (r.attrs) node.extendedAttributes = r.attrs;
    if (r.error) this.error(full, r.error);
  }

  private error(p: string | Buffer, e: Error): void {
    this.s.errors++;
    this.o.progress?.error?.(p.toString(), e);
  }

  private excluded(abs: Buffer, st: EntryStat): boolean {
    if (this.o.excludes?.(abs.toString())) return true;
    if (this.o.excludeLargerThan !== undefined && st.isFile() && st.size > BigInt(this.o.excludeLargerThan)) return true;
    return false;
  }

  private async saveTree(nodes: Node[]): Promise<string> {
    return (await this.saveTreeSized(nodes)).id;
  }

  /** save a tree; `added` = its bytes if it was new */
  private async saveTreeSized(nodes: Node[]): Promise<{ id: string; added: number }> {
    const bytes = encodeTree(nodes);
    const id = sha256hex(bytes);
    if (await this.repo.saveBlob('tree', id, bytes)) {
      this.s.tree_blobs++;
      this.s.data_added += bytes.length;
      return { id, added: bytes.length };
    }
    return { id, added: 0 };
  }

  /**
   * Walk a directory: every entry is started (files dispatched to the workers, subdirectories
   * walked) before this returns; `id` resolves once all of them are done and the tree is saved.
   * The walk never waits for a directory's files, so the workers stay fed across directories.
   *
   * An entry whose metadata equals its parent node's (sameAsParent) is that node, unchanged: no
   * node is built, no xattrs read, nothing formatted. When every entry of the directory is its
   * parent node (and each subdirectory came out as its parent subtree), the directory's tree is
   * the parent's tree: its id is reused without encoding or hashing anything.
   */
  private async saveDirContents(dir: string | Buffer, parentTree: string | undefined): Promise<{ id: Promise<string>; added?: Promise<number>; unreadable?: boolean }> {
    if (this.aborted) throw this.aborted;
    const dirB = Buffer.isBuffer(dir) ? dir : Buffer.from(dir);
    if (this.rootDev === null) {
      try { this.rootDev = lstatSync(dirB, { bigint: true }).dev; } catch { /* reported below */ }
    }
    let scan = this.o.prescan?.takeDir(dirB);
    if (!scan) {
      try {
        scan = DirScan.read(dirB);
      } catch (e) {
        this.error(dirB, e as Error);
        return { id: this.saveTree([]), unreadable: true };
      }
    }
    const parent = await this.loadTree(parentTree);
    const pnodes = parent.nodes;
    this.parentGc.add(pnodes.length);
    const pending: (Promise<Node | null> | Node)[] = [];
    const sep = Buffer.from(dirB.at(-1) === 0x2f ? '' : '/');
    const item = this.o.progress?.item;
    const fileDone = this.o.progress?.fileDone;
    const needPath = this.o.excludes != null;
    const rootDev = this.rootDev === null ? null : Number(this.rootDev);
    let j = 0; // the parent node at or after the current name (both lists are sorted by name)
    for (let i = 0; i < scan.length; i++) {
      const name = scan.names[i]!;
      let fullB: Buffer | undefined;
      const full = (): Buffer => (fullB ??= Buffer.concat([dirB, sep, name]));
      let pnode: Node | undefined;
      if (parent.sorted) {
        while (j < pnodes.length && Buffer.compare(pnodes[j]!.name, name) < 0) j++;
        if (j < pnodes.length && pnodes[j]!.name.equals(name)) pnode = pnodes[j];
      } else {
        pnode = parent.byName?.get(nameKey(name));
      }
      if (scan.ok(i)) {
        if (needPath && this.o.excludes!(full().toString())) continue;
        if (this.o.excludeLargerThan !== undefined && scan.isFile(i) && scan.size(i) > this.o.excludeLargerThan) continue;
        if (this.o.oneFileSystem && scan.isDir(i) && rootDev !== null && scan.dev(i) !== rootDev) continue;
        if (pnode && this.sameAsParent(scan, i, pnode)) {
          const p = pnode;
          if (p.type === 'dir') {
            const t0 = item ? performance.now() : 0;
            const sub = await this.saveDirContents(full(), p.subtree);
            const done = sub.id.then(async (id) => {
              if (sub.unreadable) return { ...p, subtree: id };
              this.countDir(p, id, full().toString(), t0, (await sub.added) ?? 0);
              return id === p.subtree ? p : { ...p, subtree: id };
            });
            done.catch(() => {});
            pending.push(done);
            continue;
          }
          if (p.type === 'file') {
            const size = scan.size(i);
            this.s.total_files_processed++;
            this.s.total_bytes_processed += size;
            this.s.files_unmodified++;
            if (fileDone) fileDone(size);
            if (item) item('file', 'unchanged', full().toString(), 0, 0, 0);
          }
          pending.push(p);
          continue;
        }
      }
      // changed, new, or not described exactly by the scan: a node built from a full lstat
      const st = scan.entryStat(i, full);
      if (st instanceof Error) {
        this.error(full(), st);
        continue;
      }
      if (!scan.ok(i)) {
        // the scan's numbers were not exact: the checks above, from the full stat
        if (this.excluded(full(), st)) continue;
        if (this.o.oneFileSystem && st.isDirectory() && this.rootDev !== null && st.dev !== this.rootDev) continue;
      }
      // the scan's probe found no xattrs: no need to list them again
      const r = await this.saveEntry(full(), name, st, pnode, scan.ok(i) && scan.xattrSize(i) === 0);
      if (r) {
        // mark as handled now: a failure surfaces through Promise.all below, or not at all when a
        // sibling's failure has already aborted the walk (never as an unhandled rejection)
        r.done.catch(() => {});
        pending.push(r.done);
      }
    }
    const saved = Promise.all(pending).then((all) => {
      // every entry is its parent node, in the parent's order: the parent's tree, as it is
      if (parentTree !== undefined && all.length === pnodes.length && all.every((n, k) => n === pnodes[k]) && this.repo.index.has('tree', parentTree)) {
        return { id: parentTree, added: 0 };
      }
      return this.saveTreeSized(all.filter((n): n is Node => n !== null));
    });
    const id = saved.then((t) => t.id);
    const added = saved.then((t) => t.added);
    id.catch(() => {}); // handled by whoever awaits it (see above)
    added.catch(() => {});
    return { id, added };
  }

  /**
   * Whether entry i would be saved as exactly `p` (restic would build the same node): the same
   * type and mode, owner, times as instants (atime written as mtime, restic 0.14's rule), inode,
   * device, size, links, and no extended attributes on either side; for files, every content blob
   * still in the index (restic's rule for reusing content). Anything the comparison does not cover
   * (xattrs, generic attributes, an error note) sends the entry the long way, which builds the node
   * from a full lstat. A symlink's target is not read: it cannot change without a new inode and ctime.
   */
  private sameAsParent(scan: DirScan, i: number, p: Node): boolean {
    const mode = goFileModeFromPosix(scan.mode(i));
    if (p.mode !== mode || p.type !== nodeTypeFromGoMode(mode)) return false;
    if (p.extendedAttributes !== undefined || p.genericAttributes !== undefined || p.error !== undefined) return false;
    if (hasXattr && p.type !== 'symlink' && scan.xattrSize(i) !== 0) return false;
    if (p.uid !== scan.uid(i) || p.gid !== scan.gid(i)) return false;
    if ((p.user ?? '') !== lookupUserName(p.uid) || (p.group ?? '') !== lookupGroupName(p.gid)) return false;
    if (Number(p.inode ?? 0n) !== scan.ino(i) || Number(p.deviceId ?? 0n) !== scan.dev(i)) return false;
    const t = p.type;
    const hasLinks = t === 'file' || t === 'symlink' || t === 'dev' || t === 'chardev';
    if (Number(p.links ?? 0n) !== (hasLinks ? scan.nlink(i) : 0)) return false;
    if (Number(p.size ?? 0n) !== (t === 'file' ? scan.size(i) : 0)) return false;
    if (Number(p.device ?? 0n) !== (t === 'dev' || t === 'chardev' ? scan.rdev(i) : 0)) return false;
    if (p.atime !== p.mtime) return false;
    if (!sameInstant(p.mtime, scan.mtimeS(i), scan.mtimeNsec(i)) || !sameInstant(p.ctime, scan.ctimeS(i), scan.ctimeNsec(i))) return false;
    if (t === 'dir') return p.subtree !== undefined && p.content == null;
    if (t === 'file') {
      if (!p.content) return false;
      for (const id of p.content) if (!this.repo.index.has('data', id)) return false;
      return true;
    }
    // symlinks, devices, FIFOs (a socket is never saved: restic 0.14 skips them, so does saveEntry)
    return t !== 'socket' && t !== '' && p.content == null && p.subtree === undefined;
  }

  /**
   * Start saving one entry. Directories are walked before returning (depth first); file contents
   * are chunked in the workers, so the returned promise may settle later.
   */
  private async saveEntry(full: Buffer, name: Buffer, st: EntryStat, pnode: Node | undefined, noXattrs = false): Promise<{ done: Promise<Node | null> } | null> {
    if (this.aborted) throw this.aborted;
    if (st.isSocket()) return null; // restic 0.14 does not save sockets
    let linktarget: Buffer | undefined;
    if (st.isSymbolicLink()) {
      try {
        linktarget = readlinkSync(full, { encoding: 'buffer' });
      } catch (e) {
        this.error(full, e as Error);
        return null;
      }
    }
    const node = nodeFromStat(name, st, linktarget, { linktargetRaw: true });
    if (!noXattrs) this.addXattrs(full, node);
    const item = this.o.progress?.item;
    const t0 = item ? performance.now() : 0;
    if (st.isDirectory()) {
      const sub = await this.saveDirContents(full, pnode?.type === 'dir' ? pnode.subtree : undefined);
      return { done: sub.id.then(async (id) => {
        node.subtree = id;
        // a directory that could not be read is saved empty but is not counted (it was not backed up)
        if (sub.unreadable) return node;
        this.countDir(pnode, id, full.toString(), t0, (await sub.added) ?? 0);
        return node;
      }) };
    }
    if (!st.isFile()) return { done: Promise.resolve(node) };
    const size = Number(st.size);
    this.s.total_files_processed++;
    this.s.total_bytes_processed += size;
    if (pnode && this.unchanged(node, pnode)) {
      node.content = pnode.content ?? [];
      this.s.files_unmodified++;
      this.o.progress?.fileDone?.(size);
      if (item) item('file', 'unchanged', full.toString(), 0, 0, 0);
      return { done: Promise.resolve(node) };
    }
    const changed = pnode !== undefined && pnode.type === 'file';
    if (changed) this.s.files_changed++; else this.s.files_new++;
    if (st.size === 0n) {
      node.content = [];
      this.o.progress?.fileDone?.(0);
      if (item) item('file', changed ? 'modified' : 'new', full.toString(), (performance.now() - t0) / 1000, 0, 0);
      return { done: Promise.resolve(node) };
    }
    // an unreadable file is counted neither as processed nor as new/changed
    const unreadable = (e: Error) => {
      this.s.total_files_processed--;
      this.s.total_bytes_processed -= size;
      if (changed) this.s.files_changed--; else this.s.files_new--;
      this.error(full, e);
    };
    let job: { result: Promise<FileResult> };
    try {
      job = await this.pool.dispatch(full, size);
    } catch (e) {
      if (!(e instanceof FileReadError)) throw e;
      unreadable(e);
      return null;
    }
    return { done: job.result.then(
      (r) => {
        node.content = r.content;
        node.size = BigInt(r.size);
        this.o.progress?.fileDone?.(r.size);
        if (item) item('file', changed ? 'modified' : 'new', full.toString(), (performance.now() - t0) / 1000, r.added, 0);
        return node;
      },
      (e: Error) => {
        // only unreadable source files are skipped; pool or repository failures abort the snapshot
        if (!(e instanceof FileReadError)) throw e;
        unreadable(e);
        return null;
      },
    ) };
  }

  private unchanged(n: Node, p: Node): boolean {
    if (p.type !== 'file' || n.type !== 'file') return false;
    if ((p.size ?? 0n) !== (n.size ?? 0n)) return false;
    // same string (same zone, the usual case) means the same instant; otherwise compare instants
    if (p.mtime !== n.mtime && parseTimeNs(p.mtime) !== parseTimeNs(n.mtime)) return false;
    if (p.ctime !== n.ctime && parseTimeNs(p.ctime) !== parseTimeNs(n.ctime)) return false;
    if ((p.inode ?? 0n) !== (n.inode ?? 0n)) return false;
    return (p.content ?? []).every((id) => this.repo.index.has('data', id));
  }
}
