/**
 * Bandwidth and connection limits around any backend (restic's --limit-upload/--limit-download,
 * a profile's [limits]): a decorator that keeps the whole Backend contract (ForwardingBackend).
 *
 * - bytes written (save, streamed packs) are paced by the upload limiter, bytes read (load, the
 *   read-back of verifySaved) by the download limiter; a stream is paced through its drained()
 *   backpressure, so nothing is held back in memory: the producer simply waits before its next blob
 * - every call that touches the storage holds one of `connections` slots (a stream: its commit);
 *   `properties.connections` says the lower number, so the repository runs no more uploads at once
 * - a backend that paces its own transfers chunk by chunk (Jottacloud's HTTP layer, given the same
 *   limiters by openBackend) is not paced twice: `pace: false`
 */
import type { Backend, BackendProperties, BackendStream, FileInfo, FileType, Handle, RemoveOptions, SaveOptions } from '../backend.js';
import { partsOf, totalLength } from '../backend.js';
import { RateLimiter, Semaphore } from '../../util/limiter.js';
import { ForwardingBackend, ForwardingStream } from './forwarding.js';

export interface Limits {
  /** bytes per second */
  upload?: number;
  download?: number;
  /** concurrent requests */
  connections?: number;
}

/** The limiter instances of one opened backend (shared with a backend that paces its own requests). */
export interface Limiters {
  up?: RateLimiter;
  down?: RateLimiter;
  connections?: Semaphore;
}

export function hasLimits(l: Limits | undefined): boolean {
  return !!(l && (l.upload || l.download || l.connections));
}

/** the stricter of two sets of limits, per limit (a profile's [limits] and the global flags) */
export function stricterLimits(a: Limits | undefined, b: Limits | undefined): Limits {
  const pick = (x: number | undefined, y: number | undefined): number | undefined =>
    x && y ? Math.min(x, y) : (x || y || undefined);
  const out: Limits = {};
  const up = pick(a?.upload, b?.upload);
  const down = pick(a?.download, b?.download);
  const conns = pick(a?.connections, b?.connections);
  if (up) out.upload = up;
  if (down) out.download = down;
  if (conns) out.connections = conns;
  return out;
}

export function makeLimiters(l: Limits): Limiters {
  const out: Limiters = {};
  if (l.upload) out.up = new RateLimiter(l.upload);
  if (l.download) out.down = new RateLimiter(l.download);
  if (l.connections) out.connections = new Semaphore(l.connections);
  return out;
}

export class LimitedBackend extends ForwardingBackend {
  private readonly props: BackendProperties;
  private readonly up: RateLimiter | undefined;
  private readonly down: RateLimiter | undefined;
  private readonly sem: Semaphore | undefined;

  /** `pace: false`: the inner backend paces its bytes itself with the same limiters; only connections are gated here */
  constructor(inner: Backend, limiters: Limiters, opts: { pace?: boolean } = {}) {
    super(inner);
    const pace = opts.pace ?? true;
    this.up = pace ? limiters.up : undefined;
    this.down = pace ? limiters.down : undefined;
    this.sem = limiters.connections;
    const c = this.sem?.limit;
    this.props = { ...inner.properties, connections: c ? Math.min(c, inner.properties.connections) : inner.properties.connections };
  }

  override get properties(): BackendProperties { return this.props; }

  private gate<T>(f: () => Promise<T>): Promise<T> {
    return this.sem ? this.sem.run(f) : f();
  }

  override create(): Promise<void> { return this.gate(() => super.create()); }

  override save(h: Handle, data: Uint8Array | readonly Uint8Array[], opts?: SaveOptions): Promise<void> {
    return this.gate(async () => {
      await this.up?.take(totalLength(partsOf(data)));
      await super.save(h, data, opts);
    });
  }

  override load(h: Handle, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    return this.gate(async () => {
      if (length !== undefined) await this.down?.take(length);
      const b = await super.load(h, offset, length, into);
      if (length === undefined) await this.down?.take(b.length);
      return b;
    });
  }

  override stat(h: Handle): Promise<FileInfo> { return this.gate(() => super.stat(h)); }
  override list(type: FileType): Promise<FileInfo[]> { return this.gate(() => super.list(type)); }
  override remove(h: Handle, opts?: RemoveOptions): Promise<void> { return this.gate(() => super.remove(h, opts)); }

  override verifySaved?(h: Handle, parts: readonly Uint8Array[], size: number): Promise<boolean> {
    // a read-back of `size` bytes from the storage
    return this.gate(async () => {
      await this.down?.take(size);
      return super.verifySaved!(h, parts, size);
    });
  }

  override createStream?(type: FileType): BackendStream {
    const s = super.createStream!(type);
    return this.up || this.sem ? new LimitedStream(s, this.up, this.sem) : s;
  }

  override removeStaleTemp?(olderThanMs: number): Promise<{ files: number; bytes: number }> {
    return this.gate(() => super.removeStaleTemp!(olderThanMs));
  }

  override removeDeadTemp?(): Promise<{ files: number; bytes: number }> {
    return this.gate(() => super.removeDeadTemp!());
  }
}

/**
 * A paced stream: each write goes on to the inner stream at once (no copy is held here) and is
 * accounted to the upload limiter; drained() resolves only once the limiter has caught up, which
 * is where the producer waits.
 */
class LimitedStream extends ForwardingStream {
  constructor(inner: BackendStream, private up: RateLimiter | undefined, private sem: Semaphore | undefined) {
    super(inner);
  }

  override write(parts: readonly Uint8Array[], handOver?: boolean, released?: () => void): void {
    super.write(parts, handOver, released);
    this.up?.reserve(totalLength(parts));
  }

  override async drained(): Promise<void> {
    await Promise.all([super.drained(), this.up?.ready()]);
  }

  override async commit(): Promise<string> {
    await this.up?.ready();
    return this.sem ? this.sem.run(() => super.commit()) : super.commit();
  }
}

/** `b` with limits, or `b` itself when there are none */
export function withLimits(b: Backend, l: Limits | undefined): Backend {
  if (!l || !hasLimits(l)) return b;
  return new LimitedBackend(b, makeLimiters(l));
}
