/**
 * Buffered packs hashed on the hasher thread: the id is the SHA-256 and the md5 the MD5 of exactly
 * the bytes stored, also when the buffer has to grow under a big blob, and for many packs at once.
 */
import { afterAll, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { randomMasterKey } from '../../src/crypto/crypto.js';
import { PackBuilder, parsePackTail } from '../../src/repo/pack.js';
import { PackHasher } from '../../src/repo/packhash.js';

const hasher = new PackHasher();
afterAll(() => hasher.close());
const key = randomMasterKey();
const hex = (alg: string, parts: readonly Uint8Array[]): string => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

it('gives the SHA-256 and MD5 of the stored bytes, like the main-thread hash, with the buffer grown and packs interleaved', async () => {
  const packs = Array.from({ length: 6 }, (_, i) => ({
    hashed: new PackBuilder('data', { take: () => Buffer.from(new SharedArrayBuffer(64 * 1024)), hasher, md5: i % 2 === 0 }),
    plain: new PackBuilder('data', { take: () => Buffer.allocUnsafeSlow(64 * 1024) }),
  }));
  for (let n = 0; n < 40; n++) {
    for (const [i, p] of packs.entries()) {
      // mostly small blobs, now and then one bigger than the whole buffer (it grows)
      const blob = randomBytes(n % 13 === 5 ? 200 * 1024 + i : 1000 + ((n * 977 + i) % 9000));
      const iv = randomBytes(16);
      const id = createHash('sha256').update(blob).digest('hex');
      p.hashed.add(id, [iv, blob], 0);
      p.plain.add(id, [iv, blob], 0);
      blob.fill(0); // the caller's buffers are free once added (copied)
    }
  }
  for (const [i, p] of packs.entries()) {
    const a = p.hashed.finish(key);
    const b = p.plain.finish(key);
    expect(a.id).toBeNull();
    const d = await a.digest!;
    // the same blobs, but each pack's header is sealed with its own IV: compare each to its bytes
    expect(d.sha256).toBe(hex('sha256', a.parts));
    expect(b.id).toBe(hex('sha256', b.parts));
    if (i % 2 === 0) expect(d.md5).toBe(hex('md5', a.parts));
    else expect(d.md5).toBeUndefined();
    expect(Buffer.compare(a.parts[0]!, b.parts[0]!)).toBe(0);
    const whole = Buffer.concat(a.parts);
    expect((parsePackTail(key, whole, whole.length) as unknown[]).length).toBe(40);
  }
});

it('an aborted pack leaves the hasher usable', async () => {
  const p = new PackBuilder('data', { take: () => Buffer.from(new SharedArrayBuffer(4096)), hasher, md5: true });
  p.add('ab'.repeat(32), randomBytes(100), 0);
  await p.abort();
  const q = new PackBuilder('data', { take: () => Buffer.from(new SharedArrayBuffer(4096)), hasher, md5: true });
  q.add('cd'.repeat(32), randomBytes(100), 0);
  const f = q.finish(key);
  expect((await f.digest!).md5).toBe(hex('md5', f.parts));
});
