/** A restic v2 repository over any Backend: keys, config, index, blobs, unpacked files, packing. */
import { type Backend, type BackendStream, type FileType, NotFoundError, PartsComparer } from '../backend/backend.js';
import { open, randomMasterKey, seal, type MasterKey } from '../crypto/crypto.js';
import { decodeConfig, encodeConfig, newConfig, type RepoConfig } from './config.js';
import { RepoNotFoundError, UserError } from './errors.js';
import { sha256hex } from './ids.js';
import { ID_RE } from '../util/ids.js';
import { decodeIndex, encodeIndex, MasterIndex, scanIndex, type IndexFilePack } from './index.js';
import { decodeStoredBlob } from './blob.js';
import { createKeyFile, openKeyFile, parseKeyFile, WrongPasswordError, type KdfParams } from './keys.js';
import type { KdfHint } from './kdf.js';
import { sharedPackHasher, type PackDigest } from './packhash.js';
import { EAGER_HEADER, PackBuilder, parsePackTail, type BlobType, type PackedBlob } from './pack.js';
import { decodeSnapshot, encodeSnapshot, sortSnapshots, type Snapshot, type SnapshotWithId } from './snapshot.js';
import { decodeUnpacked, encodeUnpacked } from './unpacked.js';
import { zstdCompress, type CompressionMode } from './zstd.js';

export interface RepoOptions {
  packSize?: number;
  compression?: CompressionMode;
  /** scrypt lanes derived at a time when a key is opened or made (1 or 2: two cores, 32 MiB more) */
  kdfThreads?: number;
}

const MAX_KEYS = 20;
/** close an index file (and write it) once it has this many packs, so interrupted runs keep their work */
const INDEX_FLUSH_PACKS = 64;

export class Repository {
  index = new MasterIndex();
  /** packs in each index file, for check/prune */
  readonly indexFiles = new Map<string, string[]>();
  packSize: number;
  compression: CompressionMode;
  private builders = new Map<BlobType, PackBuilder>();
  private pendingIndex: IndexFilePack[] = [];
  private uploads = new Set<Promise<void>>();
  private uploadError: unknown = null;
  private discarded = false;
  /** salt and scrypt parameters of the key file that opened the repository */
  kdf: KdfHint | null = null;
  /** full packs waiting for an upload slot (in no map: discard must still find them) */
  private waitingBuilders = new Set<PackBuilder>();
  /** packs stored by this process, with their blobs (prune needs them for the new index) */
  readonly storedPacks = new Map<string, PackedBlob[]>();
  /** blobs handed to a pack but whose pack is not stored yet */
  private inFlight = new Set<string>();
  /** recycled data-pack buffers (a pack's blobs are copied into one) */
  private packBuffers: Buffer[] = [];
  /** a data pack closes once it reaches packSize, so its blobs overshoot by less than one blob (mostly ~1 MiB) */
  private packBufferSize(): number { return this.packSize + 2 * 1024 * 1024; }

  private constructor(readonly backend: Backend, readonly key: MasterKey, readonly config: RepoConfig, readonly keyId: string, opts: RepoOptions) {
    this.packSize = opts.packSize ?? 16 * 1024 * 1024;
    this.compression = opts.compression ?? 'auto';
  }

  static async init(backend: Backend, password: Buffer, opts: RepoOptions & { kdf?: KdfParams } = {}): Promise<Repository> {
    await backend.create();
    const master = randomMasterKey();
    const config = newConfig();
    const kf = await createKeyFile(password, master, opts.kdf, opts.kdfThreads);
    const keyId = sha256hex(kf);
    await backend.save({ type: 'keys', name: keyId }, kf);
    await backend.save({ type: 'config', name: 'config' }, seal(master, encodeConfig(config)));
    const repo = new Repository(backend, master, config, keyId, opts);
    repo.setKdf(kf);
    return repo;
  }

  private setKdf(keyFile: Uint8Array): void {
    const k = parseKeyFile(keyFile);
    this.kdf = { N: k.N, r: k.r, p: k.p, salt: k.salt };
  }

  static async open(backend: Backend, password: Buffer, opts: RepoOptions & { keyHint?: string } = {}): Promise<Repository> {
    let cfgBytes: Buffer;
    try {
      cfgBytes = await backend.load({ type: 'config', name: 'config' });
    } catch (e) {
      if (e instanceof NotFoundError) throw new RepoNotFoundError(`repository ${backend.location} does not exist: unable to open config file`);
      throw e;
    }
    let keys = (await backend.list('keys')).map((k) => k.name);
    if (opts.keyHint) keys = [...keys.filter((k) => k.startsWith(opts.keyHint!)), ...keys.filter((k) => !k.startsWith(opts.keyHint!))];
    for (const k of keys.slice(0, MAX_KEYS)) {
      try {
        const kb = await backend.load({ type: 'keys', name: k });
        let master;
        try {
          master = await openKeyFile(kb, password, opts.kdfThreads);
        } catch (e) {
          if (e instanceof WrongPasswordError) throw e;
          throw new Error(`keys/${k}: ${(e as Error).message}`);
        }
        let plain;
        try {
          plain = open(master, cfgBytes);
        } catch (e) {
          throw new Error(`config: cannot be decrypted with the master key of keys/${k.slice(0, 8)}: ${(e as Error).message}`);
        }
        const config = decodeConfig(plain);
        const repo = new Repository(backend, master, config, k, opts);
        repo.setKdf(kb);
        return repo;
      } catch (e) {
        if (e instanceof WrongPasswordError) continue;
        throw e;
      }
    }
    throw new WrongPasswordError('wrong password or no key found');
  }

  get version(): number { return this.config.version; }

  // ---------- unpacked files ----------

  async saveUnpacked(type: Exclude<FileType, 'data' | 'config' | 'keys'>, json: Uint8Array): Promise<string> {
    const stored = encodeUnpacked(this.key, json, this.version);
    const id = sha256hex(stored);
    if (type !== 'locks') await this.writeGate;
    await this.backend.save({ type, name: id }, stored);
    return id;
  }

  private writeGate: Promise<void> | null = null;

  /**
   * Hold every write that publishes something (packs, index, snapshots; not lock files, nor the temp
   * file a streamed pack is written to) until `gate` settles: a snapshot walks its sources while its
   * lock settles, and nothing it produces is stored unless the lock holds. A rejected gate fails the
   * held writes with its error.
   */
  gateWrites(gate: Promise<void>): void {
    gate.catch(() => {});
    this.writeGate = gate;
  }

  async loadUnpacked(type: FileType, id: string): Promise<Buffer> {
    const stored = await this.backend.load({ type, name: id });
    if (sha256hex(stored) !== id) throw new Error(`${type}/${id}: invalid data returned (hash mismatch)`);
    return decodeUnpacked(this.key, stored, type, `${type}/${id}`);
  }

  /** resolve a unique id prefix among the files of a type */
  async resolveId(type: FileType, prefix: string): Promise<string> {
    if (ID_RE.test(prefix)) return prefix;
    const m = (await this.backend.list(type)).filter((f) => f.name.startsWith(prefix));
    if (m.length === 0) throw new UserError(`no matching ID found for prefix "${prefix}"`);
    if (m.length > 1) throw new UserError(`multiple IDs with prefix "${prefix}" found`);
    return m[0]!.name;
  }

  // ---------- snapshots ----------

  /** decoded snapshot files by name: they are immutable (named by content), so a copy is always valid */
  private snapshotCache = new Map<string, SnapshotWithId>();

  async loadSnapshot(id: string): Promise<SnapshotWithId> {
    let s = this.snapshotCache.get(id);
    if (!s) {
      const bytes = await this.loadUnpacked('snapshots', id);
      try {
        s = { ...decodeSnapshot(bytes), id };
      } catch (e) {
        throw new Error(`snapshots/${id}: ${(e as Error).message}`);
      }
      this.snapshotCache.set(id, s);
    }
    return structuredClone(s);
  }

  /** where the library reports what it skipped (the CLI prints it on stderr) */
  warn: (message: string) => void = () => {};
  private warnedSnapshots = new Set<string>();

  /**
   * The snapshots that can be loaded, oldest first. A damaged one (undecryptable, hash mismatch,
   * bad JSON) is skipped with a warning naming it, as restic does: one bad file must not hide the
   * others. (prune and check load every snapshot themselves and refuse or report instead.)
   */
  async listSnapshots(): Promise<SnapshotWithId[]> {
    const names = (await this.backend.list('snapshots')).map((f) => f.name);
    const out = await mapLimit(names, 8, async (n) => {
      try {
        return await this.loadSnapshot(n);
      } catch (e) {
        if (e instanceof NotFoundError) return null; // removed meanwhile (a concurrent forget)
        if (!this.warnedSnapshots.has(n)) {
          this.warnedSnapshots.add(n);
          const m = (e as Error).message;
          this.warn(`could not load snapshot ${n.slice(0, 8)}: ${m.startsWith(`snapshots/${n}: `) ? m.slice(n.length + 12) : m}`);
        }
        return null;
      }
    });
    return sortSnapshots(out.filter((x): x is SnapshotWithId => x !== null));
  }

  async saveSnapshot(s: Snapshot): Promise<string> {
    return this.saveUnpacked('snapshots', encodeSnapshot(s));
  }

  /** "latest", a full id, or a unique prefix; filters apply to "latest" */
  async findSnapshot(ref: string, filter?: { host?: string; paths?: string[]; tags?: string[] }): Promise<SnapshotWithId> {
    if (ref === 'latest') {
      let l = await this.listSnapshots();
      if (filter?.host) l = l.filter((s) => s.hostname === filter.host);
      if (filter?.paths?.length) l = l.filter((s) => sameSet(s.paths, filter.paths!));
      if (filter?.tags?.length) l = l.filter((s) => filter.tags!.every((t) => s.tags?.includes(t)));
      const s = l.at(-1);
      if (!s) throw new UserError('no snapshot found');
      return s;
    }
    const id = await this.resolveId('snapshots', ref);
    try {
      return await this.loadSnapshot(id);
    } catch (e) {
      if (e instanceof NotFoundError) throw new UserError(`no matching ID found for prefix "${ref}"`);
      throw e;
    }
  }

  // ---------- index ----------

  /** true when the index files are still those loaded (index files are immutable, named by content) */
  async indexCurrent(): Promise<boolean> {
    return sameSet((await this.backend.list('index')).map((f) => f.name), [...this.indexFiles.keys()]);
  }

  /**
   * Bring the loaded index up to date after a lock was taken: index files added meanwhile are loaded;
   * if one that was loaded is gone (only an exclusive lock holder removes any, and then the lock
   * would not have been granted), everything is loaded again. Safe while an archiver runs: a blob
   * missing for a moment is at worst stored twice, a parent tree at worst read again.
   */
  async refreshIndex(): Promise<void> {
    const names = new Set((await this.backend.list('index')).map((f) => f.name));
    if ([...this.indexFiles.keys()].some((n) => !names.has(n))) {
      this.resetIndex();
      await this.loadIndex();
      return;
    }
    await mapLimit([...names].filter((n) => !this.indexFiles.has(n)), 8, (name) => this.loadIndexFile(name));
  }

  /** forget the loaded index (before loading it again) */
  resetIndex(): void {
    this.index = new MasterIndex();
    this.indexFiles.clear();
  }

  async loadIndex(): Promise<void> {
    const files = await this.backend.list('index');
    await mapLimit(files, 8, (f) => this.loadIndexFile(f.name));
    // everything in one sorted part (5M blobs: 46 B each; the recent part would hold up to half of them
    // at 48 B + hash)
    this.index.compact();
  }

  private async loadIndexFile(name: string): Promise<void> {
    const bytes = await this.loadUnpacked('index', name);
    // the common shape straight into the index's arrays (no object per blob); anything else (and
    // every malformed file) through JSON.parse and decodeIndex's checks
    const scanned = scanIndex(bytes);
    if (scanned) {
      this.index.addScanned(scanned);
      this.indexFiles.set(name, scanned.packs);
      return;
    }
    let idx;
    try {
      idx = decodeIndex(bytes);
    } catch (e) {
      throw new Error(`index/${name}: ${(e as Error).message}`);
    }
    for (const p of idx.packs) this.index.addPack(p.id, p.blobs);
    this.indexFiles.set(name, idx.packs.map((p) => p.id));
  }

  // ---------- blobs ----------

  async loadBlob(type: BlobType, id: string): Promise<Buffer> {
    const loc = this.index.get(type, id);
    if (!loc) throw new Error(`${type} blob ${id} not found in index`);
    const stored = await this.backend.load({ type: 'data', name: loc.packId }, loc.offset, loc.length);
    return this.decodeBlob(stored, id, loc, loc.packId);
  }

  decodeBlob(stored: Buffer, id: string, loc: { uncompressedLength: number; length: number; type?: string }, packId: string): Buffer {
    try {
      return decodeStoredBlob(this.key, stored, id, loc);
    } catch (e) {
      throw new Error(`pack ${packId}: blob ${id}: ${(e as Error).message}`);
    }
  }

  async loadPackHeader(packId: string, size?: number): Promise<PackedBlob[]> {
    const h = { type: 'data' as const, name: packId };
    size ??= (await this.backend.stat(h)).size;
    const take = Math.min(size, EAGER_HEADER);
    let r = parsePackTail(this.key, await this.backend.load(h, size - take, take), size);
    if ('need' in r) r = parsePackTail(this.key, await this.backend.load(h, size - r.need, r.need), size);
    if ('need' in r) throw new Error(`pack ${packId}: header could not be read`);
    return r;
  }

  /** Encrypt (and compress) a blob's plaintext, as the workers do; for trees and small things on this thread. */
  encodeBlob(type: BlobType, plain: Uint8Array): { stored: Buffer; uncompressedLength: number } {
    const compress = this.version >= 2 && plain.length > 0 && (type === 'tree' || this.compression !== 'off');
    if (!compress) return { stored: seal(this.key, plain), uncompressedLength: 0 };
    const z = zstdCompress(plain, this.compression === 'max' ? 'max' : 'auto');
    return { stored: seal(this.key, z), uncompressedLength: plain.length };
  }

  /** true when the blob is known or already queued in this process */
  hasBlob(type: BlobType, id: string): boolean {
    return this.index.has(type, id) || this.inFlight.has(type[0] + id);
  }

  /** Save a plaintext blob (trees, small data) unless it is known. Returns true if it was added. */
  async saveBlob(type: BlobType, id: string, plain: Uint8Array): Promise<boolean> {
    if (this.hasBlob(type, id)) return false;
    const { stored, uncompressedLength } = this.encodeBlob(type, plain);
    await this.addStoredBlob(type, id, stored, uncompressedLength);
    return true;
  }

  /** Store a blob again even though the index knows it (prune's repack). */
  async saveBlobAgain(type: BlobType, id: string, plain: Uint8Array): Promise<void> {
    const { stored, uncompressedLength } = this.encodeBlob(type, plain);
    await this.addStoredBlob(type, id, stored, uncompressedLength, true);
  }

  /**
   * Add an already encrypted blob to the current pack of its type. Returns once the blob is
   * accepted (backpressure: waits while too many packs are uploading). `released`, when given, is
   * called once nothing refers to the parts any more (copied, or written by a stream that took
   * them as they are: views of a SharedArrayBuffer the caller reuses afterwards).
   */
  async addStoredBlob(type: BlobType, id: string, stored: Uint8Array | readonly Uint8Array[], uncompressedLength: number, ignoreIndex = false, handOver = false, released?: () => void): Promise<void> {
    const refused = this.refusal();
    if (refused) {
      released?.();
      throw refused;
    }
    const key = type[0] + id;
    if ((!ignoreIndex && this.index.has(type, id)) || this.inFlight.has(key)) {
      released?.();
      return;
    }
    this.inFlight.add(key);
    let b = this.builders.get(type);
    if (!b) {
      // data packs stream to the backend when it can (the local backend: a temp file; nothing held in
      // memory), else fill a recycled buffer; tree packs are small and buffered
      const backend = this.backend;
      b = type !== 'data' ? new PackBuilder(type)
        : backend.createStream ? new PackBuilder(type, { stream: () => backend.createStream!('data') })
          : new PackBuilder(type, {
            take: () => this.packBuffers.pop() ?? Buffer.from(new SharedArrayBuffer(this.packBufferSize())),
            hasher: sharedPackHasher(),
            md5: !!backend.properties.wantsMd5,
          });
      this.builders.set(type, b);
    }
    b.add(id, stored, uncompressedLength, handOver, released);
    if (b.size + b.headerSize() >= this.packSize) {
      this.builders.delete(type);
      await this.startUpload(b);
    } else if (b.stream) {
      await b.stream.drained();
    }
  }

  /** why no more blobs are taken: an upload failed, or the run was discarded */
  private refusal(): unknown {
    return this.uploadError ?? (this.discarded ? new Error('repository writes were discarded') : null);
  }

  private async startUpload(b: PackBuilder): Promise<void> {
    this.waitingBuilders.add(b);
    try {
      while (this.uploads.size >= Math.max(1, this.backend.properties.connections)) {
        await Promise.race(this.uploads);
        const refused = this.refusal();
        if (refused) {
          await b.abort(); // no longer anyone's: its stream (temp file, writer thread) would stay open
          throw refused;
        }
      }
    } finally {
      this.waitingBuilders.delete(b);
    }
    const { id, digest, parts, size, blobs, buffer, stream } = b.finish(this.key);
    digest?.catch(() => {}); // (awaited by storePack, unless the write gate fails first)
    const p = this.storePack(id, stream ?? parts, size, blobs, digest).catch((e) => { this.uploadError ??= e; }).finally(() => {
      // the backend is done with the bytes (stored and verified, or failed): recycle the buffer
      if (b.type === 'data' && buffer?.length === this.packBufferSize() && this.packBuffers.length <= this.backend.properties.connections) this.packBuffers.push(buffer);
    });
    this.uploads.add(p);
    void p.finally(() => this.uploads.delete(p));
  }

  private async storePack(packId: string | null, data: Uint8Array[] | BackendStream, size: number, blobs: PackedBlob[], digest?: Promise<PackDigest>): Promise<void> {
    try {
      await this.writeGate;
    } catch (e) {
      if (!Array.isArray(data)) await data.abort(); // its temp file goes
      throw e;
    }
    let id: string;
    if (Array.isArray(data)) {
      const d = digest ? await digest : null;
      id = d ? d.sha256 : packId!;
      const h = { type: 'data' as const, name: id };
      await this.backend.save(h, data, d?.md5 ? { md5: d.md5 } : undefined);
      // verify before anything references the pack: the stored file must equal the bytes whose
      // SHA-256 is its name (compared byte for byte with what we sent: no second hash pass). Backends
      // that prove it themselves (a server-computed md5) are not read back.
      if (!this.backend.properties.verifiedUploads && !(await this.storedEquals(h, data, size))) {
        await this.backend.remove(h).catch(() => {});
        throw new Error(`pack ${id}: verification after upload failed`);
      }
      data.length = 0;
    } else {
      // a streamed pack hashes itself and verifies itself on commit (size and checksum read back
      // before it is published under its hash)
      id = await data.commit();
    }
    this.index.addPack(id, blobs);
    this.storedPacks.set(id, blobs);
    // (no explicit GC here: measured slower, RSS unchanged)
    for (const bl of blobs) this.inFlight.delete(bl.type[0] + bl.id);
    this.pendingIndex.push({ id, blobs });
    if (this.pendingIndex.length >= INDEX_FLUSH_PACKS) await this.writeIndex();
  }

  /** the stored file has exactly these bytes (read back in 4 MiB ranges) */
  private async storedEquals(h: { type: 'data'; name: string }, parts: readonly Uint8Array[], size: number): Promise<boolean> {
    if (this.backend.verifySaved) return this.backend.verifySaved(h, parts, size);
    const st = await this.backend.stat(h);
    if (st.size !== size) return false;
    const step = 4 * 1024 * 1024;
    const cmp = new PartsComparer(parts);
    for (let off = 0; off < size; off += step) {
      if (!cmp.feed(await this.backend.load(h, off, Math.min(step, size - off)))) return false;
    }
    return true;
  }

  private async writeIndex(): Promise<void> {
    if (this.pendingIndex.length === 0) return;
    const packs = this.pendingIndex;
    this.pendingIndex = [];
    const id = await this.saveUnpacked('index', encodeIndex({ packs }));
    this.indexFiles.set(id, packs.map((p) => p.id));
  }

  /**
   * Give up the open packs (a failed run): streamed ones lose their temp files. What was stored
   * stays (unreferenced packs are harmless; prune removes them).
   */
  async discard(): Promise<void> {
    this.discarded = true; // blobs that still arrive (other branches of the walk) are refused
    const open = [...this.builders.values(), ...this.waitingBuilders];
    this.builders.clear();
    this.waitingBuilders.clear();
    await Promise.all(open.map((b) => b.abort().catch(() => {})));
    await Promise.allSettled([...this.uploads]);
  }

  /** Store all open packs and write the index for everything stored so far. */
  async flush(): Promise<void> {
    for (const [t, b] of [...this.builders]) {
      this.builders.delete(t);
      if (b.count) await this.startUpload(b);
      else await b.abort();
    }
    while (this.uploads.size) await Promise.race(this.uploads);
    if (this.uploadError) throw this.uploadError;
    await this.writeIndex();
  }

}

export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x));
}

export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
