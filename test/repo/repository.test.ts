import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Repository } from '../../src/repo/repository.js';
import { Lock } from '../../src/repo/lock.js';

const KDF = { N: 1024, r: 8, p: 1 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('repository index loading under a lock', () => {
  it('an index loaded during the lock wait is re-validated: a change in between is noticed and reloaded', async () => {
    const be = new MemoryBackend();
    const a = await Repository.init(be, Buffer.from('pw'), { kdf: KDF });
    const first = Buffer.from('first blob');
    await a.saveBlob('data', sha(first), first);
    await a.flush();

    const b = await Repository.open(be, Buffer.from('pw'));
    // while b's lock settles and b loads the index, another process (a) adds an index file
    const second = Buffer.from('second blob');
    const lock = await Lock.acquire(b, false, 50, async () => {
      await b.loadIndex();
      await a.saveBlob('data', sha(second), second);
      await a.flush();
    });
    try {
      expect(b.index.has('data', sha(first))).toBe(true);
      expect(b.index.has('data', sha(second))).toBe(false);
      expect(await b.indexCurrent()).toBe(false);
      // what lockAndLoadIndex does once the lock holds: the new index file is loaded, the old kept
      await b.refreshIndex();
      expect(await b.indexCurrent()).toBe(true);
      expect(b.index.has('data', sha(second))).toBe(true);
      expect(b.index.has('data', sha(first))).toBe(true);
      // an index file that is gone (rewritten by an exclusive lock holder) means loading it all again
      const files = (await be.list('index')).map((f) => f.name);
      const firstFile = [...b.indexFiles].find(([, packs]) => packs.some((p) => p === b.index.get('data', sha(first))!.packId))![0];
      await be.remove({ type: 'index', name: firstFile });
      await b.refreshIndex();
      expect(await b.indexCurrent()).toBe(true);
      expect([...b.indexFiles.keys()].sort()).toEqual(files.filter((f) => f !== firstFile).sort());
      expect(b.index.has('data', sha(first))).toBe(false);
      expect(b.index.has('data', sha(second))).toBe(true);
    } finally {
      await lock.release();
    }
  });

  it('a failure while loading during the wait removes the lock file', async () => {
    const be = new MemoryBackend();
    const r = await Repository.init(be, Buffer.from('pw'), { kdf: KDF });
    await expect(Lock.acquire(r, false, 10, async () => { throw new Error('index broken'); })).rejects.toThrow('index broken');
    expect(await be.list('locks')).toEqual([]);
  });

  it('snapshot contents are cached, but lists are fresh and callers get copies', async () => {
    const be = new MemoryBackend();
    const r = await Repository.init(be, Buffer.from('pw'), { kdf: KDF });
    const base = { time: '2024-01-01T00:00:00Z', tree: 'ab'.repeat(32), paths: ['/x'], hostname: 'h', username: 'u' };
    const a = await r.saveSnapshot({ ...base, tags: ['one'] });
    const b = await r.saveSnapshot({ ...base, time: '2024-01-02T00:00:00Z' });
    expect((await r.listSnapshots()).map((s) => s.id)).toEqual([a, b]);
    // a caller mutating what it got does not change what the next caller sees
    const got = await r.loadSnapshot(a);
    got.tags!.push('mutated');
    expect((await r.loadSnapshot(a)).tags).toEqual(['one']);
    // a snapshot removed by another process disappears from the next list
    await be.remove({ type: 'snapshots', name: a });
    expect((await r.listSnapshots()).map((s) => s.id)).toEqual([b]);
  });
});

describe('a failed run discards its writes', () => {
  it('packs open, uploading, or waiting for a slot lose their temp files, and blobs that still arrive are refused', async () => {
    const root = path.join(await tmpDir('discard'), 'repo');
    const be = new LocalBackend(root);
    const repo = await Repository.init(be, Buffer.from('pw'), { kdf: KDF, packSize: 64 * 1024 });
    const tmpFiles = async () => (await fsp.readdir(path.join(root, 'data'), { recursive: true })).filter((f) => String(f).includes('-tmp-'));
    let refuse!: (e: Error) => void;
    repo.gateWrites(new Promise<void>((_, reject) => { refuse = reject; }));
    // two full packs wait at the gate (the local backend's two connections), a third waits for a
    // slot, a fourth is open
    const adds: Promise<void>[] = [];
    for (let i = 0; i < 7; i++) {
      const b = randomBytes(40 * 1024);
      const add = repo.addStoredBlob('data', sha(b), b, 0);
      add.catch(() => {});
      adds.push(add);
    }
    for (let i = 0; i < 500 && (await tmpFiles()).length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await tmpFiles()).length).toBe(4);
    refuse(new Error('lock failed'));
    await repo.discard();
    const late = randomBytes(100);
    await expect(repo.addStoredBlob('data', sha(late), late, 0)).rejects.toThrow(/lock failed|discarded/);
    await be.close();
    expect(await tmpFiles()).toEqual([]);
    expect(await be.list('data')).toEqual([]);
    await Promise.allSettled(adds);
    await cleanupTmpDirs();
  });
});
