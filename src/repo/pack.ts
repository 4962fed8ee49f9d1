/**
 * Pack files: blob_1 || … || blob_n || seal(header) || u32le(len(seal(header))). Pure, no I/O.
 * Header entry: type(1) || length u32le || [uncompressed_length u32le] || id(32).
 */
import { createHash, type Hash } from 'node:crypto';
import { OVERHEAD, open, seal, type MasterKey } from '../crypto/crypto.js';
import type { BackendStream } from '../backend/backend.js';
import type { PackDigest, PackHasher } from './packhash.js';

export type BlobType = 'data' | 'tree';

export interface PackedBlob {
  type: BlobType;
  id: string;
  offset: number;
  /** stored length (encrypted, with the 32 bytes of crypto overhead) */
  length: number;
  /** plaintext length when compressed, else 0 */
  uncompressedLength: number;
}

export const ENTRY_PLAIN = 37;
export const ENTRY_COMPRESSED = 41;
/** bytes a reader fetches first from the end of a pack: 15 compressed entries + crypto + length */
export const EAGER_HEADER = 15 * ENTRY_COMPRESSED + OVERHEAD + 4;
export const MAX_HEADER_SIZE = 16 * 1024 * 1024 + 4;

export function entrySize(b: { uncompressedLength: number }): number {
  return b.uncompressedLength ? ENTRY_COMPRESSED : ENTRY_PLAIN;
}

/** Expected pack size from its index entries (restic check's rule). */
export function packSizeFromBlobs(blobs: Iterable<{ length: number; uncompressedLength: number }>): number {
  let n = 4 + OVERHEAD;
  for (const b of blobs) n += b.length + entrySize(b);
  return n;
}

export function encodeHeader(blobs: readonly PackedBlob[]): Buffer {
  let size = 0;
  for (const b of blobs) size += entrySize(b);
  const h = Buffer.allocUnsafe(size);
  let o = 0;
  for (const b of blobs) {
    const c = b.uncompressedLength > 0;
    h[o] = (b.type === 'tree' ? 1 : 0) + (c ? 2 : 0);
    h.writeUInt32LE(b.length, o + 1);
    o += 5;
    if (c) { h.writeUInt32LE(b.uncompressedLength, o); o += 4; }
    o += h.write(b.id, o, 'hex');
  }
  return h;
}

export function decodeHeader(plain: Uint8Array): PackedBlob[] {
  const h = Buffer.from(plain.buffer, plain.byteOffset, plain.length);
  const out: PackedBlob[] = [];
  let o = 0;
  let offset = 0;
  while (o < h.length) {
    const t = h[o]!;
    if (t > 3) throw new Error(`invalid blob type ${t} in pack header`);
    const c = t >= 2;
    const need = c ? ENTRY_COMPRESSED : ENTRY_PLAIN;
    if (o + need > h.length) throw new Error('truncated pack header');
    const length = h.readUInt32LE(o + 1);
    const uncompressedLength = c ? h.readUInt32LE(o + 5) : 0;
    const id = h.toString('hex', o + need - 32, o + need);
    out.push({ type: t & 1 ? 'tree' : 'data', id, offset, length, uncompressedLength });
    offset += length;
    o += need;
  }
  return out;
}

/**
 * Parse a pack's header from its tail. `tail` holds the last `tail.length` bytes of a file of `packSize` bytes.
 * Returns the entries, or `{ need }` when the header starts before the tail.
 */
export function parsePackTail(key: MasterKey, tail: Buffer, packSize: number): PackedBlob[] | { need: number } {
  if (packSize < 4 + OVERHEAD || tail.length < 4) throw new Error(`pack is too small (${packSize} bytes)`);
  const hlen = tail.readUInt32LE(tail.length - 4);
  if (hlen < OVERHEAD || hlen > packSize - 4 || hlen + 4 > MAX_HEADER_SIZE) {
    throw new Error(`invalid pack header length ${hlen} for a pack of ${packSize} bytes`);
  }
  if (hlen + 4 > tail.length) return { need: hlen + 4 };
  const enc = tail.subarray(tail.length - 4 - hlen, tail.length - 4);
  const blobs = decodeHeader(open(key, enc));
  const dataEnd = packSize - 4 - hlen;
  const last = blobs.at(-1);
  if ((last ? last.offset + last.length : 0) !== dataEnd) {
    throw new Error(`pack header describes ${last ? last.offset + last.length : 0} bytes of blobs, file has ${dataEnd}`);
  }
  return blobs;
}

/**
 * where a PackBuilder puts its blobs: a buffer (from `take`, grown as needed) or a backend stream.
 * With `hasher` the buffer is shared memory (`take` must give such buffers) and the hashes are
 * computed on the hasher's thread (`md5` too when asked), range by range as blobs are added.
 */
export interface PackSink {
  take?: () => Buffer;
  stream?: () => BackendStream;
  hasher?: PackHasher;
  md5?: boolean;
}

/**
 * Accumulates encrypted blobs of one type into a pack; hashes as it goes (no second pass). The
 * blobs are written to a backend stream as they come (the local backend: a temp file) or copied
 * into one contiguous buffer, so the caller's blob buffers are garbage at once: holding them
 * instead kept every worker's transferred ciphertext alive until a major GC.
 */
export class PackBuilder {
  readonly blobs: PackedBlob[] = [];
  private buf: Buffer | null = null;
  stream: BackendStream | null = null;
  private hash: Hash | null = null;
  /** the hasher's id for this pack, while it hashes it */
  private hid = 0;
  size = 0;
  constructor(readonly type: BlobType, private sink: PackSink = {}) {}

  get count(): number { return this.blobs.length; }

  /**
   * add one stored blob, given whole or as parts (iv, ciphertext, mac); `handOver`: the parts'
   * buffers are the caller's to give away (a stream may take them over instead of copying);
   * `released`: called once the parts are no longer referenced (see BackendStream.write)
   */
  add(id: string, stored: Uint8Array | readonly Uint8Array[], uncompressedLength: number, handOver = false, released?: () => void): void {
    const parts = stored instanceof Uint8Array ? [stored] : stored;
    let length = 0;
    for (const p of parts) length += p.length;
    if (this.sink.stream) {
      // the stream hashes what it writes (the pack id comes from its commit)
      this.stream ??= this.sink.stream();
      this.stream.write(parts, handOver, released);
    } else {
      const hasher = this.sink.hasher;
      if (!hasher) {
        this.hash ??= createHash('sha256');
        for (const p of parts) this.hash.update(p);
      }
      this.buf ??= this.sink.take?.() ?? Buffer.allocUnsafeSlow(256 * 1024);
      if (this.size + length > this.buf.length) {
        // (ranges already sent to the hasher stay readable in the old buffer: same bytes)
        const n = Math.max(this.size + length, this.buf.length * 2);
        const next = hasher ? Buffer.from(new SharedArrayBuffer(n)) : Buffer.allocUnsafeSlow(n);
        this.buf.copy(next, 0, 0, this.size);
        this.buf = next;
      }
      let at = this.size;
      for (const p of parts) {
        this.buf.set(p, at);
        at += p.length;
      }
      released?.();
      if (hasher) hasher.update(this.hasherId(hasher), this.buf, this.size, length);
    }
    this.blobs.push({ type: this.type, id, offset: this.size, length, uncompressedLength });
    this.size += length;
  }

  /** this pack's id at the hasher, which starts hashing it on first use */
  private hasherId(hasher: PackHasher): number {
    if (!this.hid) this.hid = hasher.begin(!!this.sink.md5);
    return this.hid;
  }

  /** discard a pack that will not be stored (its stream's temp file) */
  async abort(): Promise<void> {
    if (this.hid) {
      this.sink.hasher!.abort(this.hid);
      this.hid = 0;
    }
    await this.stream?.abort();
  }

  /** header size once finished (for the pack-size target) */
  headerSize(): number {
    return this.blobs.length * ENTRY_COMPRESSED + OVERHEAD + 4;
  }

  /**
   * close the pack: the header and its length follow the blobs. For a buffered pack, `parts` are
   * the whole file in order, `id` its SHA-256, and `buffer` (the blobs) may be recycled once it is
   * stored; a streamed pack has everything written to `stream`, whose commit gives the id.
   */
  finish(key: MasterKey): { id: string | null; digest?: Promise<PackDigest>; parts: Uint8Array[]; size: number; blobs: PackedBlob[]; buffer: Buffer | null; stream: BackendStream | null } {
    const header = seal(key, encodeHeader(this.blobs));
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(header.length, 0);
    const size = this.size + header.length + 4;
    if (this.stream) {
      this.stream.write([header, len], true);
      return { id: null, parts: [], size, blobs: this.blobs, buffer: null, stream: this.stream };
    }
    const parts = [this.buf ? this.buf.subarray(0, this.size) : Buffer.alloc(0), header, len];
    const hasher = this.sink.hasher;
    if (hasher) {
      // the id (and md5) come from the hasher thread once it has caught up
      const digest = hasher.final(this.hasherId(hasher), Buffer.concat([header, len]));
      this.hid = 0;
      return { id: null, digest, parts, size, blobs: this.blobs, buffer: this.buf, stream: null };
    }
    const hash = this.hash ?? createHash('sha256');
    hash.update(header);
    hash.update(len);
    return { id: hash.digest('hex'), parts, size, blobs: this.blobs, buffer: this.buf, stream: null };
  }
}
