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
import { createFileWithMeta, mknodSync, setMetaNoFollow, setTimesNs, splitNs, type FileMeta } from '../native/native.js';
import { restoreXattrs } from './xattr.js';
import { collectGarbage } from '../util/gc.js';
import { getHeapStatistics } from 'node:v8';
import type { Matcher } from '../archiver/exclude.js';
import {
  BufferPool, DecodePool, RW_ASEC, RW_ANSEC, RW_BLOB, RW_CHOWN, RW_FILE, RW_GID, RW_MODE, RW_MSEC, RW_MNSEC, RW_OFFSET, RW_PATH,
  RW_PATH_LEN, RW_SIZE, RW_STRIDE, RW_UID, RW_WHOLE, type DecodeBlob,
} from '../repo/decodepool.js';

/**
 * Restore reads pack ranges of up to MAX_RANGE bytes into recycled buffers of READ_BUFFER, at least
 * three at a time (one decoding in each worker, one being read). Measured on 480 MiB of photos +
 * 10k small files: 8 MiB ranges × 4 gave the same speed with ~40 MiB more peak RSS.
 */
const MAX_RANGE = 4 * 1024 * 1024;
const READ_BUFFER = MAX_RANGE + 64 * 1024;

/** entries created between two turns of the event loop while the workers write (see createOthers) */
const CREATE_SLICE = 32;

/** garbage the tree walk leaves before it collects (see Restorer.heapCheck) */
const WALK_GARBAGE = 24 * 1024 * 1024;

function heapInUse(): number {
  const h = getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}

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

/** an entry other than a regular file restored the quick way (see Files): directories, links, devices, … */
interface Item {
  /** the node as kept (see keep) */
  node: Node;
  /** path on disk */
  dest: Buffer;
  depth: number;
  /** its directory (index into Restorer.dirs) */
  parent: number;
  /** directories: their own index into Restorer.dirs */
  dirNo?: number;
  /** regular files that take the general path: index into Restorer.files */
  file?: number;
  /** not created (or below a directory that was not): no metadata */
  failed?: boolean;
}

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

function grown<T extends Uint8Array | Uint32Array | Float64Array>(a: T, need: number): T {
  if (need <= a.length) return a;
  const b = new (a.constructor as { new (n: number): T })(Math.max(need, a.length * 2, 1024));
  b.set(a);
  return b;
}

/** file flags */
const F_FAILED = 1;
/** a file of at most one blob, without extended attributes: created, written and given its metadata in one call */
const F_WHOLE = 2;
/** content blob missing from the index (reported when its content is planned) */
const F_MISSING = 4;
/** counted as restored */
const F_DONE = 8;

/**
 * Every regular file, in columns: ~110 bytes a file plus its name and ~60 bytes per content blob,
 * where an object per file (node, path Buffer, content id strings, plan entries) held ~1.3 KiB: the
 * main thread's heap was 54 MiB for a restore of 40k small files (scale case), ~330 MiB at 250k.
 * Paths are made when needed (its directory's path + its name).
 */
class Files {
  n = 0;
  dir = new Uint32Array(0);
  nameOff = new Uint32Array(0);
  nameLen = new Uint32Array(0);
  names = new Uint8Array(0);
  namesUsed = 0;
  flags = new Uint8Array(0);
  size = new Float64Array(0);
  /** content blobs not yet written */
  remaining = new Uint32Array(0);
  /** its content: refs [refStart, refStart + refCount) of Refs */
  refStart = new Uint32Array(0);
  refCount = new Uint32Array(0);
  // metadata of F_WHOLE files (others keep their node in an Item)
  mode = new Uint32Array(0);
  uid = new Uint32Array(0);
  gid = new Uint32Array(0);
  aSec = new Float64Array(0);
  aNsec = new Uint32Array(0);
  mSec = new Float64Array(0);
  mNsec = new Uint32Array(0);

  add(dir: number, name: Buffer): number {
    const i = this.n++;
    if (i >= this.dir.length) {
      const c = Math.max(1024, this.dir.length * 2);
      for (const k of ['dir', 'nameOff', 'nameLen', 'flags', 'size', 'remaining', 'refStart', 'refCount', 'mode', 'uid', 'gid', 'aSec', 'aNsec', 'mSec', 'mNsec'] as const) {
        (this as Record<typeof k, Uint8Array | Uint32Array | Float64Array>)[k] = grown(this[k], c);
      }
    }
    this.names = grown(this.names, this.namesUsed + name.length);
    this.names.set(name, this.namesUsed);
    this.dir[i] = dir;
    this.nameOff[i] = this.namesUsed;
    this.nameLen[i] = name.length;
    this.namesUsed += name.length;
    return i;
  }

  name(i: number): Uint8Array {
    return this.names.subarray(this.nameOff[i]!, this.nameOff[i]! + this.nameLen[i]!);
  }
}

/** content blobs of the files, in file order: where each is stored and where it goes */
class Refs {
  n = 0;
  pack = new Uint32Array(0);
  offset = new Uint32Array(0);
  length = new Uint32Array(0);
  ulen = new Uint32Array(0);
  file = new Uint32Array(0);
  fileOffset = new Float64Array(0);
  ids = new Uint8Array(0);

  add(pack: number, loc: BlobLocation, file: number, fileOffset: number): void {
    const i = this.n++;
    if (i >= this.pack.length) {
      const c = Math.max(1024, this.pack.length * 2);
      for (const k of ['pack', 'offset', 'length', 'ulen', 'file', 'fileOffset'] as const) {
        (this as Record<typeof k, Uint32Array | Float64Array>)[k] = grown(this[k], c);
      }
      this.ids = grown(this.ids, c * 32);
    }
    this.pack[i] = pack;
    this.offset[i] = loc.offset;
    this.length[i] = loc.length;
    this.ulen[i] = loc.uncompressedLength;
    this.file[i] = file;
    this.fileOffset[i] = fileOffset;
    this.ids.set(Buffer.from(loc.id, 'hex'), i * 32);
  }

  id(i: number): string {
    return Buffer.from(this.ids.buffer, this.ids.byteOffset + i * 32, 32).toString('hex');
  }

  plainLength(i: number): number {
    return this.ulen[i] || this.length[i]! - 32;
  }
}

/** directory flags */
const D_FAILED = 1;
/** created by this restore: nothing to remove before creating an entry in it */
const D_FRESH = 2;

export class Restorer {
  private items: Item[] = [];
  private files = new Files();
  private refs = new Refs();
  /** directories by number: 0 is the target */
  private dirs: Buffer[] = [];
  private dirFlags: number[] = [];
  private packIds: string[] = [];
  private packNo = new Map<string, number>();
  /** the missing blob of each file flagged F_MISSING */
  private missing = new Map<number, string>();
  /** the size field of each file without content whose size no file can have */
  private oversize = new Map<number, string>();
  private hardlinks: { dest: Buffer; parent: number; file: number }[] = [];
  private summary: RestoreSummary = { files: 0, dirs: 0, bytes: 0, errors: 0, totalFiles: 0, totalBytes: 0 };
  private readonly root = process.getuid?.() === 0;

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
  /**
   * Decoded trees are garbage once walked, but those of the directories above stay alive while the
   * walk descends, so V8 promotes many of their nodes and lets its old generation grow: on the real
   * dataset (60k files) the heap reached 115 MiB of mostly dead nodes by the end of the walk (peak
   * RSS 260 MiB) and 12 MiB after one full collection. So the walk collects whenever the heap and
   * the external memory have grown by WALK_GARBAGE since the last time (looked at every 16 trees,
   * and after every tree of 1 MiB or more: one of 17,877 entries, 6 MiB, decodes to ~42 MiB of
   * heap). Restore of the real dataset: peak RSS 373 -> ~210 MiB with the columns above.
   */
  private heapCheck(treeBytes: number): void {
    if ((++this.trees & 15) !== 0 && treeBytes < 1024 * 1024) return;
    const used = heapInUse();
    if (used < this.heapBase + WALK_GARBAGE) return;
    this.collect();
  }

  private collect(): void {
    collectGarbage('major');
    this.heapBase = heapInUse();
  }

  private trees = 0;
  private heapBase = 0;

  private async runWith(rootTree: string): Promise<RestoreSummary> {
    const comps = (this.o.subpath ?? '/').split('/').filter((c) => c !== '' && c !== '.');
    // a subpath stays inside the snapshot, whatever its trees hold (a node may be named "..", and
    // restoring it as a single node would write the target's parent)
    if (comps.includes('..')) throw new RestoreError(`invalid path ${JSON.stringify(this.o.subpath)}: ".." is not allowed`);
    const target = Buffer.from(path.resolve(this.o.target));
    await mkdirp(path.resolve(this.o.target), 0o700);
    this.dirs.push(target);
    this.dirFlags.push(0);
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
      this.addNode(single, 0, 1);
    } else {
      await this.walk(treeId, 0, snapBase, 1);
    }
    // what loading the index and the trees left (their buffers live outside V8's heap, which
    // counts them late) is freed before the read buffers are allocated, so these reuse its memory
    // (scale case, 40k files: ~28 MiB of garbage array buffers after the walk)
    collectGarbage('major');
    this.createEntries();
    // links, devices and empty files are created while the workers write the files with content
    // (real dataset: the main thread spent ~5 s in symlink(2) alone with both workers idle)
    const [content, others] = await Promise.allSettled([this.restoreContent(), this.createOthers()]);
    if (content.status === 'rejected') throw content.reason;
    if (others.status === 'rejected') throw others.reason;
    for (const h of this.hardlinks) {
      if (this.dirFlags[h.parent]! & D_FAILED) continue;
      const first = this.filePath(h.file);
      try {
        unlinkIfExists(h.dest);
        // link(2) does not follow a symlink at first; it is a file this run created
        linkSync(first, h.dest);
        if (this.files.flags[h.file]! & F_FAILED) this.err(h.dest, new Error(`hard link to ${first.toString()}, which was not restored`));
      } catch (e) {
        this.err(h.dest, e as Error);
      }
    }
    if (this.o.verify) await this.verify();
    this.applyMetadata();
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

  private filePath(fi: number): Buffer {
    return join(this.dirs[this.files.dir[fi]!]!, this.files.name(fi) as Buffer);
  }

  /** returns true when something below was selected */
  private async walk(treeId: string, dirNo: number, snapDir: string, depth: number): Promise<boolean> {
    const dest = this.dirs[dirNo]!;
    let nodes: Node[];
    try {
      const plain = await this.repo.loadBlob('tree', treeId);
      // a big tree's decoding is a peak of its own: nothing else on top of it
      if (plain.length >= 1024 * 1024) this.collect();
      nodes = decodeTree(plain, treeId);
      this.heapCheck(plain.length);
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
      const included = !this.o.includes || this.o.includes(sp);
      if (n.type === 'dir') {
        const idx = this.items.length;
        const d = join(dest, n.name);
        const no = this.dirs.length;
        this.dirs.push(d);
        this.dirFlags.push(0);
        this.items.push({ node: keep(n), dest: d, depth, parent: dirNo, dirNo: no });
        const below = n.subtree ? await this.walk(n.subtree, no, sp, depth + 1) : false;
        if (!included && !below) this.items.splice(idx, 1);
        else any = true;
        continue;
      }
      if (!included) continue;
      this.addNode(n, dirNo, depth);
      any = true;
    }
    return any;
  }

  /** first file of each hard-linked inode */
  private seenInodes = new Map<string, number>();

  private addNode(n: Node, dirNo: number, depth: number): void {
    if (n.type !== 'file') {
      this.items.push({ node: keep(n), dest: join(this.dirs[dirNo]!, n.name), depth, parent: dirNo });
      return;
    }
    let inodeKey: string | null = null;
    if ((n.links ?? 0n) > 1n && n.inode !== undefined) {
      inodeKey = `${n.inode}:${n.deviceId ?? 0n}`;
      const first = this.seenInodes.get(inodeKey);
      if (first !== undefined) {
        // linked after the content is written, to a file created in this run
        this.hardlinks.push({ dest: join(this.dirs[dirNo]!, n.name), parent: dirNo, file: first });
        return;
      }
    }
    const f = this.files;
    const fi = f.add(dirNo, n.name);
    if (inodeKey !== null) this.seenInodes.set(inodeKey, fi);
    const content = n.content ?? [];
    // the content makes the file, as in restic (a node's size field may lie: 2^62)
    let size = content.length ? 0 : Number(n.size ?? 0n);
    if (!Number.isSafeInteger(size)) this.oversize.set(fi, String(n.size));
    f.refStart[fi] = this.refs.n;
    for (const id of content) {
      const loc = this.repo.index.get('data', id);
      if (!loc) {
        f.flags[fi] |= F_MISSING;
        this.missing.set(fi, id);
        break;
      }
      let p = this.packNo.get(loc.packId);
      if (p === undefined) {
        p = this.packIds.length;
        this.packIds.push(loc.packId);
        this.packNo.set(loc.packId, p);
      }
      this.refs.add(p, loc, fi, size);
      size += plaintextLength(loc);
    }
    if (f.flags[fi]! & F_MISSING) this.refs.n = f.refStart[fi]!;
    f.refCount[fi] = this.refs.n - f.refStart[fi]!;
    f.size[fi] = size;
    f.remaining[fi] = f.refCount[fi]!;
    // with --verify, files are read back before any gets its metadata (a file that fails gets none)
    if (content.length <= 1 && !n.extendedAttributes?.length && !this.o.verify) {
      try {
        const [aSec, aNsec] = splitNs(parseTimeNs(n.atime || n.mtime));
        const [mSec, mNsec] = splitNs(parseTimeNs(n.mtime));
        f.aSec[fi] = Number(aSec);
        f.aNsec[fi] = aNsec;
        f.mSec[fi] = Number(mSec);
        f.mNsec[fi] = mNsec;
        f.mode[fi] = posixModeFromGo(n.mode, 'file');
        f.uid[fi] = n.uid;
        f.gid[fi] = n.gid;
        f.flags[fi] |= F_WHOLE;
        return;
      } catch { /* the general path reports it when setting the metadata */ }
    }
    this.items.push({ node: keep(n), dest: this.filePath(fi), depth, parent: dirNo, file: fi });
  }

  private meta(fi: number): FileMeta {
    const f = this.files;
    return {
      mode: f.mode[fi]!, owner: this.root ? { uid: f.uid[fi]!, gid: f.gid[fi]! } : null,
      aSec: f.aSec[fi]!, aNsec: f.aNsec[fi]!, mSec: f.mSec[fi]!, mNsec: f.mNsec[fi]!,
    };
  }

  /**
   * Create the directories, remove what is in the way of files in directories that were there
   * already, and count what is to restore. Metadata calls are synchronous throughout the restorer:
   * each is a cached syscall of microseconds, while an async call costs a thread-pool round trip
   * (10k small files: ~10 s of latency when awaited one by one). Nothing is removed before creating
   * an entry in a directory this run created.
   */
  private createEntries(): void {
    const flags = this.dirFlags;
    for (const it of this.items) {
      if (it.node.type !== 'dir') continue;
      if (flags[it.parent]! & D_FAILED) {
        it.failed = true;
        flags[it.dirNo!] = D_FAILED;
        continue;
      }
      try {
        if (mkdirFresh(it.dest, (flags[it.parent]! & D_FRESH) !== 0)) flags[it.dirNo!] = D_FRESH;
        this.summary.dirs++;
      } catch (e) {
        flags[it.dirNo!] = D_FAILED;
        it.failed = true;
        this.err(it.dest, e as Error);
      }
    }
    const f = this.files;
    let files = 0;
    let bytes = 0;
    for (let fi = 0; fi < f.n; fi++) {
      const df = flags[f.dir[fi]!]!;
      if (df & D_FAILED) {
        f.flags[fi] |= F_FAILED;
        continue;
      }
      files++;
      bytes += f.size[fi]!;
      if (f.flags[fi]! & F_FAILED || df & D_FRESH) continue;
      const p = this.filePath(fi);
      try {
        unlinkIfExists(p);
      } catch (e) {
        this.failFile(fi, e as Error, p);
      }
    }
    this.summary.totalFiles = files;
    this.summary.totalBytes = bytes;
    this.o.progress?.totals?.(files, bytes);
  }

  /**
   * Symlinks, devices, FIFOs and files without content, in slices of CREATE_SLICE between which
   * the main thread serves the reads and the workers' answers (they write the other files meanwhile).
   */
  private async createOthers(): Promise<void> {
    const flags = this.dirFlags;
    let n = 0;
    const pause = async () => {
      if (++n % CREATE_SLICE === 0) await new Promise((r) => setImmediate(r));
    };
    for (const it of this.items) {
      const t = it.node.type;
      if (t === 'dir' || t === 'file') continue;
      await pause();
      if (flags[it.parent]! & D_FAILED) {
        it.failed = true;
        continue;
      }
      const fresh = (flags[it.parent]! & D_FRESH) !== 0;
      const node = it.node;
      try {
        switch (t) {
          case 'symlink':
            if (!fresh) unlinkIfExists(it.dest);
            symlinkSync(node.linktarget ?? Buffer.alloc(0), it.dest);
            break;
          case 'fifo':
          case 'dev':
          case 'chardev':
            if (!fresh) unlinkIfExists(it.dest);
            mknodSync(it.dest, posixModeFromGo(node.mode, t) | typeBits(t), node.device ?? 0n);
            break;
          default:
            // sockets and unknown types are not restored (as restic)
            break;
        }
      } catch (e) {
        it.failed = true;
        this.err(it.dest, e as Error);
      }
    }
    const f = this.files;
    for (let fi = 0; fi < f.n; fi++) {
      if (f.refCount[fi] !== 0 || f.flags[fi]! & (F_FAILED | F_MISSING)) continue;
      await pause();
      const p = this.filePath(fi);
      try {
        const size = f.size[fi]!;
        if (!Number.isSafeInteger(size)) throw new Error(`the tree gives this file a size of ${this.oversize.get(fi)} bytes, more than a file can have`);
        if (f.flags[fi]! & F_WHOLE) {
          createFileWithMeta(p, null, size, this.meta(fi));
        } else {
          const fd = openSync(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
          try {
            if (size > 0) ftruncateSync(fd, size);
          } finally {
            closeSync(fd);
          }
        }
        this.fileDone(fi);
      } catch (e) {
        this.failFile(fi, e as Error, p);
      }
    }
  }

  private fileDone(fi: number): void {
    const f = this.files;
    if (f.flags[fi]! & (F_FAILED | F_DONE)) return;
    f.flags[fi] |= F_DONE;
    this.summary.files++;
    this.o.progress?.fileDone?.();
  }

  /** the first error of a file is reported; the file is not counted and gets no metadata */
  private failFile(fi: number, e: Error, p: Buffer | null = null): void {
    const f = this.files;
    if (f.flags[fi]! & F_FAILED) return;
    f.flags[fi] |= F_FAILED;
    this.err(p ?? this.filePath(fi), e);
  }

  private async restoreContent(): Promise<void> {
    const f = this.files;
    const refs = this.refs;
    // plan: the refs of files still to write, by pack, then by offset in the pack
    const perPack = new Uint32Array(this.packIds.length + 1);
    for (let fi = 0; fi < f.n; fi++) {
      if (f.flags[fi]! & F_FAILED) continue;
      if (f.flags[fi]! & F_MISSING) {
        this.failFile(fi, new Error(`data blob ${this.missing.get(fi)!} not found in index`));
        continue;
      }
      for (let r = f.refStart[fi]!, e = r + f.refCount[fi]!; r < e; r++) perPack[refs.pack[r]! + 1]!++;
    }
    for (let p = 1; p < perPack.length; p++) perPack[p]! += perPack[p - 1]!;
    const order = new Uint32Array(perPack[perPack.length - 1]!);
    const fill = perPack.slice(0, -1);
    for (let fi = 0; fi < f.n; fi++) {
      if (f.flags[fi]! & F_FAILED) continue;
      for (let r = f.refStart[fi]!, e = r + f.refCount[fi]!; r < e; r++) order[fill[refs.pack[r]!]!++] = r;
    }
    const packs: number[] = [];
    for (let p = 0; p < this.packIds.length; p++) {
      if (perPack[p + 1]! > perPack[p]!) packs.push(p);
    }
    const pool = this.pool;
    // read buffers are recycled: a decode worker reads each range where it is (shared memory)
    const buffers = new BufferPool(READ_BUFFER, 16);
    try {
      await mapLimit(packs, this.o.connections ?? Math.max(3, this.repo.backend.properties.connections), async (p) => {
        const packId = this.packIds[p]!;
        const list = order.subarray(perPack[p]!, perPack[p + 1]!).sort((a, b) => refs.offset[a]! - refs.offset[b]! || a - b);
        // merge nearby blobs into ranges of at most MAX_RANGE; refs of one blob (same offset) are decoded once
        let i = 0;
        while (i < list.length) {
          const start = refs.offset[list[i]!]!;
          let end = start + refs.length[list[i]!]!;
          let j = i + 1;
          for (; j < list.length; j++) {
            const r = list[j]!;
            const o = refs.offset[r]!;
            if (o < end) continue; // the same blob again
            if (o - end >= 256 * 1024 || o + refs.length[r]! - start > MAX_RANGE) break;
            end = o + refs.length[r]!;
          }
          await this.restoreRange(packId, list.subarray(i, j), start, end, buffers);
          i = j;
        }
      });
    } finally {
      try {
        for (const fe of await pool.closeFiles()) this.failFile(fe.file, new Error(fe.error));
      } finally {
        await pool.close();
      }
    }
  }

  /** read one range of a pack, and have a decode worker decrypt, verify and write its blobs */
  private async restoreRange(packId: string, group: Uint32Array, start: number, end: number, buffers: BufferPool): Promise<void> {
    const f = this.files;
    const refs = this.refs;
    const blobs: DecodeBlob[] = [];
    /** per blob: its first ref in group */
    const firsts: number[] = [];
    let paths = 0;
    for (let k = 0; k < group.length; k++) {
      const r = group[k]!;
      paths += this.dirs[f.dir[refs.file[r]!]!]!.length + 1 + f.nameLen[refs.file[r]!]!;
      if (k > 0 && refs.offset[r] === refs.offset[group[k - 1]!]) continue;
      firsts.push(k);
      blobs.push({ id: refs.id(r), offset: refs.offset[r]! - start, length: refs.length[r]!, uncompressedLength: refs.ulen[r]! });
    }
    firsts.push(group.length);
    const t = new Float64Array(group.length * RW_STRIDE);
    const pathBytes = Buffer.allocUnsafe(paths);
    let po = 0;
    for (let b = 0; b < blobs.length; b++) {
      for (let k = firsts[b]!; k < firsts[b + 1]!; k++) {
        const r = group[k]!;
        const fi = refs.file[r]!;
        const o = k * RW_STRIDE;
        t[o + RW_BLOB] = b;
        t[o + RW_FILE] = fi;
        t[o + RW_OFFSET] = refs.fileOffset[r]!;
        t[o + RW_SIZE] = f.size[fi]!;
        const dir = this.dirs[f.dir[fi]!]!;
        t[o + RW_PATH] = po;
        po += dir.copy(pathBytes, po);
        pathBytes[po++] = 0x2f;
        pathBytes.set(f.name(fi), po);
        po += f.nameLen[fi]!;
        t[o + RW_PATH_LEN] = po - t[o + RW_PATH]!;
        if (f.flags[fi]! & F_WHOLE) {
          t[o + RW_WHOLE] = 1;
          t[o + RW_MODE] = f.mode[fi]!;
          t[o + RW_UID] = f.uid[fi]!;
          t[o + RW_GID] = f.gid[fi]!;
          t[o + RW_CHOWN] = this.root ? 1 : 0;
          t[o + RW_ASEC] = f.aSec[fi]!;
          t[o + RW_ANSEC] = f.aNsec[fi]!;
          t[o + RW_MSEC] = f.mSec[fi]!;
          t[o + RW_MNSEC] = f.mNsec[fi]!;
        }
      }
    }
    const into = buffers.take(end - start);
    // decrypt, decompress, verify and write in the decode workers
    // our own buffer (shared memory, not one a backend returned): read where it is and
    // decrypted in place, then reused
    let res;
    try {
      const buf = await this.repo.backend.load({ type: 'data', name: packId }, start, end - start, into);
      res = await this.pool.decode(buf, blobs, { writes: { t, paths: pathBytes }, scratch: buf.buffer === into.buffer });
    } catch (e) {
      // an unreadable range fails the files it feeds, not the restore
      for (const r of group) this.failFile(refs.file[r]!, new Error(`pack ${packId}: ${(e as Error).message}`));
      return;
    } finally {
      buffers.give(into);
    }
    for (const fe of res.fileErrors ?? []) this.failFile(fe.file, new Error(fe.error));
    for (let b = 0; b < blobs.length; b++) {
      const r = res.results[b]!;
      if (r.error) {
        for (let k = firsts[b]!; k < firsts[b + 1]!; k++) this.failFile(refs.file[group[k]!]!, new Error(`pack ${packId}: blob ${blobs[b]!.id}: ${r.error}`));
        continue;
      }
      const n = firsts[b + 1]! - firsts[b]!;
      const len = refs.plainLength(group[firsts[b]!]!);
      this.summary.bytes += len * n;
      this.o.progress?.bytes?.(len * n);
      for (let k = firsts[b]!; k < firsts[b + 1]!; k++) {
        const fi = refs.file[group[k]!]!;
        if (--f.remaining[fi]! === 0) this.fileDone(fi);
      }
    }
  }

  private async verify(): Promise<void> {
    const f = this.files;
    const refs = this.refs;
    for (let fi = 0; fi < f.n; fi++) {
      if (f.flags[fi]! & F_FAILED) continue;
      const p = this.filePath(fi);
      try {
        const fh = await fsp.open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW);
        try {
          let off = 0;
          for (let r = f.refStart[fi]!, e = r + f.refCount[fi]!; r < e; r++) {
            const len = refs.plainLength(r);
            const buf = Buffer.allocUnsafe(len);
            const { bytesRead } = await fh.read(buf, 0, len, off);
            const id = refs.id(r);
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
        this.failFile(fi, e as Error, p);
      }
    }
  }

  /**
   * Owners, modes and times of the entries not restored whole (directories, links, devices, files
   * of several blobs or with extended attributes), through a descriptor of the entry opened with
   * O_NOFOLLOW (regular files, FIFOs, directories) or with no-follow calls (symlinks): a path is
   * never followed out of the target. Damaged files get none (their mode stays 0600 and their mtime
   * says when they were written, so no tool takes them for the original).
   */
  private applyMetadata(): void {
    const root = this.root;
    const nonDirs = this.items.filter((i) => i.node.type !== 'dir');
    const dirs = this.items.filter((i) => i.node.type === 'dir').sort((a, b) => b.depth - a.depth);
    for (const it of [...nonDirs, ...dirs]) {
      const n = it.node;
      if (n.type === 'socket' || it.failed || (it.file !== undefined && this.files.flags[it.file]! & F_FAILED)) continue;
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

/**
 * Make a directory, keeping one that is there; true when this call created it. In a directory this
 * run created (`inFresh`) nothing can be there: no lstat first (its ENOENT, an exception in Node,
 * cost ~10 µs per directory).
 */
function mkdirFresh(d: Buffer, inFresh: boolean): boolean {
  if (!inFresh) {
    try {
      const st = lstatSync(d);
      if (st.isDirectory()) return false;
      unlinkIfExists(d);
    } catch { /* does not exist */ }
  }
  mkdirSync(d, { mode: 0o700 });
  return true;
}
