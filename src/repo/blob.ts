/** Decoding one stored blob: decrypt, decompress, check length and id. Pure; shared by the
 * repository (main thread) and the decode workers. */
import { open, type MasterKey } from '../crypto/crypto.js';
import { sha256hex } from './ids.js';
import { plaintextLength } from './index.js';
import { zstdDecompress } from './zstd.js';

/**
 * The plaintext of a stored blob; throws with a one-line reason when it does not verify. With
 * inPlace, `stored` is overwritten (an uncompressed blob's plaintext is returned as a view of it).
 */
export function decodeStoredBlob(key: MasterKey, stored: Uint8Array, id: string, loc: { uncompressedLength: number; length: number }, inPlace = false): Buffer {
  let plain = open(key, stored, inPlace);
  if (loc.uncompressedLength) plain = zstdDecompress(plain);
  if (plain.length !== plaintextLength(loc)) throw new Error(`wrong length ${plain.length}`);
  if (sha256hex(plain) !== id) throw new Error('hash mismatch (pack is corrupt)');
  return plain;
}
