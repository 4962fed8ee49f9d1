/**
 * Hashing of buffered packs on a thread of its own (packhashworker.ts): the SHA-256 that names a pack
 * and, for backends that want it (Jottacloud's allocate), its MD5. Packs that are not streamed to a
 * backend are assembled in a SharedArrayBuffer on the main thread; each blob's range is sent here as
 * it is copied in and hashed while the main thread goes on (both hashes were ~1.3 s of the main
 * thread's CPU per 480 MiB sent to Jottacloud, and the main thread paces the upload). The bytes of a
 * range must not change until the digest has come back.
 */
import { Worker } from 'node:worker_threads';
import { WORKER_RESOURCE_LIMITS, workerModuleUrl } from '../util/worker.js';

export type HasherRequest =
  | { op: 'open'; sid: number; md5: boolean }
  | { op: 'update'; sid: number; sab: SharedArrayBuffer; off: number; len: number }
  | { op: 'final'; sid: number; tail: Uint8Array }
  | { op: 'abort'; sid: number };
export type HasherReply = { op: 'digest'; sid: number; sha256: string; md5?: string };

export interface PackDigest { sha256: string; md5?: string }

export class PackHasher {
  private w: Worker | null = null;
  private next = 1;
  private open = 0;
  private waiting = new Map<number, { resolve: (d: PackDigest) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;

  private worker(): Worker {
    if (this.failed) throw this.failed;
    if (!this.w) {
      const w = new Worker(workerModuleUrl(import.meta.url, 'repo/packhashworker'), { resourceLimits: WORKER_RESOURCE_LIMITS });
      w.on('message', (m: HasherReply) => {
        const t = this.waiting.get(m.sid);
        if (!t) return;
        this.waiting.delete(m.sid);
        this.hold(-1);
        t.resolve({ sha256: m.sha256, ...(m.md5 ? { md5: m.md5 } : {}) });
      });
      const fail = (e: Error): void => {
        this.failed ??= e;
        if (shared === this) shared = null; // the next repository gets a new thread
        for (const t of this.waiting.values()) t.reject(e);
        this.waiting.clear();
        w.unref();
      };
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`pack hasher exited with code ${code}`)));
      w.unref();
      this.w = w;
    }
    return this.w;
  }

  /** the thread keeps the process alive only while a pack is being hashed */
  private hold(d: number): void {
    this.open += d;
    if (this.open === 1 && d > 0) this.w?.ref();
    if (this.open === 0) this.w?.unref();
  }

  /** start hashing a pack; returns its stream id */
  begin(md5: boolean): number {
    const sid = this.next++;
    this.worker().postMessage({ op: 'open', sid, md5 } satisfies HasherRequest);
    this.hold(1);
    return sid;
  }

  /** hash `len` bytes of `buf` from `off` (buf must be a view of a SharedArrayBuffer) */
  update(sid: number, buf: Uint8Array, off: number, len: number): void {
    if (!(buf.buffer instanceof SharedArrayBuffer)) throw new Error('pack hasher: the buffer is not shared');
    this.worker().postMessage({ op: 'update', sid, sab: buf.buffer, off: buf.byteOffset + off, len } satisfies HasherRequest);
  }

  /** hash the last bytes (copied) and take the digests */
  final(sid: number, tail: Uint8Array): Promise<PackDigest> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.set(sid, { resolve, reject });
      this.worker().postMessage({ op: 'final', sid, tail: new Uint8Array(tail) } satisfies HasherRequest);
    });
  }

  abort(sid: number): void {
    if (this.failed || !this.w) return;
    this.w.postMessage({ op: 'abort', sid } satisfies HasherRequest);
    this.hold(-1);
  }

  async close(): Promise<void> {
    const w = this.w;
    this.w = null;
    await w?.terminate();
  }
}

let shared: PackHasher | null = null;
/**
 * the process's pack hasher: one thread for every repository (it holds the process only while a pack
 * is being hashed, so it is never closed; a repository per hasher would leave an idle thread behind
 * for every repository a long-lived process opens)
 */
export function sharedPackHasher(): PackHasher {
  return shared ??= new PackHasher();
}
