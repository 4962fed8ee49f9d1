/**
 * One directory's entries and their metadata, read in one go for the backup walk (and its
 * prescan). With the native addon it is one call per directory (native/dirscan.c: readdir, sort,
 * fstatat and an xattr probe per entry, the numbers in one Float64Array); without it, node:fs
 * fills the same layout. Either way the walk compares an entry with its parent node from plain
 * numbers and builds BigInt stats (`entryStat`) only for entries that did change.
 *
 * Why: Node's lstatSync(…, {bigint: true}) allocates a BigIntStats (an object and ~18 BigInts)
 * per entry. On an unchanged re-run of /usr/share (53k entries), that and the nodes built from it
 * were most of the 2.3 s of garbage collection in a 6.7 s profile.
 */
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { hasXattr, nativeScanDir, splitNs } from '../native/native.js';

/** numbers per entry in `st` (the order native/dirscan.c writes them) */
const F = 16;
const ERR = 0, MODE = 1, UID = 2, GID = 3, NLINK = 4, INO = 5, DEV = 6, RDEV = 7, SIZE = 8;
const ATIME_S = 9, ATIME_NS = 10, MTIME_S = 11, MTIME_NS = 12, CTIME_S = 13, CTIME_NS = 14, XATTR = 15;
const S_IFMT = 0o170000;

/** what the walk and nodeFromStat read of a stat (BigIntStats has it all) */
export type EntryStat = Pick<BigIntStats, 'mode' | 'uid' | 'gid' | 'nlink' | 'ino' | 'dev' | 'rdev' | 'size' | 'atimeNs' | 'mtimeNs' | 'ctimeNs' | 'isDirectory' | 'isFile' | 'isSymbolicLink' | 'isSocket'> & {
  /** a scan's stat also has its times as numbers (seconds, nanoseconds): `TIME_A`, `TIME_M`, `TIME_C` */
  seconds?(t: number): number;
  nanoseconds?(t: number): number;
};
/** which time `seconds`/`nanoseconds` give */
export const TIME_A = ATIME_S, TIME_M = MTIME_S, TIME_C = CTIME_S;

const NS = 1_000_000_000n;

/**
 * An EntryStat read from a scan's numbers, each BigInt made when it is asked for: nodeFromStat
 * reads some fields once (atime only with --with-atime). Built eagerly (an object, 11 BigInts
 * and 4 closures per entry) it allocated 64 MB on a first backup of 62k real files.
 */
class ScanStat implements EntryStat {
  constructor(private readonly st: Float64Array, private readonly b: number) {}
  get mode(): bigint { return BigInt(this.st[this.b + MODE]!); }
  get uid(): bigint { return BigInt(this.st[this.b + UID]!); }
  get gid(): bigint { return BigInt(this.st[this.b + GID]!); }
  get nlink(): bigint { return BigInt(this.st[this.b + NLINK]!); }
  get ino(): bigint { return BigInt(this.st[this.b + INO]!); }
  get dev(): bigint { return BigInt(this.st[this.b + DEV]!); }
  get rdev(): bigint { return BigInt(this.st[this.b + RDEV]!); }
  get size(): bigint { return BigInt(this.st[this.b + SIZE]!); }
  get atimeNs(): bigint { return BigInt(this.st[this.b + ATIME_S]!) * NS + BigInt(this.st[this.b + ATIME_NS]!); }
  get mtimeNs(): bigint { return BigInt(this.st[this.b + MTIME_S]!) * NS + BigInt(this.st[this.b + MTIME_NS]!); }
  get ctimeNs(): bigint { return BigInt(this.st[this.b + CTIME_S]!) * NS + BigInt(this.st[this.b + CTIME_NS]!); }
  seconds(t: number): number { return this.st[this.b + t]!; }
  nanoseconds(t: number): number { return this.st[this.b + t + 1]!; }
  isDirectory(): boolean { return (this.st[this.b + MODE]! & S_IFMT) === 0o040000; }
  isFile(): boolean { return (this.st[this.b + MODE]! & S_IFMT) === 0o100000; }
  isSymbolicLink(): boolean { return (this.st[this.b + MODE]! & S_IFMT) === 0o120000; }
  isSocket(): boolean { return (this.st[this.b + MODE]! & S_IFMT) === 0o140000; }
}

export class DirScan {
  private constructor(
    /** entry names, sorted by bytes (Buffer.compare) */
    readonly names: Buffer[],
    private readonly st: Float64Array,
    /** node:fs errors by entry (the fallback); the native scan keeps only errno numbers */
    private readonly errors: Map<number, Error> | null,
  ) {}

  get length(): number { return this.names.length; }

  /** true when the numbers of entry i are exact and complete (no lstat error, nothing ≥ 2^53) */
  ok(i: number): boolean { return this.st[i * F + ERR] === 0; }
  mode(i: number): number { return this.st[i * F + MODE]!; }
  isDir(i: number): boolean { return (this.st[i * F + MODE]! & S_IFMT) === 0o040000; }
  isFile(i: number): boolean { return (this.st[i * F + MODE]! & S_IFMT) === 0o100000; }
  uid(i: number): number { return this.st[i * F + UID]!; }
  gid(i: number): number { return this.st[i * F + GID]!; }
  nlink(i: number): number { return this.st[i * F + NLINK]!; }
  ino(i: number): number { return this.st[i * F + INO]!; }
  dev(i: number): number { return this.st[i * F + DEV]!; }
  rdev(i: number): number { return this.st[i * F + RDEV]!; }
  size(i: number): number { return this.st[i * F + SIZE]!; }
  mtimeS(i: number): number { return this.st[i * F + MTIME_S]!; }
  mtimeNsec(i: number): number { return this.st[i * F + MTIME_NS]!; }
  ctimeS(i: number): number { return this.st[i * F + CTIME_S]!; }
  ctimeNsec(i: number): number { return this.st[i * F + CTIME_NS]!; }
  /** size of the entry's xattr name list (0: none), or -1 when it was not probed */
  xattrSize(i: number): number { const x = this.st[i * F + XATTR]!; return x < 0 ? -1 : x; }

  /**
   * The full stat of entry i as BigInts (for nodeFromStat), or the error lstat gives. Entries
   * the scan could not describe exactly are lstat'ed again by path, so errors read as Node's.
   */
  entryStat(i: number, full: () => Buffer): EntryStat | Error {
    const e = this.errors?.get(i);
    if (e) return e;
    const b = i * F;
    const st = this.st;
    if (st[b + ERR] !== 0) {
      try { return lstatSync(full(), { bigint: true }); } catch (err) { return err as Error; }
    }
    return new ScanStat(st, b);
  }

  /**
   * Read `dir` (a Buffer path). `xattrs`: probe each entry's xattr list (restic reads them for
   * every node but symlinks; an entry with none can then be compared without reading them); by
   * default whenever attributes can be read at all.
   * Throws what readdir throws when the directory cannot be listed.
   */
  static read(dir: Buffer, xattrs: boolean = hasXattr): DirScan {
    if (nativeScanDir) {
      let r: { names: Buffer; st: Float64Array } | undefined;
      try {
        r = nativeScanDir(dir, xattrs);
      } catch {
        // node:fs says it the way every other error of the walk is said (or it was a race)
      }
      if (r) return new DirScan(splitNames(r.names), r.st, null);
    }
    return DirScan.readFs(dir);
  }

  /** the node:fs version (no addon): the same layout, xattrs not probed */
  static readFs(dir: Buffer): DirScan {
    const names = readdirSync(dir, { encoding: 'buffer' });
    names.sort(Buffer.compare);
    const st = new Float64Array(names.length * F);
    const errors = new Map<number, Error>();
    const sep = dir.at(-1) === 0x2f ? '' : '/';
    const lim = BigInt(Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < names.length; i++) {
      const b = i * F;
      let s: BigIntStats;
      try {
        s = lstatSync(Buffer.concat([dir, Buffer.from(sep), names[i]!]), { bigint: true });
      } catch (e) {
        errors.set(i, e as Error);
        st[b + ERR] = 1;
        continue;
      }
      const vals: [number, bigint][] = [[NLINK, s.nlink], [INO, s.ino], [DEV, s.dev], [RDEV, s.rdev], [SIZE, s.size]];
      let big = false;
      for (const [k, v] of vals) { if (v > lim) big = true; st[b + k] = Number(v); }
      st[b + MODE] = Number(s.mode); st[b + UID] = Number(s.uid); st[b + GID] = Number(s.gid);
      const put = (k: number, ns: bigint) => { const [sec, nsec] = splitNs(ns); st[b + k] = Number(sec); st[b + k + 1] = nsec; };
      put(ATIME_S, s.atimeNs); put(MTIME_S, s.mtimeNs); put(CTIME_S, s.ctimeNs);
      st[b + XATTR] = -1;
      st[b + ERR] = big ? -1 : 0;
    }
    return new DirScan(names, st, errors.size ? errors : null);
  }
}

/** NUL-separated names → views into the one buffer (no copies) */
function splitNames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (;;) {
    const z = buf.indexOf(0, start);
    if (z < 0) break;
    out.push(buf.subarray(start, z));
    start = z + 1;
  }
  return out;
}
