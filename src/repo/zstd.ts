/** zstd helpers (one frame per blob, no checksum, as restic writes). */
import { Compressor, Decompressor } from 'zstd-napi';

export type CompressionMode = 'auto' | 'off' | 'max';

const LEVELS: Record<Exclude<CompressionMode, 'off'>, number> = { auto: 3, max: 19 };
const compressors = new Map<number, Compressor>();
let decompressor: Decompressor | undefined;

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

export function zstdDecompress(data: Uint8Array): Buffer {
  decompressor ??= new Decompressor();
  decompressor.setParameters({ windowLogMax: 31 });
  return decompressor.decompress(data);
}

export function parseCompression(s: string): CompressionMode {
  if (s === 'auto' || s === 'off' || s === 'max') return s;
  throw new Error(`invalid compression mode "${s}" (use auto, off or max)`);
}
