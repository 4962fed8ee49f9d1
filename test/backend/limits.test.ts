/**
 * The limits decorator: every member and option reaches the backend it wraps, bytes are really
 * paced (generous bounds: only lower ones, which load can only lengthen), and the backend stack the
 * CLI and profiles open (openBackend) streams packs with limits.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Backend, BackendStream, FileType, Handle, SaveOptions } from '../../src/backend/backend.js';
import { LocalBackend } from '../../src/backend/local.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { ForwardingBackend } from '../../src/backend/decorators/forwarding.js';
import { LimitedBackend, makeLimiters, stricterLimits } from '../../src/backend/decorators/limits.js';
import { openBackend } from '../../src/backend/location.js';
import { RateLimiter, Semaphore } from '../../src/util/limiter.js';
import { Repository } from '../../src/repo/repository.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);
afterEach(() => { vi.restoreAllMocks(); });

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** a decorator that records each call (name and arguments) that reaches the backend it wraps */
class RecordingBackend extends ForwardingBackend {
  calls: { m: string; args: unknown[] }[] = [];
  private rec(m: string, args: unknown[]): void { this.calls.push({ m, args }); }
  override save(h: Handle, data: Uint8Array | readonly Uint8Array[], opts?: SaveOptions): Promise<void> { this.rec('save', [h, opts]); return super.save(h, data, opts); }
  override load(h: Handle, offset?: number, length?: number, into?: Buffer): Promise<Buffer> { this.rec('load', [h, offset, length, into]); return super.load(h, offset, length, into); }
  override remove(h: Handle, opts?: { permanent?: boolean }): Promise<void> { this.rec('remove', [h, opts]); return super.remove(h, opts); }
  override verifySaved?(h: Handle, parts: readonly Uint8Array[], size: number): Promise<boolean> { this.rec('verifySaved', [h, size]); return super.verifySaved!(h, parts, size); }
  override createStream?(type: FileType): BackendStream { this.rec('createStream', [type]); return super.createStream!(type); }
  override removeStaleTemp?(ms: number): Promise<{ files: number; bytes: number }> { this.rec('removeStaleTemp', [ms]); return super.removeStaleTemp!(ms); }
  override removeDeadTemp?(): Promise<{ files: number; bytes: number }> { this.rec('removeDeadTemp', []); return super.removeDeadTemp!(); }
  override close(): Promise<void> { this.rec('close', []); return super.close(); }
}

describe('limits decorator keeps the contract', () => {
  it('every member and option reaches the wrapped backend', async () => {
    const inner = new RecordingBackend(new LocalBackend(path.join(await tmpDir('rec'), 'repo')));
    const be: Backend = new LimitedBackend(inner, makeLimiters({ upload: 64 * MiB, download: 64 * MiB, connections: 2 }));
    await be.create();
    const b = randomBytes(5000);
    const h = { type: 'data' as const, name: sha(b) };
    const md5 = createHash('md5').update(b).digest('hex');
    await be.save(h, b, { md5 });
    const into = Buffer.alloc(100);
    await be.load(h, 10, 100, into);
    expect(await be.verifySaved!(h, [b], b.length)).toBe(true);
    const s = be.createStream!('data');
    s.write([b]);
    await s.drained();
    expect(await s.commit()).toBe(h.name);
    await be.removeStaleTemp!(3_600_000);
    await be.removeDeadTemp!();
    await be.remove(h, { permanent: true });
    await be.close();
    expect(inner.calls).toEqual([
      { m: 'save', args: [h, { md5 }] },
      { m: 'load', args: [h, 10, 100, into] },
      { m: 'verifySaved', args: [h, 5000] },
      { m: 'createStream', args: ['data'] },
      { m: 'removeStaleTemp', args: [3_600_000] },
      { m: 'removeDeadTemp', args: [] },
      { m: 'remove', args: [h, { permanent: true }] },
      { m: 'close', args: [] },
    ]);
    expect(be.location).toBe(inner.location);
  });

  it('a decorator over a backend without the optional members has none either', () => {
    const be = new LimitedBackend(new MemoryBackend(), makeLimiters({ upload: MiB }));
    expect(be.createStream).toBeUndefined();
    expect(be.verifySaved).toBeUndefined();
    expect(be.removeStaleTemp).toBeUndefined();
    expect(be.removeDeadTemp).toBeUndefined();
    expect('createStream' in new LimitedBackend(new LocalBackend('/nonexistent'), {}) && typeof new LimitedBackend(new LocalBackend('/nonexistent'), {}).createStream).toBe('function');
  });

  it('connections: the lower of the limit and the backend\'s, and no more calls at once', async () => {
    const inner = new MemoryBackend();
    let active = 0;
    let maxActive = 0;
    const origSave = inner.save.bind(inner);
    inner.save = async (h, d) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setImmediate(r));
      await origSave(h, d);
      active--;
    };
    const be = new LimitedBackend(inner, makeLimiters({ connections: 2 }));
    expect(be.properties.connections).toBe(2);
    expect(new LimitedBackend(inner, makeLimiters({ connections: 99 })).properties.connections).toBe(inner.properties.connections);
    await Promise.all(Array.from({ length: 20 }, (_, i) => be.save({ type: 'data', name: i.toString(16).padStart(64, '0') }, Buffer.alloc(10))));
    expect(maxActive).toBe(2);
  });

  it('stricterLimits takes the lower of each limit', () => {
    expect(stricterLimits({ upload: 100, connections: 4 }, { upload: 50, download: 7 })).toEqual({ upload: 50, download: 7, connections: 4 });
    expect(stricterLimits(undefined, {})).toEqual({});
  });
});

describe('the limiter really limits (2 MiB at 1 MiB/s with a 1 s burst takes at least 1 s)', () => {
  it('save', async () => {
    const be = new LimitedBackend(new MemoryBackend(), makeLimiters({ upload: MiB, connections: 2 }));
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 8 }, (_, i) => be.save({ type: 'data', name: i.toString(16).padStart(64, '0') }, Buffer.alloc(256 * 1024))));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('load', async () => {
    const inner = new MemoryBackend();
    const b = randomBytes(MiB);
    const h = { type: 'data' as const, name: sha(b) };
    await inner.save(h, b);
    const be = new LimitedBackend(inner, makeLimiters({ download: MiB }));
    const t0 = Date.now();
    await be.load(h);
    await be.load(h, 0, MiB);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('a stream, through drained() and commit(), holding nothing back itself', async () => {
    const local = new LocalBackend(path.join(await tmpDir('paced'), 'repo'));
    await local.create();
    const be = new LimitedBackend(local, makeLimiters({ upload: MiB }));
    try {
      const s = be.createStream!('data');
      const t0 = Date.now();
      const parts: Buffer[] = [];
      for (let i = 0; i < 32; i++) {
        const p = randomBytes(64 * 1024);
        parts.push(p);
        s.write([p]);
        expect(s.size).toBe((i + 1) * 64 * 1024); // passed on at once
        await s.drained();
      }
      expect(await s.commit()).toBe(sha(Buffer.concat(parts)));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    } finally {
      await be.close();
    }
  });

  it('RateLimiter serves reservations in order at the rate; Semaphore passes slots on', async () => {
    const r = new RateLimiter(1000, 0);
    expect(r.reserve(500)).toBeGreaterThan(400);
    expect(r.reserve(500)).toBeGreaterThan(900);
    const sem = new Semaphore(1);
    const order: number[] = [];
    await Promise.all([1, 2, 3].map((i) => sem.run(async () => { order.push(i); await new Promise((x) => setImmediate(x)); })));
    expect(order).toEqual([1, 2, 3]);
    expect(() => new RateLimiter(0)).toThrow(RangeError);
  });
});

describe('openBackend stacks the limits decorator for every backend', () => {
  it('a local repository opened with limits streams its data packs (no whole-pack buffer)', async () => {
    const dir = path.join(await tmpDir('stack'), 'repo');
    const be = openBackend(dir, { limits: { upload: 512 * MiB, download: 512 * MiB, connections: 2 } });
    expect(be).toBeInstanceOf(LimitedBackend);
    expect(be.properties.connections).toBe(2);
    const streams = vi.spyOn(LocalBackend.prototype, 'createStream');
    const saves = vi.spyOn(LocalBackend.prototype, 'save');
    const repo = await Repository.init(be, Buffer.from('pw'), { kdf: { N: 1024, r: 8, p: 1 }, packSize: 4 * MiB });
    try {
      for (let i = 0; i < 12; i++) {
        const b = randomBytes(MiB);
        await repo.saveBlob('data', sha(b), b);
      }
      await repo.flush();
      expect(streams.mock.calls.length).toBeGreaterThanOrEqual(3);
      expect(saves.mock.calls.filter((c) => (c[0] as Handle).type === 'data')).toEqual([]);
      expect((await be.list('data')).length).toBe(streams.mock.calls.length);
    } finally {
      await be.close();
    }
  });

  it('without limits the backend is returned as it is', () => {
    expect(openBackend('/tmp/x')).toBeInstanceOf(LocalBackend);
    expect(openBackend('/tmp/x', { limits: {} })).toBeInstanceOf(LocalBackend);
  });
});
