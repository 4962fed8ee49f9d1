/** Bandwidth and connection limits around any Backend (restic's --limit-upload/--limit-download, -o connections). */
import type { Backend, BackendProperties, FileInfo, FileType, Handle, RemoveOptions } from '../backend/backend.js';
import { partsOf, totalLength } from '../backend/backend.js';

export interface Limits {
  /** bytes per second */
  upload?: number;
  download?: number;
  /** concurrent requests */
  connections?: number;
}

/** paces transfers so the average rate stays at `rate` bytes/s (a burst of one second is allowed) */
class Pacer {
  private next = 0;
  constructor(private rate: number) {}
  async take(bytes: number): Promise<void> {
    const now = Date.now();
    // GCRA: `next` is the theoretical time the transfers so far finish at the allowed rate
    this.next = Math.max(this.next, now) + (bytes / this.rate) * 1000;
    const wait = this.next - now - 1000;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

class Semaphore {
  private waiting: (() => void)[] = [];
  private active = 0;
  constructor(private n: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await f();
    } finally {
      const w = this.waiting.shift();
      if (w) w();
      else this.active--;
    }
  }
}

export class LimitedBackend implements Backend {
  readonly properties: BackendProperties;
  private up: Pacer | null;
  private down: Pacer | null;
  private sem: Semaphore | null;

  constructor(private inner: Backend, limits: Limits) {
    const c = limits.connections;
    this.properties = { ...inner.properties, connections: c ? Math.min(c, inner.properties.connections) : inner.properties.connections };
    this.up = limits.upload ? new Pacer(limits.upload) : null;
    this.down = limits.download ? new Pacer(limits.download) : null;
    this.sem = c ? new Semaphore(c) : null;
  }

  get location(): string { return this.inner.location; }

  private gate<T>(f: () => Promise<T>): Promise<T> {
    return this.sem ? this.sem.run(f) : f();
  }

  create(): Promise<void> { return this.gate(() => this.inner.create()); }

  save(h: Handle, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    return this.gate(async () => {
      await this.up?.take(totalLength(partsOf(data)));
      await this.inner.save(h, data);
    });
  }

  load(h: Handle, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    return this.gate(async () => {
      if (length !== undefined) await this.down?.take(length);
      const b = await this.inner.load(h, offset, length, into);
      if (length === undefined) await this.down?.take(b.length);
      return b;
    });
  }

  stat(h: Handle): Promise<FileInfo> { return this.gate(() => this.inner.stat(h)); }
  list(type: FileType): Promise<FileInfo[]> { return this.gate(() => this.inner.list(type)); }
  remove(h: Handle, opts?: RemoveOptions): Promise<void> { return this.gate(() => this.inner.remove(h, opts)); }
  close(): Promise<void> { return this.inner.close(); }
}

export function withLimits(b: Backend, l: Limits): Backend {
  if (!l.upload && !l.download && !l.connections) return b;
  return new LimitedBackend(b, l);
}
