/**
 * Thin wrapper around the optional `jbackup_native` N-API addon (native/jbackup_native.c,
 * built by node-gyp during `npm ci`). It provides what Node's fs cannot do:
 *  - setting atime/mtime with nanosecond precision (utimensat), also on symlinks
 *  - creating FIFOs and device nodes (mknod)
 *  - extended attributes (llistxattr, lgetxattr, lsetxattr and their fd variants)
 * When the addon is unavailable, both functions fall back to fs / external tools
 * (losing sub-microsecond time precision).
 */
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

interface NativeAddon {
  utimens(
    path: Buffer,
    atimeSec: bigint,
    atimeNsec: number,
    mtimeSec: bigint,
    mtimeNsec: number,
    noFollow: boolean,
  ): void;
  setMeta?(
    path: Buffer, dir: boolean, mode: number, uid: number, gid: number, chown: boolean,
    atimeSec: bigint, atimeNsec: number, mtimeSec: bigint, mtimeNsec: number,
  ): void;
  createFile?(
    path: Buffer, data: Uint8Array | null, size: number, mode: number, uid: number, gid: number, chown: boolean,
    atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number,
  ): void;
  mknod(path: Buffer, mode: number, dev: bigint): void;
  /** glibc mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD); false where unavailable */
  mmapThreshold?(bytes: number): boolean;
  trimThreshold?(bytes: number): boolean;
  cdcCut?: CdcCut;
  aesCtr?: AesCtr;
  discard?(buf: Uint8Array): number;
  scryptMix?: ScryptMix;
  /** raw NUL-separated names (llistxattr / flistxattr), null when there are none */
  xattrList?(target: Buffer | number): Buffer | null;
  xattrGet?(target: Buffer | number, name: Buffer): Buffer;
  xattrSet?(target: Buffer | number, name: Buffer, value: Buffer): void;
  /** a directory's sorted names (NUL-separated) and each entry's lstat (see native/dirscan.c) */
  scanDir?(dir: Buffer, xattrs: boolean): { names: Buffer; st: Float64Array };
}

// The module runs either from src/native/native.ts (vitest, tsx) or from
// dist/src/native/native.js (compiled), so the repository root is two or three levels up.
const CANDIDATES = [
  '../../build/Release/jbackup_native.node',
  '../../../build/Release/jbackup_native.node',
];

function loadAddon(): { addon: NativeAddon | undefined; error: Error | undefined } {
  const req = createRequire(import.meta.url);
  let error: Error | undefined;
  for (const rel of CANDIDATES) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (!fs.existsSync(file)) continue;
    try {
      const mod = req(file) as Partial<NativeAddon>;
      if (typeof mod.utimens === 'function' && typeof mod.mknod === 'function') {
        return { addon: mod as NativeAddon, error: undefined };
      }
      error = new Error(`${file}: not a jbackup_native addon`);
    } catch (e) {
      error = e as Error;
    }
  }
  return { addon: undefined, error: error ?? new Error('jbackup_native addon not built') };
}

// JBACKUP_NO_NATIVE=1 forces the fallbacks (for tests and troubleshooting).
const loaded =
  process.env.JBACKUP_NO_NATIVE === '1'
    ? { addon: undefined, error: new Error('disabled by JBACKUP_NO_NATIVE=1') }
    : loadAddon();
const addon = loaded.addon;

/** true when the native addon was loaded (nanosecond times, mknod without external tools) */
export const hasNative: boolean = addon !== undefined;
/** why the addon could not be loaded (diagnostics only) */
export const nativeLoadError: Error | undefined = loaded.error;

const NS_PER_SEC = 1_000_000_000n;

/** Splits nanoseconds since the epoch into (seconds, nanoseconds in [0, 1e9)) using floor division. */
export function splitNs(ns: bigint): [sec: bigint, nsec: number] {
  let sec = ns / NS_PER_SEC; // truncates toward zero
  let rem = ns % NS_PER_SEC; // same sign as ns
  if (rem < 0n) {
    sec -= 1n;
    rem += NS_PER_SEC;
  }
  return [sec, Number(rem)];
}

function toBuffer(path: Buffer | string): Buffer {
  return typeof path === 'string' ? Buffer.from(path, 'utf8') : path;
}

/**
 * Sets access and modification time of `path` with nanosecond precision.
 * With `noFollow`, a symlink's own times are set instead of its target's.
 */
export function setTimesNs(
  path: Buffer | string,
  atimeNs: bigint,
  mtimeNs: bigint,
  opts: { noFollow: boolean },
): void {
  const [aSec, aNsec] = splitNs(atimeNs);
  const [mSec, mNsec] = splitNs(mtimeNs);
  if (addon) {
    addon.utimens(toBuffer(path), aSec, aNsec, mSec, mNsec, opts.noFollow);
    return;
  }
  // Fallback: float seconds (sub-microsecond precision is lost).
  const a = Number(aSec) + aNsec / 1e9;
  const m = Number(mSec) + mNsec / 1e9;
  if (opts.noFollow) fs.lutimesSync(path, a, m);
  else fs.utimesSync(path, a, m);
}

/**
 * Restore's metadata of a file, FIFO or directory through a descriptor opened with O_NOFOLLOW
 * (O_DIRECTORY for `dir`, else O_NONBLOCK so that a FIFO does not wait for a writer): owner (when
 * `chown`; best effort, as restic), mode, times with nanoseconds. Never follows a symlink at `path`.
 */
export function setMetaNoFollow(
  path: Buffer, dir: boolean, mode: number, owner: { uid: number; gid: number } | null, atimeNs: bigint, mtimeNs: bigint,
): void {
  const [aSec, aNsec] = splitNs(atimeNs);
  const [mSec, mNsec] = splitNs(mtimeNs);
  if (addon?.setMeta) {
    addon.setMeta(path, dir, mode, owner?.uid ?? 0, owner?.gid ?? 0, owner !== null, aSec, aNsec, mSec, mNsec);
    return;
  }
  const c = fs.constants;
  const fd = fs.openSync(path, c.O_RDONLY | c.O_NOFOLLOW | (dir ? c.O_DIRECTORY : c.O_NONBLOCK));
  try {
    if (owner) { try { fs.fchownSync(fd, owner.uid, owner.gid); } catch { /* best effort */ } }
    fs.fchmodSync(fd, mode);
    // Fallback: float seconds (sub-microsecond precision is lost).
    fs.futimesSync(fd, Number(aSec) + aNsec / 1e9, Number(mSec) + mNsec / 1e9);
  } finally {
    fs.closeSync(fd);
  }
}

/** a file's restored metadata: mode bits, owner (null: not changed), times as seconds + nanoseconds */
export interface FileMeta { mode: number; owner: { uid: number; gid: number } | null; aSec: number; aNsec: number; mSec: number; mNsec: number }

/**
 * Restore of a whole file at once: create `path` exclusively without following a symlink (mode
 * 0600 until the end), write `data` (null: nothing), extend to `size` when data is shorter (a
 * hole), then owner (best effort, as restic), mode and times on the descriptor, and close. With
 * the addon this is one call; restore's decode workers write every single-blob file with it.
 */
export function createFileWithMeta(path: Buffer, data: Uint8Array | null, size: number, m: FileMeta): void {
  if (addon?.createFile) {
    addon.createFile(path, data, size, m.mode, m.owner?.uid ?? 0, m.owner?.gid ?? 0, m.owner !== null, m.aSec, m.aNsec, m.mSec, m.mNsec);
    return;
  }
  const c = fs.constants;
  const fd = fs.openSync(path, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, 0o600);
  try {
    let done = 0;
    const len = data?.length ?? 0;
    while (done < len) done += fs.writeSync(fd, data!, done, len - done);
    if (len < size) fs.ftruncateSync(fd, size);
    if (m.owner) { try { fs.fchownSync(fd, m.owner.uid, m.owner.gid); } catch { /* best effort */ } }
    fs.fchmodSync(fd, m.mode);
    // Fallback: float seconds (sub-microsecond precision is lost).
    fs.futimesSync(fd, m.aSec + m.aNsec / 1e9, m.mSec + m.mNsec / 1e9);
  } finally {
    fs.closeSync(fd);
  }
}

const S_IFMT = 0o170000;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFREG = 0o100000;

/** Splits a dev_t into (major, minor) using the platform's encoding. */
function majorMinor(dev: bigint): [bigint, bigint] {
  if (process.platform === 'darwin' || process.platform.endsWith('bsd')) {
    // BSD-style 32-bit dev_t: 8-bit major, 24-bit minor
    return [(dev >> 24n) & 0xffn, dev & 0xffffffn];
  }
  // glibc / Linux encoding
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return [major, minor];
}

const STRERROR_CODES: Array<[RegExp, string]> = [
  [/no such file or directory/i, 'ENOENT'],
  [/file exists/i, 'EEXIST'],
  [/operation not permitted/i, 'EPERM'],
  [/permission denied/i, 'EACCES'],
  [/not a directory/i, 'ENOTDIR'],
  [/read-only file system/i, 'EROFS'],
  [/no space left/i, 'ENOSPC'],
  [/name too long/i, 'ENAMETOOLONG'],
  [/operation not supported/i, 'ENOTSUP'],
];

function errWithCode(message: string, code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(message), { code, syscall, path });
}

function runTool(cmd: string, args: string[], path: string): void {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code ?? 'EIO';
    throw errWithCode(`${cmd} ${path}: ${r.error.message}`, code, cmd, path);
  }
  if (r.status !== 0) {
    const stderr = (r.stderr ?? '').trim();
    const code = STRERROR_CODES.find(([re]) => re.test(stderr))?.[1] ?? 'EIO';
    const why = stderr || (r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`);
    throw errWithCode(`${cmd} ${path}: ${why}`, code, cmd, path);
  }
}

/**
 * Creates a FIFO, character or block device (or empty regular file) at `path`.
 * `mode` includes the S_IF* type bits; `dev` is the raw dev_t for device nodes.
 */
export function mknodSync(path: Buffer | string, mode: number, dev: bigint): void {
  if (addon) {
    addon.mknod(toBuffer(path), mode, dev);
    return;
  }
  // Fallback via external tools. Arguments are passed as strings; Buffer paths are
  // decoded as UTF-8 (arbitrary bytes need the addon).
  const p = typeof path === 'string' ? path : path.toString('utf8');
  const perms = (mode & 0o7777).toString(8);
  switch (mode & S_IFMT) {
    case S_IFIFO:
      runTool('mkfifo', ['-m', perms, p], p);
      return;
    case S_IFCHR:
    case S_IFBLK: {
      const [major, minor] = majorMinor(dev);
      const kind = (mode & S_IFMT) === S_IFCHR ? 'c' : 'b';
      runTool('mknod', ['-m', perms, p, kind, major.toString(), minor.toString()], p);
      return;
    }
    case 0:
    case S_IFREG:
      fs.closeSync(fs.openSync(path, 'wx', mode & 0o7777));
      return;
    default:
      throw errWithCode(`mknod ${p}: unsupported file type`, 'ENOTSUP', 'mknod', p);
  }
}

/**
 * glibc: allocations of at least `bytes` are mmapped (and the dynamic threshold is off); a no-op
 * returning false elsewhere or without the addon. main() sets 16 MiB.
 */
export function setMmapThreshold(bytes: number): boolean {
  return addon?.mmapThreshold?.(bytes) ?? false;
}

type CdcCut = (buf: Uint8Array, start: number, end: number, min: number, avg: number, max: number, maskS: bigint, maskL: bigint, gear: BigUint64Array) => number;

/**
 * The FastCDC cut in C (same contract and results as FastCDC.cut's JavaScript loop, which tests
 * compare it with), or undefined without the addon.
 */
export const nativeCdcCut: CdcCut | undefined = addon?.cdcCut;

/**
 * glibc: memory freed at the top of a heap beyond `bytes` goes back to the OS (mallopt
 * M_TRIM_THRESHOLD; a no-op returning false elsewhere or without the addon). main() sets 1 MiB.
 */
export function setTrimThreshold(bytes: number): boolean {
  return addon?.trimThreshold?.(bytes) ?? false;
}

type AesCtr = (key: Uint8Array, iv: Uint8Array, src: Uint8Array, dst: Uint8Array) => void;

/**
 * AES-128/256-CTR (by key length) of src into dst, which may be src itself, through the OpenSSL in
 * the Node process; undefined without the addon or where Node's OpenSSL symbols are not visible.
 * Unlike node:crypto's update() it allocates nothing (src/crypto/crypto.ts uses it when present).
 */
export const nativeAesCtr: AesCtr | undefined = addon?.aesCtr;

/**
 * Gives the whole memory pages inside `buf` back to the OS (madvise MADV_DONTNEED): the buffer stays
 * usable and reads as zeros where discarded. For recycled buffers that sit idle; returns the bytes
 * discarded (0 without the addon or off Linux/BSD/macOS).
 */
export function discardPages(buf: Uint8Array): number {
  return addon?.discard?.(buf) ?? 0;
}

type ScryptMix = (b: Uint8Array, N: number, r: number, callback: (err: Error | null) => void, threads?: number) => void;

/**
 * scrypt's SMix of each 128·r-byte lane of `b`, in place, on the thread pool (`threads` 2: two lanes
 * at a time); undefined without the addon or off SSE2 machines (src/repo/kdf.ts wraps it in PBKDF2).
 */
export const nativeScryptMix: ScryptMix | undefined = addon?.scryptMix;

// ---------------------------------------------------------------------------------------------
// Extended attributes. Node's fs has no API for them; without the addon there is no fallback (no
// external tool is dependable), so callers check hasXattr and say once that they are not kept.

/** native/dirscan.c's scanDir, or undefined (src/archiver/dirscan.ts falls back to node:fs) */
export const nativeScanDir = addon?.scanDir;

const xattrList = addon?.xattrList;
const xattrGet = addon?.xattrGet;
const xattrSet = addon?.xattrSet;

/** true when extended attributes can be read and written (the addon is loaded and has them) */
export const hasXattr: boolean = xattrList !== undefined && xattrGet !== undefined && xattrSet !== undefined;

/** Why extended attributes are unavailable (for the one warning), or undefined when they are available. */
export function xattrUnavailableReason(): string | undefined {
  if (hasXattr) return undefined;
  if (addon) return `the native addon has no extended attribute support on ${process.platform}`;
  return `the native addon is not loaded (${nativeLoadError?.message ?? 'unknown reason'})`;
}

function noXattr(syscall: string): Error {
  return Object.assign(new Error(`${syscall}: extended attributes unavailable: ${xattrUnavailableReason()}`), { code: 'ENOSYS', syscall });
}

/** Splits a listxattr result (names each ending in NUL) into the names, in the kernel's order. */
function splitNames(raw: Buffer | null): Buffer[] {
  const names: Buffer[] = [];
  if (!raw) return names;
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== 0) continue;
    if (i > start) names.push(raw.subarray(start, i));
    start = i + 1;
  }
  return names;
}

const nameBuf = (n: Buffer | string) => (typeof n === 'string' ? Buffer.from(n, 'utf8') : n);

/** Names of the extended attributes of `path` itself (a final symlink is not followed); [] when none. */
export function llistxattrSync(path: Buffer | string): Buffer[] {
  if (!xattrList) throw noXattr('llistxattr');
  return splitNames(xattrList(toBuffer(path)));
}

/** Names of the extended attributes of an open file; [] when none. */
export function flistxattrSync(fd: number): Buffer[] {
  if (!xattrList) throw noXattr('flistxattr');
  return splitNames(xattrList(fd));
}

/** The value of extended attribute `name` of `path` itself (no follow); throws ENODATA when absent. */
export function lgetxattrSync(path: Buffer | string, name: Buffer | string): Buffer {
  if (!xattrGet) throw noXattr('lgetxattr');
  return xattrGet(toBuffer(path), nameBuf(name));
}

/** The value of extended attribute `name` of an open file. */
export function fgetxattrSync(fd: number, name: Buffer | string): Buffer {
  if (!xattrGet) throw noXattr('fgetxattr');
  return xattrGet(fd, nameBuf(name));
}

/** Creates or replaces extended attribute `name` of `path` itself (no follow). */
export function lsetxattrSync(path: Buffer | string, name: Buffer | string, value: Buffer): void {
  if (!xattrSet) throw noXattr('lsetxattr');
  xattrSet(toBuffer(path), nameBuf(name), value);
}

/** Creates or replaces extended attribute `name` of an open file. */
export function fsetxattrSync(fd: number, name: Buffer | string, value: Buffer): void {
  if (!xattrSet) throw noXattr('fsetxattr');
  xattrSet(fd, nameBuf(name), value);
}
