/**
 * Chunking worker: reads files, cuts them with FastCDC, hashes every chunk, and — when the main
 * thread says the blob is new — compresses and encrypts it. Runs in a worker_thread so both cores work.
 *
 * Protocol (main → worker): {op:'file', job, path: Uint8Array}, {op:'want', job, seq, want}, {op:'ack', bytes}
 * (worker → main): {op:'chunk', job, seq, id, len}, {op:'blob', job, seq, id, stored, ulen},
 * {op:'done', job, size}, {op:'error', job, message, code}
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { FastCDC, type ChunkerParams } from '../chunker/fastcdc.js';
import { makeMasterKey, sealParts } from '../crypto/crypto.js';
import { looksIncompressible, zstdCompressScratch, type CompressionMode } from '../repo/zstd.js';
import { GcEvery } from '../util/gc.js';

export interface WorkerInit {
  key: { encrypt: Uint8Array; macK: Uint8Array; macR: Uint8Array };
  chunker: ChunkerParams;
  compression: CompressionMode;
  /** pause reading while this many chunk bytes are unanswered / unacknowledged */
  maxOutstanding: number;
  /** files up to this size are read whole with synchronous calls (the pool's SMALL_FILE) */
  smallFile: number;
}

const init = workerData as WorkerInit;
const key = makeMasterKey(init.key.encrypt, init.key.macK, init.key.macR);
const cdc = new FastCDC(init.chunker);
const port = parentPort!;
const READ_SIZE = 1024 * 1024;

if (process.env['JBACKUP_DEBUG_MEM']) {
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(`worker heap=${m.heapUsed >> 20} ext=${m.external >> 20} ab=${m.arrayBuffers >> 20} outstanding=${outstanding >> 20} MiB\n`);
  }, 200).unref();
}

const gc = new GcEvery(8 * 1024 * 1024, 'minor');
const pending = new Map<string, { chunk: Buffer; id: string; lease?: Lease }>();

/**
 * Read buffers for large files are recycled: a buffer goes back to the free list once its file is
 * done and every chunk view into it has been encoded (or found to be a duplicate). Allocating one
 * per file made ~500 MiB of garbage per 500 MiB backed up.
 */
interface Lease { buf: Buffer; refs: number; done: boolean }
const freeBuffers: Buffer[] = [];
const MAX_FREE = 1;
const poolBufferSize = (): number => init.chunker.max + 2 * READ_SIZE;

function takeLease(): Lease {
  return { buf: freeBuffers.pop() ?? Buffer.allocUnsafe(poolBufferSize()), refs: 0, done: false };
}

function settle(l: Lease): void {
  if (l.done && l.refs === 0 && freeBuffers.length < MAX_FREE) {
    l.done = false; // never twice
    l.refs = -1;
    freeBuffers.push(l.buf);
  }
}
let outstanding = 0;
let waiters: (() => void)[] = [];

function release(bytes: number): void {
  outstanding -= bytes;
  if (outstanding < init.maxOutstanding && waiters.length) {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  }
}

async function room(): Promise<void> {
  while (outstanding >= init.maxOutstanding) await new Promise<void>((r) => waiters.push(r));
}

function emit(job: number, seq: number, chunk: Buffer, lease?: Lease): void {
  const id = createHash('sha256').update(chunk).digest('hex');
  if (lease) lease.refs++;
  pending.set(`${job}:${seq}`, { chunk, id, ...(lease ? { lease } : {}) });
  gc.add(chunk.length);
  outstanding += chunk.length;
  port.postMessage({ op: 'chunk', job, seq, id, len: chunk.length });
}

function encode(job: number, seq: number, want: boolean): void {
  const k = `${job}:${seq}`;
  const p = pending.get(k);
  if (!p) return;
  pending.delete(k);
  const { chunk, id, lease } = p;
  if (!want) {
    release(chunk.length);
    if (lease) { lease.refs--; settle(lease); }
    return;
  }
  let plain: Buffer = chunk;
  let ulen = 0;
  if (init.compression === 'max' || (init.compression === 'auto' && !looksIncompressible(chunk))) {
    const z = zstdCompressScratch(chunk, init.compression);
    // a blob that does not shrink is stored as it is (format v2 allows both; reading it costs less)
    if (z.length < chunk.length) {
      plain = z;
      ulen = chunk.length;
    }
  }
  const { iv, ct, mac } = sealParts(key, plain);
  // the chunk (a view into a read buffer) is no longer needed
  if (lease) { lease.refs--; settle(lease); }
  // the bytes stay counted until the main thread acknowledges the blob (backpressure to packing/upload)
  const ab = ct.byteOffset === 0 && ct.buffer.byteLength === ct.length ? ct.buffer : new Uint8Array(ct).buffer;
  const ivmac = new Uint8Array(32);
  ivmac.set(iv, 0);
  ivmac.set(mac, 16);
  port.postMessage({ op: 'blob', job, seq, id, ct: ab, ivmac: ivmac.buffer, ulen, len: chunk.length }, [ab as ArrayBuffer, ivmac.buffer]);
}

/** A small file in one synchronous read (no thread-pool round trips); null when it is (or has grown) larger than init.smallFile. */
function readSmall(path: Buffer): Buffer | null {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > init.smallFile) return null;
    const buf = Buffer.allocUnsafe(size + 1); // one spare byte notices a file that grew
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) return buf.subarray(0, n);
      n += r;
      if (n === buf.length) return null;
    }
  } finally {
    closeSync(fd);
  }
}

async function chunkSmall(job: number, data: Buffer): Promise<void> {
  let start = 0;
  let seq = 0;
  while (start < data.length) {
    const n = cdc.cut(data, start, data.length);
    await room();
    emit(job, seq++, data.subarray(start, start + n));
    start += n;
  }
  port.postMessage({ op: 'done', job, size: data.length, chunks: seq });
}

/**
 * Read a file straight into one buffer (no per-read allocation), keep one read in flight while the
 * chunker works on what is already there, and emit chunks as soon as `max` bytes (or EOF) are buffered.
 */
async function chunkFile(job: number, path: Buffer): Promise<void> {
  const fh = await fsp.open(path, 'r');
  // one recycled buffer of max chunk + two reads: chunks are cut once `max` bytes are buffered,
  // so the unchunked rest always fits
  let lease = takeLease();
  let inflight: Promise<number> | null = null;
  try {
    const max = init.chunker.max;
    let buf = lease.buf;
    let start = 0;
    let end = 0;
    let seq = 0;
    let size = 0;
    let eof = false;
    /** chunks emitted from buf are still referenced (no compaction in place) */
    let shared = false;
    const startRead = () => {
      const want = Math.min(READ_SIZE, buf.length - end);
      inflight = fh.read(buf, end, want, null).then((r) => r.bytesRead);
    };
    for (;;) {
      // room for a read: compact (only while no read is in flight) or grow
      if (!eof && inflight === null) {
        if (buf.length - end < Math.min(READ_SIZE, 64 * 1024)) {
          if (start > 0 && !shared) {
            buf.copyWithin(0, start, end);
            end -= start;
            start = 0;
          } else {
            // emitted chunks still point into buf: move the unchunked rest to another buffer
            const next = takeLease();
            buf.copy(next.buf, 0, start, end);
            end -= start;
            start = 0;
            lease.done = true;
            settle(lease);
            lease = next;
            buf = next.buf;
            shared = false;
          }
        }
        startRead();
      }
      if (eof || end - start >= max) {
        if (start === end) {
          if (eof) break;
        } else {
          const n = cdc.cut(buf, start, end);
          await room();
          // no copy: the chunk is a view of the read buffer, which is never compacted under it
          emit(job, seq++, buf.subarray(start, start + n), lease);
          shared = true;
          start += n;
          continue;
        }
      }
      const got: number = await inflight!;
      inflight = null;
      if (got === 0) eof = true;
      end += got;
      size += got;
    }
    port.postMessage({ op: 'done', job, size, chunks: seq });
  } finally {
    // a read still in flight (after an error) must land before the buffer can be reused
    if (inflight) await (inflight as Promise<number>).catch(() => 0);
    lease.done = true;
    settle(lease);
    await fh.close();
  }
}

async function processFile(job: number, path: Buffer, small: boolean): Promise<void> {
  const data = small ? readSmall(path) : null;
  if (data) await chunkSmall(job, data);
  else await chunkFile(job, path);
}

port.on('message', (m: { op: string; job: number; seq: number; want: boolean; path: Uint8Array; bytes: number; small?: boolean }) => {
  switch (m.op) {
    case 'file':
      processFile(m.job, Buffer.from(m.path), !!m.small).catch((e: NodeJS.ErrnoException) => {
        port.postMessage({ op: 'error', job: m.job, message: e.message, code: e.code ?? '' });
      });
      break;
    case 'want':
      encode(m.job, m.seq, m.want);
      break;
    case 'ack':
      release(m.bytes);
      break;
    default:
      break;
  }
});
