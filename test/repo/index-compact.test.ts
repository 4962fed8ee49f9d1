/**
 * The in-memory index across its two parts (frozen: sorted, compacted; recent: appended, hashed once
 * looked up) against a Map-based oracle, and the index-file scanner against JSON.parse + decodeIndex.
 */
import { describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Repository } from '../../src/repo/repository.js';
import { LocalBackend } from '../../src/backend/local.js';
import { decodeIndex, encodeIndex, MasterIndex, scanIndex, type BlobLocation, type IndexFile, type ScannedIndex } from '../../src/repo/index.js';
import type { BlobType, PackedBlob } from '../../src/repo/pack.js';
import { prng } from '../../bench/datasets.js';

/** a deterministic generator (the bench's xorshift), so a failure can be replayed */
const rng = prng;
const hexOf = (r: () => number, n = 32): string => Array.from({ length: n }, () => Math.floor(r() * 256).toString(16).padStart(2, '0')).join('');

type Loc = Omit<BlobLocation, 'type' | 'id'>;

/** what the index must answer: the first location added for each (type, id) */
class Oracle {
  m = new Map<string, Loc>();
  add(packId: string, blobs: readonly PackedBlob[]): void {
    for (const b of blobs) {
      const k = `${b.type}:${b.id}`;
      if (!this.m.has(k)) this.m.set(k, { packId, offset: b.offset, length: b.length, uncompressedLength: b.uncompressedLength });
    }
  }
}

function check(ix: MasterIndex, o: Oracle, misses: string[]): void {
  expect(ix.size).toBe(o.m.size);
  // (collected, then compared once: one expect per blob is slow at 70,000)
  const want: unknown[] = [];
  const got: unknown[] = [];
  for (const [k, loc] of o.m) {
    const [type, id] = k.split(':') as [BlobType, string];
    want.push([true, { type, id, ...loc }]);
    got.push([ix.has(type, id), ix.get(type, id)]);
  }
  for (const id of misses) {
    for (const type of ['data', 'tree'] as const) {
      if (o.m.has(`${type}:${id}`)) continue;
      want.push([false, undefined]);
      got.push([ix.has(type, id), ix.get(type, id)]);
    }
  }
  const bad = got.findIndex((g, i) => JSON.stringify(g) !== JSON.stringify(want[i]));
  if (bad >= 0) expect(got[bad]).toEqual(want[bad]);
  const seen = new Map<string, Loc>();
  let twice = 0;
  for (const e of ix.entries()) {
    const k = `${e.type}:${e.id}`;
    if (seen.has(k)) twice++;
    seen.set(k, { packId: e.packId, offset: e.offset, length: e.length, uncompressedLength: e.uncompressedLength });
  }
  expect(twice).toBe(0);
  expect(seen.size).toBe(o.m.size);
  for (const [k, loc] of seen) if (JSON.stringify(loc) !== JSON.stringify(o.m.get(k))) expect([k, loc]).toEqual([k, o.m.get(k)]);
}

function scannedOf(packs: { id: string; blobs: PackedBlob[] }[]): ScannedIndex {
  const s = scanIndex(encodeIndex({ packs }));
  expect(s).not.toBeNull();
  return s!;
}

describe('MasterIndex: frozen and recent parts', () => {
  it('answers as a Map of first locations through adds, lookups, merges and compactions (random ids)', () => {
    const r = rng(12);
    const ix = new MasterIndex();
    const o = new Oracle();
    const known: string[] = [];
    const misses = Array.from({ length: 200 }, () => hexOf(r));
    for (let round = 0; round < 40; round++) {
      const packs: { id: string; blobs: PackedBlob[] }[] = [];
      for (let p = 0; p < 1 + Math.floor(r() * 4); p++) {
        const blobs: PackedBlob[] = [];
        for (let i = 0; i < Math.floor(r() * 300); i++) {
          const x = r();
          // mostly new ids; some already known (in either part, or earlier in this pack), as the same or the other type
          const id = x < 0.8 || known.length === 0 ? hexOf(r) : known[Math.floor(r() * known.length)]!;
          known.push(id);
          blobs.push({ id, type: r() < 0.1 ? 'tree' : 'data', offset: Math.floor(r() * 2 ** 31), length: 32 + Math.floor(r() * 2 ** 20), uncompressedLength: r() < 0.5 ? 0 : Math.floor(r() * 2 ** 32) });
        }
        packs.push({ id: r() < 0.1 && round > 0 ? 'a'.repeat(64) : hexOf(r), blobs });
      }
      if (r() < 0.5) for (const p of packs) ix.addPack(p.id, p.blobs);
      else ix.addScanned(scannedOf(packs));
      for (const p of packs) o.add(p.id, p.blobs);
      const x = r();
      if (x < 0.25) ix.compact();
      else if (x < 0.6) check(ix, o, misses); // lookups: the recent part gets its hash, later adds go through it
    }
    check(ix, o, misses);
    ix.compact();
    check(ix, o, misses);
    ix.compact(); // nothing recent: no change
    check(ix, o, misses);
  });

  it('merges by itself once the recent part outgrows its limit while lookups run (70,000 blobs after a lookup)', () => {
    const r = rng(7);
    const ix = new MasterIndex();
    const o = new Oracle();
    const first: PackedBlob[] = Array.from({ length: 1000 }, (_, i) => ({ id: hexOf(r), type: 'data', offset: i * 100, length: 100, uncompressedLength: 0 }));
    const P0 = hexOf(r);
    ix.addPack(P0, first);
    o.add(P0, first);
    ix.compact();
    expect(ix.has('data', first[5]!.id)).toBe(true);
    for (let p = 0; p < 70; p++) {
      const blobs: PackedBlob[] = Array.from({ length: 1000 }, (_, i) => ({ id: i === 0 ? first[p]!.id : hexOf(r), type: 'data', offset: i * 64, length: 64, uncompressedLength: 7 }));
      const packId = hexOf(r);
      ix.addPack(packId, blobs);
      o.add(packId, blobs);
      // a lookup between packs, as the archiver does
      expect(ix.has('data', blobs[999]!.id)).toBe(true);
      expect(ix.get('data', first[p]!.id)!.offset).toBe(p * 100); // the first location stays
    }
    check(ix, o, []);
  });

  it('keeps the first location of a blob listed twice: in one pack, in two packs, across a compaction', () => {
    const [a, b, c] = [hexOf(rng(1)), hexOf(rng(2)), hexOf(rng(3))];
    const P1 = '1'.repeat(64), P2 = '2'.repeat(64), P3 = '3'.repeat(64);
    const ix = new MasterIndex();
    ix.addPack(P1, [
      { id: a, type: 'data', offset: 0, length: 100, uncompressedLength: 0 },
      { id: a, type: 'data', offset: 100, length: 50, uncompressedLength: 0 },
    ]);
    ix.addPack(P2, [{ id: a, type: 'data', offset: 7, length: 70, uncompressedLength: 0 }, { id: b, type: 'data', offset: 0, length: 40, uncompressedLength: 0 }]);
    expect(ix.size).toBe(2); // (a lookup: the recent part is hashed, duplicates dropped)
    expect(ix.get('data', a)).toMatchObject({ packId: P1, offset: 0, length: 100 });
    ix.compact();
    ix.addPack(P3, [{ id: a, type: 'data', offset: 1, length: 33, uncompressedLength: 0 }, { id: b, type: 'data', offset: 1, length: 33, uncompressedLength: 0 }, { id: c, type: 'data', offset: 1, length: 33, uncompressedLength: 0 }]);
    ix.compact();
    expect(ix.size).toBe(3);
    expect(ix.get('data', a)).toMatchObject({ packId: P1, offset: 0 });
    expect(ix.get('data', b)).toMatchObject({ packId: P2, offset: 0 });
    expect(ix.get('data', c)).toMatchObject({ packId: P3, offset: 1 });
    // every pack stays known, even one whose blobs were all known before
    expect(ix.hasPack(P3) && ix.hasPack(P2) && ix.packCount() === 3).toBe(true);
    // duplicates in the unhashed recent part, dropped by the merge
    const ix2 = new MasterIndex();
    ix2.addPack(P1, [{ id: c, type: 'tree', offset: 5, length: 40, uncompressedLength: 0 }]);
    ix2.addPack(P2, [{ id: c, type: 'tree', offset: 6, length: 40, uncompressedLength: 0 }]);
    ix2.compact();
    expect(ix2.size).toBe(1);
    expect(ix2.get('tree', c)).toMatchObject({ packId: P1, offset: 5 });
  });

  it('keeps types apart: the same id as data and as tree, in either part', () => {
    const id = hexOf(rng(9));
    const D = 'd'.repeat(64), T = 'e'.repeat(64);
    for (const compactBetween of [false, true]) {
      const ix = new MasterIndex();
      ix.addPack(T, [{ id, type: 'tree', offset: 10, length: 64, uncompressedLength: 128 }]);
      if (compactBetween) ix.compact();
      expect(ix.has('data', id)).toBe(false);
      ix.addPack(D, [{ id, type: 'data', offset: 20, length: 96, uncompressedLength: 0 }]);
      expect(ix.get('tree', id)).toEqual({ type: 'tree', id, packId: T, offset: 10, length: 64, uncompressedLength: 128 });
      expect(ix.get('data', id)).toEqual({ type: 'data', id, packId: D, offset: 20, length: 96, uncompressedLength: 0 });
      ix.compact();
      expect(ix.size).toBe(2);
      expect(ix.get('tree', id)!.packId).toBe(T);
      expect(ix.get('data', id)!.packId).toBe(D);
      expect([...ix.entries()].map((e) => e.type)).toEqual(['data', 'tree']);
    }
  });

  it('ids that share their first bytes (same bucket, same first four bytes) sort and dedupe correctly', () => {
    const r = rng(77);
    const ix = new MasterIndex();
    const o = new Oracle();
    const stem = hexOf(r, 4);
    for (let round = 0; round < 6; round++) {
      const blobs: PackedBlob[] = Array.from({ length: 400 }, (_, i) => ({
        // two of three share the first four bytes, the others the first two (the same bucket)
        id: i % 3 ? stem + hexOf(r, 28) : stem.slice(0, 4) + hexOf(r, 30),
        type: i % 7 ? 'data' : 'tree', offset: i, length: 32 + round, uncompressedLength: 0,
      }));
      blobs.push(...blobs.slice(0, 50).map((b) => ({ ...b, offset: b.offset + 1000 })));
      const packId = hexOf(r);
      ix.addPack(packId, blobs);
      o.add(packId, blobs);
      if (round % 2) ix.compact();
    }
    check(ix, o, [stem + '0'.repeat(56), stem + 'f'.repeat(56)]);
  });

  it('refuses ids that are not 64 hex digits on lookup, and on add', () => {
    const ix = new MasterIndex();
    const id = hexOf(rng(5));
    ix.addPack('f'.repeat(64), [{ id, type: 'data', offset: 0, length: 40, uncompressedLength: 0 }]);
    expect(ix.has('data', id)).toBe(true);
    expect(ix.has('data', id.toUpperCase())).toBe(true); // as Buffer's hex decoding read it before
    expect(ix.has('data', id.slice(0, 63))).toBe(false);
    expect(ix.has('data', `${id}00`)).toBe(false);
    expect(ix.has('data', `${id.slice(0, 62)}zz`)).toBe(false);
    expect(() => ix.addPack('f'.repeat(64), [{ id: 'xyz', type: 'data', offset: 0, length: 40, uncompressedLength: 0 }])).toThrow(/invalid blob id/);
  });
});

/** an IndexFile as decodeIndex gives it, from what scanIndex read */
function asIndexFile(s: ScannedIndex): IndexFile {
  const packs = s.packs.map((id) => ({ id, blobs: [] as PackedBlob[] }));
  for (let i = 0; i < s.n; i++) {
    const m = s.meta[i * 4]!;
    packs[m & 0x7fffffff]!.blobs.push({
      id: Buffer.from(s.ids.subarray(i * 32, i * 32 + 32)).toString('hex'), type: m >>> 31 ? 'tree' : 'data',
      offset: s.meta[i * 4 + 1]!, length: s.meta[i * 4 + 2]!, uncompressedLength: s.meta[i * 4 + 3]!,
    });
  }
  return { supersedes: s.supersedes, packs };
}

function decoded(b: Uint8Array): IndexFile | Error {
  try {
    return decodeIndex(b);
  } catch (e) {
    return e as Error;
  }
}

describe('scanIndex: the common shape only, the same content as decodeIndex', () => {
  const r = rng(3);
  const sample: IndexFile = {
    supersedes: [hexOf(r)],
    packs: Array.from({ length: 3 }, (_, p) => ({
      id: hexOf(r),
      blobs: Array.from({ length: p * 2 }, (_, i) => ({ id: hexOf(r), type: (i % 2 ? 'tree' : 'data') as BlobType, offset: i * 1000, length: 1000, uncompressedLength: i % 2 ? 0 : 2 ** 32 - 1 })),
    })),
  };
  const json = encodeIndex(sample).toString();

  it('reads what encodeIndex writes (and restic-shaped variants) as decodeIndex does', () => {
    const variants = [
      json,
      encodeIndex({ packs: sample.packs }).toString(), // no supersedes
      '{"packs":[]}', '{}', ' { } \n', '{"supersedes":[],"packs":[{"id":"' + 'a'.repeat(64) + '","blobs":[]}]}',
      '{"packs":[{"id":"' + 'a'.repeat(64) + '"}]}', // a pack without "blobs"
      JSON.stringify(JSON.parse(json), null, 2), // whitespace everywhere
      // keys in another order
      JSON.stringify({ packs: JSON.parse(json).packs.map((p: { id: string; blobs: object[] }) => ({ blobs: p.blobs.map((b) => Object.fromEntries(Object.entries(b).reverse())), id: p.id })), supersedes: sample.supersedes }),
    ];
    for (const v of variants) {
      const s = scanIndex(Buffer.from(v));
      expect(s, v).not.toBeNull();
      expect(asIndexFile(s!)).toEqual(decodeIndex(Buffer.from(v)));
    }
  });

  it('leaves every other shape to decodeIndex (which reads or refuses it as before)', () => {
    const id = 'b'.repeat(64);
    const blob = (fields: string) => `{"packs":[{"id":"${'c'.repeat(64)}","blobs":[{${fields}}]}]}`;
    const ok = `"id":"${id}","type":"data","offset":0,"length":32`;
    const others = [
      blob(ok.replace('"data"', '"\\u0064ata"')), // an escape: JSON.parse reads "data"
      blob(`${ok},"uncompressed_length":null`), blob(`${ok},"uncompressed_length":0`).replace('"offset":0', '"offset":0e0'),
      blob(ok.replace('"length":32', '"length":32.0')), blob(ok.replace('"length":32', '"length":-32')),
      blob(ok.replace('"length":32', '"length":31')), blob(ok.replace('"offset":0', '"offset":4294967295')),
      blob(ok.replace('"offset":0', '"offset":00')), blob(ok.replace('"length":32', '"length":99999999999')),
      blob(`${ok},"extra":1`), blob(`${ok},"id":"${'d'.repeat(64)}"`), blob(ok.replace(id, id.toUpperCase())),
      blob(ok.replace(id, id.slice(2))), blob(ok.replace('"data"', '"blob"')), blob(ok.replace(',"length":32', '')),
      `{"packs":[{"id":"${'c'.repeat(64)}","blobs":null}]}`, '{"packs":null}', '{"supersedes":null}', '[]', 'null', '',
      `${json}x`, json.slice(0, -10), `\ufeff${json}`, '{"packs":[],"packs":[]}', `{"packs":[{"blobs":[]}]}`,
      `{"packs":[{"id":"${'c'.repeat(63)}é","blobs":[]}]}`,
    ];
    for (const v of others) {
      const bytes = Buffer.from(v);
      expect(scanIndex(bytes), v).toBeNull();
      decoded(bytes); // (may read or throw: the slow path's business)
    }
  });

  it('never accepts a mutated file that decodeIndex refuses, nor reads it differently', () => {
    const base = Buffer.from(json);
    const r2 = rng(99);
    const alphabet = Buffer.from('{}[]:,"0123456789abcdefxyz \n\\-.eE');
    let accepted = 0;
    for (let t = 0; t < 4000; t++) {
      const b = Buffer.from(base);
      const edits = 1 + Math.floor(r2() * 3);
      let m: Buffer = b;
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(r2() * m.length);
        const c = alphabet[Math.floor(r2() * alphabet.length)]!;
        const k = r2();
        if (k < 0.5) m[at] = c;
        else if (k < 0.75) m = Buffer.concat([m.subarray(0, at), Buffer.from([c]), m.subarray(at)]);
        else m = Buffer.concat([m.subarray(0, at), m.subarray(at + 1)]);
      }
      const s = scanIndex(m);
      const d = decoded(m);
      if (s) {
        accepted++;
        expect(d).not.toBeInstanceOf(Error);
        expect(asIndexFile(s)).toEqual(d);
      }
    }
    expect(accepted).toBeGreaterThan(0); // (some edits keep it valid: a digit for a digit, whitespace)
  });
});

describe('Repository.loadIndex over both readers', () => {
  it('loads files in the common shape and others alike, and names a malformed file in its error', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'jbackup-index-compact-'));
    try {
      const pw = Buffer.from('pw');
      const w = await Repository.init(new LocalBackend(dir), pw, { kdf: { N: 1024, r: 8, p: 1 } });
      const r = rng(21);
      const packs = [{ id: hexOf(r), blobs: [{ id: hexOf(r), type: 'data' as const, offset: 0, length: 40, uncompressedLength: 0 }] }];
      const other = [{ id: hexOf(r), blobs: [{ id: hexOf(r), type: 'tree' as const, offset: 0, length: 50, uncompressedLength: 60 }] }];
      await w.saveUnpacked('index', encodeIndex({ packs }));
      // not the common shape (an unknown key): read by JSON.parse + decodeIndex
      const json = JSON.parse(encodeIndex({ packs: other }).toString()) as Record<string, unknown>;
      await w.saveUnpacked('index', Buffer.from(JSON.stringify({ ...json, note: 'x' })));
      const a = await Repository.open(new LocalBackend(dir), pw);
      await a.loadIndex();
      expect(a.index.size).toBe(2);
      expect(a.index.get('data', packs[0]!.blobs[0]!.id)).toMatchObject({ packId: packs[0]!.id, length: 40 });
      expect(a.index.get('tree', other[0]!.blobs[0]!.id)).toMatchObject({ packId: other[0]!.id, length: 50, uncompressedLength: 60 });
      expect([...a.indexFiles.values()].flat().sort()).toEqual([packs[0]!.id, other[0]!.id].sort());
      const bad = await w.saveUnpacked('index', Buffer.from('{"packs":['));
      const b = await Repository.open(new LocalBackend(dir), pw);
      await expect(b.loadIndex()).rejects.toThrow(new RegExp(`index/${bad}: invalid index JSON`));
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
