/** Bounded zstd decompression: exact limits, frames with and without a stated size, several frames. */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { CCtx, CParameter } from 'zstd-napi/binding.js';
import { DecompressLimitError, zstdDecompress } from '../../src/repo/zstd.js';
import { zstdBomb } from '../helpers/hostile-repo.js';

/** a frame without the content size in its header (as restic writes inputs < 256 B, and streams) */
function frame(data: Buffer, statesSize: boolean): Buffer {
  const c = new CCtx();
  c.setParameter(CParameter.contentSizeFlag, statesSize ? 1 : 0);
  const out = Buffer.alloc(data.length + 1024);
  const n = c.compress2(out, data);
  return out.subarray(0, n);
}

const data = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(2 << 20, 7), randomBytes(1000)]);

for (const states of [true, false]) {
  it(`decodes a frame ${states ? 'stating' : 'not stating'} its size up to exactly the limit, and refuses one byte less`, () => {
    const f = frame(data, states);
    expect(zstdDecompress(f, data.length).equals(data)).toBe(true);
    expect(() => zstdDecompress(f, data.length - 1, 'index/x')).toThrow(DecompressLimitError);
    expect(() => zstdDecompress(f, data.length - 1, 'index/x')).toThrow(/^index\/x decompresses to/);
    // the context is usable after a refusal
    expect(zstdDecompress(f, data.length).equals(data)).toBe(true);
  });
}

it('decodes several concatenated frames (with and without stated sizes)', () => {
  const a = randomBytes(5000);
  const b = Buffer.alloc(300_000, 1);
  const both = Buffer.concat([frame(a, true), frame(b, false)]);
  expect(zstdDecompress(both, a.length + b.length).equals(Buffer.concat([a, b]))).toBe(true);
  expect(() => zstdDecompress(both, a.length + b.length - 1)).toThrow(DecompressLimitError);
});

it('refuses a bomb by its stated size at once, and an unstated one as it inflates', () => {
  expect(() => zstdDecompress(zstdBomb(3 * 2 ** 30), 16 << 20)).toThrow(/decompresses to 3221225472 bytes/);
  expect(() => zstdDecompress(zstdBomb(3 * 2 ** 30, false), 16 << 20)).toThrow(/decompresses to more than 16777216 bytes/);
  expect(zstdDecompress(zstdBomb(1 << 20, false), 1 << 20).equals(Buffer.alloc(1 << 20))).toBe(true);
});

it('names a truncated or damaged frame', () => {
  const f = frame(data, false);
  expect(() => zstdDecompress(f.subarray(0, f.length - 10), data.length, 'snapshots/y')).toThrow(/^snapshots\/y /);
  expect(() => zstdDecompress(Buffer.from('not zstd at all'), 100, 'snapshots/y')).toThrow(/^snapshots\/y cannot be decompressed/);
});
