/**
 * FastCDC 2020 content-defined chunker, bit-compatible with fastcdc-rs `v2020`
 * (Nathan Fiedler's crate) — same GEAR table, MASKS table, rounded log2(avg),
 * normalization level, seed rule and cut semantics, hence the same cut points
 * and (via `cutWithHash`) the same 64-bit fingerprints.
 *
 * Pure code, no I/O. See shared/reference/fastcdc.md §2 for the algorithm.
 *
 * Hot path (`FastCDC.cut`)
 * ------------------------
 * The v2020 "two bytes per step" loop is equivalent, as far as cut positions are
 * concerned, to the single-byte Gear hash `h = (h << 1) + GEAR[b]` judged at every
 * position: the even-position intermediate value of the pair loop is exactly 2·h and is
 * tested against `mask << 1`, which is the same test as `h & mask` (masks use bits ≤ 47).
 * Because addition and left shift only move information upwards, bits 0…48 of `h`
 * depend only on bits 0…48 of the inputs, so `cut` tracks just those 49 bits in two
 * int32 halves: `lo` = bits 0…23 (kept < 2^24, so the carry is simply `lo >> 24`) and
 * `hi` = bits 24…48 (upper garbage bits are harmless, never judged), read from one
 * interleaved Int32Array, two bytes per loop iteration. No BigInt, no allocation, no
 * `>>> 0`. `cutWithHash` is a separate, literal BigInt transcription of
 * the fastcdc-rs pair loop that also yields the full 64-bit hash; tests check that both
 * agree.
 */
import { createHash } from 'node:crypto';
import { nativeCdcCut } from '../native/native.js';

const U64 = (1n << 64n) - 1n;

/**
 * fastcdc-rs `MASKS`: entry n has exactly n one-bits spread over bits 4…47.
 * Indices 0–4 are padding and are never selected.
 */
export const MASKS: readonly bigint[] = Object.freeze([
  0n, // 0: padding
  0n, // 1: padding
  0n, // 2: padding
  0n, // 3: padding
  0n, // 4: padding
  0x0000_0000_0180_4110n, // 5: only reached by level 3 with 256 B avg
  0x0000_0000_0180_3110n, // 6: 64 B
  0x0000_0000_1803_5100n, // 7: 128 B
  0x0000_0018_0003_5300n, // 8: 256 B
  0x0000_0190_0035_3000n, // 9: 512 B
  0x0000_5900_0353_0000n, // 10: 1 KiB
  0x0000_d900_0353_0000n, // 11: 2 KiB
  0x0000_d901_0353_0000n, // 12: 4 KiB
  0x0000_d903_0353_0000n, // 13: 8 KiB
  0x0000_d903_1353_0000n, // 14: 16 KiB
  0x0000_d90f_0353_0000n, // 15: 32 KiB
  0x0000_d903_0353_7000n, // 16: 64 KiB
  0x0000_d907_0353_7000n, // 17: 128 KiB
  0x0000_d907_0753_7000n, // 18: 256 KiB
  0x0000_d917_0753_7000n, // 19: 512 KiB
  0x0000_d917_4753_7000n, // 20: 1 MiB
  0x0000_d917_6753_7000n, // 21: 2 MiB
  0x0000_d937_6753_7000n, // 22: 4 MiB
  0x0000_d937_7753_7000n, // 23: 8 MiB
  0x0000_d937_7757_7000n, // 24: 16 MiB
  0x0000_db37_7757_7000n, // 25: only reached by level 3 with 4 MiB avg
]);

const MIN_MASK_INDEX = 5;
const MAX_MASK_INDEX = 25;

/**
 * GEAR table: GEAR[i] = first 8 bytes (big-endian) of MD5 of 64 bytes all equal to i,
 * optionally XORed with `seed` (fastcdc-rs `with_level_and_seed`). Returns a fresh,
 * frozen array of 256 unsigned 64-bit bigints.
 */
export function gearTable(seed: bigint = 0n): readonly bigint[] {
  checkSeed(seed);
  const out: bigint[] = new Array<bigint>(256);
  for (let i = 0; i < 256; i++) {
    const digest = createHash('md5').update(new Uint8Array(64).fill(i)).digest();
    out[i] = digest.readBigUInt64BE(0) ^ seed;
  }
  return Object.freeze(out);
}

/** The stock (seed 0) GEAR table, generated at module load. */
export const GEAR: readonly bigint[] = gearTable();

export interface ChunkerParams {
  /** Minimum chunk size in bytes (the final chunk may be shorter). */
  min: number;
  /** Target average; selects the masks via round(log2(avg)). */
  avg: number;
  /** Maximum chunk size in bytes. */
  max: number;
  /** Normalization level 0…3 (fastcdc-rs default 1). */
  level: number;
  /** Optional unsigned 64-bit seed; 0 / undefined = stock table. */
  seed?: bigint;
}

/** restic-like sizes: 512 KiB / 1 MiB / 8 MiB, level 1, seed 0. */
export const DEFAULT_PARAMS: ChunkerParams = Object.freeze({
  min: 512 * 1024,
  avg: 1024 * 1024,
  max: 8 * 1024 * 1024,
  level: 1,
});

/** Largest accepted `max` (keeps every offset comfortably inside int32/SMI range). */
const MAX_MAX = 1 << 30;

function checkSeed(seed: bigint): void {
  if (typeof seed !== 'bigint' || seed < 0n || seed > U64) {
    throw new RangeError('FastCDC seed must be an unsigned 64-bit bigint');
  }
}

/** round(log2(v)) for a positive integer, without floating point. */
function roundLog2(v: number): number {
  const f = 31 - Math.clz32(v); // floor(log2 v), v < 2^31
  const b = BigInt(v);
  return b * b >= 1n << BigInt(2 * f + 1) ? f + 1 : f;
}

/** Shared interleaved int32 table for the stock GEAR (seed 0). */
let stockSplit: Int32Array | undefined;

/**
 * Interleaved int32 GEAR halves: [2i] = bits 0…23 of GEAR[i], [2i+1] = bits 24…48.
 * (Bits above 48 never influence a judged bit, so they are dropped.)
 */
function splitGear(gear: readonly bigint[]): Int32Array {
  const t = new Int32Array(512);
  for (let i = 0; i < 256; i++) {
    const g = gear[i]!;
    t[2 * i] = Number(g & 0xff_ffffn);
    t[2 * i + 1] = Number((g >> 24n) & 0x1ff_ffffn);
  }
  return t;
}

export class FastCDC {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
  readonly level: number;
  readonly seed: bigint;
  /** round(log2(avg)). */
  readonly bits: number;
  /** Strict mask MASKS[bits + level], used before `avg`. */
  readonly maskS: bigint;
  /** Loose mask MASKS[bits - level], used from `avg` on. */
  readonly maskL: bigint;

  // hot-path tables / masks (int32)
  private readonly gSplit: Int32Array;
  private readonly msLo: number;
  private readonly msHi: number;
  private readonly mlLo: number;
  private readonly mlHi: number;

  /** the C loop (native addon) and its gear table, when available */
  private readonly native: typeof nativeCdcCut;
  private readonly gearTyped: BigUint64Array | undefined;

  // BigInt reference tables (built lazily, only for cutWithHash)
  private gear64: readonly bigint[] | undefined;
  private gearLs64: readonly bigint[] | undefined;

  constructor(p: ChunkerParams, useNative = true) {
    const { min, avg, max, level } = p;
    const seed = p.seed ?? 0n;
    for (const [name, v] of [
      ['min', min],
      ['avg', avg],
      ['max', max],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`FastCDC ${name} must be a positive integer, got ${v}`);
      }
    }
    if (!(min <= avg && avg <= max)) {
      throw new RangeError(`FastCDC requires min <= avg <= max, got ${min}/${avg}/${max}`);
    }
    if (max > MAX_MAX) throw new RangeError(`FastCDC max must be <= ${MAX_MAX}, got ${max}`);
    if (!Number.isInteger(level) || level < 0 || level > 3) {
      throw new RangeError(`FastCDC level must be 0, 1, 2 or 3, got ${level}`);
    }
    checkSeed(seed);
    const bits = roundLog2(avg);
    if (bits - level < MIN_MASK_INDEX || bits + level > MAX_MASK_INDEX) {
      throw new RangeError(
        `FastCDC avg ${avg} (log2 ≈ ${bits}) with level ${level} selects masks outside MASKS[5..25]`,
      );
    }
    this.min = min;
    this.avg = avg;
    this.max = max;
    this.level = level;
    this.seed = seed;
    this.bits = bits;
    this.maskS = MASKS[bits + level]!;
    this.maskL = MASKS[bits - level]!;

    let split: Int32Array;
    if (seed === 0n) {
      split = stockSplit ??= splitGear(GEAR);
      this.gear64 = GEAR;
    } else {
      const g = gearTable(seed);
      split = splitGear(g);
      this.gear64 = g;
    }
    this.gSplit = split;
    if (useNative && nativeCdcCut) {
      this.native = nativeCdcCut;
      this.gearTyped = BigUint64Array.from(this.gear64!);
    }
    this.msLo = Number(this.maskS & 0xff_ffffn);
    this.msHi = Number(this.maskS >> 24n);
    this.mlLo = Number(this.maskL & 0xff_ffffn);
    this.mlHi = Number(this.maskL >> 24n);
  }

  /**
   * Length of the next chunk starting at `buf[start]`, looking only at `buf[start..end)`.
   * Contract (fastcdc-rs v2020 `cut`): the caller passes `end - start >= max` unless `end`
   * is the end of the data; then in-memory and streaming drivers give identical cuts.
   * Returns 0 only when `start === end`.
   */
  cut(buf: Uint8Array, start: number, end: number): number {
    if (this.native && end - start > this.min) return this.native(buf, start, end, this.min, this.avg, this.max, this.maskS, this.maskL, this.gearTyped!);
    return this.cutJs(buf, start, end);
  }

  /**
   * The next cut when `buf[start..end)` already decides it, else -1 (more data is needed). Unlike
   * cut() the caller may pass fewer than `max` bytes before the end of the data: a boundary found
   * before `end` is the one the whole data gives (positions below `avg` are tested with the strict
   * mask and those above with the loose one whatever the window; the scan stops at the last even
   * position before `end`, so a result below `end - start` is always a real boundary). With at
   * least `max` bytes it is cut(). Lets a reader cut as soon as a boundary arrives instead of
   * buffering `max` bytes first (a rescan from `start` after each read costs little).
   */
  cutIfFound(buf: Uint8Array, start: number, end: number): number {
    const n = end - start;
    if (n >= this.max) return this.cut(buf, start, end);
    if (n <= this.min) return -1;
    const c = this.cut(buf, start, end);
    return c < n ? c : -1;
  }

  /** the JavaScript cut: the reference the native one is tested against, and the fallback */
  cutJs(buf: Uint8Array, start: number, end: number): number {
    if (!(0 <= start && start <= end && end <= buf.length)) {
      throw new RangeError(`FastCDC.cut: bad range [${start}, ${end}) of ${buf.length}`);
    }
    const min = this.min;
    let n = end - start;
    if (n <= min) return n;
    let center = this.avg;
    if (n > this.max) n = this.max;
    else if (n < center) center = n;

    const g = this.gSplit;
    // Judged positions (relative): from 2·⌊min/2⌋; strict mask below 2·⌊center/2⌋,
    // loose mask below 2·⌊n/2⌋ (the pair loop never hashes the last byte of an odd n).
    // All three bounds are even relative to `start`, so the loops step two bytes at a
    // time like fastcdc-rs and p + 1 is always < e1 / e2.
    let p = start + (min - (min & 1));
    const e1 = start + (center - (center & 1));
    const e2 = start + (n - (n & 1));
    let lo = 0; // bits 0..23 of h, always < 2^24 after normalisation
    let hi = 0; // bits 24..48 of h in its low 25 bits (higher bits: don't care)
    let b = 0;

    const sLo = this.msLo;
    const sHi = this.msHi;
    for (; p < e1; p += 2) {
      b = buf[p]! << 1;
      lo = (lo << 1) + g[b]!;
      hi = ((hi << 1) + g[b + 1]! + (lo >> 24)) | 0;
      lo &= 0xff_ffff;
      if ((lo & sLo) === 0 && (hi & sHi) === 0) return p - start;
      b = buf[p + 1]! << 1;
      lo = (lo << 1) + g[b]!;
      hi = ((hi << 1) + g[b + 1]! + (lo >> 24)) | 0;
      lo &= 0xff_ffff;
      if ((lo & sLo) === 0 && (hi & sHi) === 0) return p + 1 - start;
    }
    const lLo = this.mlLo;
    const lHi = this.mlHi;
    for (; p < e2; p += 2) {
      b = buf[p]! << 1;
      lo = (lo << 1) + g[b]!;
      hi = ((hi << 1) + g[b + 1]! + (lo >> 24)) | 0;
      lo &= 0xff_ffff;
      if ((lo & lLo) === 0 && (hi & lHi) === 0) return p - start;
      b = buf[p + 1]! << 1;
      lo = (lo << 1) + g[b]!;
      hi = ((hi << 1) + g[b + 1]! + (lo >> 24)) | 0;
      lo &= 0xff_ffff;
      if ((lo & lLo) === 0 && (hi & lHi) === 0) return p + 1 - start;
    }
    return n;
  }

  /**
   * Same cut as `cut` plus the fastcdc-rs v2020 64-bit fingerprint at the cut
   * (0 when the remainder was <= min). Literal BigInt transcription of the
   * fastcdc-rs pair loop; slow (~20 MB/s), meant for tests and diagnostics.
   */
  cutWithHash(buf: Uint8Array, start: number, end: number): { length: number; hash: bigint } {
    if (!(0 <= start && start <= end && end <= buf.length)) {
      throw new RangeError(`FastCDC.cutWithHash: bad range [${start}, ${end}) of ${buf.length}`);
    }
    let n = end - start;
    if (n <= this.min) return { length: n, hash: 0n };
    let center = this.avg;
    if (n > this.max) n = this.max;
    else if (n < center) center = n;

    const gear = (this.gear64 ??= gearTable(this.seed));
    const gearLs = (this.gearLs64 ??= Object.freeze(gear.map((g) => (g << 1n) & U64)));
    const maskS = this.maskS;
    const maskL = this.maskL;
    const maskSLs = maskS << 1n;
    const maskLLs = maskL << 1n;

    let h = 0n;
    let i = Math.floor(this.min / 2);
    const halfCenter = Math.floor(center / 2);
    const halfN = Math.floor(n / 2);
    while (i < halfCenter) {
      const a = 2 * i;
      h = ((h << 2n) + gearLs[buf[start + a]!]!) & U64;
      if ((h & maskSLs) === 0n) return { length: a, hash: h };
      h = (h + gear[buf[start + a + 1]!]!) & U64;
      if ((h & maskS) === 0n) return { length: a + 1, hash: h };
      i++;
    }
    while (i < halfN) {
      const a = 2 * i;
      h = ((h << 2n) + gearLs[buf[start + a]!]!) & U64;
      if ((h & maskLLs) === 0n) return { length: a, hash: h };
      h = (h + gear[buf[start + a + 1]!]!) & U64;
      if ((h & maskL) === 0n) return { length: a + 1, hash: h };
      i++;
    }
    return { length: n, hash: h };
  }
}

/**
 * In-memory driver: contiguous chunks covering `data` (none for empty input),
 * identical to fastcdc-rs `FastCDC` iteration.
 */
export function chunkBuffer(data: Uint8Array, p: ChunkerParams): { offset: number; length: number }[] {
  const cdc = new FastCDC(p);
  const out: { offset: number; length: number }[] = [];
  const len = data.length;
  let offset = 0;
  while (offset < len) {
    const length = cdc.cut(data, offset, len);
    out.push({ offset, length });
    offset += length;
  }
  return out;
}

/** Initial internal buffer size of StreamChunker (grows up to 2·max). */
const STREAM_INITIAL_CAPACITY = 64 * 1024;

/**
 * Streaming driver (fastcdc-rs `StreamCDC` semantics): feed pieces of any size with
 * `push`, then call `finish` once at EOF. A cut is only taken when at least `max` bytes
 * are buffered (or at EOF), so the chunks are exactly those of `chunkBuffer` on the
 * concatenated input.
 *
 * Returned chunks are fresh copies (each its own ArrayBuffer), safe to keep; the
 * pushed pieces are copied too and may be reused by the caller right away.
 * Memory: one internal buffer that starts at 64 KiB and grows to at most 2·max.
 * After `finish` the instance is reset and can chunk a new stream.
 */
export class StreamChunker {
  private readonly cdc: FastCDC;
  private readonly max: number;
  private buf: Uint8Array;
  private pos = 0; // start of the not-yet-chunked bytes
  private len = 0; // end of the buffered bytes

  constructor(p: ChunkerParams = DEFAULT_PARAMS) {
    this.cdc = new FastCDC(p);
    this.max = p.max;
    this.buf = new Uint8Array(Math.min(STREAM_INITIAL_CAPACITY, 2 * p.max));
  }

  /** Number of buffered bytes not yet emitted as a chunk. */
  get pending(): number {
    return this.len - this.pos;
  }

  /** Adds `piece`; returns the chunks that became complete (possibly none). */
  push(piece: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let off = 0;
    const total = piece.length;
    while (off < total) {
      if (this.len === this.buf.length) this.makeRoom();
      const take = Math.min(this.buf.length - this.len, total - off);
      this.buf.set(piece.subarray(off, off + take), this.len);
      this.len += take;
      off += take;
      this.drain(out, false);
    }
    return out;
  }

  /** Signals EOF: returns the remaining chunks and resets the instance. */
  finish(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.drain(out, true);
    this.pos = 0;
    this.len = 0;
    return out;
  }

  private drain(out: Uint8Array[], eof: boolean): void {
    const max = this.max;
    const buf = this.buf;
    while (eof ? this.pos < this.len : this.len - this.pos >= max) {
      const length = this.cdc.cut(buf, this.pos, this.len);
      out.push(buf.slice(this.pos, this.pos + length));
      this.pos += length;
    }
    if (this.pos === this.len) this.pos = this.len = 0;
  }

  /**
   * Called when the buffer is full. Invariant here: pending < max (drain ran).
   * Compact if at least half the buffer is consumed, otherwise grow (cap ≤ 2·max:
   * pending > cap/2 and pending < max imply cap < 2·max).
   */
  private makeRoom(): void {
    const cap = this.buf.length;
    if (this.pos >= cap / 2) {
      this.buf.copyWithin(0, this.pos, this.len);
      this.len -= this.pos;
      this.pos = 0;
    } else {
      const next = new Uint8Array(Math.min(cap * 2, 2 * this.max));
      next.set(this.buf.subarray(this.pos, this.len));
      this.len -= this.pos;
      this.pos = 0;
      this.buf = next;
    }
  }
}
