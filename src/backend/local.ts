import { promises as fsp, constants as fsc, unlinkSync, openSync, readSync, closeSync, type Stats } from 'node:fs';
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { WORKER_RESOURCE_LIMITS, workerModuleUrl } from '../util/worker.js';
import type { WriterReply, WriterRequest } from './packwriter.js';
import { isENOENT, syncDir, VERIFY_READ } from './localfs.js';
import { mkdirp } from '../util/mkdirp.js';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import {
  AlreadyExistsError, type Backend, type BackendStream, partsOf, type FileInfo, type FileType, type Handle, layoutPath, listConfig, NotFoundError, PartsComparer,
} from './backend.js';
import { ID_HEX, ID_RE } from '../util/ids.js';

/** the error of a range read that got fewer bytes than the index promised (load and loadSmall) */
const shortRead = (h: Handle, length: number, offset: number, got: number) =>
  new Error(`short read of ${layoutPath(h)}: wanted ${length} bytes at ${offset}, got ${got}`);
/** ranges up to this size are read synchronously (see loadSmall) */
const SYNC_READ_MAX = 256 * 1024;

/**
 * A repository in a local directory, laid out exactly as restic's local backend does.
 * Writes go to `<name>-tmp-<random>`, are fsynced, renamed into place, the directory fsynced,
 * and the file made read-only (0400), as restic 0.14 does.
 */
const STAGE_SIZE = 1024 * 1024;
/**
 * temp files of save (`<name>-tmp-<tag>`) and of streamed packs (`pack-tmp-<tag>`); the tag is
 * `<host>-<pid>-<random>` (see OWNER), or `<random>` as written by earlier versions
 */
const TEMP_RE = new RegExp(`^(?:${ID_HEX}|config|pack)-tmp-(?:([0-9a-f]{8})-([0-9a-f]+)-)?[0-9a-f]+$`);

/**
 * Who writes a temp file, in its name: 8 hex of SHA-256(hostname) and the pid in hex. A later run
 * on the same host removes temp files whose process is gone (the rule restic applies to stale
 * locks) without any lock: a temp file of a live process, whichever lock it holds, is never touched.
 */
const OWNER_HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
const OWNER = `${OWNER_HOST}-${process.pid.toString(16)}`;
const tempName = (prefix: string) => `${prefix}-tmp-${OWNER}-${randomBytes(6).toString('hex')}`;

/**
 * This process's temp files that exist (or are about to): removed synchronously by
 * removeOwnTempFiles() when the process exits in the middle of writing them (a signal).
 */
const liveTemps = new Set<string>();

/** delete this process's temp files now (for process exit: synchronous, never throws) */
export function removeOwnTempFiles(): number {
  let n = 0;
  for (const f of liveTemps) {
    try { unlinkSync(f); n++; } catch { /* gone, or never created */ }
  }
  liveTemps.clear();
  return n;
}

/** is `pid` (on this host) alive? EPERM: it exists, owned by someone else */
function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
const COALESCE_BELOW = 256 * 1024;

export class LocalBackend implements Backend {
  readonly properties = { connections: 2, atomicWrites: true };
  constructor(readonly location: string) {}

  private p(h: Handle): string {
    return path.join(this.location, ...layoutPath(h).split('/'));
  }

  async create(): Promise<void> {
    try {
      await fsp.stat(path.join(this.location, 'config'));
      throw new AlreadyExistsError(`repository ${this.location} already exists (config file found)`);
    } catch (e) {
      if (!isENOENT(e)) throw e;
    }
    await mkdirp(this.location, 0o700);
    for (const d of ['keys', 'locks', 'snapshots', 'index', 'data']) {
      await mkdirp(path.join(this.location, d), 0o700);
    }
    const hex = '0123456789abcdef';
    await Promise.all(Array.from({ length: 256 }, (_, i) =>
      mkdirp(path.join(this.location, 'data', hex[i >> 4]! + hex[i & 15]!), 0o700)));
  }

  async save(h: Handle, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const final = this.p(h);
    const dir = path.dirname(final);
    const tmp = path.join(dir, tempName(path.basename(final)));
    liveTemps.add(tmp);
    try {
      await this.saveVia(h, final, dir, tmp, data);
    } finally {
      liveTemps.delete(tmp);
    }
  }

  private async saveVia(h: Handle, final: string, dir: string, tmp: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    } catch (e) {
      if (!isENOENT(e)) throw e;
      await mkdirp(dir, 0o700);
      fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    }
    try {
      // a pack arrives as thousands of small parts (iv, ciphertext, mac per blob): coalesce them into
      // 1 MiB writes, each of which costs a thread-pool round trip; big parts are written as they are
      let pos = 0;
      const writeAll = async (buf: Uint8Array): Promise<void> => {
        let off = 0;
        while (off < buf.length) {
          const { bytesWritten } = await fh.write(buf, off, buf.length - off, pos + off);
          off += bytesWritten;
        }
        pos += buf.length;
      };
      let stage: Buffer | null = null;
      let staged = 0;
      const flushStage = async (): Promise<void> => {
        if (stage && staged > 0) await writeAll(stage.subarray(0, staged));
        staged = 0;
      };
      for (const part of partsOf(data)) {
        if (part.length >= COALESCE_BELOW) {
          await flushStage();
          await writeAll(part);
          continue;
        }
        stage ??= Buffer.allocUnsafe(STAGE_SIZE);
        if (staged + part.length > stage.length) await flushStage();
        stage.set(part, staged);
        staged += part.length;
      }
      await flushStage();
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await fsp.unlink(tmp).catch(() => {});
      // a failed write names no file (ENOSPC): name the one being written
      if ((e as NodeJS.ErrnoException).syscall && !(e as NodeJS.ErrnoException).path) (e as NodeJS.ErrnoException).path = tmp;
      throw e;
    }
    await fh.close();
    try {
      // never replace an existing file: files are immutable and named by their content
      await fsp.link(tmp, final);
      await fsp.unlink(tmp);
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (h.type === 'config') throw new AlreadyExistsError('config already exists');
      // same name means same content for content-addressed files; keep the existing one
    }
    await syncDir(dir);
    await fsp.chmod(final, 0o400).catch(() => {});
  }

  async load(h: Handle, offset = 0, length?: number, into?: Buffer): Promise<Buffer> {
    if (length !== undefined && length <= SYNC_READ_MAX) return this.loadSmall(h, offset, length, into);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.p(h), 'r');
    } catch (e) {
      if (isENOENT(e)) throw new NotFoundError(h);
      throw e;
    }
    try {
      if (length === undefined) {
        const st = await fh.stat();
        length = Math.max(0, st.size - offset);
      }
      const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < length) throw shortRead(h, length, offset, got);
      return buf;
    } finally {
      await fh.close();
    }
  }

  /**
   * A small range (a tree blob, a pack header) read with synchronous calls: open, pread and close
   * cost ~15 µs on a cached file, where the async calls are three thread-pool round trips. An
   * unchanged re-run of /usr/share reads 3,218 trees this way: 324 ms of open/read/close in the
   * profile became ~50 ms.
   */
  private loadSmall(h: Handle, offset: number, length: number, into?: Buffer): Buffer {
    let fd: number;
    try {
      fd = openSync(this.p(h), 'r');
    } catch (e) {
      if (isENOENT(e)) throw new NotFoundError(h);
      throw e;
    }
    try {
      const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, buf, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      if (got < length) throw shortRead(h, length, offset, got);
      return buf;
    } finally {
      closeSync(fd);
    }
  }

  async stat(h: Handle): Promise<FileInfo> {
    try {
      const st = await fsp.stat(this.p(h));
      return { name: h.name, size: st.size };
    } catch (e) {
      if (isENOENT(e)) throw new NotFoundError(h);
      throw e;
    }
  }

  async list(type: FileType): Promise<FileInfo[]> {
    if (type === 'config') return listConfig(this);
    const base = path.join(this.location, type);
    const dirs = type === 'data' ? await readdirSafe(base).then((l) => l.map((d) => path.join(base, d))) : [base];
    const out: FileInfo[] = [];
    for (const d of dirs) {
      for (const n of await readdirSafe(d)) {
        if (!ID_RE.test(n)) continue;
        try {
          const st = await fsp.stat(path.join(d, n));
          if (st.isFile()) out.push({ name: n, size: st.size });
        } catch (e) {
          if (!isENOENT(e)) throw e;
        }
      }
    }
    return out;
  }

  async verifySaved(h: Handle, parts: readonly Uint8Array[], size: number): Promise<boolean> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.p(h), 'r');
    } catch (e) {
      if (isENOENT(e)) return false;
      throw e;
    }
    try {
      if ((await fh.stat()).size !== size) return false;
      // one reused buffer, read in order and compared with the parts that were written
      const buf = Buffer.allocUnsafe(Math.min(size, VERIFY_READ) || 1);
      const cmp = new PartsComparer(parts);
      let pos = 0;
      while (pos < size) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
        if (bytesRead === 0 || !cmp.feed(buf.subarray(0, bytesRead))) return false;
        pos += bytesRead;
      }
      return true;
    } finally {
      await fh.close();
    }
  }

  private writer: PackWriter | null = null;

  createStream(type: FileType): BackendStream {
    if (type !== 'data') throw new Error('only data files are streamed');
    this.writer ??= new PackWriter();
    return new LocalStream(this.writer, path.join(this.location, 'data'));
  }

  async removeStaleTemp(olderThanMs: number): Promise<{ files: number; bytes: number }> {
    const cutoff = Date.now() - olderThanMs;
    return this.unlinkTemp(() => true, (st) => st.mtimeMs > cutoff);
  }

  /**
   * Delete temp files that a dead jbackup process on this host left behind (the name says whose
   * they are: see OWNER). Safe under any lock or none: a live process's files are never touched.
   */
  async removeDeadTemp(): Promise<{ files: number; bytes: number }> {
    const alive = new Map<number, boolean>();
    return this.unlinkTemp((m) => {
      if (m[1] !== OWNER_HOST) return false;
      const pid = parseInt(m[2]!, 16);
      let a = alive.get(pid);
      if (a === undefined) { a = pidAlive(pid); alive.set(pid, a); }
      return !a;
    });
  }

  /**
   * The one sweep of temp files (every directory a temp file can be in): each regular file whose
   * name TEMP_RE matches, `take` accepts and whose stat `spare` does not protect is deleted.
   */
  private async unlinkTemp(take: (m: RegExpExecArray) => boolean, spare: (st: Stats) => boolean = () => false): Promise<{ files: number; bytes: number }> {
    const dirs = ['keys', 'locks', 'snapshots', 'index'].map((d) => path.join(this.location, d));
    const data = path.join(this.location, 'data');
    for (const d of await readdirSafe(data)) dirs.push(path.join(data, d));
    let files = 0;
    let bytes = 0;
    await Promise.all(dirs.map(async (d) => {
      for (const n of await readdirSafe(d)) {
        if (!n.includes('-tmp-')) continue;
        const m = TEMP_RE.exec(n);
        if (!m || !take(m)) continue;
        const f = path.join(d, n);
        try {
          const st = await fsp.lstat(f);
          if (!st.isFile() || spare(st)) continue;
          await fsp.unlink(f);
          files++;
          bytes += st.size;
        } catch (e) {
          if (!isENOENT(e)) throw e;
        }
      }
    }));
    return { files, bytes };
  }

  async remove(h: Handle): Promise<void> {
    try {
      await fsp.unlink(this.p(h));
    } catch (e) {
      if (isENOENT(e)) throw new NotFoundError(h);
      throw e;
    }
  }

  async close(): Promise<void> {
    const w = this.writer;
    this.writer = null;
    await w?.close();
  }
}

async function readdirSafe(d: string): Promise<string[]> {
  try {
    return await fsp.readdir(d);
  } catch (e) {
    if (isENOENT(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}

/** The local backend's pack writer thread (see packwriter.ts), started on the first stream. */
class PackWriter {
  private w: Worker;
  private next = 1;
  private waiting = new Map<number, { resolve: (id: string) => void; reject: (e: Error) => void }>();
  private written = new Map<number, (bytes: number) => void>();
  private failed: Error | null = null;

  constructor() {
    this.w = new Worker(workerModuleUrl(import.meta.url, 'backend/packwriter'), { resourceLimits: WORKER_RESOURCE_LIMITS });
    this.w.on('message', (m: WriterReply) => {
      if (m.op === 'written') { this.written.get(m.sid)?.(m.bytes); return; }
      const t = this.waiting.get(m.sid);
      if (!t) return;
      this.waiting.delete(m.sid);
      this.written.delete(m.sid);
      this.hold(-1);
      if (m.op === 'committed') t.resolve(m.id);
      else if (m.op === 'aborted') t.resolve('');
      else t.reject(Object.assign(new Error(m.message), m.code ? { code: m.code, syscall: m.syscall, path: m.path } : {}));
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const t of this.waiting.values()) t.reject(e);
      this.waiting.clear();
      // release producers waiting on backpressure: their next write or commit reports the failure
      for (const w of this.written.values()) w(Number.POSITIVE_INFINITY);
      this.written.clear();
      this.w.unref();
    };
    this.w.on('error', fail);
    this.w.on('exit', (code) => fail(new Error(`pack writer exited with code ${code}`)));
    // the thread keeps the process alive only while a stream is open or committing (a pending
    // commit is just a promise: without the ref the process would exit in the middle of it)
    this.w.unref();
  }

  private active = 0;
  private hold(d: number): void {
    this.active += d;
    if (this.active === 1 && d > 0) this.w.ref();
    if (this.active === 0) this.w.unref();
  }

  open(tmp: string, onWritten: (bytes: number) => void): number {
    if (this.failed) throw this.failed;
    const sid = this.next++;
    this.written.set(sid, onWritten);
    this.post({ op: 'open', sid, tmp });
    this.hold(1);
    return sid;
  }

  post(m: WriterRequest, transfer: ArrayBuffer[] = []): void {
    if (this.failed) throw this.failed;
    this.w.postMessage(m, transfer);
  }

  commit(sid: number, dataDir: string): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.set(sid, { resolve, reject });
      this.post({ op: 'commit', sid, dataDir });
    });
  }

  /** resolves once the thread has removed the temp file (or is gone) */
  abort(sid: number): Promise<void> {
    if (this.failed || !this.written.has(sid)) {
      if (this.written.delete(sid)) this.hold(-1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.set(sid, { resolve: () => resolve(), reject: () => resolve() });
      this.post({ op: 'abort', sid });
    });
  }

  close(): Promise<number> {
    return this.w.terminate();
  }
}

/** bytes handed to the writer thread and not yet written, above which the producer waits */
const STREAM_BACKLOG = 4 * 1024 * 1024;
/** writes gathered into one message up to this many bytes */
const COALESCE = 1024 * 1024;

/**
 * A pack streamed to `data/<xx>/pack-tmp-<random>` through the writer thread (same filesystem as
 * its final place; `list` ignores the name).
 */
class LocalStream implements BackendStream {
  size = 0;
  private sid: number;
  private tmp: string;
  private backlog = 0;
  private waiters: (() => void)[] = [];
  private done = false;
  /** per write sent, in order: what to call when the thread has written it (acks come in order) */
  private onWrite: ((() => void) | undefined)[] = [];

  constructor(private writer: PackWriter, private dataDir: string) {
    const tmp = path.join(dataDir, randomBytes(1).toString('hex'), tempName('pack'));
    this.tmp = tmp;
    liveTemps.add(tmp);
    this.sid = writer.open(tmp, (bytes) => {
      this.backlog -= bytes;
      if (bytes === Number.POSITIVE_INFINITY) this.releaseAll(); // the thread is gone
      else this.onWrite.shift()?.();
      if (this.backlog < STREAM_BACKLOG) for (const w of this.waiters.splice(0)) w();
    });
  }

  private releaseAll(): void {
    for (const r of this.onWrite.splice(0)) r?.();
  }

  write(parts: readonly Uint8Array[], handOver = false, released?: () => void): void {
    if (this.done) {
      released?.();
      throw new Error('stream already committed or aborted');
    }
    let n = 0;
    const transfer: ArrayBuffer[] = [];
    const send: Uint8Array[] = [];
    let shared = false;
    for (const p of parts) {
      n += p.length;
      if (released && p.buffer instanceof SharedArrayBuffer) {
        send.push(p); // read in place by the writer thread; released once written
        shared = true;
      } else if (handOver && p.buffer instanceof ArrayBuffer && p.byteLength > 4096 && p.byteOffset === 0 && p.byteLength === p.buffer.byteLength) {
        if (!transfer.includes(p.buffer)) transfer.push(p.buffer);
        send.push(p);
      } else {
        send.push(new Uint8Array(p)); // a copy: small parts, or buffers the caller keeps
      }
    }
    // only whole buffers are transferred (Node's small Buffers share one pool slab)
    if (!shared) released?.();
    this.size += n;
    this.backlog += n;
    // writes are gathered into one message per turn of the event loop (or per COALESCE bytes): one
    // message per blob was ~1/3 of the main thread's postMessage cost on many small files
    const q = this.queued;
    for (const p of send) q.parts.push(p);
    for (const t of transfer) q.transfer.push(t);
    if (shared && released) q.released.push(released);
    q.bytes += n;
    if (q.bytes >= COALESCE) this.flushWrites();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        // a writer that failed fails the commit (its parts were released)
        if (!this.done) try { this.flushWrites(); } catch { /* reported by commit */ }
      });
    }
  }

  private queued: { parts: Uint8Array[]; transfer: ArrayBuffer[]; released: (() => void)[]; bytes: number } = { parts: [], transfer: [], released: [], bytes: 0 };
  private flushScheduled = false;

  private flushWrites(): void {
    const q = this.queued;
    if (q.parts.length === 0) return;
    this.queued = { parts: [], transfer: [], released: [], bytes: 0 };
    try {
      this.writer.post({ op: 'write', sid: this.sid, parts: q.parts }, q.transfer);
    } catch (e) {
      for (const r of q.released) r();
      throw e;
    }
    const rel = q.released;
    this.onWrite.push(rel.length === 0 ? undefined : rel.length === 1 ? rel[0] : () => { for (const r of rel) r(); });
  }

  drained(): Promise<void> {
    if (this.backlog < STREAM_BACKLOG) return Promise.resolve();
    this.flushWrites(); // what waits for an ack must have been sent
    return new Promise((r) => this.waiters.push(r));
  }

  async commit(): Promise<string> {
    this.flushWrites();
    this.done = true;
    // the thread removes the temp file whether the commit succeeds or fails
    try {
      return await this.writer.commit(this.sid, this.dataDir);
    } finally {
      liveTemps.delete(this.tmp);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    for (const r of this.queued.released) r(); // never sent
    this.queued = { parts: [], transfer: [], released: [], bytes: 0 };
    const gone = this.writer.abort(this.sid);
    // the writes still queued go to a file that is being deleted: whatever they read no longer matters
    this.releaseAll();
    await gone;
    liveTemps.delete(this.tmp);
  }
}
