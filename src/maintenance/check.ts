/**
 * check: structure (config, keys, index ↔ packs, sizes, every tree and blob reachable from snapshots)
 * and, with readData, every selected pack byte by byte (hash, header vs index, every blob's MAC and hash).
 */
import { BufferPool, DecodePool, PACK_BUFFER } from '../repo/decodepool.js';
import { randomInt } from 'node:crypto';
import type { Repository } from '../repo/repository.js';
import { mapLimit } from '../repo/repository.js';
import { decodeIndex, mergePackEntries } from '../repo/index.js';
import { packSizeFromBlobs, parsePackTail, type PackedBlob } from '../repo/pack.js';
import { walkTrees } from './walk.js';

export type ReadDataSubset = { kind: 'all' } | { kind: 'part'; n: number; t: number } | { kind: 'percent'; p: number } | { kind: 'size'; bytes: number };

export interface CheckOptions {
  readData?: ReadDataSubset | null;
  checkUnused?: boolean;
  /** read-data progress: called once with nothing done yet (the totals), then after each pack; error: after each problem found */
  progress?: { packRead?(done: number, total: number, bytesDone: number, bytesTotal: number): void; error?(): void };
}

export interface CheckProblem {
  kind: 'error' | 'hint';
  object: string;
  message: string;
}

export interface CheckResult {
  problems: CheckProblem[];
  packs: number;
  snapshots: number;
  trees: number;
  packsRead: number;
  ok: boolean;
}

export function parseSubset(s: string): ReadDataSubset {
  let m = /^(\d+)\/(\d+)$/.exec(s);
  if (m) {
    const n = Number(m[1]);
    const t = Number(m[2]);
    if (t < 1 || n < 1 || n > t) throw new Error(`invalid subset "${s}": n must be in 1..t`);
    return { kind: 'part', n, t };
  }
  m = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (m) {
    const p = Number(m[1]);
    if (p <= 0 || p > 100) throw new Error(`invalid percentage "${s}"`);
    return { kind: 'percent', p };
  }
  m = /^(\d+(?:\.\d+)?)([kmgt])?$/i.exec(s);
  if (m) {
    const mult: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
    return { kind: 'size', bytes: Math.floor(Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()]! : 1)) };
  }
  throw new Error(`invalid --read-data-subset "${s}" (use n/t, x% or a size like 500M)`);
}

export async function checkRepository(repo: Repository, o: CheckOptions = {}): Promise<CheckResult> {
  const problems: CheckProblem[] = [];
  const err = (object: string, message: string) => { problems.push({ kind: 'error', object, message }); o.progress?.error?.(); };
  const hint = (object: string, message: string) => problems.push({ kind: 'hint', object, message });
  // the decode workers load while the index is read and compared with the packs
  const pool = o.readData ? new DecodePool(repo.key) : null;
  pool?.warm();
  try {
    return await checkWith(repo, o, problems, err, hint, pool);
  } finally {
    await pool?.close();
  }
}

async function checkWith(
  repo: Repository, o: CheckOptions, problems: CheckProblem[],
  err: (object: string, message: string) => void, hint: (object: string, message: string) => void, pool: DecodePool | null,
): Promise<CheckResult> {

  // index files: each loaded on its own so one bad file is named
  const packsInIndex = new Map<string, PackedBlob[]>();
  const indexOfPack = new Map<string, string[]>();
  const indexFiles = await repo.backend.list('index');
  await mapLimit(indexFiles, 8, async (f) => {
    try {
      const idx = decodeIndex(await repo.loadUnpacked('index', f.name));
      for (const p of idx.packs) {
        indexOfPack.set(p.id, [...(indexOfPack.get(p.id) ?? []), f.name]);
        // every entry any index file gives for the pack (the same entry twice counts once): a second
        // index file with made-up entries for an existing pack must show in the checks below
        const l = packsInIndex.get(p.id);
        if (!l) packsInIndex.set(p.id, [...p.blobs]);
        else mergePackEntries(l, p.blobs);
        repo.index.addPack(p.id, p.blobs);
      }
    } catch (e) {
      err(`index/${f.name}`, `index file cannot be loaded: ${(e as Error).message}`);
    }
  });
  for (const [p, files] of indexOfPack) if (files.length > 1) hint(`data/${p}`, `pack is contained in several indexes: ${files.map((x) => x.slice(0, 8)).join(', ')}`);

  // packs ↔ index
  const packFiles = new Map((await repo.backend.list('data')).map((f) => [f.name, f.size]));
  for (const [id, blobs] of packsInIndex) {
    const size = packFiles.get(id);
    if (size === undefined) { err(`data/${id}`, 'pack is referenced in the index but does not exist'); continue; }
    const want = packSizeFromBlobs(blobs);
    if (size !== want) err(`data/${id}`, `unexpected file size: got ${size}, expected ${want}`);
    const types = new Set(blobs.map((b) => b.type));
    if (types.size > 1) hint(`data/${id}`, 'pack contains a mix of tree and data blobs');
    const sorted = [...blobs].sort((a, b) => a.offset - b.offset);
    let off = 0;
    for (const b of sorted) {
      if (b.offset < off) { err(`data/${id}`, `index entries overlap: blob ${b.id} at offset ${b.offset} starts before the previous entry ends (${off})`); break; }
      if (b.offset > off) { err(`data/${id}`, `index entries leave a gap: blob ${b.id} at offset ${b.offset}, the previous entry ends at ${off}`); break; }
      off += b.length;
    }
    if (sorted.length && off + packSizeFromBlobs([]) > size) err(`data/${id}`, `index entries end at offset ${off}, beyond the pack's ${size} bytes`);
  }
  for (const id of packFiles.keys()) if (!packsInIndex.has(id)) hint(`data/${id}`, 'pack is not referenced in any index (orphan; prune removes it)');

  // read data: runs in the decode workers while the main thread walks the trees below
  let packsRead = 0;
  const readDataDone = (async () => {
    if (o.readData && pool) {
      const all = [...packFiles.keys()].filter((p) => packsInIndex.has(p)).sort();
      const sel = selectPacks(all, packFiles, o.readData);
      // packs are read into recycled shared buffers that the workers read where they are: a fresh
      // 16 MiB buffer per pack left ~200 MiB of garbage for V8 to find
      const buffers = new BufferPool(PACK_BUFFER, 4);
      const bytesTotal = sel.reduce((a, id) => a + (packFiles.get(id) ?? 0), 0);
      let bytesRead = 0;
      o.progress?.packRead?.(0, sel.length, 0, bytesTotal);
      // one pack per core in the workers plus one being read
      await mapLimit(sel, Math.max(3, repo.backend.properties.connections), async (id) => {
        // whatever goes wrong with one pack is reported and the others are still read
        try {
          await readPack(repo, pool, buffers, id, packFiles.get(id) ?? 0, packsInIndex.get(id)!, err);
        } catch (e) {
          err(`data/${id}`, `pack cannot be verified: ${(e as Error).message}`);
        }
        packsRead++;
        bytesRead += packFiles.get(id) ?? 0;
        o.progress?.packRead?.(packsRead, sel.length, bytesRead, bytesTotal);
      });
    }
  })();
  readDataDone.catch(() => {}); // awaited after the walk

  // snapshots and trees
  const snapshots = await repo.backend.list('snapshots');
  const roots: string[] = [];
  await mapLimit(snapshots, 8, async (f) => {
    try {
      const s = await repo.loadSnapshot(f.name);
      roots.push(s.tree);
    } catch (e) {
      err(`snapshots/${f.name}`, `snapshot cannot be loaded: ${(e as Error).message}`);
    }
  });
  const usedData = new Set<string>();
  const trees = await walkTrees(repo, roots, {
    treeError: (id, e) => err(`tree/${id}`, `tree cannot be loaded: ${e.message}`),
    node: (treeId, n) => {
      const name = n.name.toString();
      if (n.name.length === 0) err(`tree/${treeId}`, 'node has an empty name');
      switch (n.type) {
        case 'file':
          if (!n.content) { err(`tree/${treeId}`, `file "${name}" has nil blob list`); break; }
          for (const b of n.content) {
            usedData.add(b);
            if (!repo.index.has('data', b)) err(`tree/${treeId}`, `file "${name}" blob ${b} not found in index`);
          }
          break;
        case 'dir':
          if (!n.subtree) err(`tree/${treeId}`, `dir "${name}" has no subtree`);
          else if (!repo.index.has('tree', n.subtree)) err(`tree/${treeId}`, `dir "${name}" subtree ${n.subtree} not found in index`);
          break;
        case 'symlink': case 'dev': case 'chardev': case 'fifo': case 'socket':
          break;
        default:
          err(`tree/${treeId}`, `node "${name}" has invalid type "${n.type}"`);
      }
    },
  });
  for (const r of roots) if (!repo.index.has('tree', r)) err(`tree/${r}`, 'snapshot tree not found in index');
  if (o.checkUnused) {
    for (const b of repo.index.entries()) {
      if (b.type === 'data' ? !usedData.has(b.id) : !trees.has(b.id)) err(`${b.type}/${b.id}`, 'blob is not referenced by any snapshot');
    }
  }

  await readDataDone;

  return {
    problems, packs: packFiles.size, snapshots: snapshots.length, trees: trees.size, packsRead,
    ok: !problems.some((p) => p.kind === 'error'),
  };
}

function selectPacks(all: string[], sizes: Map<string, number>, s: ReadDataSubset): string[] {
  switch (s.kind) {
    case 'all': return all;
    case 'part': return all.filter((id) => Number.parseInt(id.slice(0, 2), 16) % s.t === s.n - 1);
    case 'percent': {
      const n = Math.max(1, Math.round((all.length * s.p) / 100));
      return shuffle(all).slice(0, Math.min(n, all.length));
    }
    case 'size': {
      const out: string[] = [];
      let total = 0;
      for (const id of shuffle(all)) {
        if (total >= s.bytes) break;
        out.push(id);
        total += sizes.get(id) ?? 0;
      }
      return out;
    }
  }
}

function shuffle<T>(a: T[]): T[] {
  const b = [...a];
  for (let i = b.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [b[i], b[j]] = [b[j]!, b[i]!];
  }
  return b;
}


async function readPack(repo: Repository, pool: DecodePool, buffers: BufferPool, id: string, size: number, indexed: PackedBlob[], err: (o: string, m: string) => void): Promise<void> {
  const obj = `data/${id}`;
  let bytes: Buffer;
  const into = buffers.take(size);
  try {
    // the listed size: a pack that is shorter fails the read, a longer one the header and hash checks
    bytes = await repo.backend.load({ type: 'data', name: id }, 0, size || undefined, into);
  } catch (e) {
    buffers.give(into);
    err(obj, `pack cannot be read: ${(e as Error).message}`);
    return;
  }
  let header: PackedBlob[] | null = null;
  try {
    const r = parsePackTail(repo.key, bytes, bytes.length);
    if ('need' in r) throw new Error('header larger than the file');
    header = r;
  } catch (e) {
    err(obj, `pack header cannot be read: ${(e as Error).message}`);
  }
  // the pack id and every blob are verified in a decode worker, which reads our own buffer where
  // it is (shared memory) and may decrypt it in place; a buffer a backend returned is handed over
  const blobs = header ?? [];
  const own = bytes.buffer === into.buffer;
  let res;
  try {
    res = await pool.decode(bytes, blobs, { hashPack: true, scratch: own });
  } finally {
    buffers.give(into);
  }
  if (res.packHash !== id) err(obj, `Pack ID does not match, want ${id.slice(0, 8)}, got ${(res.packHash ?? '').slice(0, 8)}`);
  if (!header) return;
  const key = (b: PackedBlob) => `${b.type}:${b.id}:${b.offset}:${b.length}:${b.uncompressedLength}`;
  const idx = new Set(indexed.map(key));
  for (const b of header) if (!idx.has(key(b))) err(obj, `blob ${b.id} is not contained in index or position is incorrect`);
  if (header.length !== indexed.length) err(obj, `pack header lists ${header.length} blobs, the index ${indexed.length}`);
  header.forEach((b, i) => {
    const e = res.results[i]?.error;
    if (e) err(obj, `blob ${b.id}: ${e}`);
  });
}
