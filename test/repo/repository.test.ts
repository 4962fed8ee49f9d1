import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
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
