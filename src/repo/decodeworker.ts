/**
 * Decode worker: decrypts, decompresses and verifies blobs of a pack (and optionally the pack's
 * own id) off the main thread. Used by restore and `check --read-data` through DecodePool.
 *
 * Protocol (main → worker): a DecodeRequest (the bytes in a shared buffer, or their ArrayBuffer
 *   transferred) or a CloseFilesRequest; (worker → main): a DecodeResponse with plaintexts (when
 *   asked for) and the errors of file writes.
 * Restore asks the worker to write each verified plaintext at its file offsets itself (pwrite on a
 * small cache of open descriptors): no plaintext crosses threads, and both cores write.
 */
import { closeSync, constants as fsc, ftruncateSync, openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { makeMasterKey } from '../crypto/crypto.js';
import { decodeStoredBlob } from './blob.js';
import { sha256hex } from './ids.js';
import {
  SharedCache, RW_ASEC, RW_ANSEC, RW_BLOB, RW_CHOWN, RW_FILE, RW_GID, RW_MODE, RW_MSEC, RW_MNSEC, RW_OFFSET, RW_PATH, RW_PATH_LEN,
  RW_SIZE, RW_STRIDE, RW_UID, RW_WHOLE, type CloseFilesRequest, type DecodeBlob, type DecodeRequest, type DecodeResponse,
  type DecodeResult, type FileError, type RestoreWrites,
} from './decodepool.js';
import { createFileWithMeta } from '../native/native.js';
import { GcEvery } from '../util/gc.js';

const init = workerData as { encrypt: Uint8Array; macK: Uint8Array; macR: Uint8Array };
const key = makeMasterKey(init.encrypt, init.macK, init.macR);
const port = parentPort!;
// plaintexts are garbage once written: collect the young generation every 2 MiB of them (cheap
// with the workers' 1 MiB semi-spaces) so the thread's malloc arena does not fill with dead blob
// buffers between V8's own collections (16 MiB: ~25 MiB more peak RSS in a restore)
const gc = new GcEvery(2 * 1024 * 1024, 'minor');

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** the main thread's shared read buffers this worker holds (kept in step with the pool's copy) */
const shared = new SharedCache();

/** open descriptors of restore targets, least recently used first */
const fds = new Map<number, number>();
const MAX_FDS = 32;

/** files this worker has opened before (created and sized) */
const sized = new Set<number>();

function fdFor(file: number, path: Buffer, size: number): number {
  let fd = fds.get(file);
  if (fd !== undefined) {
    fds.delete(file);
  } else {
    if (fds.size >= MAX_FDS) {
      const [k, old] = fds.entries().next().value as [number, number];
      fds.delete(k);
      closeSync(old);
    }
    fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    if (!sized.has(file)) {
      // the final size at once (holes for all-zero blobs; idempotent across workers)
      try {
        ftruncateSync(fd, size);
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      sized.add(file);
    }
  }
  fds.set(file, fd);
  return fd;
}

/**
 * Write one plaintext to its targets: records `k` on of `w.t` while they name blob `i`; returns
 * the record after them. A whole file (its one blob) is created, written and given its metadata
 * in one native call (open, write, fchown, fchmod, futimens, close): no descriptor is kept and the
 * main thread has nothing left to do for it.
 */
function writeTargets(w: RestoreWrites, k: number, i: number, plain: Buffer, zero: boolean, fileErrors: FileError[]): number {
  const t = w.t;
  for (; k < t.length && t[k + RW_BLOB] === i; k += RW_STRIDE) {
    const file = t[k + RW_FILE]!;
    const size = t[k + RW_SIZE]!;
    const path = Buffer.from(w.paths.buffer, w.paths.byteOffset + t[k + RW_PATH]!, t[k + RW_PATH_LEN]!);
    try {
      if (t[k + RW_WHOLE]) {
        createFileWithMeta(path, zero ? null : plain, size, {
          mode: t[k + RW_MODE]!, owner: t[k + RW_CHOWN] ? { uid: t[k + RW_UID]!, gid: t[k + RW_GID]! } : null,
          aSec: t[k + RW_ASEC]!, aNsec: t[k + RW_ANSEC]!, mSec: t[k + RW_MSEC]!, mNsec: t[k + RW_MNSEC]!,
        });
        continue;
      }
      const fd = fdFor(file, path, size);
      const off = t[k + RW_OFFSET]!;
      let done = 0;
      if (!zero) while (done < plain.length) done += writeSync(fd, plain, done, plain.length - done, off + done);
    } catch (e) {
      fileErrors.push({ file, error: (e as Error).message });
    }
  }
  return k;
}

/** skip the records of blob `i` (it did not decode) */
function skipTargets(w: RestoreWrites, k: number, i: number): number {
  while (k < w.t.length && w.t[k + RW_BLOB] === i) k += RW_STRIDE;
  return k;
}

function closeFiles(): FileError[] {
  const errors: FileError[] = [];
  for (const [file, fd] of fds) {
    try { closeSync(fd); } catch (e) { errors.push({ file, error: (e as Error).message }); }
  }
  fds.clear();
  sized.clear();
  return errors;
}

/** blobs in increasing offset order without overlaps: each can be decrypted in place */
function disjoint(blobs: DecodeBlob[]): boolean {
  let end = 0;
  for (const b of blobs) {
    if (b.offset < end) return false;
    end = b.offset + b.length;
  }
  return true;
}

/** where decode() is in the request's write records */
let cursor = 0;

function decode(bytes: Buffer, b: DecodeBlob, m: DecodeRequest, i: number, transfer: ArrayBuffer[], fileErrors: FileError[], inPlace: boolean): DecodeResult {
  let plain: Buffer;
  try {
    if (b.offset < 0 || b.offset + b.length > bytes.length) throw new Error('blob lies outside the data read');
    plain = decodeStoredBlob(key, bytes.subarray(b.offset, b.offset + b.length), b.id, b, inPlace);
  } catch (e) {
    if (m.writes) cursor = skipTargets(m.writes, cursor, i);
    return { error: (e as Error).message };
  }
  if (!inPlace) gc.add(plain.length); // in place, nothing was allocated for it
  const zero = plain.length > 0 && plain[0] === 0 && plain[plain.length - 1] === 0 && isZero(plain);
  if (m.writes) {
    // all-zero blobs are not written (the file has its full size: they stay holes), but their
    // files are created all the same
    cursor = writeTargets(m.writes, cursor, i, plain, zero, fileErrors);
    return zero ? { zero: plain.length } : {};
  }
  if (!m.wantPlain) return {};
  if (zero) return { zero: plain.length };
  // a plaintext decoded in place lives in the request's bytes or in blob.ts's scratch buffer: copied
  const own = !inPlace && plain.byteOffset === 0 && plain.buffer.byteLength === plain.length ? plain.buffer as ArrayBuffer : new Uint8Array(plain).buffer;
  transfer.push(own);
  return { plain: own };
}

port.on('message', (m: DecodeRequest | CloseFilesRequest) => {
  if ('closeFiles' in m) {
    const res: DecodeResponse = { task: m.task, results: [], fileErrors: closeFiles() };
    port.postMessage(res);
    return;
  }
  let mem: ArrayBuffer | SharedArrayBuffer;
  if (m.shared !== undefined) {
    shared.use(m.shared, m.sab ?? null);
    const sab = shared.get(m.shared);
    if (!sab) throw new Error(`decode worker: shared buffer ${m.shared} unknown`);
    mem = sab;
  } else {
    mem = m.sab ?? m.bytes!;
  }
  const bytes = Buffer.from(mem, m.start, m.end - m.start);
  const transfer: ArrayBuffer[] = [];
  const fileErrors: FileError[] = [];
  // the pack's hash first: blobs may be decrypted in place
  const packHash = m.hashPack ? sha256hex(bytes) : undefined;
  const inPlace = !!m.scratch && disjoint(m.blobs);
  cursor = 0;
  const results = m.blobs.map((b, i) => decode(bytes, b, m, i, transfer, fileErrors, inPlace));
  const res: DecodeResponse = { task: m.task, results, ...(packHash !== undefined ? { packHash } : {}) };
  if (fileErrors.length) res.fileErrors = fileErrors;
  port.postMessage(res, transfer);
});
