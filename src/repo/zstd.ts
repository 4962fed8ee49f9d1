/** zstd helpers (one frame per blob, no checksum, as restic writes). */
import { createRequire } from 'node:module';
import { Compressor } from 'zstd-napi';
import type * as ZstdBinding from 'zstd-napi/binding.js';

const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof ZstdBinding;

export type CompressionMode = 'auto' | 'off' | 'max';

const LEVELS: Record<Exclude<CompressionMode, 'off'>, number> = { auto: 3, max: 19 };
const compressors = new Map<number, Compressor>();

export function zstdCompress(data: Uint8Array, mode: Exclude<CompressionMode, 'off'> = 'auto'): Buffer {
  const level = LEVELS[mode];
  let c = compressors.get(level);
  if (!c) {
    c = new Compressor();
    // windowLog 22 (4 MiB) keeps decoder memory modest; restic accepts any conforming frame
    c.setParameters({ compressionLevel: level, checksumFlag: false, contentSizeFlag: true, windowLog: level > 3 ? 22 : undefined });
    compressors.set(level, c);
  }
  return c.compress(data);
}

interface Scratch { cctx: ZstdBinding.CCtx; buf: Buffer }
/** compression contexts with their output buffers, by level (1: the incompressibility probe) */
const scratches = new Map<number, Scratch>();

function scratchFor(level: number): Scratch {
  let s = scratches.get(level);
  if (!s) {
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, level);
    cctx.setParameter(binding.CParameter.checksumFlag, 0);
    cctx.setParameter(binding.CParameter.contentSizeFlag, 1);
    if (level > 3) cctx.setParameter(binding.CParameter.windowLog, 22);
    s = { cctx, buf: Buffer.alloc(0) };
    scratches.set(level, s);
  }
  return s;
}

/**
 * Compress into a scratch buffer owned by this module: the result is only valid until the next
 * call (the chunk workers encrypt it at once). Saves one output allocation per blob, which was a
 * third of the workers' garbage.
 */
export function zstdCompressScratch(data: Uint8Array, mode: Exclude<CompressionMode, 'off'> = 'auto'): Buffer {
  const s = scratchFor(LEVELS[mode]);
  const bound = binding.compressBound(data.length);
  if (s.buf.length < bound) s.buf = Buffer.allocUnsafe(Math.max(bound, binding.compressBound(1 << 20)));
  const n = s.cctx.compress2(s.buf, data);
  return s.buf.subarray(0, n);
}

/** a zstd frame that inflates beyond what its object may be (a decompression bomb, or damage) */
export class DecompressLimitError extends Error {
  override name = 'DecompressLimitError';
}

/** zstd windows beyond 2^27 (128 MiB, level 22's) are refused: no writer we read uses more */
const WINDOW_LOG_MAX = 27;
const STREAM_CHUNK = 1 << 20;
/** callers that know no better bound (the largest tree blob we accept) */
const DEFAULT_MAX = 512 << 20;
let boundedCtx: ZstdBinding.DCtx | undefined;

/**
 * Decompress at most `max` bytes: a frame that inflates further fails with DecompressLimitError
 * before more than `max` + 1 MiB is held (a 96 KiB frame may claim, and produce, 3 GiB). A frame
 * that states its size is decoded into a buffer of exactly that size; others stream, chunk by chunk.
 */
export function zstdDecompress(data: Uint8Array, max = DEFAULT_MAX, what = 'zstd frame'): Buffer {
  if (!boundedCtx) {
    boundedCtx = new binding.DCtx();
    boundedCtx.setParameter(binding.DParameter.windowLogMax, WINDOW_LOG_MAX);
  }
  const d = boundedCtx;
  const tooBig = (n: number | string) => new DecompressLimitError(`${what} decompresses to ${n} bytes, more than the ${max} bytes it may have`);
  let stated: number | null = null;
  try { stated = binding.getFrameContentSize(data); } catch { /* not a frame: the decoder says why */ }
  if (stated !== null && stated > max) throw tooBig(stated);
  try {
    if (stated !== null) {
      const out = Buffer.allocUnsafe(stated);
      try {
        const n = d.decompress(out, data);
        return out.subarray(0, n);
      } catch {
        // more than one frame, or a frame longer than it said: the stream below finds out which
        d.reset(binding.ResetDirective.sessionOnly);
      }
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let src = data;
    for (;;) {
      const out = Buffer.allocUnsafe(Math.min(STREAM_CHUNK, max - total + 1));
      const [ret, produced, consumed] = d.decompressStream(out, src);
      src = src.subarray(consumed);
      total += produced;
      if (total > max) throw tooBig(`more than ${max}`);
      if (produced) chunks.push(out.subarray(0, produced));
      if (ret === 0 && src.length === 0) break;
      if (produced === 0 && consumed === 0) throw new Error(`${what} is truncated`);
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } catch (e) {
    d.reset(binding.ResetDirective.sessionOnly);
    if (e instanceof DecompressLimitError || (e as Error).message.endsWith('is truncated')) throw e;
    throw new Error(`${what} cannot be decompressed: ${(e as Error).message}`);
  }
}

let dctx: ZstdBinding.DCtx | undefined;

/**
 * Decompress one frame into `dst`, which must be large enough for all of it (a frame that is longer
 * fails); returns the bytes written. For callers that know the size (the index does) and reuse a
 * buffer: no allocation per blob.
 */
export function zstdDecompressInto(dst: Uint8Array, data: Uint8Array): number {
  if (!dctx) {
    dctx = new binding.DCtx();
    dctx.setParameter(binding.DParameter.windowLogMax, 31);
  }
  return dctx.decompress(dst, data);
}

export function parseCompression(s: string): CompressionMode {
  if (s === 'auto' || s === 'off' || s === 'max') return s;
  throw new Error(`invalid compression mode "${s}" (use auto, off or max)`);
}

const SAMPLE = 16 * 1024;
let sampleBuf: Buffer | null = null;

/**
 * For compression "auto": true when three 16 KiB samples of the chunk (start, middle, end) do
 * not shrink by 3% at zstd level 1, as with photos, video and archives; the chunk is then stored
 * without compressing it (~0.9 s of CPU per 480 MiB of such data at level 3, for a gain of 0-2%).
 * Content that compresses at all is compressed in full, as restic does.
 */
export function looksIncompressible(data: Uint8Array): boolean {
  if (data.length < 4 * SAMPLE) return false;
  sampleBuf ??= Buffer.allocUnsafe(3 * SAMPLE);
  sampleBuf.set(data.subarray(0, SAMPLE), 0);
  const mid = (data.length >> 1) - (SAMPLE >> 1);
  sampleBuf.set(data.subarray(mid, mid + SAMPLE), SAMPLE);
  sampleBuf.set(data.subarray(data.length - SAMPLE), 2 * SAMPLE);
  const s = scratchFor(1);
  if (s.buf.length < binding.compressBound(3 * SAMPLE)) s.buf = Buffer.allocUnsafe(binding.compressBound(3 * SAMPLE));
  const n = s.cctx.compress2(s.buf, sampleBuf);
  return n > sampleBuf.length * 0.97;
}
