/** Decoding one stored blob: decrypt, decompress, check length and id. Pure; shared by the
 * repository (main thread) and the decode workers. */
import { open, type MasterKey } from '../crypto/crypto.js';
import { sha256hex } from './ids.js';
import { plaintextLength } from './index.js';
import { zstdDecompress, zstdDecompressInto } from './zstd.js';

/** decompression output for in-place decoding, reused (grown to the largest blob seen) */
let scratch: Buffer | null = null;

/**
 * The plaintext of a stored blob; throws with a one-line reason when it does not verify. With
 * inPlace, `stored` is overwritten and the plaintext is a view of it (uncompressed blobs) or of a
 * scratch buffer of this module (compressed ones), valid only until the next call: for the decode
 * workers, which write or hash it at once.
 */
export function decodeStoredBlob(key: MasterKey, stored: Uint8Array, id: string, loc: { uncompressedLength: number; length: number }, inPlace = false): Buffer {
  let plain = open(key, stored, inPlace);
  if (loc.uncompressedLength && inPlace) {
    if (!scratch || scratch.length < loc.uncompressedLength) scratch = Buffer.allocUnsafeSlow(Math.max(loc.uncompressedLength, 1 << 20));
    plain = scratch.subarray(0, zstdDecompressInto(scratch.subarray(0, loc.uncompressedLength), plain));
  } else if (loc.uncompressedLength) {
    plain = zstdDecompress(plain);
  }
  if (plain.length !== plaintextLength(loc)) throw new Error(`wrong length ${plain.length}`);
  if (sha256hex(plain) !== id) throw new Error('hash mismatch (pack is corrupt)');
  return plain;
}
