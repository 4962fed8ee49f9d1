/** Main-thread side of the chunking workers: dispatches files, answers dedup questions, packs blobs. */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { ChunkerParams } from '../chunker/fastcdc.js';
import type { Repository } from '../repo/repository.js';
import type { WorkerInit } from './worker.js';
import { GcEvery } from '../util/gc.js';
import { WORKER_RESOURCE_LIMITS, workerModuleUrl } from '../util/worker.js';

/** A source file could not be read: reported and skipped. Any other error from the pool aborts the snapshot. */
export class FileReadError extends Error {
  override name = 'FileReadError';
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

export interface FileResult {
  content: string[];
  size: number;
  /** bytes of new data blobs (plaintext) this file added */
  added: number;
  newBlobs: number;
}

interface Job {
  content: string[];
  added: number;
  newBlobs: number;
  chunksExpected: number;
  chunksSeen: number;
  size: number;
  done: boolean;
  resolve: (r: FileResult) => void;
  reject: (e: Error) => void;
  /** null: a small file sent in a batch (counted per batch, not per file) */
  worker: WorkerSlot | null;
  large: boolean;
}

/** small files sent to a worker in one message (see worker.ts, "batches of small files") */
interface Batch {
  id: number;
  jobs: number[];
  paths: Buffer[];
  bytes: number;
  slot: WorkerSlot | null;
  /** from the worker's 'ids' reply: every chunk's id (64 hex digits each) and plaintext length */
  ids: string;
  lens: Int32Array | null;
}

interface WorkerSlot {
  w: Worker;
  /** files in flight */
  active: number;
  /** of those, files above SMALL_FILE (each holds a buffer of up to max chunk + 2 MiB) */
  large: number;
  /** batches of small files sent and not yet done (their new blobs not yet in a pack) */
  batches: number;
}

/** files up to this size are read in one go; many of them may be in flight per worker */
export const SMALL_FILE = 1024 * 1024;
/**
 * A batch of small files closes at this many files or bytes (size hints). Batches in flight per
 * worker: one being read and hashed, one waiting for the dedup answer, one being encoded/packed,
 * so a worker never waits for the main thread; each holds at most ~2 MiB of input in the worker
 * and ~1 MiB of output until the pack writer has written it.
 */
const BATCH_FILES = 256;
const BATCH_BYTES = 1024 * 1024;
const BATCHES_PER_WORKER = 3;


export interface PoolStats {
  dataBlobs: number;
  dataAdded: number;
  dataAddedPacked: number;
}

export class ChunkPool {
  private slots: WorkerSlot[] = [];
  private jobs = new Map<number, Job>();
  private nextJob = 1;
  private waiting: (() => void)[] = [];
  private batches = new Map<number, Batch>();
  /** the batch being filled (sent when full, when the walk yields, or when a worker has room) */
  private cur: Batch | null = null;
  private nextBatch = 1;
  private flushScheduled = false;
  private requested = new Set<string>();
  private fatal: Error | null = null;
  private blobChain: Promise<void> = Promise.resolve();
  /** blobs the workers were asked to encode that are not yet in a pack builder */
  private outstandingBlobs = 0;
  private drainWaiters: (() => void)[] = [];
  readonly stats: PoolStats = { dataBlobs: 0, dataAdded: 0, dataAddedPacked: 0 };
  /**
   * the workers' ciphertext buffers die young here (handed to a pack stream or copied into a pack
   * buffer at once): a minor GC every few MiB frees them, instead of V8 letting external memory
   * pile up to ~100 MiB
   */
  private gc = new GcEvery(8 * 1024 * 1024, 'minor');

  private init: WorkerInit;

  /** workers start on the first file to chunk: an unchanged re-run never starts them */
  constructor(private repo: Repository, chunker: ChunkerParams, private threads = availableParallelism(), private perWorker = 1) {
    this.init = {
      key: { encrypt: repo.key.encrypt, macK: repo.key.macK, macR: repo.key.macR },
      chunker,
      compression: repo.version >= 2 ? repo.compression : 'off',
      maxOutstanding: 8 * 1024 * 1024,
      smallFile: SMALL_FILE,
    };
  }

  private start(): void {
    for (let i = 0; i < Math.max(1, this.threads); i++) {
      const w = new Worker(workerModuleUrl(import.meta.url, 'archiver/worker'), { workerData: this.init, resourceLimits: WORKER_RESOURCE_LIMITS });
      const slot: WorkerSlot = { w, active: 0, large: 0, batches: 0 };
      w.on('message', (m: Msg) => this.onMessage(slot, m));
      w.on('error', (e) => this.fail(e));
      this.slots.push(slot);
    }
  }

  /** fail every job (and the ones started later) with `e` */
  abort(e: Error): void {
    this.fail(e);
  }

  private fail(e: Error): void {
    this.fatal ??= e;
    for (const j of this.jobs.values()) j.reject(e);
    this.jobs.clear();
    for (const w of this.waiting.splice(0)) w();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  private onMessage(slot: WorkerSlot, m: Msg): void {
    if (m.op === 'ids') return this.onIds(slot, m);
    if (m.op === 'blobs') return this.onBlobs(slot, m);
    const job = this.jobs.get(m.job);
    switch (m.op) {
      case 'chunk': {
        const key = m.id;
        const known = this.repo.hasBlob('data', key) || this.requested.has(key);
        if (!known) { this.requested.add(key); this.outstandingBlobs++; }
        slot.w.postMessage({ op: 'want', job: m.job, seq: m.seq, want: !known });
        if (job) {
          job.content[m.seq] = m.id;
          job.chunksSeen++;
          if (!known) { job.added += m.len; job.newBlobs++; }
          this.maybeFinish(m.job, job);
        }
        break;
      }
      case 'blob': {
        const ivmac = new Uint8Array(m.ivmac);
        const stored = [ivmac.subarray(0, 16), m.ct, ivmac.subarray(16, 32)];
        this.stats.dataBlobs++;
        this.stats.dataAdded += m.len;
        this.stats.dataAddedPacked += m.ct.byteLength + 32;
        if (!(m.ct.buffer instanceof SharedArrayBuffer)) this.gc.add(m.ct.byteLength);
        // the ciphertext may be a view of the worker's shared read buffer: the ack, which lets the
        // worker reuse it, waits until the packer no longer needs the bytes (written or copied)
        let released!: () => void;
        const done = new Promise<void>((r) => { released = r; });
        // add blobs in arrival order; ack once the packer has accepted it (backpressure) and no
        // longer needs its bytes
        this.blobChain = this.blobChain.then(async () => {
          // the worker's buffers are ours to give away: a streaming backend takes them without a copy
          await this.repo.addStoredBlob('data', m.id, stored, m.ulen, false, true, released);
          this.requested.delete(m.id);
          void done.then(() => slot.w.postMessage({ op: 'ack', job: m.job, seq: m.seq, bytes: m.len }));
        }).catch((e: Error) => this.fail(e)).finally(() => {
          this.outstandingBlobs--;
          if (this.outstandingBlobs === 0) for (const w of this.drainWaiters.splice(0)) w();
        });
        break;
      }
      case 'done':
        if (job) {
          job.done = true;
          job.chunksExpected = m.chunks;
          job.size = m.size;
          this.maybeFinish(m.job, job);
        }
        break;
      case 'error':
        if (job) {
          this.jobs.delete(m.job);
          this.release(job);
          job.reject(new FileReadError(m.message, m.code));
        }
        break;
      default:
        break;
    }
  }

  private maybeFinish(id: number, job: Job): void {
    if (!job.done || job.chunksSeen !== job.chunksExpected) return;
    this.jobs.delete(id);
    this.release(job);
    job.resolve({ content: job.content, size: job.size, added: job.added, newBlobs: job.newBlobs });
  }

  private release(job: Job): void {
    if (job.worker) {
      job.worker.active--;
      if (job.large) job.worker.large--;
    }
    // wake every waiter: each re-checks the limits that apply to its own file
    for (const w of this.waiting.splice(0)) w();
  }

  /**
   * Wait for room for one more file in a worker (the walk's backpressure), then chunk it in the
   * background. The outer promise resolves once the file is dispatched; the inner one with its
   * content ids, once every chunk is hashed (blobs may still be packing).
   */
  async dispatch(path: Buffer, sizeHint = Infinity): Promise<{ result: Promise<FileResult> }> {
    if (this.slots.length === 0) this.start();
    if (sizeHint <= SMALL_FILE) return this.dispatchSmall(path, sizeHint);
    // a large file (or one of unknown size): per-chunk messages, `perWorker` at a time per worker
    for (;;) {
      if (this.fatal) throw this.fatal;
      const free = this.slots.filter((x) => x.large < this.perWorker);
      const slot = free.length ? free.reduce((a, b) => (b.active < a.active ? b : a)) : null;
      if (slot) {
        slot.active++;
        slot.large++;
        const id = this.nextJob++;
        const result = new Promise<FileResult>((resolve, reject) => {
          this.jobs.set(id, {
            content: [], added: 0, newBlobs: 0, chunksExpected: -1, chunksSeen: 0, size: 0, done: false, resolve, reject, worker: slot, large: true,
          });
          slot.w.postMessage({ op: 'file', job: id, path: new Uint8Array(path) });
        });
        return { result };
      }
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  private async dispatchSmall(path: Buffer, size: number): Promise<{ result: Promise<FileResult> }> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      const b = this.cur;
      if (!b || (b.jobs.length < BATCH_FILES && b.bytes < BATCH_BYTES)) break;
      if (!this.sendBatch()) await new Promise<void>((r) => this.waiting.push(r));
    }
    let b = this.cur;
    if (!b) {
      b = this.cur = { id: this.nextBatch++, jobs: [], paths: [], bytes: 0, slot: null, ids: '', lens: null };
      if (!this.flushScheduled) {
        // whatever the walk has queued when it yields goes out (a partial batch) if a worker has room
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.sendBatch();
        });
      }
    }
    const id = this.nextJob++;
    const result = new Promise<FileResult>((resolve, reject) => {
      this.jobs.set(id, {
        content: [], added: 0, newBlobs: 0, chunksExpected: -1, chunksSeen: 0, size: 0, done: false, resolve, reject, worker: null, large: false,
      });
    });
    b.jobs.push(id);
    b.paths.push(path);
    b.bytes += size;
    if (b.jobs.length >= BATCH_FILES || b.bytes >= BATCH_BYTES) this.sendBatch();
    return { result };
  }

  /** send the batch being filled to the least busy worker with room; false when none has room */
  private sendBatch(): boolean {
    const b = this.cur;
    if (!b || b.jobs.length === 0 || this.fatal) return false;
    let slot: WorkerSlot | null = null;
    for (const x of this.slots) if (x.batches < BATCHES_PER_WORKER && (!slot || x.batches < slot.batches)) slot = x;
    if (!slot) return false;
    this.cur = null;
    slot.batches++;
    b.slot = slot;
    this.batches.set(b.id, b);
    const lens = new Int32Array(b.paths.length);
    for (let i = 0; i < lens.length; i++) lens[i] = b.paths[i]!.length;
    const paths = Buffer.concat(b.paths);
    b.paths = [];
    slot.w.postMessage({ op: 'files', batch: b.id, jobs: Int32Array.from(b.jobs), paths, lens });
    return true;
  }

  /** a batch's new blobs are in packs (or it had none): its worker may take another */
  private batchDone(b: Batch): void {
    this.batches.delete(b.id);
    b.slot!.batches--;
    if (this.cur && !this.flushScheduled) this.sendBatch();
    for (const w of this.waiting.splice(0)) w();
  }

  /** chunk ids of a batch: decide which blobs are new (one answer for the batch), finish its files */
  private onIds(slot: WorkerSlot, m: IdsMsg): void {
    const b = this.batches.get(m.batch);
    if (!b) return;
    b.ids = m.ids;
    b.lens = m.lens;
    const want = new Uint8Array(m.lens.length);
    let wanted = 0;
    let c = 0;
    let e = 0;
    for (let i = 0; i < b.jobs.length; i++) {
      const jid = b.jobs[i]!;
      const n = m.counts[i]!;
      const job = this.jobs.get(jid);
      if (n === -1) {
        const err = m.errors[e++]!;
        if (job) {
          this.jobs.delete(jid);
          job.reject(new FileReadError(err.message, err.code));
        }
        continue;
      }
      if (n === -2) continue; // grown into a large file: its own messages follow
      const content: string[] = new Array<string>(n);
      let size = 0;
      let added = 0;
      let newBlobs = 0;
      for (let k = 0; k < n; k++, c++) {
        const id = m.ids.slice(64 * c, 64 * c + 64);
        const len = m.lens[c]!;
        content[k] = id;
        size += len;
        if (!this.repo.hasBlob('data', id) && !this.requested.has(id)) {
          this.requested.add(id);
          this.outstandingBlobs++;
          want[c] = 1;
          wanted++;
          added += len;
          newBlobs++;
        }
      }
      if (job) {
        this.jobs.delete(jid);
        job.resolve({ content, size, added, newBlobs });
      }
    }
    slot.w.postMessage({ op: 'bwant', batch: b.id, bits: want });
    if (wanted === 0) this.batchDone(b);
  }

  /** a batch's new blobs, stored form back to back in one shared buffer: into packs, in order */
  private onBlobs(slot: WorkerSlot, m: BlobsMsg): void {
    const b = this.batches.get(m.batch);
    if (!b) return;
    const n = m.idx.length;
    // the buffer goes back to the worker once every blob in it is written (or copied)
    let left = n;
    const released = () => {
      if (--left === 0) slot.w.postMessage({ op: 'free', out: m.out });
    };
    this.blobChain = this.blobChain.then(async () => {
      for (let k = 0; k < n; k++) {
        const c = m.idx[k]!;
        const id = b.ids.slice(64 * c, 64 * c + 64);
        const stored = m.data.subarray(m.offs[k]!, m.offs[k + 1]!);
        this.stats.dataBlobs++;
        this.stats.dataAdded += b.lens![c]!;
        this.stats.dataAddedPacked += stored.length;
        try {
          await this.repo.addStoredBlob('data', id, stored, m.ulens[k]!, false, true, released);
        } finally {
          this.requested.delete(id);
          this.outstandingBlobs--;
        }
      }
    }).catch((e: Error) => this.fail(e)).finally(() => {
      this.batchDone(b);
      if (this.outstandingBlobs === 0) for (const w of this.drainWaiters.splice(0)) w();
    });
  }

  /** wait until every blob sent so far is in a pack builder */
  async drain(): Promise<void> {
    while (this.outstandingBlobs > 0 && !this.fatal) await new Promise<void>((r) => this.drainWaiters.push(r));
    await this.blobChain;
    if (this.fatal) throw this.fatal;
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.w.terminate()));
    // blobs received before are still being added to packs
    await this.blobChain.catch(() => {});
  }
}

interface IdsMsg { op: 'ids'; batch: number; ids: string; lens: Int32Array; counts: Int32Array; errors: { i: number; message: string; code: string }[] }
interface BlobsMsg { op: 'blobs'; batch: number; out: number; data: Uint8Array; idx: Int32Array; offs: Int32Array; ulens: Int32Array }

type Msg =
  | IdsMsg
  | BlobsMsg
  | { op: 'chunk'; job: number; seq: number; id: string; len: number }
  | { op: 'blob'; job: number; seq: number; id: string; ct: Uint8Array; ivmac: ArrayBuffer; ulen: number; len: number }
  | { op: 'done'; job: number; size: number; chunks: number }
  | { op: 'error'; job: number; message: string; code: string };
