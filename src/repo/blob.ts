/** Decoding one stored blob: decrypt, decompress, check length and id. Pure; shared by the
 * repository (main thread) and the decode workers. */
import { open, type MasterKey } from '../crypto/crypto.js';
import { sha256hex } from './ids.js';
import { plaintextLength } from './index.js';
import { zstdDecompress, zstdDecompressInto } from './zstd.js';

/**
 * The most a blob may decompress to: restic's chunks are at most 8 MiB (data blobs get 8× that);
 * a tree of 512 MiB is a directory of about 1.5 million entries. An index entry claiming more is a
 * lie (a decompression bomb), refused before anything is allocated.
 */
export const MAX_DATA_BLOB = 64 << 20;
export const MAX_TREE_BLOB = 512 << 20;

/** decompression output for in-place decoding, reused (grown to the largest blob seen) */
let scratch: Buffer | null = null;

/**
 * The plaintext of a stored blob; throws with a one-line reason when it does not verify. With
 * inPlace, `stored` is overwritten and the plaintext is a view of it (uncompressed blobs) or of a
 * scratch buffer of this module (compressed ones), valid only until the next call: for the decode
 * workers, which write or hash it at once.
 */
export function decodeStoredBlob(key: MasterKey, stored: Uint8Array, id: string, loc: { uncompressedLength: number; length: number; type?: string }, inPlace = false): Buffer {
  const max = loc.type === 'data' ? MAX_DATA_BLOB : MAX_TREE_BLOB;
  if (loc.uncompressedLength > max) throw new Error(`claims ${loc.uncompressedLength} bytes uncompressed, more than a ${loc.type ?? 'tree'} blob may have (${max})`);
  let plain = open(key, stored, inPlace);
  if (loc.uncompressedLength && inPlace) {
    if (!scratch || scratch.length < loc.uncompressedLength) scratch = Buffer.allocUnsafeSlow(Math.max(loc.uncompressedLength, 1 << 20));
    plain = scratch.subarray(0, zstdDecompressInto(scratch.subarray(0, loc.uncompressedLength), plain));
  } else if (loc.uncompressedLength) {
    // exactly the length the index gives: a frame that inflates further is refused as it goes
    plain = zstdDecompress(plain, loc.uncompressedLength, 'blob');
  }
  if (plain.length !== plaintextLength(loc)) throw new Error(`wrong length ${plain.length}`);
  if (sha256hex(plain) !== id) throw new Error('hash mismatch (pack is corrupt)');
  return plain;
}
