/**
 * Restore: walk the snapshot's trees, plan which pack ranges feed which file offsets, read each
 * needed pack range once, decrypt + verify, and pwrite into the files; then apply metadata
 * bottom-up (content first, then owners/modes/times; directories last, deepest first).
 *
 * A snapshot's trees are not trusted: a name is restored at most once per directory (a second
 * entry of the same name could replace the first by a symlink that later calls would follow),
 * nothing is created below a directory that could not be created, and metadata is set through a
 * descriptor opened without following links (or with no-follow calls), never through a path.
 * A damaged blob, a missing one or a failed write fails only the files it belongs to: the
 * restore goes on, names each of them and counts them as errors.
 */
import {
  promises as fsp, constants as fsc, chmodSync, closeSync, ftruncateSync, lchownSync, linkSync, lstatSync,
  fchownSync, mkdirSync, openSync, symlinkSync, unlinkSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { Repository } from '../repo/repository.js';
import { mapLimit } from '../repo/repository.js';
import { mkdirp } from '../util/mkdirp.js';
import { plaintextLength, type BlobLocation } from '../repo/index.js';
import { posixModeFromGo } from '../format/gomode.js';
import { parseTimeNs } from '../format/gotime.js';
import { decodeTree, type Node } from '../repo/tree.js';
import { mknodSync, setMetaNoFollow, setTimesNs } from '../native/native.js';
import { restoreXattrs } from './xattr.js';
import type { Matcher } from '../archiver/exclude.js';
import { BufferPool, DecodePool, type FileError } from '../repo/decodepool.js';

/**
 * Restore reads pack ranges of up to MAX_RANGE bytes into recycled buffers of READ_BUFFER, at least
 * three at a time (one decoding in each worker, one being read). Measured on 480 MiB of photos +
 * 10k small files: 8 MiB ranges × 4 gave the same speed with ~40 MiB more peak RSS.
 */
const MAX_RANGE = 4 * 1024 * 1024;
const READ_BUFFER = MAX_RANGE + 64 * 1024;

export interface RestoreOptions {
  /** path inside the snapshot to restore (default "/") */
  subpath?: string;
  target: string;
  includes?: Matcher | null;
  excludes?: Matcher | null;
  verify?: boolean;
  progress?: RestoreProgress;
  /** concurrent pack reads */
  connections?: number;
}

export interface RestoreProgress {
  /** once the trees are read: files and content bytes to restore */
  totals?(files: number, bytes: number): void;
  bytes?(n: number): void;
  /** a file is complete (content written; its metadata follows at the end) */
  fileDone?(): void;
  error?(path: string, err: Error): void;
}

export interface RestoreSummary {
  /** files restored completely (failed ones are not counted) */
  files: number;
  dirs: number;
  bytes: number;
  errors: number;
  totalFiles: number;
  totalBytes: number;
}

interface Item {
  /** the node as kept (see keep) */
  node: Node;
  /** path on disk */
  dest: Buffer;
  depth: number;
  /** regular files: index into Restorer.files */
  file?: number;
  /** not created (or below a directory that was not): no metadata */
  failed?: boolean;
}

interface FileEntry {
  dest: Buffer;
  size: number;
  content: string[];
  /** content targets not yet written */
  remaining: number;
  failed: boolean;
}

interface Target { file: number; offset: number }
interface PlannedBlob { loc: BlobLocation; targets: Target[] }

const NO_NAME = Buffer.alloc(0);

/**
 * What creating an entry and setting its metadata need of a node. Items live until the end of a
 * restore; whole decoded nodes (names, inode, ctime, user and group, subtree ids) kept for every file
 * raised the main thread's heap by ~5 MiB per 10k files.
 */
function keep(n: Node): Node {
  const k: Node = { name: NO_NAME, type: n.type, mode: n.mode, mtime: n.mtime, atime: n.atime, ctime: '', uid: n.uid, gid: n.gid };
  if (n.size !== undefined) k.size = n.size;
  if (n.content) k.content = n.content;
  if (n.linktarget) k.linktarget = n.linktarget;
  if (n.device !== undefined) k.device = n.device;
  if (n.extendedAttributes?.length) k.extendedAttributes = n.extendedAttributes;
  return k;
}

const SLASH = Buffer.from('/');
function join(a: Buffer, b: Buffer): Buffer {
  return Buffer.concat([a, SLASH, b]);
}

export function validName(n: Buffer): boolean {
  if (n.length === 0) return false;
  if (n.length === 1 && n[0] === 0x2e) return false;
  if (n.length === 2 && n[0] === 0x2e && n[1] === 0x2e) return false;
  return !n.includes(0x2f) && !n.includes(0);
}

export class RestoreError extends Error {
  override name = 'RestoreError';
}

/** why a node of a tree is not restored: a name that is not one path component, or a repeated one */
function refusal(n: Buffer, seen: Set<string>): string | null {
  if (!validName(n)) return `invalid name ${JSON.stringify(n.toString())}`;
  const k = n.toString('latin1');
  if (seen.has(k)) return 'file exists (a second entry of this name in the same directory is not restored)';
  seen.add(k);
  return null;
}

export class Restorer {
  private items: Item[] = [];
  private files: FileEntry[] = [];
  private hardlinks: { dest: Buffer; first: Buffer; file: number }[] = [];
  private summary: RestoreSummary = { files: 0, dirs: 0, bytes: 0, errors: 0, totalFiles: 0, totalBytes: 0 };

  constructor(private repo: Repository, private o: RestoreOptions) {}

  async run(rootTree: string): Promise<RestoreSummary> {
    // the decode workers load while the trees are read and the files created
    this.pool = new DecodePool(this.repo.key);
    this.pool.warm();
    try {
      return await this.runWith(rootTree);
    } finally {
      await this.pool.close();
    }
  }

  private pool!: DecodePool;

  private async runWith(rootTree: string): Promise<RestoreSummary> {
    const comps = (this.o.subpath ?? '/').split('/').filter((c) => c !== '' && c !== '.');
    // a subpath stays inside the snapshot, whatever its trees hold (a node may be named "..", and
    // restoring it as a single node would write the target's parent)
    if (comps.includes('..')) throw new RestoreError(`invalid path ${JSON.stringify(this.o.subpath)}: ".." is not allowed`);
    const target = Buffer.from(path.resolve(this.o.target));
    await mkdirp(path.resolve(this.o.target), 0o700);
    // descend to the subpath
    let treeId = rootTree;
    let single: Node | null = null;
    let snapBase = '';
    for (let i = 0; i < comps.length; i++) {
      const nodes = decodeTree(await this.repo.loadBlob('tree', treeId), treeId);
      const n = nodes.find((x) => validName(x.name) && x.name.toString() === comps[i]);
      if (!n) throw new RestoreError(`path /${comps.slice(0, i + 1).join('/')} not found in snapshot`);
      snapBase += `/${comps[i]}`;
      if (n.type === 'dir' && n.subtree) treeId = n.subtree;
      else if (i === comps.length - 1) single = n;
      else throw new RestoreError(`path ${snapBase} is not a directory`);
    }
    if (single) {
      this.addNode(single, join(target, single.name), 1);
    } else {
      await this.walk(treeId, target, snapBase, 1);
    }
    await this.createEntries();
    let totalBytes = 0;
    for (const f of this.files) totalBytes += f.size;
    this.summary.totalFiles = this.files.length;
    this.summary.totalBytes = totalBytes;
    this.o.progress?.totals?.(this.files.length, totalBytes);
    await this.restoreContent();
    for (const h of this.hardlinks) {
      if (this.underFailed(h.dest)) continue;
      try {
        unlinkIfExists(h.dest);
        // link(2) does not follow a symlink at h.first; h.first is a file this run created
        linkSync(h.first, h.dest);
        if (this.files[h.file]!.failed) this.err(h.dest, new Error(`hard link to ${h.first.toString()}, which was not restored`));
      } catch (e) {
        this.err(h.dest, e as Error);
      }
    }
    if (this.o.verify) await this.verify();
    await this.applyMetadata();
    return this.summary;
  }

  private err(p: Buffer | string, e: Error): void {
    this.summary.errors++;
    this.o.progress?.error?.(p.toString(), e);
  }

  private selected(snapPath: string): boolean {
    if (this.o.excludes?.(snapPath)) return false;
    return true;
  }

  /** returns true when something below was selected */
  private async walk(treeId: string, dest: Buffer, snapDir: string, depth: number): Promise<boolean> {
    let nodes: Node[];
    try {
      nodes = decodeTree(await this.repo.loadBlob('tree', treeId), treeId);
    } catch (e) {
      // a damaged tree costs what is below it, not the restore
      this.err(dest, new Error(`tree ${treeId.slice(0, 8)}: ${(e as Error).message}`));
      return false;
    }
    let any = false;
    const seen = new Set<string>();
    for (const n of nodes) {
      const refused = refusal(n.name, seen);
      if (refused) {
        this.err(validName(n.name) ? join(dest, n.name) : dest, new Error(`tree ${treeId.slice(0, 8)}: ${refused}`));
        continue;
      }
      const sp = `${snapDir}/${n.name.toString()}`;
      if (!this.selected(sp)) continue;
      const d = join(dest, n.name);
      const included = !this.o.includes || this.o.includes(sp);
      if (n.type === 'dir') {
        const idx = this.items.length;
        this.items.push({ node: keep(n), dest: d, depth });
        const below = n.subtree ? await this.walk(n.subtree, d, sp, depth + 1) : false;
        if (!included && !below) this.items.splice(idx, 1);
        else any = true;
        continue;
      }
      if (!included) continue;
      this.addNode(n, d, depth);
      any = true;
    }
    return any;
  }

  /** first item of each hard-linked inode */
  private seenInodes = new Map<string, Item>();

  private addNode(n: Node, d: Buffer, depth: number): void {
    const it: Item = { node: keep(n), dest: d, depth };
    if (n.type === 'file' && (n.links ?? 0n) > 1n && n.inode !== undefined) {
      const k = `${n.inode}:${n.deviceId ?? 0n}`;
      const first = this.seenInodes.get(k);
      if (first) {
        // linked after the content is written, to a file created in this run (index known by then)
        this.hardlinks.push({ dest: d, first: first.dest, file: -1 });
        this.linkItems.push(first);
        return;
      }
      this.seenInodes.set(k, it);
    }
    this.items.push(it);
  }

  /** the first item of each entry in hardlinks, same order */
  private linkItems: Item[] = [];

  /**
   * Create every entry. Metadata calls are synchronous throughout the restorer: each is a cached
   * syscall of microseconds, while an async call costs a thread-pool round trip (10k small files:
   * ~10 s of latency when awaited one by one).
   */
  private async createEntries(): Promise<void> {
    const failedDirs = this.failedDirs;
    for (const it of this.items) {
      const n = it.node;
      try {
        if (this.underFailed(it.dest)) {
          it.failed = true;
          if (n.type === 'dir') failedDirs.add(it.dest.toString('latin1'));
          continue;
        }
        switch (n.type) {
          case 'dir':
            try {
              mkdirFresh(it.dest);
            } catch (e) {
              failedDirs.add(it.dest.toString('latin1'));
              throw e;
            }
            this.summary.dirs++;
            break;
          case 'file': {
            const size = Number(n.size ?? 0n);
            unlinkIfExists(it.dest);
            const content = n.content ?? [];
            const fi = this.files.length;
            this.files.push({ dest: it.dest, size, content, remaining: 0, failed: false });
            it.file = fi;
            if (content.length === 0) {
              // files with content are created by the decode worker that writes their first blob
              // (one open per file instead of two: creating a file costs ~0.1 ms on ext4)
              const fd = openSync(it.dest, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
              try {
                if (!Number.isSafeInteger(size)) throw new Error(`the tree gives this file a size of ${String(n.size)} bytes, more than a file can have`);
                if (size > 0) ftruncateSync(fd, size);
              } finally {
                closeSync(fd);
              }
              this.fileDone(fi);
            }
            break;
          }
          case 'symlink':
            unlinkIfExists(it.dest);
            symlinkSync(n.linktarget ?? Buffer.alloc(0), it.dest);
            break;
          case 'fifo':
          case 'dev':
          case 'chardev': {
            unlinkIfExists(it.dest);
            mknodSync(it.dest, posixModeFromGo(n.mode, n.type) | typeBits(n.type), n.device ?? 0n);
            break;
          }
          default:
            // sockets and unknown types are not restored (as restic)
            break;
        }
      } catch (e) {
        it.failed = true;
        if (it.file !== undefined) this.files[it.file]!.failed = true;
        this.err(it.dest, e as Error);
      }
    }
    for (let i = 0; i < this.hardlinks.length; i++) this.hardlinks[i]!.file = this.linkItems[i]!.file ?? -1;
    this.hardlinks = this.hardlinks.filter((h) => h.file >= 0);
  }

  /**
   * directories that could not be created (latin1 of the path): nothing is created below them, as
   * the path may be something else, e.g. a symlink that could not be removed
   */
  private failedDirs = new Set<string>();

  private underFailed(d: Buffer): boolean {
    return this.failedDirs.size > 0 && this.failedDirs.has(d.subarray(0, d.lastIndexOf(0x2f)).toString('latin1'));
  }

  private fileDone(fi: number): void {
    if (this.files[fi]!.failed) return;
    this.summary.files++;
    this.o.progress?.fileDone?.();
  }

  /** the first error of a file is reported; the file is not counted and gets no metadata */
  private failFile(fi: number, e: Error): void {
    const f = this.files[fi]!;
    if (f.failed) return;
    f.failed = true;
    this.err(f.dest, e);
  }

  private async restoreContent(): Promise<void> {
    // plan: pack → blobs → (file, offset) targets
    const packs = new Map<string, Map<string, PlannedBlob>>();
    this.files.forEach((f, fi) => {
      if (f.failed) return;
      let off = 0;
      const planned: PlannedBlob[] = [];
      for (const id of f.content) {
        const loc = this.repo.index.get('data', id);
        if (!loc) {
          this.failFile(fi, new Error(`data blob ${id} not found in index`));
          // its other blobs are not needed: undo what was planned for it
          for (const pb of planned) pb.targets = pb.targets.filter((t) => t.file !== fi);
          return;
        }
        let m = packs.get(loc.packId);
        if (!m) { m = new Map(); packs.set(loc.packId, m); }
        let pb = m.get(id);
        if (!pb) { pb = { loc, targets: [] }; m.set(id, pb); }
        pb.targets.push({ file: fi, offset: off });
        planned.push(pb);
        off += plaintextLength(loc);
      }
      f.remaining = f.content.length;
      // the content makes the file, as in restic (a node's size field may lie: 2^62)
      f.size = off;
    });
    for (const [packId, m] of packs) {
      for (const [id, pb] of m) if (pb.targets.length === 0) m.delete(id);
      if (m.size === 0) packs.delete(packId);
    }
    const pool = this.pool;
    const fileError = (fe: FileError) => this.failFile(fe.file, new Error(fe.error));
    const written = (t: Target) => {
      const f = this.files[t.file]!;
      if (--f.remaining === 0) this.fileDone(t.file);
    };
    // read buffers are recycled: a decode worker reads each range where it is (shared memory)
    const buffers = new BufferPool(READ_BUFFER, 16);
    try {
      await mapLimit([...packs], this.o.connections ?? Math.max(3, this.repo.backend.properties.connections), async ([packId, blobs]) => {
        const list = [...blobs.values()].sort((a, b) => a.loc.offset - b.loc.offset);
        // merge nearby blobs into ranges of at most MAX_RANGE
        let i = 0;
        while (i < list.length) {
          let j = i + 1;
          const start = list[i]!.loc.offset;
          let end = start + list[i]!.loc.length;
          while (j < list.length && list[j]!.loc.offset - end < 256 * 1024 && list[j]!.loc.offset + list[j]!.loc.length - start <= MAX_RANGE) {
            end = list[j]!.loc.offset + list[j]!.loc.length;
            j++;
          }
          const group = list.slice(i, j);
          i = j;
          const into = buffers.take(end - start);
          // decrypt, decompress, verify and write in the decode workers
          // our own buffer (shared memory, not one a backend returned): read where it is and
          // decrypted in place, then reused
          let res;
          try {
            const buf = await this.repo.backend.load({ type: 'data', name: packId }, start, end - start, into);
            res = await pool.decode(buf, group.map((b) => ({
              id: b.loc.id, offset: b.loc.offset - start, length: b.loc.length, uncompressedLength: b.loc.uncompressedLength,
            })), {
              writes: group.map((b) => b.targets.map((t) => ({ file: t.file, path: this.files[t.file]!.dest, size: this.files[t.file]!.size, offset: t.offset }))),
              scratch: buf.buffer === into.buffer,
            });
          } catch (e) {
            // an unreadable range fails the files it feeds, not the restore
            for (const b of group) for (const t of b.targets) this.failFile(t.file, new Error(`pack ${packId}: ${(e as Error).message}`));
            continue;
          } finally {
            buffers.give(into);
          }
          for (const fe of res.fileErrors ?? []) fileError(fe);
          group.forEach((b, k) => {
            const r = res.results[k]!;
            if (r.error) {
              for (const t of b.targets) this.failFile(t.file, new Error(`pack ${packId}: blob ${b.loc.id}: ${r.error}`));
              return;
            }
            const len = plaintextLength(b.loc);
            this.summary.bytes += len * b.targets.length;
            this.o.progress?.bytes?.(len * b.targets.length);
            for (const t of b.targets) written(t);
          });
        }
      });
    } finally {
      try {
        for (const fe of await pool.closeFiles()) fileError(fe);
      } finally {
        await pool.close();
      }
    }
  }

  private async verify(): Promise<void> {
    for (let fi = 0; fi < this.files.length; fi++) {
      const f = this.files[fi]!;
      if (f.failed) continue;
      try {
        const fh = await fsp.open(f.dest, fsc.O_RDONLY | fsc.O_NOFOLLOW);
        try {
          let off = 0;
          for (const id of f.content) {
            const loc = this.repo.index.get('data', id)!;
            const len = plaintextLength(loc);
            const buf = Buffer.allocUnsafe(len);
            const { bytesRead } = await fh.read(buf, 0, len, off);
            if (bytesRead !== len || createHash('sha256').update(buf).digest('hex') !== id) {
              throw new RestoreError(`verification failed at offset ${off}: does not match blob ${id}`);
            }
            off += len;
          }
        } finally {
          await fh.close();
        }
      } catch (e) {
        this.summary.files--;
        this.failFile(fi, e as Error);
      }
    }
  }

  /**
   * Owners, modes and times, through a descriptor of the entry opened with O_NOFOLLOW (regular
   * files, FIFOs, directories) or with no-follow calls (symlinks): a path is never followed out of
   * the target. Damaged files get none (their mode stays 0600 and their mtime says when they were
   * written, so no tool takes them for the original).
   */
  private async applyMetadata(): Promise<void> {
    const root = process.getuid?.() === 0;
    const nonDirs = this.items.filter((i) => i.node.type !== 'dir');
    const dirs = this.items.filter((i) => i.node.type === 'dir').sort((a, b) => b.depth - a.depth);
    for (const it of [...nonDirs, ...dirs]) {
      const n = it.node;
      if (n.type === 'socket' || it.failed || (it.file !== undefined && this.files[it.file]!.failed)) continue;
      try {
        const atime = parseTimeNs(n.atime || n.mtime);
        const mtime = parseTimeNs(n.mtime);
        if (n.type === 'dir' || n.type === 'file' || n.type === 'fifo') {
          const dir = n.type === 'dir';
          let owner: Node | null = root ? n : null;
          if (n.extendedAttributes?.length) {
            // owner, then attributes (chown clears security.capability), then mode (user.* needs write
            // permission, which a read-only mode takes away) and times; each on a descriptor opened
            // without following a symlink
            const fd = openSync(it.dest, fsc.O_RDONLY | fsc.O_NOFOLLOW | (dir ? fsc.O_DIRECTORY : fsc.O_NONBLOCK));
            try {
              if (owner) { try { fchownSync(fd, n.uid, n.gid); } catch { /* as restic: best effort */ } }
              const xe = restoreXattrs({ fd, path: it.dest }, n.extendedAttributes);
              if (xe) this.err(it.dest, xe);
            } finally {
              closeSync(fd);
            }
            owner = null; // a second chown would clear security.capability again
          }
          setMetaNoFollow(it.dest, dir, posixModeFromGo(n.mode, n.type), owner, atime, mtime);
          continue;
        }
        if (root) { try { lchownSync(it.dest, n.uid, n.gid); } catch { /* as restic: best effort */ } }
        const xe = restoreXattrs({ path: it.dest }, n.extendedAttributes);
        if (xe) this.err(it.dest, xe);
        if (n.type !== 'symlink') {
          // devices cannot be opened without side effects: chmod by path, after making sure the
          // path is still the node created (chmod would follow a symlink)
          const st = lstatSync(it.dest);
          if ((st.mode & fsc.S_IFMT) !== typeBits(n.type)) throw new Error('changed during restore, not touched');
          chmodSync(it.dest, posixModeFromGo(n.mode, n.type));
        }
        setTimesNs(it.dest, atime, mtime, { noFollow: true });
      } catch (e) {
        this.err(it.dest, e as Error);
      }
    }
  }
}


function typeBits(t: string): number {
  switch (t) {
    case 'fifo': return fsc.S_IFIFO;
    case 'dev': return fsc.S_IFBLK;
    case 'chardev': return fsc.S_IFCHR;
    default: return 0;
  }
}

/**
 * Remove a non-directory left at a path by an earlier restore (not rmSync: in Node 20 it costs
 * ~0.3 ms per call even when nothing is there). A directory stays, and creating the entry fails.
 */
function unlinkIfExists(p: Buffer): void {
  try {
    unlinkSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') return;
    // macOS says EPERM for a directory; anything else that stays could be written through
    if (code === 'EPERM' && lstatSync(p).isDirectory()) return;
    throw e;
  }
}

function mkdirFresh(d: Buffer): void {
  try {
    const st = lstatSync(d);
    if (st.isDirectory()) return;
    unlinkIfExists(d);
  } catch { /* does not exist */ }
  mkdirSync(d, { mode: 0o700 });
}
