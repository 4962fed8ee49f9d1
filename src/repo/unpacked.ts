/** Unpacked files (index, snapshots, locks) in v2: seal(0x02 || zstd(json)) or seal(json). */
import { open, seal, type MasterKey } from '../crypto/crypto.js';
import { zstdCompress, zstdDecompress } from './zstd.js';

export function encodeUnpacked(key: MasterKey, json: Uint8Array, version: number): Buffer {
  if (version < 2) return seal(key, json);
  const z = zstdCompress(json, 'auto');
  const plain = Buffer.allocUnsafe(z.length + 1);
  plain[0] = 2;
  z.copy(plain, 1);
  return seal(key, plain);
}

/** a lock file is ~200 bytes of JSON */
export const MAX_LOCK_SIZE = 1 << 20;
/**
 * Index files and snapshots have no size restic bounds, but their JSON (hex ids, names) shrinks by
 * 2-10× at most: more than 100× the stored size, and more than 16 MiB, is a decompression bomb.
 */
const MAX_RATIO = 100;
const MIN_BOUND = 16 << 20;

/** the most an unpacked file of this type and stored size may decompress to */
export function unpackedLimit(type: string, storedSize: number): number {
  if (type === 'locks') return MAX_LOCK_SIZE;
  return Math.max(MIN_BOUND, MAX_RATIO * storedSize);
}

/** `what` names the file in errors ("index/1a2b…"); `type` bounds its decompressed size */
export function decodeUnpacked(key: MasterKey, stored: Uint8Array, type = '', what = 'file'): Buffer {
  const plain = open(key, stored);
  if (plain.length === 0) return plain;
  const first = plain[0];
  if (first === 0x7b || first === 0x5b) return plain;
  if (first === 2) return zstdDecompress(plain.subarray(1), unpackedLimit(type, stored.length), what);
  throw new Error(`not supported encoding format ${String(first)}`);
}
