import { promises as fsp, constants as fsc, closeSync, mkdirSync, openSync, unlinkSync, writevSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  AlreadyExistsError, type Backend, type BackendStream, partsOf, type FileInfo, type FileType, type Handle, ID_RE, layoutPath, listConfig, NotFoundError, PartsComparer,
} from './backend.js';

function isENOENT(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/**
 * A repository in a local directory, laid out exactly as restic's local backend does.
 * Writes go to `<name>-tmp-<random>`, are fsynced, renamed into place, the directory fsynced,
 * and the file made read-only (0400), as restic 0.14 does.
 */
const STAGE_SIZE = 1024 * 1024;
const VERIFY_READ = 2 * 1024 * 1024;
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
    await fsp.mkdir(this.location, { recursive: true, mode: 0o700 });
    for (const d of ['keys', 'locks', 'snapshots', 'index', 'data']) {
      await fsp.mkdir(path.join(this.location, d), { recursive: true, mode: 0o700 });
    }
    const hex = '0123456789abcdef';
    await Promise.all(Array.from({ length: 256 }, (_, i) =>
      fsp.mkdir(path.join(this.location, 'data', hex[i >> 4]! + hex[i & 15]!), { recursive: true, mode: 0o700 })));
  }

  async save(h: Handle, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const final = this.p(h);
    const dir = path.dirname(final);
    const tmp = `${final}-tmp-${randomBytes(6).toString('hex')}`;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    } catch (e) {
      if (!isENOENT(e)) throw e;
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
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
      if (got < length) throw new Error(`short read of ${layoutPath(h)}: wanted ${length} bytes at ${offset}, got ${got}`);
      return buf;
    } finally {
      await fh.close();
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

  createStream(type: FileType): BackendStream {
    return new LocalStream(this.location, type);
  }

  async remove(h: Handle): Promise<void> {
    try {
      await fsp.unlink(this.p(h));
    } catch (e) {
      if (isENOENT(e)) throw new NotFoundError(h);
      throw e;
    }
  }

  async close(): Promise<void> {}
}

async function readdirSafe(d: string): Promise<string[]> {
  try {
    return await fsp.readdir(d);
  } catch (e) {
    if (isENOENT(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw e;
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename itself is still atomic
  } finally {
    await fh?.close();
  }
}

/**
 * A pack written blob by blob into `data/<xx>/pack-tmp-<random>` (same filesystem as its final
 * place; `list` ignores the name), with a CRC-32 of everything written. commit() fsyncs it, reads
 * it back and compares size and CRC (the read-back verification of the buffered save, without
 * keeping the bytes), links it to its final name and fsyncs the directory.
 */
class LocalStream implements BackendStream {
  size = 0;
  private crc = 0;
  private fd: number;
  private tmp: string;
  private closed = false;

  constructor(private location: string, private type: FileType) {
    const dir = path.join(location, type, type === 'data' ? randomBytes(1).toString('hex') : '');
    this.tmp = path.join(dir, `pack-tmp-${randomBytes(6).toString('hex')}`);
    try {
      this.fd = openSync(this.tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    } catch (e) {
      if (!isENOENT(e)) throw e;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.fd = openSync(this.tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    }
  }

  write(parts: readonly Uint8Array[]): void {
    let want = 0;
    for (const p of parts) {
      want += p.length;
      this.crc = crc32(p, this.crc);
    }
    let done = writevSync(this.fd, parts as Uint8Array[], this.size);
    // a short write (rare: a signal, a full disk reports ENOSPC instead) continues part by part
    while (done < want) {
      let skip = done;
      const rest: Uint8Array[] = [];
      for (const p of parts) {
        if (skip >= p.length) { skip -= p.length; continue; }
        rest.push(skip ? p.subarray(skip) : p);
        skip = 0;
      }
      done += writevSync(this.fd, rest, this.size + done);
    }
    this.size += want;
  }

  async commit(name: string): Promise<void> {
    const final = path.join(this.location, ...layoutPath({ type: this.type, name }).split('/'));
    try {
      const fh = await fsp.open(this.tmp, 'r');
      try {
        await fh.sync();
        if ((await fh.stat()).size !== this.size) throw new Error(`pack ${name}: stored size differs from the bytes written`);
        const buf = Buffer.allocUnsafe(Math.min(this.size, VERIFY_READ) || 1);
        let crc = 0;
        let pos = 0;
        while (pos < this.size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, this.size - pos), pos);
          if (bytesRead === 0) break;
          crc = crc32(buf.subarray(0, bytesRead), crc);
          pos += bytesRead;
        }
        if (pos !== this.size || crc !== this.crc) throw new Error(`pack ${name}: verification after writing failed (the stored bytes differ)`);
      } finally {
        await fh.close();
      }
      this.close();
      try {
        await fsp.link(this.tmp, final);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          await fsp.mkdir(path.dirname(final), { recursive: true, mode: 0o700 });
          await fsp.link(this.tmp, final);
        } else if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw e;
        }
      }
    } finally {
      this.close();
      await fsp.unlink(this.tmp).catch(() => {});
    }
    await syncDir(path.dirname(final));
    await fsp.chmod(final, 0o400).catch(() => {});
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  async abort(): Promise<void> {
    this.close();
    try { unlinkSync(this.tmp); } catch { /* gone */ }
  }
}
