/**
 * Worker threads that decrypt, decompress and hash-verify blobs (restore, check --read-data), so
 * both cores work: on the main thread this was ~70% of a restore's CPU time.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { MasterKey } from '../crypto/crypto.js';
import { WORKER_RESOURCE_LIMITS, workerModuleUrl } from '../util/worker.js';

export interface DecodeBlob { id: string; offset: number; length: number; uncompressedLength: number }
/**
 * where a verified plaintext goes: `path` is the file, `file` its number, `size` its final size.
 * The worker creates the file if needed (no O_TRUNC: another worker may be writing it too) and
 * sets its size; the caller has removed whatever was at `path` before.
 */
export interface WriteTarget { file: number; path: Uint8Array; size: number; offset: number }
export interface DecodeRequest {
  task: number;
  /** the data read; blob offsets are relative to `start` */
  bytes: ArrayBuffer; start: number; end: number;
  blobs: DecodeBlob[];
  hashPack: boolean;
  wantPlain: boolean;
  /** per blob: write the plaintext to these targets in the worker (restore) */
  writes?: WriteTarget[][];
  /** transfer `bytes` back with the response, for the caller's next read */
  giveBack?: boolean;
  /** the worker may overwrite `bytes` (blobs are decrypted in place) */
  scratch?: boolean;
}
export interface CloseFilesRequest { task: number; closeFiles: true }
export interface FileError { file: number; error: string }
/** one blob: an error, or (when plaintext was asked for) the plaintext or the length of an all-zero one */
export interface DecodeResult { error?: string; plain?: ArrayBuffer; zero?: number }
export interface DecodeResponse { task: number; results: DecodeResult[]; packHash?: string; bytes?: ArrayBuffer; fileErrors?: FileError[] }
export interface DecodeOptions {
  hashPack?: boolean;
  wantPlain?: boolean;
  writes?: WriteTarget[][];
  /**
   * `bytes.buffer` belongs to the caller as a whole (a recycled read buffer): it is transferred
   * to the worker and comes back as the response's `bytes`
   */
  giveBack?: boolean;
  /**
   * the caller wants the bytes themselves no more (only, with giveBack, their buffer): blobs are
   * decrypted in place instead of into a fresh buffer each
   */
  scratch?: boolean;
}

/** busy: tasks queued; bytes: their size (work goes to the worker with the fewest bytes queued) */
interface Slot { w: Worker; busy: number; bytes: number }

export class DecodePool {
  private slots: Slot[] = [];
  private tasks = new Map<number, { resolve: (r: DecodeResponse) => void; reject: (e: Error) => void; bytes: number }>();
  private next = 1;
  private failed: Error | null = null;

  constructor(private key: MasterKey, private threads = Math.max(1, availableParallelism())) {}

  private start(): void {
    const data = { encrypt: this.key.encrypt, macK: this.key.macK, macR: this.key.macR };
    for (let i = 0; i < this.threads; i++) {
      const slot: Slot = { w: new Worker(workerModuleUrl(import.meta.url, 'repo/decodeworker'), { workerData: data, resourceLimits: WORKER_RESOURCE_LIMITS }), busy: 0, bytes: 0 };
      slot.w.on('message', (m: DecodeResponse) => {
        const t = this.tasks.get(m.task);
        if (!t) return;
        this.tasks.delete(m.task);
        slot.busy--;
        slot.bytes -= t.bytes;
        t.resolve(m);
      });
      slot.w.on('error', (e) => this.fail(e));
      slot.w.on('exit', (code) => { if (code !== 0) this.fail(new Error(`decode worker exited with code ${code}`)); });
      this.slots.push(slot);
    }
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const t of this.tasks.values()) t.reject(e);
    this.tasks.clear();
  }

  /**
   * Decode blobs out of `bytes` (blob offsets relative to it). `bytes` is handed over to a worker:
   * the caller must not use it afterwards (with `giveBack`, until the response returns its buffer).
   */
  decode(bytes: Buffer, blobs: DecodeBlob[], opts: DecodeOptions = {}): Promise<DecodeResponse> {
    let own: ArrayBuffer;
    let start = 0;
    if (opts.giveBack) {
      own = bytes.buffer as ArrayBuffer;
      start = bytes.byteOffset;
    } else {
      own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes.buffer as ArrayBuffer : new Uint8Array(bytes).buffer;
    }
    const req: DecodeRequest = {
      task: 0, bytes: own, start, end: start + bytes.length, blobs, hashPack: !!opts.hashPack, wantPlain: !!opts.wantPlain,
      ...(opts.writes ? { writes: opts.writes } : {}), ...(opts.giveBack ? { giveBack: true } : {}),
      ...(opts.scratch ? { scratch: true } : {}),
    };
    return this.send(this.leastBusy(), req, [own]);
  }

  /** close the descriptors the workers opened for writes; returns the errors closing reported */
  async closeFiles(): Promise<FileError[]> {
    const all = await Promise.all(this.slots.map((s) => this.send(s, { task: 0, closeFiles: true }, [])));
    return all.flatMap((r) => r.fileErrors ?? []);
  }

  private leastBusy(): Slot {
    if (this.failed) throw this.failed;
    if (this.slots.length === 0) this.start();
    return this.slots.reduce((a, b) => (b.bytes < a.bytes || (b.bytes === a.bytes && b.busy < a.busy) ? b : a));
  }

  private send(slot: Slot, req: DecodeRequest | CloseFilesRequest, transfer: ArrayBuffer[]): Promise<DecodeResponse> {
    if (this.failed) return Promise.reject(this.failed);
    const task = this.next++;
    req.task = task;
    const bytes = 'end' in req ? req.end - req.start : 0;
    slot.busy++;
    slot.bytes += bytes;
    return new Promise<DecodeResponse>((resolve, reject) => {
      this.tasks.set(task, { resolve, reject, bytes });
      slot.w.postMessage(req, transfer);
    });
  }

  async close(): Promise<void> {
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.w.terminate()));
  }
}

/** a whole pack of the default 16 MiB target plus its last blob (up to 8 MiB) fits */
export const PACK_BUFFER = 26 * 1024 * 1024;

/** Recycled read buffers of one size (restore's ranges, check's packs); larger requests get their own. */
export class BufferPool {
  private free: Buffer[] = [];
  constructor(readonly size: number, private max: number) {}

  /** a buffer of at least `n` bytes */
  take(n: number): Buffer {
    return n <= this.size ? this.free.pop() ?? Buffer.allocUnsafeSlow(this.size) : Buffer.allocUnsafeSlow(n);
  }

  /** hand a buffer back (kept if it is of the pool's size and the pool has room) */
  give(b: Buffer): void {
    if (b.length === this.size && b.byteOffset === 0 && this.free.length < this.max) this.free.push(b);
  }
}
