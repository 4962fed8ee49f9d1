/**
 * Worker threads that decrypt, decompress and hash-verify blobs (restore, check --read-data), so
 * both cores work: on the main thread this was ~70% of a restore's CPU time.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { MasterKey } from '../crypto/crypto.js';
import { workerModuleUrl } from '../util/worker.js';

export interface DecodeBlob { id: string; offset: number; length: number; uncompressedLength: number }
export interface DecodeRequest { task: number; bytes: ArrayBuffer; blobs: DecodeBlob[]; hashPack: boolean; wantPlain: boolean }
/** one blob: an error, or (when plaintext was asked for) the plaintext or the length of an all-zero one */
export interface DecodeResult { error?: string; plain?: ArrayBuffer; zero?: number }
export interface DecodeResponse { task: number; results: DecodeResult[]; packHash?: string }

interface Slot { w: Worker; busy: number }

export class DecodePool {
  private slots: Slot[] = [];
  private tasks = new Map<number, { resolve: (r: DecodeResponse) => void; reject: (e: Error) => void }>();
  private next = 1;
  private failed: Error | null = null;

  constructor(private key: MasterKey, private threads = Math.max(1, availableParallelism())) {}

  private start(): void {
    const data = { encrypt: this.key.encrypt, macK: this.key.macK, macR: this.key.macR };
    for (let i = 0; i < this.threads; i++) {
      const slot: Slot = { w: new Worker(workerModuleUrl(import.meta.url, 'repo/decodeworker'), { workerData: data }), busy: 0 };
      slot.w.on('message', (m: DecodeResponse) => {
        const t = this.tasks.get(m.task);
        if (!t) return;
        this.tasks.delete(m.task);
        slot.busy--;
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
   * the caller must not use it afterwards.
   */
  decode(bytes: Buffer, blobs: DecodeBlob[], opts: { hashPack?: boolean; wantPlain?: boolean } = {}): Promise<DecodeResponse> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.slots.length === 0) this.start();
    const slot = this.slots.reduce((a, b) => (b.busy < a.busy ? b : a));
    const own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes.buffer as ArrayBuffer : new Uint8Array(bytes).buffer;
    const task = this.next++;
    slot.busy++;
    return new Promise<DecodeResponse>((resolve, reject) => {
      this.tasks.set(task, { resolve, reject });
      const req: DecodeRequest = { task, bytes: own, blobs, hashPack: !!opts.hashPack, wantPlain: !!opts.wantPlain };
      slot.w.postMessage(req, [own]);
    });
  }

  async close(): Promise<void> {
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.w.terminate()));
  }
}
