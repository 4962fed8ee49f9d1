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

export function decodeUnpacked(key: MasterKey, stored: Uint8Array): Buffer {
  const plain = open(key, stored);
  if (plain.length === 0) return plain;
  const first = plain[0];
  if (first === 0x7b || first === 0x5b) return plain;
  if (first === 2) return zstdDecompress(plain.subarray(1));
  throw new Error(`not supported encoding format ${String(first)}`);
}
