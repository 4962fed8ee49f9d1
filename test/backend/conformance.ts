/** One conformance suite that every backend must pass. */
import { describe, expect, it } from 'vitest';
import { randomBytes, createHash } from 'node:crypto';
import { AlreadyExistsError, type Backend, NotFoundError } from '../../src/backend/backend.js';

/** what a backend under test has of the optional members (a decorator must have the same as what it wraps) */
export interface Capabilities {
  createStream?: boolean;
  verifySaved?: boolean;
  removeStaleTemp?: boolean;
  removeDeadTemp?: boolean;
}
export const LOCAL_CAPS: Capabilities = { createStream: true, verifySaved: true, removeStaleTemp: true, removeDeadTemp: true };

const id = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function backendConformance(name: string, make: () => Promise<Backend>, caps: Capabilities = {}): void {
  describe(`backend conformance: ${name}`, () => {
    it('has exactly the optional members it is expected to have', async () => {
      const be = await make();
      for (const k of ['createStream', 'verifySaved', 'removeStaleTemp', 'removeDeadTemp'] as const) {
        expect(typeof be[k] === 'function', k).toBe(!!caps[k]);
      }
      expect(typeof be.location).toBe('string');
      expect(be.properties.connections).toBeGreaterThanOrEqual(1);
      await be.close();
    });

    it.skipIf(!caps.createStream)('a stream is published under the SHA-256 of what was written; an aborted one leaves nothing', async () => {
      const be = await make();
      await be.create();
      try {
        const parts = [randomBytes(10), randomBytes(300_000), randomBytes(1), randomBytes(70_000)];
        const whole = Buffer.concat(parts);
        const s = be.createStream!('data');
        s.write(parts.slice(0, 2).map((p) => Buffer.from(p)), true);
        await s.drained();
        let released = false;
        s.write(parts.slice(2), false, () => { released = true; });
        await s.drained();
        expect(s.size).toBe(whole.length);
        expect(await s.commit()).toBe(id(whole));
        expect(released).toBe(true);
        expect((await be.load({ type: 'data', name: id(whole) })).equals(whole)).toBe(true);
        expect(await be.list('data')).toEqual([{ name: id(whole), size: whole.length }]);
        const ab = be.createStream!('data');
        ab.write([randomBytes(5000)]);
        await ab.abort();
        expect(await be.list('data')).toEqual([{ name: id(whole), size: whole.length }]);
      } finally {
        await be.close();
      }
    });

    it.skipIf(!caps.verifySaved)('verifySaved is true for the stored bytes and false for others', async () => {
      const be = await make();
      await be.create();
      const parts = [randomBytes(1000), randomBytes(50_000)];
      const whole = Buffer.concat(parts);
      const h = { type: 'data' as const, name: id(whole) };
      await be.save(h, parts);
      expect(await be.verifySaved!(h, parts, whole.length)).toBe(true);
      const other = [parts[0]!, randomBytes(50_000)];
      expect(await be.verifySaved!(h, other, whole.length)).toBe(false);
      expect(await be.verifySaved!({ type: 'data', name: 'b'.repeat(64) }, parts, whole.length)).toBe(false);
      await be.close();
    });

    it.skipIf(!caps.removeStaleTemp && !caps.removeDeadTemp)('removing temp files keeps every stored file', async () => {
      const be = await make();
      await be.create();
      const b = randomBytes(2000);
      await be.save({ type: 'data', name: id(b) }, b);
      if (caps.removeStaleTemp) expect(await be.removeStaleTemp!(0)).toEqual({ files: 0, bytes: 0 });
      if (caps.removeDeadTemp) expect(await be.removeDeadTemp!()).toEqual({ files: 0, bytes: 0 });
      expect(await be.list('data')).toEqual([{ name: id(b), size: 2000 }]);
      await be.close();
    });

    it('save with options (a known md5) stores the same bytes', async () => {
      const be = await make();
      await be.create();
      const b = randomBytes(3000);
      await be.save({ type: 'index', name: id(b) }, [b.subarray(0, 1000), b.subarray(1000)], { md5: createHash('md5').update(b).digest('hex') });
      expect((await be.load({ type: 'index', name: id(b) })).equals(b)).toBe(true);
      await be.close();
    });

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
