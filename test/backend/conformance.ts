/** One conformance suite that every backend must pass. */
import { describe, expect, it } from 'vitest';
import { randomBytes, createHash } from 'node:crypto';
import { AlreadyExistsError, type Backend, NotFoundError } from '../../src/backend/backend.js';

const id = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function backendConformance(name: string, make: () => Promise<Backend>): void {
  describe(`backend conformance: ${name}`, () => {
    it('create makes an empty repository and refuses an existing one', async () => {
      const be = await make();
      await be.create();
      for (const t of ['data', 'index', 'snapshots', 'keys', 'locks'] as const) expect(await be.list(t)).toEqual([]);
      await be.save({ type: 'config', name: 'config' }, Buffer.from('cfg'));
      await expect(be.create()).rejects.toBeInstanceOf(AlreadyExistsError);
      await expect(be.save({ type: 'config', name: 'config' }, Buffer.from('other'))).rejects.toBeInstanceOf(AlreadyExistsError);
      expect((await be.load({ type: 'config', name: 'config' })).toString()).toBe('cfg');
    });

    it('save, stat, load (whole and ranges), list, remove for every type', async () => {
      const be = await make();
      await be.create();
      for (const t of ['data', 'index', 'snapshots', 'keys', 'locks'] as const) {
        const files = [randomBytes(0), randomBytes(1), randomBytes(100_000)].map((b) => ({ b, name: id(b) }));
        for (const f of files) await be.save({ type: t, name: f.name }, f.b);
        const listed = (await be.list(t)).sort((a, b) => a.name.localeCompare(b.name));
        expect(listed).toEqual(files.map((f) => ({ name: f.name, size: f.b.length })).sort((a, b) => a.name.localeCompare(b.name)));
        const big = files[2]!;
        expect((await be.load({ type: t, name: big.name })).equals(big.b)).toBe(true);
        expect((await be.load({ type: t, name: big.name }, 1000, 5000)).equals(big.b.subarray(1000, 6000))).toBe(true);
        expect((await be.load({ type: t, name: big.name }, 99_990)).equals(big.b.subarray(99_990))).toBe(true);
        expect((await be.stat({ type: t, name: big.name })).size).toBe(100_000);
        await expect(be.load({ type: t, name: big.name }, 99_990, 100)).rejects.toThrow();
        for (const f of files) await be.remove({ type: t, name: f.name });
        expect(await be.list(t)).toEqual([]);
      }
    });

    it('missing files give NotFoundError', async () => {
      const be = await make();
      await be.create();
      const h = { type: 'snapshots' as const, name: 'a'.repeat(64) };
      await expect(be.load(h)).rejects.toBeInstanceOf(NotFoundError);
      await expect(be.stat(h)).rejects.toBeInstanceOf(NotFoundError);
      await expect(be.remove(h)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('saving the same content-addressed file twice keeps one file', async () => {
      const be = await make();
      await be.create();
      const b = randomBytes(1000);
      await be.save({ type: 'data', name: id(b) }, b);
      await be.save({ type: 'data', name: id(b) }, b);
      expect(await be.list('data')).toEqual([{ name: id(b), size: 1000 }]);
    });

    it('concurrent saves all land', async () => {
      const be = await make();
      await be.create();
      const bufs = Array.from({ length: 40 }, () => randomBytes(5000));
      await Promise.all(bufs.map((b) => be.save({ type: 'data', name: id(b) }, b)));
      expect((await be.list('data')).length).toBe(40);
    });
  });
}
