/**
 * prune: plan from the index (no pack scan), repack what is worth it, then — in this order — write
 * the new index, delete the superseded index files, delete unused packs. A kill at any point leaves
 * a repository in which every blob a snapshot needs is indexed and present.
 */
import type { Repository } from '../repo/repository.js';
import { BufferPool, DecodePool, PACK_BUFFER } from '../repo/decodepool.js';
import { mapLimit } from '../repo/repository.js';
import { decodeIndex, mergePackEntries, type IndexFilePack } from '../repo/index.js';
import { packSizeFromBlobs, type PackedBlob } from '../repo/pack.js';
import { walkTrees } from './walk.js';
import { writeIndexFiles } from './indexwriter.js';

const DELETE_CONCURRENCY = 8;

export type MaxUnused = { kind: 'percent'; p: number } | { kind: 'bytes'; n: number } | { kind: 'unlimited' };

export interface PruneOptions {
  maxUnused?: MaxUnused;
  maxRepackSize?: number;
  repackUncompressed?: boolean;
  repackSmall?: boolean;
  dryRun?: boolean;
  /** called before every mutation of the repository (tests use it to kill at every phase) */
  beforeMutation?: (phase: string) => Promise<void>;
  log?: (line: string) => void;
  /** progress of the long phases: packs repacked, files deleted */
  progress?: (phase: 'repack' | 'delete', done: number, total: number) => void;
  /** the plan, once made and before anything changes (restic prints it then) */
  onPlan?: (s: PruneStats) => void;
}

/** restic's prune statistics in blobs (sizes: stored blob lengths; unreferenced: whole files; repack: all blobs of the repacked packs, repackRm: their unused ones) */
export interface PrunePlan {
  repackBlobs: number; repackSize: number; repackRmBlobs: number; repackRmSize: number;
  removeBlobs: number; removeSize: number; unrefSize: number;
}

export interface PruneStats {
  blobsUsed: number;
  sizeUsed: number;
  blobsUnused: number;
  sizeUnused: number;
  packsTotal: number;
  packsKeep: number;
  packsRepack: number;
  packsRemove: number;
  packsUnreferenced: number;
  sizeRepack: number;
  sizeRemove: number;
  /** bytes freed after repacking (approximate for repacks: removed minus the rewritten used part) */
  sizeFreed: number;
  indexFilesOld: number;
  indexFilesNew: number;
  /** temp files of interrupted runs deleted (local backend) */
  tempFilesRemoved?: number;
  unusedAfter: number;
  plan?: PrunePlan;
}

export function parseMaxUnused(s: string): MaxUnused {
  if (s === 'unlimited') return { kind: 'unlimited' };
  const m = /^(\d+(?:\.\d+)?)(%|[kmgt]?)$/i.exec(s.trim());
  if (!m) throw new Error(`invalid --max-unused "${s}"`);
  if (m[2] === '%') {
    const p = Number(m[1]);
    if (p < 0 || p >= 100) throw new Error('--max-unused percentage must be in [0, 100)');
    return { kind: 'percent', p };
  }
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return { kind: 'bytes', n: Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!) };
}

export class PruneError extends Error {
  override name = 'PruneError';
}

interface PackInfo {
  id: string;
  blobs: PackedBlob[];
  size: number;
  usedSize: number;
  unusedSize: number;
  usedBlobs: number;
  unusedBlobs: number;
  uncompressed: boolean;
  mixed: boolean;
}

/**
 * Why a pack's index entries cannot describe a file of `size` bytes, or null: the entries must tile
 * the blob area from offset 0 without gaps or overlaps, and the blobs plus header must be the file's
 * size (restic prune: "calculated size does not match real size").
 */
export function indexContradiction(blobs: readonly PackedBlob[], size: number): string | null {
  const sorted = [...blobs].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const b of sorted) {
    if (b.offset !== end) {
      return b.offset < end ? `index entries overlap (blob ${b.id} at offset ${b.offset}, the previous entry ends at ${end})`
        : `index entries leave a gap (blob ${b.id} at offset ${b.offset}, the previous entry ends at ${end})`;
    }
    end += b.length;
  }
  const want = packSizeFromBlobs(blobs);
  if (want !== size) return `calculated size ${want} from the index does not match its real size ${size}`;
  return null;
}

/** temp files older than this are left by dead writers */
const STALE_TEMP_MS = 60 * 60 * 1000;

export async function prune(repo: Repository, o: PruneOptions = {}): Promise<PruneStats> {
  const log = o.log ?? (() => {});
  const maxUnused = o.maxUnused ?? { kind: 'percent', p: 5 };
  const mutate = async (phase: string) => { await o.beforeMutation?.(phase); };

  // 1. the index, per file
  log('loading indexes...');
  const indexFiles = await repo.backend.list('index');
  // every entry any index file gives for a pack (the same entry in several files counts once): a
  // pack's entries are checked against each other and against the file before anything is decided
  const packBlobs = new Map<string, PackedBlob[]>();
  await mapLimit(indexFiles, 8, async (f) => {
    let idx;
    try {
      idx = decodeIndex(await repo.loadUnpacked('index', f.name));
    } catch (e) {
      throw new PruneError(`index/${f.name} cannot be loaded (${(e as Error).message}): refusing to prune; run "jbackup repair index"`);
    }
    for (const p of idx.packs) {
      const l = packBlobs.get(p.id);
      if (!l) packBlobs.set(p.id, [...p.blobs]);
      else mergePackEntries(l, p.blobs);
      repo.index.addPack(p.id, p.blobs);
    }
  });
  const packFiles = new Map((await repo.backend.list('data')).map((f) => [f.name, f.size]));
  for (const [id, blobs] of packBlobs) {
    const size = packFiles.get(id);
    if (size === undefined) throw new PruneError(`pack ${id} is in the index but missing from the repository: refusing to prune; run "jbackup repair index" first`);
    const problem = indexContradiction(blobs, size);
    if (problem) throw new PruneError(`pack ${id}: ${problem}: the index does not describe this pack; refusing to prune; run "jbackup repair index"`);
  }

  // 2. what the snapshots use
  log('finding data that is still in use for snapshots...');
  const roots: string[] = [];
  for (const f of await repo.backend.list('snapshots')) {
    try {
      roots.push((await repo.loadSnapshot(f.name)).tree);
    } catch (e) {
      throw new PruneError(`snapshot ${f.name} cannot be loaded (${(e as Error).message}): what it uses is unknown; refusing to prune`);
    }
  }
  const usedData = new Set<string>();
  let treeErr: Error | null = null;
  const usedTrees = await walkTrees(repo, roots, {
    treeError: (id, e) => { treeErr ??= new PruneError(`tree ${id} cannot be loaded (${e.message}): refusing to prune; run "jbackup check"`); },
    node: (_t, n) => { if (n.type === 'file') for (const b of n.content ?? []) usedData.add(b); },
  });
  if (treeErr) throw treeErr;
  for (const b of usedData) {
    if (!repo.index.has('data', b)) throw new PruneError(`data blob ${b} used by a snapshot is missing from the index: refusing to prune; run "jbackup check"`);
  }

  // 3. classify packs; a blob kept in one pack is unused in any other
  const kept = new Set<string>();
  /** where each used blob is kept, for the check of dropped duplicates below */
  const keptAt = new Map<string, { pack: string; blob: PackedBlob }>();
  const infos: PackInfo[] = [];
  for (const [id, blobs] of packBlobs) {
    const info: PackInfo = {
      id, blobs, size: packFiles.get(id)!, usedSize: 0, unusedSize: 0, usedBlobs: 0, unusedBlobs: 0,
      uncompressed: blobs.some((b) => b.uncompressedLength === 0), mixed: new Set(blobs.map((b) => b.type)).size > 1,
    };
    for (const b of blobs) {
      const key = `${b.type}:${b.id}`;
      const used = b.type === 'data' ? usedData.has(b.id) : usedTrees.has(b.id);
      if (used && !kept.has(key)) {
        kept.add(key);
        keptAt.set(key, { pack: id, blob: b });
        info.usedSize += b.length;
        info.usedBlobs++;
      } else {
        info.unusedSize += b.length;
        info.unusedBlobs++;
      }
    }
    infos.push(info);
  }
  const unreferenced = [...packFiles.keys()].filter((id) => !packBlobs.has(id));

  const remove = infos.filter((p) => p.usedBlobs === 0);
  const partial = infos.filter((p) => p.usedBlobs > 0);
  const mustRepack = partial.filter((p) => p.mixed || (o.repackUncompressed && repo.version >= 2 && p.uncompressed));
  let candidates = partial.filter((p) => !mustRepack.includes(p) && p.unusedBlobs > 0);
  const small = o.repackSmall ? partial.filter((p) => !mustRepack.includes(p) && p.unusedBlobs === 0 && p.size < repo.packSize * 0.8) : [];

  const usedTotal = infos.reduce((a, p) => a + p.usedSize, 0);
  const unusedTotal = infos.reduce((a, p) => a + p.unusedSize, 0);
  const limit = maxUnused.kind === 'unlimited' ? Number.POSITIVE_INFINITY
    : maxUnused.kind === 'bytes' ? maxUnused.n
      : (usedTotal * maxUnused.p) / (100 - maxUnused.p);
  let unusedAfter = unusedTotal - remove.reduce((a, p) => a + p.unusedSize, 0) - mustRepack.reduce((a, p) => a + p.unusedSize, 0);
  // most unused first (restic repacks where it frees the most per byte written)
  candidates.sort((a, b) => b.unusedSize / b.size - a.unusedSize / a.size || b.unusedSize - a.unusedSize);
  const repack = [...mustRepack];
  let repackSize = mustRepack.reduce((a, p) => a + p.size, 0);
  const maxRepack = o.maxRepackSize ?? Number.POSITIVE_INFINITY;
  for (const p of candidates) {
    if (unusedAfter <= limit) break;
    if (repackSize + p.size > maxRepack) continue;
    repack.push(p);
    repackSize += p.size;
    unusedAfter -= p.unusedSize;
  }
  candidates = [];
  if (small.length > 1) for (const p of small) if (repackSize + p.size <= maxRepack) { repack.push(p); repackSize += p.size; }

  // a used blob that also sits in a pack to be deleted or repacked loses that copy: the copy that is
  // kept must really be what the index says (an index can name a blob in the wrong pack while every
  // size agrees), so it is read and verified before anything is deleted (in a dry run too)
  const dropping = new Set([...remove, ...repack].map((p) => p.id));
  const toVerify = new Map<string, { pack: string; blob: PackedBlob }>();
  for (const p of [...remove, ...repack]) {
    for (const b of p.blobs) {
      const key = `${b.type}:${b.id}`;
      const k = keptAt.get(key);
      if (k && k.pack !== p.id && !dropping.has(k.pack)) toVerify.set(key, k);
    }
  }
  // the same for packs no index names: their headers say which blobs they hold (a tail read each)
  await mapLimit(unreferenced, 4, async (id) => {
    let header: PackedBlob[];
    try {
      header = await repo.loadPackHeader(id, packFiles.get(id));
    } catch {
      return; // not a readable pack: nothing in it can be used
    }
    for (const b of header) {
      const key = `${b.type}:${b.id}`;
      const k = keptAt.get(key);
      if (k && !dropping.has(k.pack)) toVerify.set(key, k);
    }
  });
  await mapLimit([...toVerify.values()], 4, async ({ pack, blob }) => {
    try {
      const stored = await repo.backend.load({ type: 'data', name: pack }, blob.offset, blob.length);
      repo.decodeBlob(stored, blob.id, blob, pack);
    } catch (e) {
      throw new PruneError(`${blob.type} blob ${blob.id} is in pack ${pack} according to the index, but it cannot be read there (${(e as Error).message}); another copy would be deleted: refusing to prune; run "jbackup repair index"`);
    }
  });

  const stats: PruneStats = {
    blobsUsed: kept.size, sizeUsed: usedTotal, blobsUnused: infos.reduce((a, p) => a + p.unusedBlobs, 0), sizeUnused: unusedTotal,
    packsTotal: packFiles.size, packsKeep: partial.length - repack.length, packsRepack: repack.length, packsRemove: remove.length,
    packsUnreferenced: unreferenced.length, sizeRepack: repackSize,
    sizeRemove: remove.reduce((a, p) => a + p.size, 0) + unreferenced.reduce((a, id) => a + packFiles.get(id)!, 0),
    sizeFreed: 0, indexFilesOld: indexFiles.length, indexFilesNew: 0, unusedAfter,
  };
  stats.sizeFreed = stats.sizeRemove + repack.reduce((a, p) => a + p.unusedSize, 0);
  const sum = (l: PackInfo[], f: (p: PackInfo) => number) => l.reduce((a, p) => a + f(p), 0);
  stats.plan = {
    repackBlobs: sum(repack, (p) => p.usedBlobs + p.unusedBlobs), repackSize: sum(repack, (p) => p.usedSize + p.unusedSize),
    repackRmBlobs: sum(repack, (p) => p.unusedBlobs), repackRmSize: sum(repack, (p) => p.unusedSize),
    removeBlobs: sum(remove, (p) => p.unusedBlobs), removeSize: sum(remove, (p) => p.unusedSize),
    unrefSize: unreferenced.reduce((a, id) => a + packFiles.get(id)!, 0),
  };
  o.onPlan?.(stats);
  if (o.dryRun) return stats;
  // temp files of killed runs (an exclusive lock is held: no writer is running); an hour's margin
  // for writers that ignore locks
  if (repo.backend.removeStaleTemp) {
    const t = await repo.backend.removeStaleTemp(STALE_TEMP_MS);
    stats.tempFilesRemoved = t.files;
    if (t.files > 0) log(`removed ${t.files} temporary files of interrupted runs (${t.bytes} bytes)`);
  }
  if (remove.length === 0 && repack.length === 0 && unreferenced.length === 0) return stats;

  // 4. repack: copy every kept blob of those packs into new packs (verified on the way)
  const repackIds = new Set(repack.map((p) => p.id));
  if (repack.length) {
    log(`repacking ${repack.length} packs...`);
    // a used blob is copied once, unless a pack that stays already holds it
    const staying = new Set<string>();
    for (const q of partial) if (!repackIds.has(q.id)) for (const b of q.blobs) staying.add(`${b.type}:${b.id}`);
    const keepHere = new Set<string>();
    const copied = new Set<string>();
    for (const p of repack) {
      for (const b of p.blobs) {
        const key = `${b.type}:${b.id}`;
        const used = b.type === 'data' ? usedData.has(b.id) : usedTrees.has(b.id);
        if (used && !staying.has(key) && !copied.has(key)) { copied.add(key); keepHere.add(`${p.id}:${key}`); }
      }
    }
    let repacked = 0;
    // Every kept blob is verified (decrypted, decompressed, hashed) in the decode workers, then its
    // stored bytes are copied into the new pack as they are: same key, same ciphertext, no second
    // encryption. Only --repack-uncompressed needs the plaintext, to compress it.
    const recompress = (b: PackedBlob) => !!o.repackUncompressed && repo.version >= 2 && b.uncompressedLength === 0;
    const pool = new DecodePool(repo.key);
    // packs are read into recycled shared buffers; once the worker has verified a pack there, the
    // kept blobs' stored bytes are copied from it into the new pack (which copies them at once)
    const buffers = new BufferPool(PACK_BUFFER, 3);
    try {
      await mapLimit(repack, 2, async (p) => {
        o.progress?.('repack', repacked, repack.length);
        await mutate('repack');
        const into = buffers.take(p.size);
        const bytes = await repo.backend.load({ type: 'data', name: p.id }, 0, p.size, into);
        const mine = p.blobs.filter((b) => keepHere.has(`${p.id}:${b.type}:${b.id}`));
        // our own buffer is shared memory the worker reads where it is; a backend that ignored
        // `into` (a download) returned its own buffer, which the worker takes over: keep a copy
        const own = bytes.buffer === into.buffer;
        const back = own ? bytes : Buffer.from(bytes);
        try {
          const res = await pool.decode(bytes, mine, { wantPlain: mine.some(recompress) });
          for (let i = 0; i < mine.length; i++) {
            const b = mine[i]!;
            const r = res.results[i]!;
            if (r.error) throw new PruneError(`pack ${p.id}: blob ${b.id}: ${r.error}; run "jbackup check --read-data" and "jbackup repair index"`);
            if (!recompress(b)) await repo.addStoredBlob(b.type, b.id, back.subarray(b.offset, b.offset + b.length), b.uncompressedLength, true);
            else await repo.saveBlobAgain(b.type, b.id, r.plain ? Buffer.from(r.plain) : Buffer.alloc(r.zero ?? 0));
          }
        } finally {
          buffers.give(into);
        }
        o.progress?.('repack', ++repacked, repack.length);
      });
      await mutate('repack-flush');
      await repo.flush();
    } catch (e) {
      // a failed repack leaves no temp files or open pack streams (nothing was published: the old
      // packs and index stay as they were)
      await repo.discard();
      throw e;
    } finally {
      await pool.close();
    }
  }
  // 5. new index over everything that stays (old packs kept + new packs), superseding all old files
  const newPacks: IndexFilePack[] = [];
  for (const p of partial) if (!repackIds.has(p.id)) newPacks.push({ id: p.id, blobs: p.blobs });
  const writtenDuringRepack = new Set<string>();
  for (const [id, packs] of repo.indexFiles) {
    if (indexFiles.some((f) => f.name === id)) continue;
    writtenDuringRepack.add(id);
    for (const pid of packs) newPacks.push({ id: pid, blobs: repo.storedPacks.get(pid)! });
  }
  log('rebuilding index...');
  const newIds = await writeIndexFiles(repo, newPacks, indexFiles.map((f) => f.name), () => mutate('write-index'));
  stats.indexFilesNew = newIds.length;
  log('deleting obsolete index files...');
  // deletions run a few at a time (remote backends pay a round trip each); all obsolete index
  // files go before any pack, so a crash in between never leaves an index naming a deleted pack
  const oldIndex = [...indexFiles.map((x) => x.name), ...writtenDuringRepack].filter((f) => !newIds.includes(f));
  await mapLimit(oldIndex, DELETE_CONCURRENCY, async (f) => {
    await mutate('delete-index');
    await repo.backend.remove({ type: 'index', name: f }, { permanent: true }).catch(() => {});
  });
  log('removing unused packs...');
  const doomed = [...remove.map((p) => p.id), ...repackIds, ...unreferenced];
  let deleted = 0;
  await mapLimit(doomed, DELETE_CONCURRENCY, async (id) => {
    await mutate('delete-pack');
    await repo.backend.remove({ type: 'data', name: id }, { permanent: true }).catch(() => {});
    o.progress?.('delete', ++deleted, doomed.length);
  });
  return stats;
}

