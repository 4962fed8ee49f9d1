import { afterAll, describe, expect, it, vi } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Repository } from '../../src/repo/repository.js';
import { Archiver } from '../../src/archiver/archiver.js';
import { ChunkPool, FileReadError } from '../../src/archiver/pool.js';
import { makeMatcher } from '../../src/archiver/exclude.js';
import { Restorer } from '../../src/restorer/restorer.js';
import { decodeTree } from '../../src/repo/tree.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { compareTrees, prngBytes } from '../helpers/fstree.js';

const KDF = { N: 1024, r: 8, p: 1 };
afterAll(cleanupTmpDirs);

async function setup() {
  const dir = await tmpDir('archiver');
  const src = path.join(dir, 'src');
  await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
  await fsp.writeFile(path.join(src, 'big.bin'), prngBytes('big', 20 * 1024 * 1024));
  await fsp.writeFile(path.join(src, 'sub', 'a.txt'), 'hello\n');
  await fsp.writeFile(path.join(src, 'sub', 'skip.tmp'), 'excluded');
  const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
  return { dir, src, repo };
}

describe('archiver', () => {
  it('an unchanged re-run reads no file contents and adds no data', async () => {
    const { src, repo } = await setup();
    // "." (from inside src): the snapshot holds no ancestor directories, whose mtimes other test
    // files running in parallel may change (that would rightly give new trees)
    const cwd = process.cwd();
    process.chdir(src);
    const first = await new Archiver(repo, { targets: ['.'] }).run().finally(() => process.chdir(cwd));
    expect(first.files_new).toBe(3);
    expect(first.data_blobs).toBeGreaterThan(10);
    const spy = vi.spyOn(ChunkPool.prototype, 'dispatch');
    try {
      process.chdir(src);
      const second = await new Archiver(repo, { targets: ['.'] }).run().finally(() => process.chdir(cwd));
      expect(spy).not.toHaveBeenCalled();
      expect(second.parent).toBe(first.snapshot_id);
      expect(second.files_unmodified).toBe(3);
      expect(second.files_new + second.files_changed).toBe(0);
      expect(second.data_blobs).toBe(0);
      expect(second.tree_blobs).toBe(0);
      expect(second.data_added).toBe(0);
      expect(second.dirs_unmodified).toBeGreaterThan(0);
    } finally {
      spy.mockRestore();
    }
  });

  it('--force rereads every file but still adds nothing', async () => {
    const { src, repo } = await setup();
    await new Archiver(repo, { targets: [src] }).run();
    const spy = vi.spyOn(ChunkPool.prototype, 'dispatch');
    try {
      const s = await new Archiver(repo, { targets: [src], force: true }).run();
      expect(spy).toHaveBeenCalledTimes(3);
      expect(s.data_blobs).toBe(0);
    } finally {
      spy.mockRestore();
    }
  });

  it('a 1-byte edit in a 20 MiB file adds only the affected chunks', async () => {
    const { src, repo } = await setup();
    const first = await new Archiver(repo, { targets: [src] }).run();
    const fh = await fsp.open(path.join(src, 'big.bin'), 'r+');
    await fh.write(Buffer.from([0x42 ^ 0xff]), 0, 1, 10 * 1024 * 1024);
    await fh.close();
    const second = await new Archiver(repo, { targets: [src] }).run();
    expect(second.files_changed).toBe(1);
    expect(second.files_unmodified).toBe(2);
    expect(second.data_blobs).toBeGreaterThanOrEqual(1);
    expect(second.data_blobs).toBeLessThanOrEqual(2);
    // one or two chunks (512 KiB – 8 MiB each) change, plus the trees of the changed directories
    expect(second.data_added).toBeLessThan(first.data_added / 2);
    expect(second.data_added).toBeLessThanOrEqual(2 * 8 * 1024 * 1024 + 64 * 1024);
  });

  it('excludes and exclude-larger-than', async () => {
    const { src, repo } = await setup();
    const s = await new Archiver(repo, {
      targets: [src], excludes: makeMatcher(['*.tmp'], []), excludeLargerThan: 1024 * 1024,
    }).run();
    expect(s.files_new).toBe(1);
    const snap = await repo.loadSnapshot(s.snapshot_id);
    const names: string[] = [];
    const walk = async (id: string, pre: string) => {
      for (const n of decodeTree(await repo.loadBlob('tree', id))) {
        names.push(`${pre}/${n.name.toString()}`);
        if (n.subtree) await walk(n.subtree, `${pre}/${n.name.toString()}`);
      }
    };
    await walk(snap.tree, '');
    expect(names.filter((n) => n.endsWith('.tmp') || n.endsWith('big.bin'))).toEqual([]);
    expect(names.some((n) => n.endsWith('/sub/a.txt'))).toBe(true);
  });

  it('an unreadable file is reported, the snapshot is still written', async () => {
    const { src, repo } = await setup();
    const errors: string[] = [];
    const orig = ChunkPool.prototype.dispatch;
    // as the worker reports an unreadable file: the job's result rejects with a FileReadError
    const spy = vi.spyOn(ChunkPool.prototype, 'dispatch').mockImplementation(async function (this: ChunkPool, p: Buffer, size?: number) {
      if (p.toString().endsWith('a.txt')) return { result: Promise.reject(new FileReadError('permission denied', 'EACCES')) };
      return orig.call(this, p, size);
    });
    try {
      const s = await new Archiver(repo, { targets: [src], progress: { error: (p) => errors.push(p) } }).run();
      expect(s.errors).toBe(1);
      expect(errors[0]).toMatch(/a\.txt$/);
      expect(s.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      spy.mockRestore();
    }
  });

  it('a failure of the chunking machinery aborts the snapshot instead of skipping files', async () => {
    const { src, repo } = await setup();
    // a worker dies after the file was handed to it
    const spy = vi.spyOn(ChunkPool.prototype, 'dispatch').mockImplementation(async () => ({ result: Promise.reject(new Error('worker died')) }));
    try {
      await expect(new Archiver(repo, { targets: [src] }).run()).rejects.toThrow('worker died');
      expect(await repo.backend.list('snapshots')).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    // or refuses it
    const spy2 = vi.spyOn(ChunkPool.prototype, 'dispatch').mockRejectedValue(new Error('pool closed'));
    try {
      await expect(new Archiver(repo, { targets: [src] }).run()).rejects.toThrow('pool closed');
      expect(await repo.backend.list('snapshots')).toEqual([]);
    } finally {
      spy2.mockRestore();
    }
  });

  it('a pack the backend stores wrongly is caught by the read-back, removed, and fails the snapshot', async () => {
    const { src, repo } = await setup();
    const be = repo.backend as MemoryBackend;
    const save = be.save.bind(be);
    // a backend that flips one byte of every data file it stores (a broken disk or driver)
    const spy = vi.spyOn(be, 'save').mockImplementation(async (h, data) => {
      if (h.type !== 'data') return save(h, data);
      const whole = Buffer.concat(Array.isArray(data) ? data : [data as Uint8Array]);
      whole[whole.length >> 1] ^= 0x40;
      return save(h, whole);
    });
    try {
      await expect(new Archiver(repo, { targets: [src] }).run()).rejects.toThrow(/pack [0-9a-f]{64}: verification after upload failed/);
      expect(await be.list('data')).toEqual([]);
      expect(await be.list('snapshots')).toEqual([]);
    } finally {
      spy.mockRestore();
    }
  });

  it('round trip through the memory backend with sparse and dedup content', async () => {
    const { dir, src, repo } = await setup();
    const fh = await fsp.open(path.join(src, 'sparse.img'), 'w');
    await fh.truncate(50 * 1024 * 1024);
    await fh.write(Buffer.from('middle'), 0, 6, 25 * 1024 * 1024);
    await fh.close();
    const block = prngBytes('blk', 1024 * 1024);
    await fsp.writeFile(path.join(src, 'dedup.bin'), Buffer.concat(Array(8).fill(block)));
    // "." stores the contents at the root, as restic does
    const cwd = process.cwd();
    process.chdir(src);
    let snapId: string;
    try {
      snapId = (await new Archiver(repo, { targets: ['.'] }).run()).snapshot_id;
    } finally {
      process.chdir(cwd);
    }
    const snap = await repo.loadSnapshot(snapId);
    const out = path.join(dir, 'out');
    await new Restorer(repo, { target: out, verify: true }).run(snap.tree);
    expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
    const st = await fsp.stat(path.join(out, 'sparse.img'));
    expect(st.blocks * 512).toBeLessThan(10 * 1024 * 1024);
  });
});

describe('compression auto', () => {
  it('stores incompressible chunks as they are and compresses the rest (restic reads both)', async () => {
    const dir = await tmpDir('archiver-compress');
    const src = path.join(dir, 'src');
    await fsp.mkdir(src, { recursive: true });
    await fsp.writeFile(path.join(src, 'photo.jpg'), prngBytes('photo', 3 * 1024 * 1024));
    await fsp.writeFile(path.join(src, 'text.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(50_000));
    const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
    const s = await new Archiver(repo, { targets: [src] }).run();
    const snap = await repo.loadSnapshot(s.snapshot_id);
    let nodes = decodeTree(await repo.loadBlob('tree', snap.tree));
    for (const c of src.split('/').filter(Boolean)) nodes = decodeTree(await repo.loadBlob('tree', nodes.find((n) => n.name.toString() === c)!.subtree!));
    const locs = (name: string) => nodes.find((n) => n.name.toString() === name)!.content!.map((id) => repo.index.get('data', id)!);
    const photo = locs('photo.jpg');
    const text = locs('text.txt');
    expect(photo.length).toBeGreaterThan(0);
    expect(photo.every((l) => l.uncompressedLength === 0)).toBe(true);
    expect(text.every((l) => l.uncompressedLength > 0 && l.length < l.uncompressedLength)).toBe(true);
  });
});
