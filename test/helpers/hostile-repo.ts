/**
 * A minimal restic-format (v2) repository writer for adversarial tests, written from the format facts
 * (/work/shared/reference/restic-format.md) and sharing no code with jbackup's writer beyond the
 * crypto primitives: every object can be given lying content (an index that names the wrong pack,
 * a pack header with wrong lengths, a lock with a garbage time, a zstd frame that inflates hugely).
 */
import { createHash, randomBytes, scryptSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { compress as zstdCompressSync } from 'zstd-napi';
import { keyFromKdf, masterKeyToJSON, randomMasterKey, seal, type MasterKey } from '../../src/crypto/crypto.js';

export type HBlobType = 'data' | 'tree';

export interface HBlob {
  type: HBlobType;
  id: string;
  /** encrypted bytes as stored in a pack */
  stored: Buffer;
  /** plaintext length when compressed, else 0 */
  uncompressedLength: number;
}

export interface HEntry {
  type: HBlobType;
  id: string;
  offset: number;
  length: number;
  uncompressed_length?: number;
}

export interface HPack {
  id: string;
  size: number;
  entries: HEntry[];
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** an irreducible polynomial of degree 53 (restic's test value) */
const POLY = '3da3358b4dc173';

/**
 * A zstd frame of `size` zero bytes made of RLE blocks of 128 KiB: 4 bytes each, so 3 GiB costs 96 KiB.
 * With `declareSize` the frame header states the content size (a naive decoder allocates it at once).
 */
export function zstdBomb(size: number, declareSize = true): Buffer {
  const BLOCK = 128 * 1024;
  const head = declareSize ? Buffer.alloc(4 + 2 + 8) : Buffer.alloc(4 + 2);
  head.writeUInt32LE(0xfd2fb528, 0);
  head[4] = declareSize ? 0xc0 : 0x00; // FCS 8 bytes (or none), not single segment, no checksum
  head[5] = 7 << 3; // window 2^(10+7) = 128 KiB
  if (declareSize) head.writeBigUInt64LE(BigInt(size), 6);
  const n = Math.ceil(size / BLOCK);
  const blocks = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    const len = Math.min(BLOCK, size - i * BLOCK);
    const last = i === n - 1 ? 1 : 0;
    const h = last | (1 << 1) | (len << 3); // RLE block
    blocks[i * 4] = h & 0xff;
    blocks[i * 4 + 1] = (h >> 8) & 0xff;
    blocks[i * 4 + 2] = (h >> 16) & 0xff;
    blocks[i * 4 + 3] = 0; // the repeated byte
  }
  return Buffer.concat([head, blocks]);
}

export class HostileRepo {
  private constructor(readonly dir: string, readonly key: MasterKey, readonly password: string) {}

  /** a fresh repository: config (version 2) and one key file (cheap scrypt parameters) */
  static async create(dir: string, password = 'hostile-pw'): Promise<HostileRepo> {
    for (const d of ['keys', 'locks', 'snapshots', 'index', 'data']) await fsp.mkdir(path.join(dir, d), { recursive: true });
    for (let i = 0; i < 256; i++) await fsp.mkdir(path.join(dir, 'data', i.toString(16).padStart(2, '0')), { recursive: true });
    const r = new HostileRepo(dir, randomMasterKey(), password);
    await r.writeKey({ N: 1024, r: 8, p: 1 });
    await r.writeConfig({ version: 2, id: randomBytes(32).toString('hex'), chunker_polynomial: POLY });
    return r;
  }

  /** a key file for the master key; `edit` may change any field (after the data is sealed) */
  async writeKey(kdf: { N: number; r: number; p: number }, edit?: (kf: Record<string, unknown>) => unknown): Promise<string> {
    const salt = randomBytes(64);
    const user = keyFromKdf(scryptSync(Buffer.from(this.password), salt, 64, { ...kdf, maxmem: 256 * kdf.N * kdf.r + (32 << 20) }));
    let kf: unknown = {
      created: '2026-01-01T00:00:00.000000000Z', username: 'h', hostname: 'hostile', kdf: 'scrypt', ...kdf,
      salt: salt.toString('base64'), data: seal(user, Buffer.from(masterKeyToJSON(this.key))).toString('base64'),
    };
    if (edit) kf = edit(kf as Record<string, unknown>) ?? kf;
    return this.writeRaw('keys', typeof kf === 'string' ? Buffer.from(kf) : Buffer.from(JSON.stringify(kf)));
  }

  /** the config, sealed with the master key (a string is written as it is: damaged JSON) */
  async writeConfig(c: object | string): Promise<void> {
    const plain = Buffer.from(typeof c === 'string' ? c : JSON.stringify(c));
    await fsp.writeFile(path.join(this.dir, 'config'), seal(this.key, plain));
  }

  /** write a file named by the SHA-256 of its bytes */
  async writeRaw(type: 'keys' | 'locks' | 'snapshots' | 'index', bytes: Buffer): Promise<string> {
    const id = sha(bytes);
    await fsp.writeFile(path.join(this.dir, type, id), bytes);
    return id;
  }

  /**
   * An unpacked file (index, snapshot, lock): JSON sealed as is, or as 0x02 || zstd(JSON); `zstd`
   * gives the compressed bytes directly (a bomb).
   */
  async writeUnpacked(type: 'locks' | 'snapshots' | 'index', json: object | string, o: { compress?: boolean; zstd?: Buffer } = {}): Promise<string> {
    const text = Buffer.from(typeof json === 'string' ? json : JSON.stringify(json));
    let plain = text;
    if (o.zstd) plain = Buffer.concat([Buffer.from([2]), o.zstd]);
    else if (o.compress) plain = Buffer.concat([Buffer.from([2]), zstdCompressSync(text)]);
    return this.writeRaw(type, seal(this.key, plain));
  }

  /** a blob: id = SHA-256 of the plaintext; compressed unless told not to (or given frame bytes) */
  blob(type: HBlobType, plain: Buffer, o: { compress?: boolean; zstd?: Buffer; uncompressedLength?: number } = {}): HBlob {
    const id = sha(plain);
    if (o.zstd) return { type, id, stored: seal(this.key, o.zstd), uncompressedLength: o.uncompressedLength ?? plain.length };
    if (o.compress === false) return { type, id, stored: seal(this.key, plain), uncompressedLength: 0 };
    return { type, id, stored: seal(this.key, zstdCompressSync(plain)), uncompressedLength: plain.length };
  }

  /** a tree blob's plaintext as restic writes it */
  static treeJson(nodes: object[]): Buffer {
    return Buffer.from(`${JSON.stringify({ nodes })}\n`);
  }

  static fileNode(name: string, content: string[], size: number | string): object {
    return {
      name, type: 'file', mode: 420, mtime: '2026-01-01T00:00:00Z', atime: '2026-01-01T00:00:00Z', ctime: '2026-01-01T00:00:00Z',
      uid: 0, gid: 0, inode: 1, links: 1, size, content,
    };
  }

  /**
   * A pack of these blobs. `header` rewrites the entries written in the pack header (lies); the
   * returned entries are the true positions.
   */
  async writePack(blobs: HBlob[], header?: (e: HEntry[]) => HEntry[]): Promise<HPack> {
    const entries: HEntry[] = [];
    let off = 0;
    for (const b of blobs) {
      entries.push({ type: b.type, id: b.id, offset: off, length: b.stored.length, ...(b.uncompressedLength ? { uncompressed_length: b.uncompressedLength } : {}) });
      off += b.stored.length;
    }
    const hdrEntries = header ? header(entries.map((e) => ({ ...e }))) : entries;
    const parts: Buffer[] = [];
    for (const e of hdrEntries) {
      const c = !!e.uncompressed_length;
      const h = Buffer.alloc(c ? 41 : 37);
      h[0] = (e.type === 'tree' ? 1 : 0) + (c ? 2 : 0);
      h.writeUInt32LE(e.length >>> 0, 1);
      if (c) h.writeUInt32LE(e.uncompressed_length! >>> 0, 5);
      Buffer.from(e.id, 'hex').copy(h, c ? 9 : 5);
      parts.push(h);
    }
    const sealed = seal(this.key, Buffer.concat(parts));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(sealed.length, 0);
    const file = Buffer.concat([...blobs.map((b) => b.stored), sealed, len]);
    const id = sha(file);
    await fsp.writeFile(this.packPath(id), file);
    return { id, size: file.length, entries };
  }

  packPath(id: string): string {
    return path.join(this.dir, 'data', id.slice(0, 2), id);
  }

  /** an index file listing these packs with these entries (any lie the caller likes) */
  async writeIndex(packs: { id: string; entries: HEntry[] }[], o: { compress?: boolean; zstd?: Buffer } = { compress: true }): Promise<string> {
    return this.writeUnpacked('index', { packs: packs.map((p) => ({ id: p.id, blobs: p.entries })) }, o);
  }

  async writeSnapshot(tree: string, extra: Record<string, unknown> = {}): Promise<string> {
    return this.writeUnpacked('snapshots', { time: '2026-01-02T03:04:05.123456789Z', tree, paths: ['/src'], hostname: 'hostile', username: 'h', ...extra }, { compress: true });
  }

  async writeLock(lock: Record<string, unknown>): Promise<string> {
    return this.writeUnpacked('locks', { time: '2026-01-01T00:00:00Z', exclusive: false, hostname: 'elsewhere', username: 'h', pid: 1, ...lock }, { compress: true });
  }

  /** every file in the repository with its SHA-256, for "nothing was deleted or changed" */
  async fingerprint(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const e of await fsp.readdir(this.dir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const p = path.join(e.parentPath, e.name);
      out.set(path.relative(this.dir, p), sha(await fsp.readFile(p)));
    }
    return out;
  }

  /**
   * A small, healthy repository: one snapshot of a directory with files `a` (two data blobs) and
   * `b` (one), in a data pack each plus a tree pack, all in one index file. Returns what it wrote.
   */
  async standard(): Promise<{ snapshot: string; tree: string; packA: HPack; packB: HPack; treePack: HPack; index: string; contents: Record<string, Buffer> }> {
    const a1 = Buffer.alloc(3000, 'a');
    const a2 = randomBytes(5000);
    const b1 = randomBytes(700);
    const ba1 = this.blob('data', a1);
    const ba2 = this.blob('data', a2, { compress: false });
    const bb1 = this.blob('data', b1);
    const packA = await this.writePack([ba1, ba2]);
    const packB = await this.writePack([bb1]);
    const treePlain = HostileRepo.treeJson([
      HostileRepo.fileNode('a', [ba1.id, ba2.id], a1.length + a2.length),
      HostileRepo.fileNode('b', [bb1.id], b1.length),
    ]);
    const tb = this.blob('tree', treePlain);
    const treePack = await this.writePack([tb]);
    const index = await this.writeIndex([packA, packB, treePack]);
    const snapshot = await this.writeSnapshot(tb.id);
    return { snapshot, tree: tb.id, packA, packB, treePack, index, contents: { a: Buffer.concat([a1, a2]), b: b1 } };
  }
}
