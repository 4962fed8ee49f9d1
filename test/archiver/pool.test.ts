import { afterAll, describe, expect, it, vi } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Repository } from '../../src/repo/repository.js';
import { Archiver } from '../../src/archiver/archiver.js';
import { ChunkPool, FileReadError, SMALL_FILE } from '../../src/archiver/pool.js';
import { DEFAULT_PARAMS } from '../../src/chunker/fastcdc.js';
import { Restorer } from '../../src/restorer/restorer.js';
import { sha256hex } from '../../src/repo/ids.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { compareTrees, prngBytes } from '../helpers/fstree.js';

const KDF = { N: 1024, r: 8, p: 1 };
afterAll(cleanupTmpDirs);

/** many small files, some with equal contents (in one batch and across batches), some empty, one large */
async function smallTree(src: string): Promise<{ distinct: Set<string> }> {
  const distinct = new Set<string>();
  for (let d = 0; d < 4; d++) {
    const dir = path.join(src, `d${d}`);
    await fsp.mkdir(dir, { recursive: true });
    for (let i = 0; i < 300; i++) {
      // every 7th file repeats one of 5 contents: duplicates in the same batch and in others
      const data = i % 7 === 0 ? prngBytes(`dup${i % 5}`, 3000) : i % 50 === 1 ? Buffer.alloc(0) : prngBytes(`f${d}-${i}`, (i * 997) % 20000 + 1);
      if (data.length) distinct.add(sha256hex(data));
      await fsp.writeFile(path.join(dir, `f${i}`), data);
    }
  }
  const big = prngBytes('big', SMALL_FILE + 300 * 1024);
  await fsp.writeFile(path.join(src, 'big.bin'), big);
  return { distinct };
}

describe('chunk pool: batches of small files', () => {
  it('stores each distinct blob once, also when it is twice in flight, and restores the files (local backend)', async () => {
    const dir = await tmpDir('pool');
    const src = path.join(dir, 'src');
    const { distinct } = await smallTree(src);
    const backend = new LocalBackend(path.join(dir, 'repo'));
    const repo = await Repository.init(backend, Buffer.from('pw'), { kdf: KDF });
    try {
      const s = await new Archiver(repo, { targets: [src] }).run();
      expect(s.errors).toBe(0);
      // the small files' blobs (each below the chunker's minimum: one blob a file) plus the large file's
      const smallBlobs = distinct.size;
      expect(s.data_blobs).toBeGreaterThan(smallBlobs);
      expect(s.data_blobs).toBeLessThanOrEqual(smallBlobs + 3);
      for (const id of distinct) expect(repo.index.has('data', id)).toBe(true);
      // no blob is in two packs
      const seen = new Map<string, number>();
      for (const blobs of repo.storedPacks.values()) for (const b of blobs) seen.set(b.id, (seen.get(b.id) ?? 0) + 1);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
      const out = path.join(dir, 'out');
      const snap = await repo.loadSnapshot(s.snapshot_id);
      await new Restorer(repo, { target: out, verify: true }).run(snap.tree);
      expect(await compareTrees(src, path.join(out, ...src.split('/').filter(Boolean)), { ignore: ['atime', 'root'] })).toEqual([]);
    } finally {
      await backend.close();
    }
  });

  it('a file of a batch that cannot be read fails alone with a FileReadError', async () => {
    const dir = await tmpDir('pool');
    const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
    const pool = new ChunkPool(repo, DEFAULT_PARAMS, 2);
    try {
      const names = Array.from({ length: 40 }, (_, i) => path.join(dir, `f${i}`));
      for (const [i, n] of names.entries()) if (i !== 17) await fsp.writeFile(n, prngBytes(n, 100 + i));
      const jobs = [];
      for (const n of names) jobs.push((await pool.dispatch(Buffer.from(n), 200)).result);
      const results = await Promise.allSettled(jobs);
      for (const [i, r] of results.entries()) {
        if (i === 17) {
          expect(r.status).toBe('rejected');
          const e = (r as PromiseRejectedResult).reason as FileReadError;
          expect(e).toBeInstanceOf(FileReadError);
          expect(e.code).toBe('ENOENT');
        } else {
          expect(r.status).toBe('fulfilled');
          const v = (r as PromiseFulfilledResult<{ content: string[]; size: number }>).value;
          expect(v.size).toBe(100 + i);
          expect(v.content).toEqual([sha256hex(prngBytes(names[i]!, 100 + i))]);
        }
      }
      // a file that has grown past a small file since its size was read is chunked as a large one
      const grown = path.join(dir, 'grown');
      const data = prngBytes('grown', SMALL_FILE + 700 * 1024);
      await fsp.writeFile(grown, data);
      const g = await (await pool.dispatch(Buffer.from(grown), 10)).result;
      expect(g.size).toBe(data.length);
      await pool.drain();
      await repo.flush();
      const blobs = await Promise.all(g.content.map((id) => repo.loadBlob('data', id)));
      expect(Buffer.concat(blobs).equals(data)).toBe(true);
      expect(pool.stats.dataBlobs).toBe(39 + g.content.length);
    } finally {
      await pool.close();
    }
  });

  it('an unchanged re-run starts no chunk workers and no pack writer', async () => {
    const dir = await tmpDir('pool');
    const src = path.join(dir, 'src');
    await fsp.mkdir(src);
    for (let i = 0; i < 20; i++) await fsp.writeFile(path.join(src, `f${i}`), prngBytes(`r${i}`, 5000));
    const loc = path.join(dir, 'repo');
    const b1 = new LocalBackend(loc);
    const repo = await Repository.init(b1, Buffer.from('pw'), { kdf: KDF });
    await new Archiver(repo, { targets: [src] }).run();
    await b1.close();
    const b2 = new LocalBackend(loc);
    const again = await Repository.open(b2, Buffer.from('pw'));
    await again.loadIndex();
    const start = vi.spyOn(ChunkPool.prototype as unknown as { start: () => void }, 'start');
    const stream = vi.spyOn(b2, 'createStream');
    try {
      const s = await new Archiver(again, { targets: [src] }).run();
      expect(s.files_unmodified).toBe(20);
      expect(start).not.toHaveBeenCalled();
      expect(stream).not.toHaveBeenCalled();
    } finally {
      start.mockRestore();
      stream.mockRestore();
      await b2.close();
    }
  });
});
