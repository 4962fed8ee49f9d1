/**
 * The in-memory index: blob (type, id) → pack, offset, lengths. Stored in typed arrays
 * (open addressing keyed by the first 4 bytes of the id), about 60 B per blob, instead of
 * a Map of objects (> 150 B per blob in V8).
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

export class MasterIndex {
  private cap = 0;
  private n = 0;
  private ids = new Uint8Array(0);
  private types = new Uint8Array(0);
  private packs = new Uint32Array(0);
  private offsets = new Uint32Array(0);
  private lengths = new Uint32Array(0);
  private ulens = new Uint32Array(0);
  private table = new Int32Array(0);
  private packIds: string[] = [];
  private packNo = new Map<string, number>();

  constructor() { this.grow(1024); }

  get size(): number { return this.n; }

  private grow(cap: number): void {
    const copy = <T extends Uint8Array | Uint32Array>(a: T, n: T): T => { n.set(a.subarray(0, this.n * (a.length / Math.max(1, this.cap)))); return n; };
    this.ids = copy(this.ids, new Uint8Array(cap * 32));
    this.types = copy(this.types, new Uint8Array(cap));
    this.packs = copy(this.packs, new Uint32Array(cap));
    this.offsets = copy(this.offsets, new Uint32Array(cap));
    this.lengths = copy(this.lengths, new Uint32Array(cap));
    this.ulens = copy(this.ulens, new Uint32Array(cap));
    this.cap = cap;
    this.table = new Int32Array(cap * 2).fill(-1);
    for (let i = 0; i < this.n; i++) this.insertSlot(i);
  }

  private hashOf(id: Uint8Array, off: number, type: number): number {
    return ((id[off]! | (id[off + 1]! << 8) | (id[off + 2]! << 16) | (id[off + 3]! << 24)) ^ type) >>> 0;
  }

  private insertSlot(i: number): void {
    const mask = this.table.length - 1;
    let h = this.hashOf(this.ids, i * 32, this.types[i]!) & mask;
    while (this.table[h] !== -1) h = (h + 1) & mask;
    this.table[h] = i;
  }

  private find(type: BlobType, id: string): number {
    const t = type === 'tree' ? 1 : 0;
    const key = Buffer.from(id, 'hex');
    const mask = this.table.length - 1;
    let h = this.hashOf(key, 0, t) & mask;
    for (;;) {
      const i = this.table[h]!;
      if (i === -1) return -1;
      if (this.types[i] === t) {
        const base = i * 32;
        let eq = true;
        for (let k = 0; k < 32; k++) if (this.ids[base + k] !== key[k]) { eq = false; break; }
        if (eq) return i;
      }
      h = (h + 1) & mask;
    }
  }

  private packNumber(packId: string): number {
    let p = this.packNo.get(packId);
    if (p === undefined) {
      p = this.packIds.length;
      this.packIds.push(packId);
      this.packNo.set(packId, p);
    }
    return p;
  }

  has(type: BlobType, id: string): boolean {
    return this.find(type, id) >= 0;
  }

  get(type: BlobType, id: string): BlobLocation | undefined {
    const i = this.find(type, id);
    if (i < 0) return undefined;
    return {
      type, id, packId: this.packIds[this.packs[i]!]!, offset: this.offsets[i]!, length: this.lengths[i]!,
      uncompressedLength: this.ulens[i]!,
    };
  }

  /** add one pack's blobs; a blob already known keeps its first location */
  addPack(packId: string, blobs: readonly PackedBlob[]): void {
    const p = this.packNumber(packId);
    for (const b of blobs) {
      if (this.find(b.type, b.id) >= 0) continue;
      if (this.n + 1 > this.cap * 0.7) this.grow(this.cap * 2);
      const i = this.n++;
      this.ids.set(Buffer.from(b.id, 'hex'), i * 32);
      this.types[i] = b.type === 'tree' ? 1 : 0;
      this.packs[i] = p;
      this.offsets[i] = b.offset;
      this.lengths[i] = b.length;
      this.ulens[i] = b.uncompressedLength;
      this.insertSlot(i);
    }
  }

  hasPack(packId: string): boolean {
    return this.packNo.has(packId);
  }

  packCount(): number {
    return this.packIds.length;
  }

  *entries(): Generator<BlobLocation> {
    for (let i = 0; i < this.n; i++) {
      yield {
        type: this.types[i] ? 'tree' : 'data', id: Buffer.from(this.ids.subarray(i * 32, i * 32 + 32)).toString('hex'),
        packId: this.packIds[this.packs[i]!]!, offset: this.offsets[i]!, length: this.lengths[i]!, uncompressedLength: this.ulens[i]!,
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
