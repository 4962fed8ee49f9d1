/**
 * A streaming ZIP writer (APPNOTE 6.3.x): entries are stored (method 0, no compression: backups hold
 * mostly photos and video, and the repository already compressed what compresses), each file's
 * CRC-32 and sizes follow its data in a data descriptor (flag bit 3), so nothing is buffered but
 * the central directory (one ~60-byte record plus the name per entry). Names are UTF-8 (flag bit 11).
 * ZIP64 records are written only where a value does not fit: a file of ≥ 4 GiB (its local header
 * carries a ZIP64 extra field, its descriptor 8-byte sizes), an offset past 4 GiB, more than 65,535
 * entries. Symlinks are stored as Info-ZIP link entries (Unix mode S_IFLNK in the external attributes,
 * the target as content), which `unzip`, bsdtar and macOS's Archive Utility recreate as symlinks.
 * Times: DOS local time (2 s) plus the "UT" extra field (Unix seconds, UTC).
 */
import { crc32 } from 'node:zlib';

export interface ZipMeta {
  /** modification time in Unix seconds */
  mtime: number;
  /** POSIX permission bits (0o7777); the type bits are set by the writer */
  perm: number;
}

const U32 = 0xffffffff;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const FLAG_DESCRIPTOR = 1 << 3;
const FLAG_UTF8 = 1 << 11;
/** version made by: high byte 3 = Unix (external attributes hold st_mode << 16), low byte 63 = 6.3 */
const MADE_BY = (3 << 8) | 63;

interface CentralRecord { name: Buffer; flags: number; time: number; date: number; crc: number; size: number; offset: number; attr: number; mtime: number }

/** DOS date and time in local time; before 1980 (DOS's epoch) clamps to 1980-01-01 00:00 */
function dosTime(unixSec: number): { time: number; date: number } {
  const d = new Date(unixSec * 1000);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 1980) return { time: 0, date: (0 << 9) | (1 << 5) | 1 };
  if (d.getFullYear() > 2107) return { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31 };
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

/** the "UT" extended timestamp field with the modification time only (same form in both headers) */
function utExtra(mtime: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt16LE(0x5455, 0);
  b.writeUInt16LE(5, 2);
  b.writeUInt8(1, 4);
  b.writeInt32LE(Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.floor(mtime))), 5);
  return b;
}

function zip64Extra(values: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return b;
}

export class ZipWriter {
  private offset = 0;
  private readonly central: CentralRecord[] = [];
  private busy = false;

  /** `sink` receives the archive's bytes in order; it should wait while its consumer is behind */
  constructor(private readonly sink: (b: Buffer) => Promise<void>) {}

  private async emit(b: Buffer): Promise<void> {
    this.offset += b.length;
    await this.sink(b);
  }

  private async local(name: Buffer, flags: number, meta: ZipMeta, crc: number, size: number, zip64: boolean): Promise<CentralRecord> {
    if (this.busy) throw new Error('zip: entries must be written one after another');
    if (name.length > 0xffff) throw new Error('zip: entry name longer than 65,535 bytes');
    const { time, date } = dosTime(meta.mtime);
    const extra = zip64 ? Buffer.concat([zip64Extra([0, 0]), utExtra(meta.mtime)]) : utExtra(meta.mtime);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(zip64 ? 45 : 20, 4);
    h.writeUInt16LE(flags, 6);
    h.writeUInt16LE(0, 8);
    h.writeUInt16LE(time, 10);
    h.writeUInt16LE(date, 12);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(zip64 ? U32 : size, 18);
    h.writeUInt32LE(zip64 ? U32 : size, 22);
    h.writeUInt16LE(name.length, 26);
    h.writeUInt16LE(extra.length, 28);
    const rec: CentralRecord = { name, flags, time, date, crc, size, offset: this.offset, attr: 0, mtime: meta.mtime };
    await this.emit(Buffer.concat([h, name, extra]));
    return rec;
  }

  /** a directory entry; `name` without the trailing "/" (added here) */
  async directory(name: string, meta: ZipMeta): Promise<void> {
    const rec = await this.local(Buffer.from(`${name}/`), FLAG_UTF8, meta, 0, 0, false);
    rec.attr = (((S_IFDIR | (meta.perm & 0o7777)) << 16) | 0x10) >>> 0;
    this.central.push(rec);
  }

  /** an Info-ZIP symlink entry: the target bytes are its content */
  async symlink(name: string, target: Buffer, meta: ZipMeta): Promise<void> {
    const crc = crc32(target);
    const rec = await this.local(Buffer.from(name), FLAG_UTF8, meta, crc, target.length, false);
    await this.emit(target);
    rec.attr = ((S_IFLNK | 0o777) << 16) >>> 0;
    this.central.push(rec);
  }

  /**
   * A file of exactly `size` bytes, which `body` passes to its `write` argument in order (the CRC is
   * computed on the way); a different total is an error (the archive would be inconsistent).
   */
  async file(name: string, size: number, meta: ZipMeta, body: (write: (b: Buffer) => Promise<void>) => Promise<void>): Promise<void> {
    const zip64 = size >= U32;
    const rec = await this.local(Buffer.from(name), FLAG_UTF8 | FLAG_DESCRIPTOR, meta, 0, 0, zip64);
    this.busy = true;
    let crc = 0;
    let n = 0;
    try {
      await body(async (b) => {
        crc = crc32(b, crc);
        n += b.length;
        await this.emit(b);
      });
    } finally {
      this.busy = false;
    }
    if (n !== size) throw new Error(`zip: ${name}: ${n} bytes written, ${size} declared`);
    const d = Buffer.alloc(zip64 ? 24 : 16);
    d.writeUInt32LE(0x08074b50, 0);
    d.writeUInt32LE(crc >>> 0, 4);
    if (zip64) { d.writeBigUInt64LE(BigInt(n), 8); d.writeBigUInt64LE(BigInt(n), 16); } else { d.writeUInt32LE(n, 8); d.writeUInt32LE(n, 12); }
    await this.emit(d);
    rec.crc = crc >>> 0;
    rec.size = n;
    rec.attr = ((S_IFREG | (meta.perm & 0o7777)) << 16) >>> 0;
    this.central.push(rec);
  }

  /** the central directory and its end records; the writer takes no entry after this */
  async finish(): Promise<void> {
    const cdStart = this.offset;
    let chunk: Buffer[] = [];
    let chunkLen = 0;
    for (const r of this.central) {
      const big = [r.size >= U32 ? r.size : -1, r.size >= U32 ? r.size : -1, r.offset >= U32 ? r.offset : -1].filter((v) => v >= 0);
      const extra = big.length ? Buffer.concat([zip64Extra(big), utExtra(r.mtime)]) : utExtra(r.mtime);
      const h = Buffer.alloc(46);
      h.writeUInt32LE(0x02014b50, 0);
      h.writeUInt16LE(MADE_BY, 4);
      h.writeUInt16LE(big.length ? 45 : 20, 6);
      h.writeUInt16LE(r.flags, 8);
      h.writeUInt16LE(0, 10);
      h.writeUInt16LE(r.time, 12);
      h.writeUInt16LE(r.date, 14);
      h.writeUInt32LE(r.crc, 16);
      h.writeUInt32LE(Math.min(r.size, U32), 20);
      h.writeUInt32LE(Math.min(r.size, U32), 24);
      h.writeUInt16LE(r.name.length, 28);
      h.writeUInt16LE(extra.length, 30);
      h.writeUInt32LE(r.attr, 38);
      h.writeUInt32LE(Math.min(r.offset, U32), 42);
      chunk.push(h, r.name, extra);
      chunkLen += 46 + r.name.length + extra.length;
      // the directory goes out in pieces of ~1 MiB: a 1,000,000-entry archive's is ~80 MiB
      if (chunkLen >= 1 << 20) { await this.emit(Buffer.concat(chunk)); chunk = []; chunkLen = 0; }
    }
    if (chunk.length) await this.emit(Buffer.concat(chunk));
    const cdSize = this.offset - cdStart;
    const count = this.central.length;
    if (count > 0xffff || cdStart >= U32 || cdSize >= U32) {
      const eocd64At = this.offset;
      const e = Buffer.alloc(56);
      e.writeUInt32LE(0x06064b50, 0);
      e.writeBigUInt64LE(44n, 4);
      e.writeUInt16LE(MADE_BY, 12);
      e.writeUInt16LE(45, 14);
      e.writeBigUInt64LE(BigInt(count), 24);
      e.writeBigUInt64LE(BigInt(count), 32);
      e.writeBigUInt64LE(BigInt(cdSize), 40);
      e.writeBigUInt64LE(BigInt(cdStart), 48);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(0x07064b50, 0);
      loc.writeBigUInt64LE(BigInt(eocd64At), 8);
      loc.writeUInt32LE(1, 16);
      await this.emit(Buffer.concat([e, loc]));
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(Math.min(count, 0xffff), 8);
    end.writeUInt16LE(Math.min(count, 0xffff), 10);
    end.writeUInt32LE(Math.min(cdSize, U32), 12);
    end.writeUInt32LE(Math.min(cdStart, U32), 16);
    await this.emit(end);
    this.central.length = 0;
  }
}
