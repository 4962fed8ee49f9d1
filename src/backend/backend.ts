/** The storage contract every backend implements (restic's, kept small). */
export type FileType = 'data' | 'index' | 'snapshots' | 'keys' | 'locks' | 'config';

export interface Handle {
  type: FileType;
  /** 64-hex id, or 'config' for the config file */
  name: string;
}

export interface FileInfo {
  name: string;
  size: number;
}

export interface BackendProperties {
  /** how many requests may usefully run at once */
  connections: number;
  /** true when save() is atomic (no partial file ever visible under the final name) */
  atomicWrites: boolean;
  /**
   * true when save() itself proves the stored bytes equal the sent ones (Jottacloud: the server's
   * md5 of what it stored must equal ours); otherwise packs are read back and hashed after saving
   */
  verifiedUploads?: boolean;
  /** save() needs the MD5 of what it stores (Jottacloud's allocate): callers that have it pass it in SaveOptions */
  wantsMd5?: boolean;
}

export interface SaveOptions {
  /** the MD5 (hex) of the bytes, when the caller computed it already (saves a pass over them) */
  md5?: string;
}

export interface Backend {
  readonly location: string;
  readonly properties: BackendProperties;
  /** create the repository layout; fails with AlreadyExistsError if a config exists */
  create(): Promise<void>;
  /** store bytes (one buffer or parts written in order) atomically; an existing file is kept */
  save(h: Handle, data: Uint8Array | readonly Uint8Array[], opts?: SaveOptions): Promise<void>;
  /**
   * read the whole file, or `length` bytes from `offset`. With `into` (at least `length` bytes) a
   * backend may read into it and return a view of it (restore recycles its read buffers so); it
   * may also ignore it and return a fresh buffer.
   */
  load(h: Handle, offset?: number, length?: number, into?: Buffer): Promise<Buffer>;
  stat(h: Handle): Promise<FileInfo>;
  /** list files of a type; names that are not 64-hex ids are skipped (except config) */
  list(type: FileType): Promise<FileInfo[]>;
  /**
   * delete a file. `permanent` asks backends with a recycle bin (Jottacloud's trash) to free the
   * space at once; prune uses it, since freeing space is its purpose.
   */
  remove(h: Handle, opts?: RemoveOptions): Promise<void>;
  /**
   * optional: true when the stored file equals `parts` byte for byte (a backend-specific read-back
   * that avoids allocating the whole file again); the repository falls back to load() and compare
   */
  verifySaved?(h: Handle, parts: readonly Uint8Array[], size: number): Promise<boolean>;
  /**
   * optional: write a data file whose name (its SHA-256) is known only at the end, as it is produced
   * (a pack, blob by blob): nothing of it stays in memory. The local backend writes a temp file.
   */
  createStream?(type: FileType): BackendStream;
  /**
   * optional: delete temp files a killed writer left behind (never listed, never referenced), older
   * than `olderThanMs`. Only under an exclusive lock (prune), when no other writer can be running.
   */
  removeStaleTemp?(olderThanMs: number): Promise<{ files: number; bytes: number }>;
  /** optional: delete temp files whose writer is provably gone (same host, pid not running); safe under any lock */
  removeDeadTemp?(): Promise<{ files: number; bytes: number }>;
  close(): Promise<void>;
}

/** A file being written (see Backend.createStream). */
export interface BackendStream {
  /** bytes written so far */
  readonly size: number;
  /**
   * append (a pack's blob at a time). With `handOver` the parts' buffers are given to the stream
   * (they may be detached afterwards); without, they are copied. Parts that are views of a
   * SharedArrayBuffer are neither copied nor detached when `released` is given: the stream reads
   * them where they are and calls `released` once it no longer needs them (the caller must not
   * change them before). `released` is called in every case, also after a failure or an abort.
   */
  write(parts: readonly Uint8Array[], handOver?: boolean, released?: () => void): void;
  /** resolves once little enough is waiting to be written (backpressure for the producer) */
  drained(): Promise<void>;
  /**
   * make it durable, check what was stored against what was written, and publish it under the
   * SHA-256 of its content (kept if a file of that name exists: names are content hashes); returns
   * that id
   */
  commit(): Promise<string>;
  /** discard it */
  abort(): Promise<void>;
}

export interface RemoveOptions {
  permanent?: boolean;
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(public readonly handle: Handle | null, message?: string) {
    super(message ?? `${handle ? `${handle.type}/${handle.name}` : 'object'} does not exist`);
  }
}

export class AlreadyExistsError extends Error {
  override name = 'AlreadyExistsError';
}

/** Path of a handle in restic's default layout (data/xx/id), relative, with '/' separators. */
export function layoutPath(h: Handle): string {
  if (h.type === 'config') return 'config';
  if (h.type === 'data') return `data/${h.name.slice(0, 2)}/${h.name}`;
  return `${h.type}/${h.name}`;
}

export function partsOf(data: Uint8Array | readonly Uint8Array[]): readonly Uint8Array[] {
  return data instanceof Uint8Array ? [data] : data;
}

/**
 * Compares bytes read back in order against the parts that were written: feed() each piece as it
 * arrives; false as soon as a byte differs or more bytes arrive than were written.
 */
export class PartsComparer {
  private pi = 0;
  private po = 0;
  constructor(private parts: readonly Uint8Array[]) {}

  feed(got: Uint8Array): boolean {
    let g = 0;
    while (g < got.length) {
      const p = this.parts[this.pi];
      if (!p) return false;
      const n = Math.min(p.length - this.po, got.length - g);
      if (Buffer.compare(got.subarray(g, g + n), p.subarray(this.po, this.po + n)) !== 0) return false;
      g += n;
      this.po += n;
      if (this.po === p.length) { this.pi++; this.po = 0; }
    }
    return true;
  }
}

/** list('config') for backends whose listing has no place for the config file: a stat of it */
export async function listConfig(be: Pick<Backend, 'stat'>): Promise<FileInfo[]> {
  try {
    return [await be.stat({ type: 'config', name: 'config' })];
  } catch (e) {
    if (e instanceof NotFoundError) return [];
    throw e;
  }
}

export function totalLength(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/**
 * The storage refused to delete a file: a REST server in append-only mode (rest-server and
 * `rclone serve restic --append-only`) answers 403 to every DELETE but of a lock.
 */
export class DeleteRefusedError extends Error {
  override name = 'DeleteRefusedError';
  constructor(readonly handle: Handle, readonly status: number, message?: string) {
    super(message ?? `repository is append-only: the server refused to delete ${layoutPath(handle)} (HTTP ${status})`);
  }
}

/** a name no repository file has (all zeros): deleting it answers "not found" wherever deleting is allowed */
const PROBE: Handle = { type: 'snapshots', name: '0'.repeat(64) };

/**
 * Fails with DeleteRefusedError when the storage refuses deletions (an append-only REST server
 * answers 403 to a DELETE before it looks for the file), before an operation whose purpose is to
 * delete (prune) has written or decided anything. Costs one request that deletes nothing.
 */
export async function assertDeletable(be: Pick<Backend, 'remove'>): Promise<void> {
  try {
    await be.remove(PROBE);
  } catch (e) {
    if (e instanceof NotFoundError) return;
    if (e instanceof DeleteRefusedError) {
      throw new DeleteRefusedError(PROBE, e.status, `repository is append-only: the server refuses deletions (HTTP ${e.status} to a DELETE); prune needs a server or credential that may delete`);
    }
    throw e;
  }
}
