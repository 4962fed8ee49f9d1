/**
 * The base of every backend decorator: forwards each member of the Backend contract to the
 * backend it wraps, options included. A decorator overrides only what it changes, so a member
 * added to the Backend interface cannot be dropped silently: the type check below fails to
 * compile until this class forwards it too.
 *
 * The optional members (createStream, verifySaved, removeStaleTemp, removeDeadTemp) are present
 * on a decorator exactly when the wrapped backend has them: callers test for them (a repository
 * streams packs only when `createStream` exists), so a decorator must neither hide nor invent one.
 */
import type {
  Backend, BackendProperties, BackendStream, FileInfo, FileType, Handle, RemoveOptions, SaveOptions,
} from '../backend.js';

/** the optional members of Backend, each of which a decorator has only when its inner backend has it */
const OPTIONAL = ['verifySaved', 'createStream', 'removeStaleTemp', 'removeDeadTemp'] as const;

type OptionalKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? K : never }[keyof T];
// compile-time checks: every optional member is in OPTIONAL, and ForwardingBackend declares every member
type Unlisted = Exclude<OptionalKeys<Backend>, (typeof OPTIONAL)[number]>;
type Unforwarded = Exclude<keyof Backend, keyof ForwardingBackend>;
const allListed: [Unlisted] extends [never] ? true : Unlisted = true;
const allForwarded: [Unforwarded] extends [never] ? true : Unforwarded = true;
void allListed;
void allForwarded;

export class ForwardingBackend implements Backend {
  constructor(protected readonly inner: Backend) {
    // an own `undefined` hides the prototype's forwarder (and a subclass's override) of a member
    // the inner backend lacks
    for (const k of OPTIONAL) {
      if (typeof inner[k] !== 'function') Object.defineProperty(this, k, { value: undefined, enumerable: false });
    }
  }

  get location(): string { return this.inner.location; }
  get properties(): BackendProperties { return this.inner.properties; }
  create(): Promise<void> { return this.inner.create(); }
  save(h: Handle, data: Uint8Array | readonly Uint8Array[], opts?: SaveOptions): Promise<void> { return this.inner.save(h, data, opts); }
  load(h: Handle, offset?: number, length?: number, into?: Buffer): Promise<Buffer> { return this.inner.load(h, offset, length, into); }
  stat(h: Handle): Promise<FileInfo> { return this.inner.stat(h); }
  list(type: FileType): Promise<FileInfo[]> { return this.inner.list(type); }
  remove(h: Handle, opts?: RemoveOptions): Promise<void> { return this.inner.remove(h, opts); }
  verifySaved?(h: Handle, parts: readonly Uint8Array[], size: number): Promise<boolean> { return this.inner.verifySaved!(h, parts, size); }
  createStream?(type: FileType): BackendStream { return this.inner.createStream!(type); }
  removeStaleTemp?(olderThanMs: number): Promise<{ files: number; bytes: number }> { return this.inner.removeStaleTemp!(olderThanMs); }
  removeDeadTemp?(): Promise<{ files: number; bytes: number }> { return this.inner.removeDeadTemp!(); }
  close(): Promise<void> { return this.inner.close(); }
}

/** The base of a stream decorator: forwards every member of BackendStream. */
export class ForwardingStream implements BackendStream {
  constructor(protected readonly inner: BackendStream) {}
  get size(): number { return this.inner.size; }
  write(parts: readonly Uint8Array[], handOver?: boolean, released?: () => void): void { this.inner.write(parts, handOver, released); }
  drained(): Promise<void> { return this.inner.drained(); }
  commit(): Promise<string> { return this.inner.commit(); }
  abort(): Promise<void> { return this.inner.abort(); }
}

type Unforwarded2 = Exclude<keyof BackendStream, keyof ForwardingStream>;
const allStreamForwarded: [Unforwarded2] extends [never] ? true : Unforwarded2 = true;
void allStreamForwarded;
