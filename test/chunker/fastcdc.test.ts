import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  chunkBuffer,
  DEFAULT_PARAMS,
  FastCDC,
  GEAR,
  gearTable,
  MASKS,
  StreamChunker,
  type ChunkerParams,
} from '../../src/chunker/fastcdc.js';
import { nativeCdcCut } from '../../src/native/native.js';

// ---------------------------------------------------------------------------------------
// fixtures

const FIXTURE_DIR = new URL('../../../shared/fixtures/fastcdc/', import.meta.url);

interface VectorChunk {
  offset: number;
  length: number;
  hash: string;
  sha256: string;
}
interface VectorCase {
  variant: string;
  min: number;
  avg: number;
  max: number;
  level: number | null;
  seed: number;
  chunks: VectorChunk[];
  input?: string;
}
interface Vectors {
  file: string;
  sha256: string;
  size: number;
  cases: VectorCase[];
  synthetic_cases: VectorCase[];
}

const vectors = JSON.parse(readFileSync(new URL('vectors.json', FIXTURE_DIR), 'utf8')) as Vectors;
const fixture = new Uint8Array(readFileSync(new URL(vectors.file, FIXTURE_DIR)));

const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function paramsOf(c: VectorCase): ChunkerParams {
  return { min: c.min, avg: c.avg, max: c.max, level: c.level ?? 0, seed: BigInt(c.seed) };
}

/** Synthetic inputs: `zeros:N`, `sha256ctr:N` (SHA-256 of uint64 LE counter, concatenated). */
function syntheticInput(spec: string): Uint8Array {
  const [kind, nStr] = spec.split(':');
  const n = Number(nStr);
  if (kind === 'zeros') return new Uint8Array(n);
  if (kind === 'sha256ctr') {
    const out = new Uint8Array(n);
    const ctr = Buffer.alloc(8);
    for (let i = 0, o = 0; o < n; i++, o += 32) {
      ctr.writeBigUInt64LE(BigInt(i));
      const d = createHash('sha256').update(ctr).digest();
      out.set(d.subarray(0, Math.min(32, n - o)), o);
    }
    return out;
  }
  throw new Error(`unknown synthetic input ${spec}`);
}

/** Deterministic pseudo-random bytes (xorshift32). */
function prng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}
function randomBytes(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer, 0, n);
}

/** Drives cutWithHash over the whole input like the in-memory iterator. */
function chunkWithHashes(cdc: FastCDC, data: Uint8Array) {
  const out: { offset: number; length: number; hash: bigint }[] = [];
  let offset = 0;
  while (offset < data.length) {
    const { length, hash } = cdc.cutWithHash(data, offset, data.length);
    out.push({ offset, length, hash });
    offset += length;
  }
  return out;
}

function checkCase(c: VectorCase, data: Uint8Array): void {
  const p = paramsOf(c);
  const expectedLayout = c.chunks.map(({ offset, length }) => ({ offset, length }));
  // fast path
  expect(chunkBuffer(data, p)).toEqual(expectedLayout);
  // BigInt reference path with hashes
  const withHash = chunkWithHashes(new FastCDC(p), data);
  expect(withHash.map(({ offset, length }) => ({ offset, length }))).toEqual(expectedLayout);
  expect(withHash.map((x) => x.hash)).toEqual(c.chunks.map((x) => BigInt(x.hash)));
  // chunk contents
  expect(c.chunks.map((x) => sha256hex(data.subarray(x.offset, x.offset + x.length)))).toEqual(
    c.chunks.map((x) => x.sha256),
  );
  // streaming, small odd-sized pieces
  const sc = new StreamChunker(p);
  const got: Uint8Array[] = [];
  const next = prng(c.min ^ c.avg ^ (c.seed * 7919));
  for (let o = 0; o < data.length; ) {
    const sz = 1 + (next() % 5000);
    got.push(...sc.push(data.subarray(o, o + sz)));
    o += sz;
  }
  got.push(...sc.finish());
  expect(got.map((x) => x.length)).toEqual(c.chunks.map((x) => x.length));
  expect(got.map(sha256hex)).toEqual(c.chunks.map((x) => x.sha256));
}

// ---------------------------------------------------------------------------------------

describe('fixture', () => {
  it('is the SekienAkashita.jpg the vectors were made from', () => {
    expect(fixture.length).toBe(vectors.size);
    expect(sha256hex(fixture)).toBe(vectors.sha256);
  });
});

describe('GEAR table', () => {
  it('matches the MD5 rule values and the reference sha256', () => {
    expect(GEAR.length).toBe(256);
    expect(GEAR[0]).toBe(0x3b5d3c7d207e37dcn);
    expect(GEAR[1]).toBe(0x784d68ba91123086n);
    expect(GEAR[255]).toBe(0xaabd2b2a451504e1n);
    const ser = Buffer.alloc(256 * 8);
    GEAR.forEach((g, i) => ser.writeBigUInt64BE(g, i * 8));
    expect(sha256hex(ser)).toBe('9df0a720752a7d211fdebaf39bed01610983756fc340a1cfef41052b7356ae73');
    expect(gearTable()).toEqual(GEAR);
  });

  it('applies the seed as XOR', () => {
    const seeded = gearTable(666n);
    seeded.forEach((g, i) => expect(g).toBe(GEAR[i]! ^ 666n));
    expect(() => gearTable(-1n)).toThrow(RangeError);
    expect(() => gearTable(1n << 64n)).toThrow(RangeError);
  });
});

describe('MASKS table', () => {
  // [index, value, highest bit] from reference §2.3 (fastcdc-rs src/v2020/mod.rs#L75-L102)
  const expected: [number, bigint, number][] = [
    [5, 0x0000000001804110n, 24],
    [6, 0x0000000001803110n, 24],
    [7, 0x0000000018035100n, 28],
    [8, 0x0000001800035300n, 36],
    [9, 0x0000019000353000n, 40],
    [10, 0x0000590003530000n, 46],
    [11, 0x0000d90003530000n, 47],
    [12, 0x0000d90103530000n, 47],
    [13, 0x0000d90303530000n, 47],
    [14, 0x0000d90313530000n, 47],
    [15, 0x0000d90f03530000n, 47],
    [16, 0x0000d90303537000n, 47],
    [17, 0x0000d90703537000n, 47],
    [18, 0x0000d90707537000n, 47],
    [19, 0x0000d91707537000n, 47],
    [20, 0x0000d91747537000n, 47],
    [21, 0x0000d91767537000n, 47],
    [22, 0x0000d93767537000n, 47],
    [23, 0x0000d93777537000n, 47],
    [24, 0x0000d93777577000n, 47],
    [25, 0x0000db3777577000n, 47],
  ];
  const popcount = (v: bigint): number => v.toString(2).replace(/0/g, '').length;

  it('has 26 entries, 0..4 zero padding', () => {
    expect(MASKS.length).toBe(26);
    for (let i = 0; i < 5; i++) expect(MASKS[i]).toBe(0n);
  });

  it.each(expected)('MASKS[%i] value, popcount, bit range', (n, value, top) => {
    const m = MASKS[n]!;
    expect(m).toBe(value);
    expect(popcount(m)).toBe(n);
    expect(m.toString(2).length - 1).toBe(top);
    expect(m & 0xfn).toBe(0n); // bits 0..3 never judged
  });

  it('selects masks by round(log2(avg)) ± level', () => {
    const sel = (avg: number, level: number) => {
      const c = new FastCDC({ min: Math.ceil(avg / 4), avg, max: avg * 4, level });
      return [MASKS.indexOf(c.maskS), MASKS.indexOf(c.maskL)];
    };
    expect(sel(16384, 1)).toEqual([15, 13]);
    expect(sel(1 << 20, 1)).toEqual([21, 19]);
    expect(sel(1 << 20, 2)).toEqual([22, 18]);
    expect(sel(1000, 1)).toEqual([11, 9]); // log2 1000 = 9.97 -> 10
    expect(sel(3333, 1)).toEqual([13, 11]); // 11.70 -> 12
    expect(sel(7696, 1)).toEqual([14, 12]); // 12.91 -> 13
    expect(sel(46340, 0)).toEqual([15, 15]); // 15.4999 -> 15
    expect(sel(46341, 0)).toEqual([16, 16]); // 15.5000 -> 16
    expect(sel(256, 3)).toEqual([11, 5]);
    expect(sel(4 << 20, 3)).toEqual([25, 19]);
  });

  it('rejects parameters that leave MASKS[5..25] or are inconsistent', () => {
    expect(() => new FastCDC({ min: 64, avg: 128, max: 1024, level: 3 })).toThrow(RangeError);
    expect(() => new FastCDC({ min: 64, avg: 8 << 20, max: 16 << 20, level: 3 })).toThrow(RangeError);
    expect(() => new FastCDC({ min: 512, avg: 256, max: 1024, level: 1 })).toThrow(RangeError);
    expect(() => new FastCDC({ min: 64, avg: 256, max: 128, level: 1 })).toThrow(RangeError);
    expect(() => new FastCDC({ min: 64, avg: 256, max: 1024, level: 4 })).toThrow(RangeError);
    expect(() => new FastCDC({ min: 64, avg: 256, max: 1024, level: 1, seed: -1n })).toThrow(RangeError);
  });
});

describe('v2020 vectors (SekienAkashita.jpg)', () => {
  const cases = vectors.cases.filter((c) => c.variant === 'v2020');
  it('covers all 15 v2020 cases of vectors.json', () => {
    expect(cases.length).toBe(15);
  });
  it.each(cases.map((c) => [`${c.min}/${c.avg}/${c.max} level ${c.level} seed ${c.seed}`, c] as const))(
    '%s',
    (_name, c) => checkCase(c, fixture),
  );
});

describe('v2020 synthetic vectors', () => {
  const cases = vectors.synthetic_cases.filter((c) => c.variant === 'v2020');
  it('covers all 3 v2020 synthetic cases', () => {
    expect(cases.length).toBe(3);
  });
  it.each(cases.map((c) => [`${c.input} ${c.min}/${c.avg}/${c.max} level ${c.level}`, c] as const))(
    '%s',
    (_name, c) => {
      const data = syntheticInput(c.input!);
      if (c.input === 'sha256ctr:16777216') {
        expect(sha256hex(data)).toBe('01c65c8d6d336a8f1e9acf8bbfe807f7c1d0ec666ff41bc2db9f679849f03c03');
      }
      checkCase(c, data);
    },
  );
});

describe('cut vs cutWithHash (BigInt reference) differential', () => {
  it('uses the native (C) loop when the addon is built (npm ci builds it)', () => {
    expect(typeof nativeCdcCut).toBe('function');
  });

  const configs: ChunkerParams[] = [
    { min: 64, avg: 256, max: 1024, level: 0 },
    { min: 64, avg: 256, max: 1024, level: 3 },
    { min: 65, avg: 256, max: 1023, level: 1 }, // odd min and max
    { min: 63, avg: 300, max: 1001, level: 2, seed: 666n },
    { min: 250, avg: 1000, max: 4000, level: 1 },
    { min: 833, avg: 3333, max: 13333, level: 1, seed: 456n },
    { min: 1024, avg: 1024, max: 1024, level: 1 }, // min == avg == max
    { min: 100, avg: 101, max: 102, level: 0 },
    { min: 4096, avg: 16384, max: 65535, level: 2, seed: 0xffffffffffffffffn },
    { min: 2048, avg: 8192, max: 32768, level: 3, seed: 0x8000000000000001n },
  ];
  const random = randomBytes(200_000, 12345);
  // low-entropy input: runs of few distinct bytes
  const lowEntropy = new Uint8Array(200_000);
  {
    const next = prng(999);
    for (let i = 0; i < lowEntropy.length; ) {
      const run = 1 + (next() % 300);
      lowEntropy.fill(next() % 3 === 0 ? next() & 0xff : 0, i, i + run);
      i += run;
    }
  }
  it.each(configs.map((c) => [`${c.min}/${c.avg}/${c.max} L${c.level} seed ${c.seed ?? 0n}`, c] as const))(
    '%s',
    (_name, p) => {
      const cdc = new FastCDC(p);
      const js = new FastCDC(p, false);
      for (const data of [random, lowEntropy, fixture]) {
        const fast = chunkBuffer(data, p);
        const ref = chunkWithHashes(cdc, data).map(({ offset, length }) => ({ offset, length }));
        expect(fast).toEqual(ref);
        // tail lengths around min/center/max, odd and even, both paths; native (C) and JavaScript loops
        const step = Math.max(3, Math.floor(p.max / 97));
        for (let n = 0; n <= p.max + 3; n += n < p.min + 8 ? 1 : step + (n & 1)) {
          const want = cdc.cutWithHash(data, 1000, Math.min(data.length, 1000 + n)).length;
          expect(cdc.cut(data, 1000, Math.min(data.length, 1000 + n))).toBe(want);
          expect(js.cut(data, 1000, Math.min(data.length, 1000 + n))).toBe(want);
        }
      }
    },
  );

  it('looks only at buf[start..end)', () => {
    const p: ChunkerParams = { min: 64, avg: 256, max: 1024, level: 1 };
    const cdc = new FastCDC(p);
    const data = randomBytes(10_000, 7);
    for (let n = 0; n < 1500; n++) {
      const exact = data.slice(3000, 3000 + n);
      expect(cdc.cut(data, 3000, 3000 + n)).toBe(cdc.cut(exact, 0, n));
    }
    expect(() => cdc.cut(data, 10, 5)).toThrow(RangeError);
    expect(() => cdc.cut(data, 0, data.length + 1)).toThrow(RangeError);
  });

  it('empty input yields no chunks', () => {
    expect(chunkBuffer(new Uint8Array(0), DEFAULT_PARAMS)).toEqual([]);
    const sc = new StreamChunker(DEFAULT_PARAMS);
    expect(sc.push(new Uint8Array(0))).toEqual([]);
    expect(sc.finish()).toEqual([]);
  });
});

describe('cutIfFound on growing windows == chunkBuffer (the backup reader cuts as soon as a boundary arrives)', () => {
  /** the reader's loop: windows grow by random reads; cut whenever the window decides it */
  function byWindows(cdc: FastCDC, data: Uint8Array, next: () => number, maxRead: number): number[] {
    const out: number[] = [];
    let start = 0;
    let end = 0;
    while (start < data.length) {
      const n = end === data.length ? cdc.cut(data, start, end) : cdc.cutIfFound(data, start, end);
      if (n > 0) {
        out.push(n);
        start += n;
        continue;
      }
      expect(n).toBe(-1);
      end = Math.min(data.length, end + 1 + (next() % maxRead));
    }
    return out;
  }
  const mixed = (): Uint8Array => {
    // random, then a long run of zeros (no boundary until max), then text-like low entropy
    const a = randomBytes(12 * 1024 * 1024, 7);
    const z = new Uint8Array(9 * 1024 * 1024 + 3);
    const t = randomBytes(6 * 1024 * 1024, 8).map((x) => 97 + (x % 4));
    const d = new Uint8Array(a.length + z.length + t.length);
    d.set(a, 0); d.set(z, a.length); d.set(t, a.length + z.length);
    return d;
  };
  const data = mixed();
  const cases: [string, ChunkerParams, boolean][] = [
    ['default params, native cut', DEFAULT_PARAMS, true],
    ['default params, JavaScript cut', DEFAULT_PARAMS, false],
    ['small params, level 1', { ...DEFAULT_PARAMS, min: 2048, avg: 8192, max: 65536, level: 1 }, true],
    ['small odd params, level 2', { ...DEFAULT_PARAMS, min: 1001, avg: 4099, max: 30001, level: 2 }, true],
  ];
  it.each(cases)('%s', (_name, p, useNative) => {
    const ref = chunkBuffer(data, p).map((c) => c.length);
    const cdc = new FastCDC(p, useNative);
    for (const maxRead of [p.avg >> 3, p.avg, 3 * p.max]) {
      expect(byWindows(cdc, data, prng(maxRead), maxRead)).toEqual(ref);
    }
  });
});

describe('StreamChunker == chunkBuffer on ~40 MiB, default params', () => {
  const SIZE = 40 * 1024 * 1024 + 12345;
  const data = randomBytes(SIZE, 0x5eed);
  const reference = chunkBuffer(data, DEFAULT_PARAMS);

  it('in-memory chunks are contiguous, within [min, max] except the last', () => {
    expect(reference.length).toBeGreaterThan(20);
    let off = 0;
    reference.forEach((c, i) => {
      expect(c.offset).toBe(off);
      off += c.length;
      expect(c.length).toBeLessThanOrEqual(DEFAULT_PARAMS.max);
      if (i < reference.length - 1) expect(c.length).toBeGreaterThanOrEqual(DEFAULT_PARAMS.min);
    });
    expect(off).toBe(SIZE);
  });

  it.each([1, 2, 3])('random piece sizes 1 B … 3 MiB (run %i)', (run) => {
    const next = prng(run * 0x9e3779b1);
    const MAXPIECE = 3 * 1024 * 1024;
    const sc = new StreamChunker(DEFAULT_PARAMS);
    const got: Uint8Array[] = [];
    let pieces = 0;
    for (let o = 0; o < SIZE; pieces++) {
      const kind = next() % 4;
      let sz: number;
      if (kind === 0) sz = 1 + (next() % 16); // tiny
      else if (kind === 1) sz = Math.max(1, Math.floor(2 ** ((next() / 2 ** 32) * Math.log2(MAXPIECE)))); // log-uniform
      else sz = 1 + (next() % MAXPIECE); // uniform
      const piece = data.slice(o, o + sz); // caller-owned copy, scribbled over after push
      got.push(...sc.push(piece));
      piece.fill(0xaa);
      o += sz;
      expect(sc.pending).toBeLessThan(DEFAULT_PARAMS.max);
    }
    got.push(...sc.finish());
    expect(pieces).toBeGreaterThan(30);
    expect(got.length).toBe(reference.length);
    got.forEach((chunk, i) => {
      const r = reference[i]!;
      expect(chunk.length).toBe(r.length);
      expect(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).equals(data.subarray(r.offset, r.offset + r.length))).toBe(true);
    });
  });

  it('seeded params, level 2: stream equals in-memory', () => {
    const p: ChunkerParams = { ...DEFAULT_PARAMS, level: 2, seed: 0x0123456789abcdefn };
    const part = data.subarray(0, 24 * 1024 * 1024);
    const ref = chunkBuffer(part, p);
    const sc = new StreamChunker(p);
    const got: Uint8Array[] = [];
    const next = prng(42);
    for (let o = 0; o < part.length; ) {
      const sz = 1 + (next() % (3 * 1024 * 1024));
      got.push(...sc.push(part.subarray(o, o + sz)));
      o += sz;
    }
    got.push(...sc.finish());
    expect(got.map((c) => c.length)).toEqual(ref.map((c) => c.length));
    // and the instance is reusable after finish()
    expect([...sc.push(part.subarray(0, 1000)), ...sc.finish()].map((c) => c.length)).toEqual([1000]);
  });
});
