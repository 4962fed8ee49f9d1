/**
 * The in-memory index: blob (type, id) → pack, offset, lengths, held in flat typed arrays in two parts:
 *
 * - a frozen part sorted by (id, type): 30 B of id (the first two bytes are implied by a directory of
 *   65,536 bucket starts) + 16 B of pack number (blob type in its top bit), offset, length and
 *   uncompressed length = 46 B per blob; looked up by an interpolated guess inside the bucket (ids are
 *   random SHA-256: ~76 entries per bucket at 5M blobs);
 * - a recent part for blobs added since the last merge: appended to chunks (48 B per entry), with an
 *   open-addressing hash table built only once something is looked up (while index files load nothing
 *   is, so loading is appending, then one sort).
 *
 * compact() merges the recent part into the frozen one: after a full load (Repository.loadIndex), on
 * the first lookup if the recent part is large, and once lookups run whenever it grows past an eighth
 * of the frozen part. Measured with bench/index-mem.ts at 5M blobs: 46.2 B per blob held (the hash
 * table this replaces: 96 B; restic ~56, rustic 48), figures in SPEC.md "In-memory index".
 *
 * A blob listed twice (the same type and id in two packs, or twice in one) keeps its first location,
 * as before; prune and check keep every listing themselves (from the index files).
 */
import type { BlobType, PackedBlob } from './pack.js';
import { ID_RE } from '../util/ids.js';

export interface BlobLocation {
  type: BlobType;
  id: string;
  packId: string;
  offset: number;
  length: number;
  uncompressedLength: number;
}

export function plaintextLength(b: { length: number; uncompressedLength: number }): number {
  return b.uncompressedLength || b.length - 32;
}

/** id bytes implied by the frozen part's directory bucket, and those stored per entry */
const PRE = 2;
const W = 32 - PRE;
const BUCKETS = 1 << (8 * PRE);
/** the blob type's bit in an entry's pack number */
const TREE = 0x80000000;
/**
 * Recent entries live in chunks of this many (the first chunk grows up to it from 1,024). A chunk's ids
 * and meta share one 48 MiB buffer: above glibc's mmap threshold (the CLI fixes it at 16 MiB; glibc's
 * own tops out at 32 MiB), so it is mapped on its own and unmapped when the merge frees it, instead of
 * leaving holes in the malloc heap (chunks of 2^16 entries, 2 + 1 MiB: 5M blobs loaded, RSS +401 MiB
 * for 220 MiB held, glibc defaults).
 */
const CHUNK_BITS = 20;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;

/** the directory of an empty frozen part (never written: compact() makes a new one) */
const EMPTY_DIR = new Uint32Array(BUCKETS + 1);
/** hex digit values (either case, as Buffer's hex decoding took them), -1 for other characters */
const HEX_ANY = ((): Int8Array => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) { t[97 + i] = 10 + i; t[65 + i] = 10 + i; }
  return t;
})();

/**
 * The frozen part's arrays for n entries in one buffer: ids, meta, directory (one allocation, mapped on
 * its own from ~350k blobs under the CLI's malloc settings, and unmapped when a merge replaces it).
 */
function frozenArrays(n: number): [Uint8Array, Uint32Array, Uint32Array] {
  const idBytes = Math.ceil((n * W) / 4) * 4;
  const buf = new ArrayBuffer(idBytes + n * 16 + (BUCKETS + 1) * 4);
  return [new Uint8Array(buf, 0, n * W), new Uint32Array(buf, idBytes, n * 4), new Uint32Array(buf, idBytes + n * 16, BUCKETS + 1)];
}

export class MasterIndex {
  // frozen part: fn entries sorted by (id, type)
  private fn = 0;
  private fIds: Uint8Array = new Uint8Array(0);   // fn × W: id bytes PRE..31
  private fMeta: Uint32Array = new Uint32Array(0); // fn × 4: pack | TREE, offset, length, uncompressed length
  private dir: Uint32Array = EMPTY_DIR; // bucket b (id bytes 0..PRE-1) = entries dir[b] .. dir[b+1]-1
  // recent part: rn entries in insertion order
  private rn = 0;
  private rCap = 0;
  private rIds: Uint8Array[] = [];   // chunks of CHUNK × 32
  private rMeta: Uint32Array[] = []; // chunks of CHUNK × 4
  /** hash over the recent part (slot = entry + 1, 0 = empty); null until something is looked up */
  private table: Int32Array | null = null;
  private packIds: string[] = [];
  private packNo = new Map<string, number>();
  /** the id being looked up or added, as bytes */
  private readonly key = Buffer.alloc(32);

  get size(): number {
    this.ready();
    return this.fn + this.rn;
  }

  private packNumber(packId: string): number {
    let p = this.packNo.get(packId);
    if (p === undefined) {
      p = this.packIds.length;
      if (p >= TREE) throw new Error('index: too many packs');
      this.packIds.push(packId);
      this.packNo.set(packId, p);
    }
    return p;
  }

  /** the id into this.key; false if it is not 64 hex digits */
  private parse(id: string): boolean {
    // (Buffer.write(id, 'hex'): ~570 ns per call in a profile of the bench on the shared machine; this loop ~125 ns)
    if (id.length !== 64) return false;
    const key = this.key;
    for (let k = 0; k < 32; k++) {
      const a = id.charCodeAt(2 * k);
      const c = id.charCodeAt(2 * k + 1);
      const hi = a < 128 ? HEX_ANY[a]! : -1;
      const lo = c < 128 ? HEX_ANY[c]! : -1;
      if ((hi | lo) < 0) return false;
      key[k] = (hi << 4) | lo;
    }
    return true;
  }

  // ---------- frozen part ----------

  /** key (with type t) compared to frozen entry i: < 0, 0, > 0 */
  private cmpFrozen(key: Uint8Array, ko: number, t: number, i: number): number {
    const ids = this.fIds;
    const base = i * W - PRE;
    for (let k = ko + PRE, j = base + PRE; k < ko + 32; k++, j++) {
      const c = key[k]! - ids[j]!;
      if (c !== 0) return c;
    }
    return t - (this.fMeta[i * 4]! >>> 31);
  }

  /**
   * Entry of (key, t) in the frozen part, or -1. Ids are uniform, so the position in the bucket is
   * guessed from the next two bytes and the search walks up to 8 neighbours (adjacent cache lines)
   * before falling back to bisection: at 5M blobs (~76 per bucket) measured 3.8 compared entries per
   * hit and 4.3 per miss (a 3-step walk: 4.3 and 5.1; bisection alone: ~7 scattered ones).
   */
  private findFrozen(key: Uint8Array, ko: number, t: number): number {
    const b = (key[ko]! << 8) | key[ko + 1]!;
    let lo = this.dir[b]!;
    let hi = this.dir[b + 1]! - 1;
    if (lo > hi) return -1;
    const guess = lo + Math.floor(((key[ko + 2]! << 8) | key[ko + 3]!) * (hi - lo + 1) / 65536);
    let c = this.cmpFrozen(key, ko, t, guess);
    if (c === 0) return guess;
    if (c < 0) {
      hi = guess - 1;
      for (let s = 0; s < 8 && hi >= lo; s++, hi--) {
        c = this.cmpFrozen(key, ko, t, hi);
        if (c === 0) return hi;
        if (c > 0) return -1;
      }
    } else {
      lo = guess + 1;
      for (let s = 0; s < 8 && lo <= hi; s++, lo++) {
        c = this.cmpFrozen(key, ko, t, lo);
        if (c === 0) return lo;
        if (c < 0) return -1;
      }
    }
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      c = this.cmpFrozen(key, ko, t, mid);
      if (c === 0) return mid;
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -1;
  }

  // ---------- recent part ----------

  private hashAt(ids: Uint8Array, o: number, t: number): number {
    return (((ids[o + 4]! | (ids[o + 5]! << 8) | (ids[o + 6]! << 16) | (ids[o + 7]! << 24)) ^ t) >>> 0);
  }

  /** entry of (key, t) in the recent part (the table must be built), or -1 */
  private findRecent(key: Uint8Array, ko: number, t: number): number {
    const table = this.table!;
    const mask = table.length - 1;
    let h = this.hashAt(key, ko, t) & mask;
    for (;;) {
      const s = table[h]!;
      if (s === 0) return -1;
      const i = s - 1;
      const ids = this.rIds[i >>> CHUNK_BITS]!;
      const j = i & CHUNK_MASK;
      if ((this.rMeta[i >>> CHUNK_BITS]![j * 4]! >>> 31) === t) {
        const base = j * 32;
        let k = 0;
        while (k < 32 && ids[base + k] === key[ko + k]) k++;
        if (k === 32) return i;
      }
      h = (h + 1) & mask;
    }
  }

  private insertRecent(i: number): void {
    const table = this.table!;
    const mask = table.length - 1;
    const j = i & CHUNK_MASK;
    const t = this.rMeta[i >>> CHUNK_BITS]![j * 4]! >>> 31;
    let h = this.hashAt(this.rIds[i >>> CHUNK_BITS]!, j * 32, t) & mask;
    while (table[h] !== 0) h = (h + 1) & mask;
    table[h] = i + 1;
  }

  /** room for n recent entries: the first chunk grows by doubling, then whole chunks are added */
  private reserve(n: number): void {
    while (this.rCap < n) {
      if (this.rIds.length === 0 || (this.rIds.length === 1 && this.rCap < CHUNK)) {
        const cap = Math.min(CHUNK, Math.max(1024, this.rCap * 2, n));
        const buf = new ArrayBuffer(cap * 48);
        const ids = new Uint8Array(buf, 0, cap * 32);
        const meta = new Uint32Array(buf, cap * 32, cap * 4);
        if (this.rIds.length) { ids.set(this.rIds[0]!); meta.set(this.rMeta[0]!); }
        this.rIds[0] = ids;
        this.rMeta[0] = meta;
        this.rCap = cap;
      } else {
        const buf = new ArrayBuffer(CHUNK * 48);
        this.rIds.push(new Uint8Array(buf, 0, CHUNK * 32));
        this.rMeta.push(new Uint32Array(buf, CHUNK * 32, CHUNK * 4));
        this.rCap += CHUNK;
      }
    }
  }

  /** Append one blob (id = src[so..so+32]); when the table is built, only if it is not known. */
  private append(src: Uint8Array, so: number, packAndType: number, offset: number, length: number, ulen: number): void {
    const t = packAndType >>> 31;
    if (this.table && (this.findFrozen(src, so, t) >= 0 || this.findRecent(src, so, t) >= 0)) return;
    const i = this.rn;
    this.reserve(i + 1);
    const ids = this.rIds[i >>> CHUNK_BITS]!;
    const meta = this.rMeta[i >>> CHUNK_BITS]!;
    const j = i & CHUNK_MASK;
    ids.set(so === 0 && src.length === 32 ? src : src.subarray(so, so + 32), j * 32);
    meta[j * 4] = packAndType;
    meta[j * 4 + 1] = offset;
    meta[j * 4 + 2] = length;
    meta[j * 4 + 3] = ulen;
    this.rn = i + 1;
    if (this.table) {
      if (this.rn * 2 > this.table.length) this.buildTable();
      else this.insertRecent(i);
    }
  }

  /**
   * Recent entries that trigger a merge once lookups run: an eighth of the frozen ones (a merge copies
   * the frozen part). While nothing is looked up (loading index files) there is no limit: one sort at
   * the end (compact(), or the first lookup) instead of merges along the way (1M blobs, profiles of
   * the first version: 0.85 s in merges at 256Ki, 512Ki and the end, 0.3 s for one sort); the chunks
   * take 48 B per entry.
   */
  private mergeLimit(): number {
    return this.table ? Math.max(1 << 16, this.fn >>> 3) : Infinity;
  }

  /**
   * Build the hash over the recent part, dropping entries known before (in the frozen part or earlier
   * in the recent part: the first location is kept).
   */
  private buildTable(): void {
    let size = 1024;
    while (size < this.rn * 2) size *= 2;
    const rebuild = this.table !== null;
    this.table = new Int32Array(size);
    let w = 0;
    for (let i = 0; i < this.rn; i++) {
      const c = i >>> CHUNK_BITS;
      const j = i & CHUNK_MASK;
      const ids = this.rIds[c]!;
      const meta = this.rMeta[c]!;
      const t = meta[j * 4]! >>> 31;
      // (a rebuild only grows the table: its entries are known to be unique)
      if (!rebuild && (this.findFrozen(ids, j * 32, t) >= 0 || (w > 0 && this.findRecent(ids, j * 32, t) >= 0))) continue;
      if (w !== i) {
        const wc = w >>> CHUNK_BITS;
        const wj = w & CHUNK_MASK;
        this.rIds[wc]!.set(ids.subarray(j * 32, j * 32 + 32), wj * 32);
        this.rMeta[wc]!.set(meta.subarray(j * 4, j * 4 + 4), wj * 4);
      }
      this.insertRecent(w);
      w++;
    }
    this.rn = w;
  }

  /** before a lookup: the recent part is hashed (or merged, if large) */
  private ready(): void {
    if (this.rn === 0 || this.table) return;
    if (this.rn >= Math.max(1 << 16, this.fn >>> 3)) this.compact();
    else this.buildTable();
  }

  /**
   * Merge the recent part into the frozen one. Called after a full load (Repository.loadIndex), and by
   * the index itself when the recent part grows large.
   *
   * Every entry goes straight to its bucket's region of the new arrays (frozen ones first, then recent
   * ones in the order added: one pass, one random write each), then each bucket (~76 entries at 5M
   * blobs, in cache) is sorted by (id, type), stably, and entries equal to one before them are dropped
   * (the first location stays). 5M blobs, CPU profile of a load on the shared machine: 9.1 s in compact
   * with a radix sort of a permutation and a merge walk (random reads of the chunks in sorted order),
   * 2.0 s this way; the chunks and the new arrays are all it holds (94 B per blob at the peak).
   */
  compact(): void {
    const rn = this.rn;
    if (rn === 0) return;
    const rIds = this.rIds;
    const rMeta = this.rMeta;
    const fIds = this.fIds;
    const fMeta = this.fMeta;
    const dir = this.dir;
    const total = this.fn + rn;
    // regions: bucket b gets its frozen entries, then its recent ones, from at[b]
    const at = new Uint32Array(BUCKETS + 1);
    for (let i = 0; i < rn; i++) {
      const ids = rIds[i >>> CHUNK_BITS]!;
      const o = (i & CHUNK_MASK) * 32;
      at[((ids[o]! << 8) | ids[o + 1]!) + 1]!++;
    }
    for (let b = 0; b < BUCKETS; b++) at[b + 1]! += at[b]! + dir[b + 1]! - dir[b]!;
    let [nIds, nMeta, nDir] = frozenArrays(total);
    const cursor = new Uint32Array(BUCKETS);
    for (let b = 0; b < BUCKETS; b++) {
      const f0 = dir[b]!;
      const f1 = dir[b + 1]!;
      if (f1 > f0) {
        nIds.set(fIds.subarray(f0 * W, f1 * W), at[b]! * W);
        nMeta.set(fMeta.subarray(f0 * 4, f1 * 4), at[b]! * 4);
      }
      cursor[b] = at[b]! + f1 - f0;
    }
    // ids are copied two bytes at a time (offsets PRE + 32 j and W i are even)
    const n16 = new Uint16Array(nIds.buffer, nIds.byteOffset, nIds.byteLength >>> 1);
    for (let c = 0; c * CHUNK < rn; c++) {
      const ids = rIds[c]!;
      const r16 = new Uint16Array(ids.buffer, ids.byteOffset, ids.byteLength >>> 1);
      const meta = rMeta[c]!;
      const end = Math.min(CHUNK, rn - c * CHUNK);
      for (let j = 0; j < end; j++) {
        const o = j * 32;
        const pos = cursor[(ids[o]! << 8) | ids[o + 1]!]!++;
        const d = (pos * W) >>> 1;
        const s16 = (o + PRE) >>> 1;
        for (let k = 0; k < W >>> 1; k++) n16[d + k] = r16[s16 + k]!;
        nMeta[pos * 4] = meta[j * 4]!;
        nMeta[pos * 4 + 1] = meta[j * 4 + 1]!;
        nMeta[pos * 4 + 2] = meta[j * 4 + 2]!;
        nMeta[pos * 4 + 3] = meta[j * 4 + 3]!;
      }
    }
    // the chunks are no longer needed (a 5M load: 240 MB that can go before the buckets are sorted)
    this.rn = 0;
    this.rCap = 0;
    this.rIds = [];
    this.rMeta = [];
    this.table = null;

    // each bucket: sorted by (first four stored bytes, position) as doubles (exact below 2^53; a bucket
    // of more than 2^20 entries cannot happen with SHA-256 ids, and is sorted the slow way if it does)
    let keys = new Float64Array(256);
    let sIds = new Uint8Array(256 * W);
    let sMeta = new Uint32Array(256 * 4);
    const cmp = (a: number, b: number): number => {
      // entries a and b of the scratch copy
      for (let k = 0; k < W; k++) {
        const c = sIds[a * W + k]! - sIds[b * W + k]!;
        if (c !== 0) return c;
      }
      return (sMeta[a * 4]! >>> 31) - (sMeta[b * 4]! >>> 31);
    };
    let m = 0;
    for (let b = 0; b < BUCKETS; b++) {
      const s0 = at[b]!;
      const c = at[b + 1]! - s0;
      nDir[b] = m;
      const frozenOnly = dir[b + 1]! - dir[b]! === c;
      if (c <= 1 || frozenOnly) {
        if (m !== s0) {
          nIds.copyWithin(m * W, s0 * W, (s0 + c) * W);
          nMeta.copyWithin(m * 4, s0 * 4, (s0 + c) * 4);
        }
        m += c;
        continue;
      }
      if (keys.length < c) {
        keys = new Float64Array(c * 2);
        sIds = new Uint8Array(c * 2 * W);
        sMeta = new Uint32Array(c * 2 * 4);
      }
      sIds.set(nIds.subarray(s0 * W, (s0 + c) * W));
      sMeta.set(nMeta.subarray(s0 * 4, (s0 + c) * 4));
      const order = keys.subarray(0, c);
      for (let x = 0; x < c; x++) {
        const o = x * W;
        order[x] = (((sIds[o]! << 24) | (sIds[o + 1]! << 16) | (sIds[o + 2]! << 8) | sIds[o + 3]!) >>> 0) * 1048576 + x;
      }
      if (c < 1048576) order.sort();
      else order.set(Array.from({ length: c }, (_, x) => x).sort((x, y) => cmp(x, y) || x - y));
      const idx = (v: number): number => (c < 1048576 ? v % 1048576 : v);
      // equal first four bytes: ordered by the rest and the type, stably (insertion sort of the run)
      for (let x = 1; x < c; x++) {
        const v = order[x]!;
        let y = x - 1;
        while (y >= 0 && Math.floor(order[y]! / 1048576) === Math.floor(v / 1048576) && c < 1048576 && cmp(idx(order[y]!), idx(v)) > 0) {
          order[y + 1] = order[y]!;
          y--;
        }
        order[y + 1] = v;
      }
      let prev = -1;
      for (let x = 0; x < c; x++) {
        const e = idx(order[x]!);
        if (prev >= 0 && cmp(prev, e) === 0) continue; // listed before: the first location stays
        prev = e;
        nIds.set(sIds.subarray(e * W, e * W + W), m * W);
        nMeta[m * 4] = sMeta[e * 4]!;
        nMeta[m * 4 + 1] = sMeta[e * 4 + 1]!;
        nMeta[m * 4 + 2] = sMeta[e * 4 + 2]!;
        nMeta[m * 4 + 3] = sMeta[e * 4 + 3]!;
        m++;
      }
    }
    nDir[BUCKETS] = m;
    // entries listed twice leave a tail: cut when it is worth a copy
    if (total - m > total / 16) {
      const [ids, meta, d] = frozenArrays(m);
      ids.set(nIds.subarray(0, m * W));
      meta.set(nMeta.subarray(0, m * 4));
      d.set(nDir);
      [nIds, nMeta, nDir] = [ids, meta, d];
    }
    this.fIds = nIds;
    this.fMeta = nMeta;
    this.dir = nDir;
    this.fn = m;
  }

  // ---------- public ----------

  has(type: BlobType, id: string): boolean {
    if (!this.parse(id)) return false;
    this.ready();
    const t = type === 'tree' ? 1 : 0;
    return this.findFrozen(this.key, 0, t) >= 0 || (this.rn !== 0 && this.findRecent(this.key, 0, t) >= 0);
  }

  get(type: BlobType, id: string): BlobLocation | undefined {
    if (!this.parse(id)) return undefined;
    this.ready();
    const t = type === 'tree' ? 1 : 0;
    let meta: Uint32Array;
    let o: number;
    const f = this.findFrozen(this.key, 0, t);
    if (f >= 0) {
      meta = this.fMeta;
      o = f * 4;
    } else {
      const r = this.rn !== 0 ? this.findRecent(this.key, 0, t) : -1;
      if (r < 0) return undefined;
      meta = this.rMeta[r >>> CHUNK_BITS]!;
      o = (r & CHUNK_MASK) * 4;
    }
    return {
      type, id, packId: this.packIds[meta[o]! & ~TREE]!, offset: meta[o + 1]!, length: meta[o + 2]!, uncompressedLength: meta[o + 3]!,
    };
  }

  /** add one pack's blobs; a blob already known keeps its first location */
  addPack(packId: string, blobs: readonly PackedBlob[]): void {
    const p = this.packNumber(packId);
    for (const b of blobs) {
      if (!this.parse(b.id)) throw new Error(`index: invalid blob id ${JSON.stringify(b.id)}`);
      this.append(this.key, 0, (b.type === 'tree' ? p | TREE : p) >>> 0, b.offset, b.length, b.uncompressedLength);
    }
    if (this.rn >= this.mergeLimit()) this.compact();
  }

  /** add the blobs of an index file read by scanIndex (as addPack for each of its packs, in order) */
  addScanned(s: ScannedIndex): void {
    const packNo = s.packs.map((id) => this.packNumber(id));
    const n = s.n;
    const sMeta = s.meta;
    const sIds = s.ids;
    if (this.table) {
      for (let i = 0; i < n; i++) {
        const pt = sMeta[i * 4]!;
        this.append(sIds, i * 32, (packNo[pt & ~TREE]! | (pt & TREE)) >>> 0, sMeta[i * 4 + 1]!, sMeta[i * 4 + 2]!, sMeta[i * 4 + 3]!);
      }
    } else {
      // nothing is hashed yet: copy in runs (duplicates are dropped when merged or hashed)
      this.reserve(this.rn + n);
      for (let i = 0; i < n;) {
        const c = this.rn >>> CHUNK_BITS;
        const j = this.rn & CHUNK_MASK;
        const k = Math.min(n - i, this.rIds[c]!.length / 32 - j);
        this.rIds[c]!.set(sIds.subarray(i * 32, (i + k) * 32), j * 32);
        const meta = this.rMeta[c]!;
        for (let e = 0; e < k; e++) {
          const si = (i + e) * 4;
          const d = (j + e) * 4;
          const pt = sMeta[si]!;
          meta[d] = (packNo[pt & ~TREE]! | (pt & TREE)) >>> 0;
          meta[d + 1] = sMeta[si + 1]!;
          meta[d + 2] = sMeta[si + 2]!;
          meta[d + 3] = sMeta[si + 3]!;
        }
        this.rn += k;
        i += k;
      }
    }
    if (this.rn >= this.mergeLimit()) this.compact();
  }

  hasPack(packId: string): boolean {
    return this.packNo.has(packId);
  }

  packCount(): number {
    return this.packIds.length;
  }

  /** every blob: the frozen part in (id, type) order, then those added since in the order added */
  *entries(): Generator<BlobLocation> {
    this.ready();
    const fn = this.fn;
    const fIds = this.fIds;
    const fMeta = this.fMeta;
    const dir = this.dir;
    // each id assembled in a scratch buffer and converted whole: a flat string (prefix + rest would be a
    // cons string, which every later charCodeAt — a lookup's hex parse — has to flatten first)
    const scratch = Buffer.alloc(32);
    for (let b = 0, i = 0; b < BUCKETS && i < fn; b++) {
      scratch[0] = b >>> 8;
      scratch[1] = b & 255;
      for (; i < dir[b + 1]!; i++) {
        const m = fMeta[i * 4]!;
        scratch.set(fIds.subarray(i * W, i * W + W), PRE);
        yield {
          type: m >>> 31 ? 'tree' : 'data', id: scratch.toString('hex'),
          packId: this.packIds[m & ~TREE]!, offset: fMeta[i * 4 + 1]!, length: fMeta[i * 4 + 2]!, uncompressedLength: fMeta[i * 4 + 3]!,
        };
      }
    }
    const rn = this.rn;
    for (let i = 0; i < rn; i++) {
      const ids = this.rIds[i >>> CHUNK_BITS]!;
      const meta = this.rMeta[i >>> CHUNK_BITS]!;
      const j = i & CHUNK_MASK;
      const m = meta[j * 4]!;
      yield {
        type: m >>> 31 ? 'tree' : 'data', id: Buffer.from(ids.buffer, ids.byteOffset + j * 32, 32).toString('hex'),
        packId: this.packIds[m & ~TREE]!, offset: meta[j * 4 + 1]!, length: meta[j * 4 + 2]!, uncompressedLength: meta[j * 4 + 3]!,
      };
    }
  }
}

export interface IndexFilePack {
  id: string;
  blobs: PackedBlob[];
}

export interface IndexFile {
  supersedes?: string[];
  packs: IndexFilePack[];
}

export function encodeIndex(idx: IndexFile): Buffer {
  const j: Record<string, unknown> = {};
  if (idx.supersedes?.length) j['supersedes'] = idx.supersedes;
  j['packs'] = idx.packs.map((p) => ({
    id: p.id,
    blobs: p.blobs.map((b) => {
      const o: Record<string, unknown> = { id: b.id, type: b.type, offset: b.offset, length: b.length };
      if (b.uncompressedLength) o['uncompressed_length'] = b.uncompressedLength;
      return o;
    }),
  }));
  return Buffer.from(`${JSON.stringify(j)}\n`);
}

interface RawIndex {
  supersedes?: string[] | null;
  packs?: { id: string; blobs?: { id: string; type: string; offset: number; length: number; uncompressed_length?: number }[] }[] | null;
}

/**
 * Add to a pack's entries those of another index file's listing of the same pack that are not
 * already there (the same entry in two files counts once). Packs listed twice are rare, so the
 * key set is built only then: a set over every entry of a large repository would cost ~200 B each.
 */
export function mergePackEntries(into: PackedBlob[], more: readonly PackedBlob[]): void {
  const key = (b: PackedBlob) => `${b.type}:${b.id}:${b.offset}:${b.length}:${b.uncompressedLength}`;
  const have = new Set(into.map(key));
  for (const b of more) {
    const k = key(b);
    if (!have.has(k)) { have.add(k); into.push(b); }
  }
}

/** offsets and lengths are kept as uint32 (packs are far smaller than 4 GiB) */
const u32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;

export function decodeIndex(b: Uint8Array): IndexFile {
  let j: RawIndex;
  try {
    j = JSON.parse(Buffer.from(b).toString('utf8')) as RawIndex;
  } catch (e) {
    throw new Error(`invalid index JSON: ${(e as Error).message}`);
  }
  if (Array.isArray(j)) throw new Error('legacy index format is not supported');
  if (typeof j !== 'object' || j === null) throw new Error('index is not a JSON object');
  if (j.packs != null && !Array.isArray(j.packs)) throw new Error('index "packs" is not a list');
  // every field is checked: a lying entry (a length of -1, an id that is not hex) would otherwise be
  // stored wrapped or truncated in the typed arrays of the MasterIndex
  return {
    supersedes: j.supersedes ?? [],
    packs: (j.packs ?? []).map((p) => {
      if (typeof p?.id !== 'string' || !ID_RE.test(p.id)) throw new Error(`index names a pack with an invalid id ${JSON.stringify(p?.id)}`);
      if (p.blobs != null && !Array.isArray(p.blobs)) throw new Error(`pack ${p.id}: "blobs" is not a list`);
      return {
        id: p.id,
        blobs: (p.blobs ?? []).map((x) => {
          const where = `pack ${p.id}: blob ${JSON.stringify(x?.id)}`;
          if (typeof x?.id !== 'string' || !ID_RE.test(x.id)) throw new Error(`${where}: invalid id`);
          if (x.type !== 'data' && x.type !== 'tree') throw new Error(`${where}: invalid blob type ${JSON.stringify(x.type)} in index`);
          if (!u32(x.offset) || !u32(x.length) || x.offset + x.length >= 2 ** 32) throw new Error(`${where}: invalid offset ${JSON.stringify(x.offset)} or length ${JSON.stringify(x.length)}`);
          if (x.length < 32) throw new Error(`${where}: length ${x.length} is shorter than the encryption overhead`);
          const ul = x.uncompressed_length ?? 0;
          if (!u32(ul)) throw new Error(`${where}: invalid uncompressed_length ${JSON.stringify(ul)}`);
          return { id: x.id, type: x.type, offset: x.offset, length: x.length, uncompressedLength: ul };
        }),
      };
    }),
  };
}

/**
 * An index file as read by scanIndex: no object per blob (JSON.parse + objects cost ~1 µs and ~200 B of
 * garbage per blob, most of a load's time).
 */
export interface ScannedIndex {
  supersedes: string[];
  /** pack ids in the file's order */
  packs: string[];
  /** blobs, in the file's order */
  n: number;
  /** n × 32 id bytes */
  ids: Uint8Array;
  /** n × 4: number of the pack in `packs` (| 0x80000000 for a tree), offset, length, uncompressed length */
  meta: Uint32Array;
}

const HEXVAL = ((): Int8Array => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) t[97 + i] = 10 + i;
  return t;
})();

const K_ID = 0, K_TYPE = 1, K_OFFSET = 2, K_LENGTH = 3, K_ULEN = 4, K_BLOBS = 5, K_PACKS = 6, K_SUPERSEDES = 7;
const KEYS = ['id', 'type', 'offset', 'length', 'uncompressed_length', 'blobs', 'packs', 'supersedes'].map((k) => Buffer.from(k, 'latin1'));
const QUOTE = 34, COMMA = 44, COLON = 58, LBRACKET = 91, RBRACKET = 93, LBRACE = 123, RBRACE = 125;

function skipWs(b: Uint8Array, p: number): number {
  for (;;) {
    const c = b[p];
    if (c === 32 || c === 10 || c === 13 || c === 9) p++;
    else return p;
  }
}

/** b[p] is a quote: the position of the closing one of a plain string (no escapes, ASCII), or -1 */
function strEnd(b: Uint8Array, p: number): number {
  for (p++; ; p++) {
    const c = b[p];
    if (c === QUOTE) return p;
    if (c === undefined || c === 92 || c < 32 || c >= 128) return -1;
  }
}

/** the key whose name is b[s..e), or -1 */
function keyCode(b: Uint8Array, s: number, e: number): number {
  let k: number;
  switch (e - s) {
    case 2: k = K_ID; break;
    case 4: k = K_TYPE; break;
    case 6: k = b[s] === 111 ? K_OFFSET : K_LENGTH; break;
    case 19: k = K_ULEN; break;
    case 5: k = b[s] === 98 ? K_BLOBS : K_PACKS; break;
    case 10: k = K_SUPERSEDES; break;
    default: return -1;
  }
  const name = KEYS[k]!;
  for (let i = 0; i < name.length; i++) if (b[s + i] !== name[i]) return -1;
  return k;
}

/** where the value after the key at p starts (past the colon and whitespace); set by readKey */
let valueAt = 0;
/** the key at p (a quote): its code and valueAt, or -1 */
function readKey(b: Uint8Array, p: number): number {
  if (b[p] !== QUOTE) return -1;
  const e = strEnd(b, p);
  if (e < 0) return -1;
  const k = keyCode(b, p + 1, e);
  const c = skipWs(b, e + 1);
  if (b[c] !== COLON) return -1;
  valueAt = skipWs(b, c + 1);
  return k;
}

/** b[p] should open a string of 64 lower-case hex digits: their bytes to dst at off (if given); false if not */
function hexId(b: Uint8Array, p: number, dst: Uint8Array | null, off: number): boolean {
  if (b[p] !== QUOTE || b[p + 65] !== QUOTE) return false;
  for (let k = 0, s = p + 1; k < 32; k++, s += 2) {
    const hi = HEXVAL[b[s]!]!;
    const lo = HEXVAL[b[s + 1]!]!;
    if ((hi | lo) < 0) return false;
    if (dst) dst[off + k] = (hi << 4) | lo;
  }
  return true;
}

/** where the number read by readU32 ends */
let numberEnd = 0;
/** a JSON integer in 0 .. 2³²-1 at p (no sign, fraction or exponent), or -1 */
function readU32(b: Uint8Array, p: number): number {
  let c = b[p];
  if (c === undefined || c < 48 || c > 57) return -1;
  let v = 0;
  if (c === 48) {
    c = b[++p];
  } else {
    const start = p;
    while (c !== undefined && c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      c = b[++p];
    }
    if (p - start > 10) return -1;
  }
  if (c === 46 || c === 101 || c === 69 || (c !== undefined && c >= 48 && c <= 57) || v >= 2 ** 32) return -1;
  numberEnd = p;
  return v;
}

const latin1 = (b: Uint8Array, s: number, e: number): string => Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('latin1');

/**
 * Read an index file in the shape restic and jbackup write it (`{"supersedes":[…],"packs":[{"id":…,
 * "blobs":[{"id","type","offset","length","uncompressed_length"}]}]}`, keys in any order, any JSON
 * whitespace), straight into typed arrays. Returns null for anything else — other keys, escapes,
 * null, non-integer numbers, duplicate keys, and every value decodeIndex would refuse — so that
 * decodeIndex reads it (and reports it) exactly as before. What it accepts, JSON.parse + decodeIndex
 * accept with the same content (test/repo/index-compact.test.ts compares them on mutated files).
 * One function with its state in locals: written with closures over shared state it took twice the time.
 */
export function scanIndex(b: Uint8Array): ScannedIndex | null {
  const len = b.length;
  // a blob entry is ≥ 100 bytes of JSON
  let cap = Math.floor(len / 100) + 16;
  let ids = new Uint8Array(cap * 32);
  let meta = new Uint32Array(cap * 4);
  let n = 0;
  const packs: string[] = [];
  const supersedes: string[] = [];
  const need = (1 << K_ID) | (1 << K_TYPE) | (1 << K_OFFSET) | (1 << K_LENGTH);

  let p = skipWs(b, 0);
  if (b[p] !== LBRACE) return null;
  p = skipWs(b, p + 1);
  let topSeen = 0;
  if (b[p] === RBRACE) p++;
  else for (;;) {
    const k = readKey(b, p);
    if (k < 0 || (topSeen & (1 << k))) return null;
    topSeen |= 1 << k;
    p = valueAt;
    if (b[p] !== LBRACKET) return null;
    p = skipWs(b, p + 1);
    if (k === K_SUPERSEDES) {
      if (b[p] === RBRACKET) p++;
      else for (;;) {
        if (b[p] !== QUOTE) return null;
        const e = strEnd(b, p);
        if (e < 0) return null;
        supersedes.push(latin1(b, p + 1, e));
        p = skipWs(b, e + 1);
        const c = b[p++];
        if (c === RBRACKET) break;
        if (c !== COMMA) return null;
        p = skipWs(b, p);
      }
    } else if (k === K_PACKS) {
      if (b[p] === RBRACKET) p++;
      else for (;;) {
        // a pack
        if (b[p] !== LBRACE) return null;
        p = skipWs(b, p + 1);
        const pn = packs.length;
        packs.push('');
        let packSeen = 0;
        if (b[p] === RBRACE) p++;
        else for (;;) {
          const kp = readKey(b, p);
          if (kp < 0 || (packSeen & (1 << kp))) return null;
          packSeen |= 1 << kp;
          p = valueAt;
          if (kp === K_ID) {
            if (!hexId(b, p, null, 0)) return null;
            packs[pn] = latin1(b, p + 1, p + 65);
            p += 66;
          } else if (kp === K_BLOBS) {
            if (b[p] !== LBRACKET) return null;
            p = skipWs(b, p + 1);
            if (b[p] === RBRACKET) p++;
            else for (;;) {
              // a blob
              if (b[p] !== LBRACE) return null;
              p = skipWs(b, p + 1);
              if (n === cap) {
                cap *= 2;
                const i2 = new Uint8Array(cap * 32); i2.set(ids); ids = i2;
                const m2 = new Uint32Array(cap * 4); m2.set(meta); meta = m2;
              }
              let seen = 0, type = 0, offset = 0, length = 0, ulen = 0;
              if (b[p] !== RBRACE) for (;;) {
                const kb = readKey(b, p);
                if (kb < 0 || (seen & (1 << kb))) return null;
                seen |= 1 << kb;
                p = valueAt;
                if (kb === K_ID) {
                  if (!hexId(b, p, ids, n * 32)) return null;
                  p += 66;
                } else if (kb === K_TYPE) {
                  // exactly "data" or "tree"
                  if (b[p] !== QUOTE || b[p + 5] !== QUOTE) return null;
                  if (b[p + 1] === 100 && b[p + 2] === 97 && b[p + 3] === 116 && b[p + 4] === 97) type = 0;
                  else if (b[p + 1] === 116 && b[p + 2] === 114 && b[p + 3] === 101 && b[p + 4] === 101) type = TREE;
                  else return null;
                  p += 6;
                } else if (kb === K_OFFSET || kb === K_LENGTH || kb === K_ULEN) {
                  const v = readU32(b, p);
                  if (v < 0) return null;
                  p = numberEnd;
                  if (kb === K_OFFSET) offset = v;
                  else if (kb === K_LENGTH) length = v;
                  else ulen = v;
                } else return null;
                p = skipWs(b, p);
                const c = b[p++];
                if (c === RBRACE) break;
                if (c !== COMMA) return null;
                p = skipWs(b, p);
              } else p++;
              if ((seen & need) !== need || offset + length >= 2 ** 32 || length < 32) return null;
              meta[n * 4] = (pn | type) >>> 0;
              meta[n * 4 + 1] = offset;
              meta[n * 4 + 2] = length;
              meta[n * 4 + 3] = ulen;
              n++;
              p = skipWs(b, p);
              const c = b[p++];
              if (c === RBRACKET) break;
              if (c !== COMMA) return null;
              p = skipWs(b, p);
            }
          } else return null;
          p = skipWs(b, p);
          const c = b[p++];
          if (c === RBRACE) break;
          if (c !== COMMA) return null;
          p = skipWs(b, p);
        }
        if (!(packSeen & (1 << K_ID))) return null;
        p = skipWs(b, p);
        const c = b[p++];
        if (c === RBRACKET) break;
        if (c !== COMMA) return null;
        p = skipWs(b, p);
      }
    } else return null;
    p = skipWs(b, p);
    const c = b[p++];
    if (c === RBRACE) break;
    if (c !== COMMA) return null;
    p = skipWs(b, p);
  }
  if (skipWs(b, p) !== len) return null;
  return { supersedes, packs, n, ids, meta };
}
