/**
 * Decode worker: decrypts, decompresses and verifies blobs of a pack (and optionally the pack's
 * own id) off the main thread. Used by restore and `check --read-data` through DecodePool.
 *
 * Protocol (main → worker): {task, bytes: ArrayBuffer (transferred), blobs: DecodeBlob[], packId,
 *   hashPack: boolean, wantPlain: boolean}
 * (worker → main): {task, packHash?: string, results: DecodeResult[]} with plaintexts transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { makeMasterKey } from '../crypto/crypto.js';
import { decodeStoredBlob } from './blob.js';
import { sha256hex } from './ids.js';
import type { DecodeBlob, DecodeRequest, DecodeResponse, DecodeResult } from './decodepool.js';

const init = workerData as { encrypt: Uint8Array; macK: Uint8Array; macR: Uint8Array };
const key = makeMasterKey(init.encrypt, init.macK, init.macR);
const port = parentPort!;

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function decode(bytes: Buffer, b: DecodeBlob, wantPlain: boolean, transfer: ArrayBuffer[]): DecodeResult {
  try {
    if (b.offset < 0 || b.offset + b.length > bytes.length) return { error: 'blob lies outside the data read' };
    const plain = decodeStoredBlob(key, bytes.subarray(b.offset, b.offset + b.length), b.id, b);
    if (!wantPlain) return {};
    if (plain.length > 0 && plain[0] === 0 && plain[plain.length - 1] === 0 && isZero(plain)) return { zero: plain.length };
    const own = plain.byteOffset === 0 && plain.buffer.byteLength === plain.length ? plain.buffer as ArrayBuffer : new Uint8Array(plain).buffer;
    transfer.push(own);
    return { plain: own };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

port.on('message', (m: DecodeRequest) => {
  const bytes = Buffer.from(m.bytes);
  const transfer: ArrayBuffer[] = [];
  const results = m.blobs.map((b) => decode(bytes, b, m.wantPlain, transfer));
  const res: DecodeResponse = { task: m.task, results, ...(m.hashPack ? { packHash: sha256hex(bytes) } : {}) };
  port.postMessage(res, transfer);
});
