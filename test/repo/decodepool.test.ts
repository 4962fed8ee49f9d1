import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { randomMasterKey, seal } from '../../src/crypto/crypto.js';
import { BufferPool, DecodePool, SharedCache, type DecodeBlob } from '../../src/repo/decodepool.js';
import { zstdCompress } from '../../src/repo/zstd.js';

const key = randomMasterKey();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** a "pack range": a few stored blobs (some compressed) back to back in `into` */
function fill(into: Buffer, seed: number): { blobs: DecodeBlob[]; plains: Buffer[]; length: number } {
  const blobs: DecodeBlob[] = [];
  const plains: Buffer[] = [];
  let off = 0;
  for (let i = 0; i < 3; i++) {
    const plain = i === 1 ? Buffer.alloc(5000 + seed, 'x') : randomBytes(1000 + seed * 7 + i);
    const compressed = i === 1;
    const stored = seal(key, compressed ? zstdCompress(plain) : plain);
    stored.copy(into, off);
    blobs.push({ id: sha(plain), offset: off, length: stored.length, uncompressedLength: compressed ? plain.length : 0 });
    plains.push(plain);
    off += stored.length;
  }
  return { blobs, plains, length: off };
}

describe('DecodePool with shared buffers', () => {
  const pool = new DecodePool(key, 2);
  afterAll(() => pool.close());

  it('keeps its record of the buffers each worker holds in step over many recycled and one-off buffers', async () => {
    // more recycled buffers than a worker keeps (SharedCache.CAPACITY), used in an order that makes
    // both sides evict, interleaved with one-off and plain (transferred) buffers
    const buffers = new BufferPool(64 * 1024, 100);
    const mine = Array.from({ length: SharedCache.CAPACITY * 3 }, () => buffers.take(1000));
    const order = [...mine.keys(), ...[...mine.keys()].reverse(), ...mine.keys()].map((i) => i * 7 % mine.length);
    let n = 0;
    for (const i of order) {
      const kind = n++ % 5;
      const into = kind === 3 ? buffers.take(128 * 1024) : kind === 4 ? Buffer.allocUnsafeSlow(64 * 1024) : mine[i]!;
      const { blobs, plains, length } = fill(into, n % 50);
      const bytes = into.subarray(0, length);
      const packHash = sha(bytes);
      const res = await pool.decode(bytes, blobs, { wantPlain: true, hashPack: true, scratch: kind !== 4 });
      expect(res.packHash).toBe(packHash);
      expect(res.results.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
      expect(res.results.map((r, k) => Buffer.from(r.plain!).equals(plains[k]!))).toEqual([true, true, true]);
    }
  });

  it('decrypts in place only with scratch, and hashes the pack before', async () => {
    const buffers = new BufferPool(64 * 1024, 4);
    for (const scratch of [false, true]) {
      const into = buffers.take(1000);
      const { blobs, plains, length } = fill(into, 3);
      const before = Buffer.from(into.subarray(0, length));
      const res = await pool.decode(into.subarray(0, length), blobs, { hashPack: true, scratch });
      expect(res.packHash).toBe(sha(before));
      expect(res.results.every((r) => !r.error)).toBe(true);
      const same = into.subarray(0, length).equals(before);
      expect(same).toBe(!scratch);
      if (scratch) {
        // an uncompressed blob's plaintext is where its ciphertext was (after the 16-byte IV)
        const b = blobs[0]!;
        expect(into.subarray(b.offset + 16, b.offset + 16 + plains[0]!.length).equals(plains[0]!)).toBe(true);
      }
      buffers.give(into);
    }
  });

  it('decompresses in place into a reused buffer: plaintexts asked for are copies that stay valid', async () => {
    const buffers = new BufferPool(4 * 1024 * 1024, 4);
    const got: Buffer[] = [];
    const want: Buffer[] = [];
    for (const n of [2 * 1024 * 1024 + 3, 2 * 1024 * 1024 + 3, 3 * 1024 * 1024, 1000]) {
      const plain = Buffer.alloc(n, String(n % 7));
      plain.write(`blob of ${n}`, 0);
      const stored = seal(key, zstdCompress(plain));
      const into = buffers.take(stored.length);
      stored.copy(into);
      const res = await pool.decode(into.subarray(0, stored.length), [{ id: sha(plain), offset: 0, length: stored.length, uncompressedLength: n }], { wantPlain: true, scratch: true });
      buffers.give(into);
      expect(res.results[0]!.error).toBeUndefined();
      got.push(Buffer.from(res.results[0]!.plain!));
      want.push(plain);
    }
    expect(got.map((g, i) => g.equals(want[i]!))).toEqual([true, true, true, true]);
  });

  it('reports a damaged blob by position and leaves the others verified', async () => {
    const buffers = new BufferPool(64 * 1024, 4);
    const into = buffers.take(1000);
    const { blobs, length } = fill(into, 9);
    into[blobs[2]!.offset + 20]! ^= 1;
    const res = await pool.decode(into.subarray(0, length), blobs, { scratch: true });
    expect(res.results.map((r) => r.error ?? 'ok')).toEqual(['ok', 'ok', 'ciphertext verification failed']);
  });
});
