/**
 * Byte ranges of a file in a snapshot, read blob by blob: the blobs covering the range only (their
 * plaintext sizes come from the index, so no blob before the range is read), each blob a ranged read
 * of its pack (`Repository.loadBlob`: `mode=bin` with a Range on Jottacloud), a few loaded ahead of
 * the one being sent, recently used ones kept in a bounded cache.
 */
import { createHash } from 'node:crypto';
import type { Repository } from '../repo/repository.js';
import { plaintextLength } from '../repo/index.js';
import { ByteLru, Inflight } from './cache.js';

export interface ReaderOptions {
  /** bytes of decoded data blobs kept (default 40 MiB) */
  blobCacheBytes?: number;
  /** blobs loaded ahead of the one being sent (default 4) */
  readahead?: number;
}

/** a file's content: `size` bytes (the node's), read by range */
export interface ContentSource {
  readonly size: number;
  /** the bytes [start, end) in pieces, in order; a blob that cannot be read ends it with an error */
  read(start: number, end: number): AsyncGenerator<Buffer>;
}

/** the start offset of every blob of a content list (offsets[i]..offsets[i+1]), from the index */
function offsetsOf(repo: Repository, content: readonly string[]): Float64Array {
  const o = new Float64Array(content.length + 1);
  for (let i = 0; i < content.length; i++) {
    const loc = repo.index.get('data', content[i]!);
    if (!loc) throw new Error(`data blob ${content[i]} not found in index`);
    o[i + 1] = o[i]! + plaintextLength(loc);
  }
  return o;
}

/** the last i with offsets[i] <= pos */
function blobAt(offsets: Float64Array, pos: number): number {
  let lo = 0;
  let hi = offsets.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid]! <= pos) lo = mid; else hi = mid - 1;
  }
  return lo;
}

const ZEROS = Buffer.alloc(1 << 20);

export class BlobReader {
  readonly blobs: ByteLru<Buffer>;
  private offsets = new ByteLru<Float64Array>(4 << 20);
  private inflight = new Inflight<Buffer>();
  readonly readahead: number;
  /** blobs read from the repository (not the cache), for tests and the bench */
  loads = 0;

  constructor(readonly repo: Repository, o: ReaderOptions = {}) {
    this.blobs = new ByteLru<Buffer>(o.blobCacheBytes ?? 40 << 20);
    this.readahead = Math.max(1, o.readahead ?? 4);
  }

  blob(id: string): Promise<Buffer> {
    const hit = this.blobs.get(id);
    if (hit) return Promise.resolve(hit);
    return this.inflight.run(id, async () => {
      this.loads++;
      const b = await this.repo.loadBlob('data', id);
      this.blobs.set(id, b, b.length);
      return b;
    });
  }

  /** the content of `ids` as a file of `size` bytes (clipped, or padded with zeros, to the node's size) */
  open(ids: readonly string[], size: number): ContentSource {
    // the offsets are cached by content (the same blob list served through any path shares one table)
    const key = ids.length === 1 ? ids[0]! : createHash('sha256').update(ids.join('\0')).digest('hex');
    let offsets = this.offsets.get(key);
    if (!offsets) {
      offsets = offsetsOf(this.repo, ids);
      this.offsets.set(key, offsets, offsets.byteLength);
    }
    const table = offsets;
    const self = this;
    return {
      size,
      async *read(start: number, end: number): AsyncGenerator<Buffer> {
        end = Math.min(end, size);
        if (start >= end) return;
        const stored = table[ids.length]!;
        let pos = start;
        if (pos < stored && ids.length) {
          const first = blobAt(table, pos);
          let last = first;
          while (last + 1 < ids.length && table[last + 1]! < Math.min(end, stored)) last++;
          const ahead: Promise<Buffer>[] = [];
          let next = first;
          const fill = () => { while (next <= last && ahead.length < self.readahead) ahead.push(self.blob(ids[next++]!)); };
          fill();
          for (let i = first; i <= last; i++) {
            const p = ahead.shift()!;
            fill();
            let b: Buffer;
            try {
              b = await p;
            } catch (e) {
              // the loads already started would reject unobserved
              for (const q of ahead) q.catch(() => {});
              throw e;
            }
            const from = pos - table[i]!;
            const to = Math.min(b.length, end - table[i]!);
            if (to > from) { yield b.subarray(from, to); pos += to - from; }
          }
        }
        // a node that claims more than its blobs hold: zeros, as dump pads a damaged file
        while (pos < end) {
          const k = Math.min(end - pos, ZEROS.length);
          yield ZEROS.subarray(0, k);
          pos += k;
        }
      },
    };
  }
}
