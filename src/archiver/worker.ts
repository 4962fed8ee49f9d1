/**
 * Chunking worker: reads files, cuts them with FastCDC, hashes every chunk, and — when the main
 * thread says the blob is new — compresses and encrypts it. Runs in a worker_thread so both cores work.
 *
 * Protocol (main → worker): {op:'file', job, path: Uint8Array}, {op:'want', job, seq, want},
 *   {op:'ack', job, seq, bytes} (the blob is stored: its bytes are no longer referenced)
 * (worker → main): {op:'chunk', job, seq, id, len}, {op:'blob', job, seq, id, ct: Uint8Array, ivmac, ulen, len},
 * {op:'done', job, size}, {op:'error', job, message, code}
 * Small files in batches (see "batches of small files" below): main → worker {op:'files', batch, jobs,
 * paths, lens}, {op:'bwant', batch, bits}, {op:'free', out}; worker → main {op:'ids', batch, ids, lens,
 * counts, errors}, {op:'blobs', batch, out, data, idx, offs, ulens}
 *
 * Large files are read into recycled SharedArrayBuffers ("leases"), and a new blob is compressed and
 * encrypted in place, in its chunk's own bytes: its ciphertext goes to the main thread and on to the
 * pack writer as a view of that shared memory (no copy, no allocation per blob), and the chunk's
 * part of the lease is reused only after the ack says the blob was written. A fresh buffer per
 * blob, transferred from thread to thread, was garbage in whichever isolate saw it last, freed
 * only when that isolate next collected: tens of MiB resident at any time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';
import { createHash, hash, randomBytes } from 'node:crypto';
import { FastCDC, type ChunkerParams } from '../chunker/fastcdc.js';
import { makeMasterKey, sealInto, sealParts } from '../crypto/crypto.js';
import { looksIncompressible, zstdCompressScratch, type CompressionMode } from '../repo/zstd.js';
import { GcEvery } from '../util/gc.js';
import { discardPages } from '../native/native.js';

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
    process.stderr.write(`worker heap=${m.heapUsed >> 20} ext=${m.external >> 20} ab=${m.arrayBuffers >> 20} outstanding=${outstanding >> 20} MiB leases=${leasesMade} free=${freeBuffers.length} unwritten=${unwritten.size} in=${freeIn.length}+${batchesIn.size} out=${freeOut.length}+${outBufs.size}\n`);
  }, 200).unref();
}

const gc = new GcEvery(8 * 1024 * 1024, 'minor');
const pending = new Map<string, { chunk: Buffer; id: string; lease?: Lease }>();
/** blobs encrypted in place in a lease, until their ack: the lease stays referenced */
const unwritten = new Map<string, Lease>();

/**
 * Read buffers for large files are recycled: a buffer goes back to the free list once its file is
 * done and every chunk view into it has been encoded (or found to be a duplicate). Allocating one
 * per file made ~500 MiB of garbage per 500 MiB backed up.
 */
interface Lease { buf: Buffer; refs: number; done: boolean }
/**
 * A lease holds a few average chunks and a read: chunks are cut as soon as their boundary has been
 * read (FastCDC.cutIfFound), so only a chunk without a boundary in its first LEASE_SIZE - READ_SIZE
 * bytes (rare: the loose mask makes one likely soon after avg) needs a one-off buffer of max chunk
 * + read. At most MAX_LEASES exist: the reader waits for one to come back (its blobs written)
 * rather than allocating more. Leases of max chunk + two reads kept ~20 MiB more per worker resident.
 */
const LEASE_SIZE = 4 * READ_SIZE;
const MAX_LEASES = 4;
const freeBuffers: Buffer[] = [];
let leases = 0;
let leaseWaiters: (() => void)[] = [];

let leasesMade = 0;
const sharedBuffer = (n: number): Buffer => {
  leasesMade++;
  return Buffer.from(new SharedArrayBuffer(n));
};

async function takeLease(need = 0): Promise<Lease> {
  if (need > LEASE_SIZE) return { buf: sharedBuffer(Math.max(need, init.chunker.max + READ_SIZE)), refs: 0, done: false };
  while (freeBuffers.length === 0 && leases >= MAX_LEASES) await new Promise<void>((r) => leaseWaiters.push(r));
  const buf = freeBuffers.pop();
  if (buf) return { buf, refs: 0, done: false };
  leases++;
  return { buf: sharedBuffer(LEASE_SIZE), refs: 0, done: false };
}

/**
 * Idle leases give their pages back: the buffers stay (views of them may still wait for a GC in
 * other threads, so dropping them would not free anything soon), their memory does not. Without
 * this, ~30 MiB of read buffers stayed resident through a long run of small files after large ones.
 */
let largeFiles = 0;
let idleTimer: NodeJS.Timeout | null = null;
function idleSoon(): void {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    idleTimer = null;
    if (largeFiles === 0) for (const b of freeBuffers) discardPages(b);
  }, 100);
  idleTimer.unref();
}

function settle(l: Lease): void {
  if (l.done && l.refs === 0) {
    l.done = false; // never twice
    l.refs = -1;
    if (l.buf.length !== LEASE_SIZE) {
      discardPages(l.buf); // a one-off large buffer
      return;
    }
    freeBuffers.push(l.buf);
    if (largeFiles === 0) idleSoon();
    const w = leaseWaiters;
    leaseWaiters = [];
    for (const f of w) f();
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
  const ivmac = new Uint8Array(32);
  let ct: Uint8Array;
  const transfer: ArrayBuffer[] = [ivmac.buffer];
  if (lease) {
    // in place: the ciphertext (no longer than the chunk) overwrites the chunk's own bytes, which
    // stay referenced until the ack
    const { iv, mac } = sealInto(key, plain, chunk);
    ct = chunk.subarray(0, plain.length);
    ivmac.set(iv, 0);
    ivmac.set(mac, 16);
    unwritten.set(k, lease);
  } else {
    const sealed = sealParts(key, plain);
    const c = sealed.ct;
    const ab = c.byteOffset === 0 && c.buffer.byteLength === c.length ? c.buffer as ArrayBuffer : new Uint8Array(c).buffer;
    ct = new Uint8Array(ab);
    transfer.push(ab);
    ivmac.set(sealed.iv, 0);
    ivmac.set(sealed.mac, 16);
  }
  // the bytes stay counted until the main thread acknowledges the blob (backpressure to packing/upload)
  port.postMessage({ op: 'blob', job, seq, id, ct, ivmac: ivmac.buffer, ulen, len: chunk.length }, transfer);
}

function written(job: number, seq: number, bytes: number): void {
  const k = `${job}:${seq}`;
  const lease = unwritten.get(k);
  if (lease) {
    unwritten.delete(k);
    lease.refs--;
    settle(lease);
  }
  release(bytes);
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

/**
 * Read a file straight into recycled buffers (no per-read allocation), keep one read in flight while
 * the chunker works on what is already there, and emit each chunk as soon as its boundary (or `max`
 * bytes, or EOF) has been read.
 */
async function chunkFile(job: number, path: Buffer): Promise<void> {
  largeFiles++;
  try {
    await chunkOpenFile(job, await fsp.open(path, 'r'));
  } finally {
    if (--largeFiles === 0) idleSoon();
  }
}

async function chunkOpenFile(job: number, fh: fsp.FileHandle): Promise<void> {
  let lease = await takeLease();
  let inflight: Promise<number> | null = null;
  try {
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
      // room for a read: compact (only while no read is in flight and nothing points into buf) or
      // move the unchunked rest to another buffer (a larger one when the rest itself is large)
      if (!eof && inflight === null) {
        if (buf.length - end < 64 * 1024) {
          if (start >= READ_SIZE && !shared) {
            buf.copyWithin(0, start, end);
            end -= start;
            start = 0;
          } else {
            const next = await takeLease(end - start + READ_SIZE);
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
      if (start < end) {
        const n = eof ? cdc.cut(buf, start, end) : cdc.cutIfFound(buf, start, end);
        if (n > 0) {
          await room();
          // no copy: the chunk is a view of the read buffer, which is never compacted under it
          emit(job, seq++, buf.subarray(start, start + n), lease);
          shared = true;
          start += n;
          continue;
        }
      } else if (eof) {
        break;
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

// ---------------------------------------------------------------- batches of small files

/**
 * Small files come in batches (op 'files': many paths in one message); each batch is answered
 * with one 'ids' message (every chunk's id and length, per file its chunk count or an error), one
 * 'want' comes back (a byte per chunk) and one 'blobs' message carries every new blob of the
 * batch, stored form (iv || ciphertext || mac) back to back in one shared buffer. Per-file and
 * per-chunk messages (file, chunk, want, blob, ack, done: six per small file) made the main
 * thread's postMessage and the garbage of their clones the bottleneck of a first backup of many
 * small files: 40k files of 0–24 KiB, 3.7 s of 10.8 s main-thread CPU in postMessage, 2.2 s in GC,
 * both workers idle ~60 % of the time.
 */
interface BatchIn {
  /** the files' bytes, in `buf` (recycled) or one-off buffers; every chunk is a view */
  chunks: Buffer[];
  ids: string[];
  buf: Buffer | null;
}
const batchesIn = new Map<number, BatchIn>();

/** input buffers: a batch's files are read back to back into one (the pool closes a batch at ~BATCH_BYTES) */
const IN_SIZE = 2 * 1024 * 1024;
const freeIn: Buffer[] = [];
/** output buffers (shared: the pack writer thread writes blobs from them in place), recycled on 'free' */
const OUT_SIZE = 2 * 1024 * 1024;
const freeOut: SharedArrayBuffer[] = [];
const outBufs = new Map<number, SharedArrayBuffer>();
let nextOut = 1;

/** read a whole small file into `buf` at `at` (null: it does not fit, or is larger than a small file) */
function readInto(path: Buffer, buf: Buffer, at: number): { n: number } | { size: number } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > init.smallFile || at + size + 1 > buf.length) return { size };
    let n = 0;
    const room = size + 1; // one spare byte notices a file that grew
    for (;;) {
      const r = readSync(fd, buf, at + n, room - n, null);
      if (r === 0) return { n };
      n += r;
      if (n === room) return { size: n };
    }
  } finally {
    closeSync(fd);
  }
}

function onFiles(batch: number, jobs: Int32Array, paths: Uint8Array, lens: Int32Array): void {
  const buf = freeIn.pop() ?? Buffer.allocUnsafeSlow(IN_SIZE);
  const b: BatchIn = { chunks: [], ids: [], buf };
  const counts = new Int32Array(jobs.length);
  const chunkLens: number[] = [];
  const errors: { i: number; message: string; code: string }[] = [];
  let at = 0;
  let p = 0;
  for (let i = 0; i < jobs.length; i++) {
    const path = Buffer.from(paths.buffer, paths.byteOffset + p, lens[i]!);
    p += lens[i]!;
    let data: Buffer | null = null;
    try {
      const r = readInto(path, buf, at);
      if ('n' in r) {
        data = buf.subarray(at, at + r.n);
        at += r.n;
      } else if (r.size <= init.smallFile) {
        // no room left in this batch's buffer: a buffer of its own
        data = readSmall(path);
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      errors.push({ i, message: err.message, code: err.code ?? '' });
      counts[i] = -1;
      continue;
    }
    if (!data) {
      // grown beyond a small file: streamed through the per-chunk protocol (messages of its own)
      counts[i] = -2;
      const job = jobs[i]!;
      chunkFile(job, Buffer.from(path)).catch((e: NodeJS.ErrnoException) => {
        port.postMessage({ op: 'error', job, message: e.message, code: e.code ?? '' });
      });
      continue;
    }
    let start = 0;
    let n = 0;
    while (start < data.length) {
      const len = cdc.cut(data, start, data.length);
      const chunk = data.subarray(start, start + len);
      b.chunks.push(chunk);
      b.ids.push(hash('sha256', chunk, 'hex')); // one-shot: no Hash object per chunk
      chunkLens.push(len);
      start += len;
      n++;
    }
    counts[i] = n;
  }
  batchesIn.set(batch, b);
  port.postMessage({ op: 'ids', batch, ids: b.ids.join(''), lens: Int32Array.from(chunkLens), counts, errors });
}

function takeOut(need: number): { sab: SharedArrayBuffer; out: number } {
  let sab = need <= OUT_SIZE ? freeOut.pop() : undefined;
  sab ??= new SharedArrayBuffer(Math.max(need, OUT_SIZE));
  const out = nextOut++;
  outBufs.set(out, sab);
  return { sab, out };
}

/**
 * Output buffers in use at most: a batch whose blobs find none free waits (its input stays held)
 * until the pack writer has written an earlier one. Unbounded, a worker had 19 of them (38 MiB of
 * shared memory, ~1 MiB of each touched) on the real-data bench while the writer thread lagged.
 */
const MAX_OUT = 6;
const waitingWants: { batch: number; want: Uint8Array }[] = [];

function onWant(batch: number, want: Uint8Array): void {
  if (outBufs.size >= MAX_OUT || waitingWants.length) {
    waitingWants.push({ batch, want });
    return;
  }
  encodeBatch(batch, want);
}

function encodeBatch(batch: number, want: Uint8Array): void {
  const b = batchesIn.get(batch);
  if (!b) return;
  batchesIn.delete(batch);
  const idx: number[] = [];
  let need = 0;
  for (let i = 0; i < want.length; i++) {
    if (want[i]) { idx.push(i); need += b.chunks[i]!.length + 32; }
  }
  if (idx.length) {
    const { sab, out } = takeOut(need);
    const dst = Buffer.from(sab);
    // one random fill for every IV of the batch (a randomBytes call per blob was ~4 % of a worker)
    const ivs = randomBytes(16 * idx.length);
    const offs = new Int32Array(idx.length + 1);
    const ulens = new Int32Array(idx.length);
    let o = 0;
    for (let k = 0; k < idx.length; k++) {
      const chunk = b.chunks[idx[k]!]!;
      let plain: Buffer = chunk;
      if (init.compression === 'max' || (init.compression === 'auto' && !looksIncompressible(chunk))) {
        const z = zstdCompressScratch(chunk, init.compression);
        if (z.length < chunk.length) { plain = z; ulens[k] = chunk.length; }
      }
      const iv = ivs.subarray(16 * k, 16 * k + 16);
      dst.set(iv, o);
      const { mac } = sealInto(key, plain, dst.subarray(o + 16, o + 16 + plain.length), iv);
      dst.set(mac, o + 16 + plain.length);
      offs[k] = o;
      o += 32 + plain.length;
    }
    offs[idx.length] = o;
    port.postMessage({ op: 'blobs', batch, out, data: new Uint8Array(sab, 0, o), idx: Int32Array.from(idx), offs, ulens });
  }
  if (b.buf) freeIn.push(b.buf);
}

function onFree(out: number): void {
  const sab = outBufs.get(out);
  if (!sab) return;
  outBufs.delete(out);
  // all kept (as many as were ever in flight at once): a dropped one stays allocated until every
  // thread that saw a view of it has collected, and the pack writer thread seldom collects
  if (sab.byteLength === OUT_SIZE) freeOut.push(sab);
  while (waitingWants.length && outBufs.size < MAX_OUT) {
    const w = waitingWants.shift()!;
    encodeBatch(w.batch, w.want);
  }
}

interface InMsg {
  op: string; job: number; seq: number; want: boolean; path: Uint8Array; bytes: number;
  batch: number; jobs: Int32Array; paths: Uint8Array; lens: Int32Array; bits: Uint8Array; out: number;
}
port.on('message', (m: InMsg) => {
  switch (m.op) {
    case 'file':
      chunkFile(m.job, Buffer.from(m.path)).catch((e: NodeJS.ErrnoException) => {
        port.postMessage({ op: 'error', job: m.job, message: e.message, code: e.code ?? '' });
      });
      break;
    case 'files':
      onFiles(m.batch, m.jobs, m.paths, m.lens);
      break;
    case 'bwant':
      onWant(m.batch, m.bits);
      break;
    case 'free':
      onFree(m.out);
      break;
    case 'want':
      encode(m.job, m.seq, m.want);
      break;
    case 'ack':
      written(m.job, m.seq, m.bytes);
      break;
    default:
      break;
  }
});
