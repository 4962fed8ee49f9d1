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
 * Restore's writes of one request in two flat arrays (one structured clone each; an object and a
 * path copy per target cost ~2 µs each way): `t` holds RW_STRIDE numbers per target (a (blob, file)
 * pair), targets in blob order, `paths` the files' paths (`t` gives offset and length). A target
 * marked WHOLE is a file of this one blob: the worker creates it (exclusively: the caller has
 * removed whatever was at its path, or created its directory), writes it and sets its owner, mode
 * and times in one native call. Other targets are written at their offset into a descriptor the
 * worker opens (no O_EXCL or O_TRUNC: another worker may write the same file) and sizes once;
 * their metadata is the caller's (after every part is written).
 */
export interface RestoreWrites { t: Float64Array; paths: Uint8Array }
export const RW_BLOB = 0, RW_FILE = 1, RW_OFFSET = 2, RW_SIZE = 3, RW_PATH = 4, RW_PATH_LEN = 5, RW_WHOLE = 6,
  RW_MODE = 7, RW_UID = 8, RW_GID = 9, RW_CHOWN = 10, RW_ASEC = 11, RW_ANSEC = 12, RW_MSEC = 13, RW_MNSEC = 14, RW_STRIDE = 15;
export interface DecodeRequest {
  task: number;
  /**
   * the data read; blob offsets are relative to `start`. `bytes` is a transferred ArrayBuffer, or
   * absent for shared memory: `shared` numbers a recycled SharedArrayBuffer, sent along (as `sab`)
   * only when the worker does not hold it yet (see SharedCache); a one-off one comes as `sab` alone
   */
  bytes?: ArrayBuffer; shared?: number; sab?: SharedArrayBuffer; start: number; end: number;
  blobs: DecodeBlob[];
  hashPack: boolean;
  wantPlain: boolean;
  /** restore: write each plaintext to its targets in the worker */
  writes?: RestoreWrites;
  /** the worker may overwrite `bytes` (blobs are decrypted in place) */
  scratch?: boolean;
}
export interface CloseFilesRequest { task: number; closeFiles: true }
export interface FileError { file: number; error: string }
/** one blob: an error, or (when plaintext was asked for) the plaintext or the length of an all-zero one */
export interface DecodeResult { error?: string; plain?: ArrayBuffer; zero?: number }
export interface DecodeResponse { task: number; results: DecodeResult[]; packHash?: string; fileErrors?: FileError[] }
export interface DecodeOptions {
  hashPack?: boolean;
  wantPlain?: boolean;
  writes?: RestoreWrites;
  /**
   * the caller wants the bytes themselves no more (the buffer is its own, read into for the
   * request): blobs are decrypted in place instead of into a fresh buffer each
   */
  scratch?: boolean;
}

/**
 * Which SharedArrayBuffers a worker holds, by number: the last CAPACITY used, least recently used
 * dropped first. Both sides keep one and update it identically for every request (messages arrive
 * in order), so a buffer crosses to a worker once, not per request: each crossing makes a new
 * buffer object there, and V8 counted every one as fresh external memory (a full GC every few
 * packs on the receiving side; when whole ArrayBuffers went back and forth, ~300 ms of GC on the
 * main thread of a 540 MiB check).
 */
export class SharedCache {
  static readonly CAPACITY = 16;
  private m = new Map<number, SharedArrayBuffer | null>();
  /** note that `id` is used; returns whether it was held already */
  use(id: number, sab: SharedArrayBuffer | null = null): boolean {
    const had = this.m.get(id);
    const known = had !== undefined;
    this.m.delete(id);
    this.m.set(id, had ?? sab);
    if (this.m.size > SharedCache.CAPACITY) this.m.delete(this.m.keys().next().value as number);
    return known;
  }
  get(id: number): SharedArrayBuffer | undefined {
    return this.m.get(id) ?? undefined;
  }
}

/** busy: tasks queued; bytes: their size (work goes to the worker with the fewest bytes queued) */
interface Slot { w: Worker; busy: number; bytes: number; shared: SharedCache }

export class DecodePool {
  private slots: Slot[] = [];
  private tasks = new Map<number, { resolve: (r: DecodeResponse) => void; reject: (e: Error) => void; bytes: number }>();
  private next = 1;
  private failed: Error | null = null;

  constructor(private key: MasterKey, private threads = Math.max(1, availableParallelism())) {}

  private start(): void {
    const data = { encrypt: this.key.encrypt, macK: this.key.macK, macR: this.key.macR };
    for (let i = 0; i < this.threads; i++) {
      const slot: Slot = { w: new Worker(workerModuleUrl(import.meta.url, 'repo/decodeworker'), { workerData: data, resourceLimits: WORKER_RESOURCE_LIMITS }), busy: 0, bytes: 0, shared: new SharedCache() };
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
   * Decode blobs out of `bytes` (blob offsets relative to it). Bytes in shared memory (BufferPool's
   * buffers) are read where they are, and are the caller's again when the promise settles; other
   * bytes are handed over to the worker (transferred when they fill their ArrayBuffer, else copied):
   * the caller must not use them afterwards.
   */
  decode(bytes: Buffer, blobs: DecodeBlob[], opts: DecodeOptions = {}): Promise<DecodeResponse> {
    const slot = this.leastBusy();
    const base = {
      task: 0, start: bytes.byteOffset, end: bytes.byteOffset + bytes.length, blobs, hashPack: !!opts.hashPack, wantPlain: !!opts.wantPlain,
      ...(opts.writes ? { writes: opts.writes } : {}), ...(opts.scratch ? { scratch: true } : {}),
    };
    if (bytes.buffer instanceof SharedArrayBuffer && !recycled.has(bytes.buffer)) {
      // a one-off buffer: shared for this request only (a worker holding on to it would keep it alive)
      return this.send(slot, { ...base, sab: bytes.buffer }, []);
    }
    if (bytes.buffer instanceof SharedArrayBuffer) {
      const sab = bytes.buffer;
      let id = this.sabIds.get(sab);
      if (id === undefined) this.sabIds.set(sab, (id = this.nextSab++));
      const known = slot.shared.use(id);
      return this.send(slot, { ...base, shared: id, ...(known ? {} : { sab }) }, []);
    }
    const whole = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length;
    const own = whole ? bytes.buffer as ArrayBuffer : new Uint8Array(bytes).buffer;
    return this.send(slot, { ...base, bytes: own, start: 0, end: bytes.length }, [own]);
  }

  private sabIds = new WeakMap<SharedArrayBuffer, number>();
  private nextSab = 1;

  /**
   * start the workers now (they take ~0.1 s of a core each to load): callers do this before their
   * own preparation (index, trees) so the workers are ready when the first pack arrives
   */
  warm(): void {
    if (this.slots.length === 0 && !this.failed) this.start();
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

/** the shared buffers BufferPools recycle: the only ones decode workers keep (see SharedCache) */
const recycled = new WeakSet<SharedArrayBuffer>();

/** Recycled read buffers of one size (restore's ranges, check's packs); larger requests get their own. */
export class BufferPool {
  private free: Buffer[] = [];
  constructor(readonly size: number, private max: number) {}

  /**
   * a buffer of at least `n` bytes, in shared memory: DecodePool lets its workers read it where it
   * is (no transfer to the worker and back)
   */
  take(n: number): Buffer {
    if (n > this.size) return Buffer.from(new SharedArrayBuffer(n)); // one-off
    const b = this.free.pop();
    if (b) return b;
    const sab = new SharedArrayBuffer(this.size);
    recycled.add(sab);
    return Buffer.from(sab);
  }

  /** hand a buffer back (kept if it is one of the pool's and the pool has room) */
  give(b: Buffer): void {
    if (b.length === this.size && b.byteOffset === 0 && this.free.length < this.max && b.buffer instanceof SharedArrayBuffer && recycled.has(b.buffer)) this.free.push(b);
  }
}
