/**
 * The read-only file system `jbackup serve` shows: restic's mount layout over the repository's
 * snapshots, then each snapshot's tree.
 *
 *   /snapshots/<time>_<shortid>/…   every snapshot; plus `latest` (the newest)
 *   /hosts/<host>/<time>_<shortid>/… by host; plus `latest` per host
 *   /tags/<tag>/<time>_<shortid>/…   by tag; plus `latest` per tag
 *   /ids/<shortid>/…                 by the first 8 hex digits of the id
 *
 * <time> is the snapshot's time as restic's mount names it (Go "2006-01-02T15:04:05Z07:00", in the
 * offset the snapshot file records); `latest` is a directory with the newest snapshot's content (restic
 * makes it a symlink, which WebDAV has not). Names are escaped by names.ts.
 *
 * Symlinks in a tree: one that resolves, inside the same snapshot, to a regular file is shown as that
 * file; any other (a directory, a device, dangling, a loop, more than 40 hops) is shown as a small file
 * holding its target. Resolution never leaves the snapshot: an absolute target starts at the snapshot's
 * root (which mirrors "/" for absolute backup paths), ".." stops at the root, and only trees of this
 * repository are ever read. Directory symlinks stay files so the served tree is finite and every file is
 * reachable once (rclone, diff -r and Finder's indexer walk it recursively and would loop).
 */
import { createHash } from 'node:crypto';
import type { Repository } from '../repo/repository.js';
import { decodeTree, type Node } from '../repo/tree.js';
import { sortSnapshots, type SnapshotWithId } from '../repo/snapshot.js';
import { parseTimeNs } from '../format/gotime.js';
import { ByteLru, Inflight } from './cache.js';
import { escapeName, unescapeName } from './names.js';
import { BlobReader, type ContentSource } from './reader.js';

/** how an entry is served: a collection, a file, a symlink shown as a file of its target, anything else as an empty file */
export type EntryKind = 'dir' | 'file' | 'symlink' | 'other';

export type VirtualDir =
  | { v: 'root' } | { v: 'snapshots' } | { v: 'hosts' } | { v: 'host'; host: string }
  | { v: 'tags' } | { v: 'tag'; tag: string } | { v: 'ids' };

export interface Entry {
  /** the escaped name (one path segment before percent-encoding); "" for the root */
  name: string;
  /** escaped segments from the server's root */
  path: readonly string[];
  kind: EntryKind;
  /** bytes served for files, symlinks and others; 0 for directories */
  size: number;
  mtime: Date;
  /** a strong ETag, quoted: files by content (blob ids), directories by tree id, layout directories by the snapshot list */
  etag: string;
  /** the snapshot this entry is in or is the root of */
  snapshot?: SnapshotWithId;
  /** the tree node at this path (a symlink's own node; none for layout directories and snapshot roots) */
  node?: Node;
  /** the node whose content is served: the file itself, or the file a symlink resolves to */
  content?: Node;
  /** the bytes served for a symlink shown as its target text (kind 'symlink') */
  inline?: Buffer;
  /** directories in a snapshot: the tree listed */
  tree?: string;
  /** directories in a snapshot: raw names from the snapshot's root (symlinks resolve against it) */
  treePath?: readonly Buffer[];
  /** layout directories (above the snapshots' trees) */
  virtual?: VirtualDir;
}

export interface VfsOptions {
  /** bytes of decoded trees kept (default 16 MiB, counted as 4 × the tree's JSON size) */
  treeCacheBytes?: number;
  /** bytes of decoded data blobs kept (default 40 MiB) */
  blobCacheBytes?: number;
  /** bytes of PROPFIND listings kept (default 8 MiB) */
  listingCacheBytes?: number;
  /** the snapshot list is read again after this long (default 10 s) */
  snapshotTtlMs?: number;
}

interface LoadedTree {
  nodes: Node[];
  /** first node of each name (latin1 of the bytes: one char per byte) */
  byName: Map<string, Node>;
}

/** restic's symlink hop limit (as Linux's ELOOP) */
const MAX_HOPS = 40;
const TREE_WEIGHT = 4;

const quote = (s: string) => `"${s}"`;
const shortHash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

function mtimeOf(t: string | undefined): Date {
  if (!t) return new Date(0);
  // RFC 3339 with nanoseconds: V8 parses it (to the millisecond), 10× faster than the exact parser
  const ms = Date.parse(t);
  if (!Number.isNaN(ms)) return new Date(ms);
  try {
    return new Date(Number(parseTimeNs(t) / 1_000_000n));
  } catch {
    return new Date(0);
  }
}

/** restic mount's snapshot name: Go "2006-01-02T15:04:05Z07:00" of the time as recorded */
export function snapshotTimeName(time: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (m) return `${m[1]}${m[2]}`;
  const d = new Date(time);
  return Number.isNaN(d.getTime()) ? time : d.toISOString().slice(0, 19) + 'Z';
}

export function snapshotDirName(s: SnapshotWithId): string {
  return escapeName(`${snapshotTimeName(s.time)}_${s.id.slice(0, 8)}`);
}

export class SnapshotFs {
  readonly reader: BlobReader;
  /**
   * Multistatus bodies of Depth 1 listings (webdav.ts), by directory href, ETag, snapshot and request
   * body: file managers list the same folders again and again (Finder; davfs2 on every stat). A
   * 10,000-entry folder is ~5 MiB of XML.
   */
  readonly listings: ByteLru<Buffer>;
  private trees: ByteLru<LoadedTree>;
  private treeLoads = new Inflight<LoadedTree>();
  private snaps: { at: number; list: SnapshotWithId[]; etag: string } | null = null;
  private snapsLoad: Promise<SnapshotWithId[]> | null = null;
  private readonly ttl: number;

  constructor(readonly repo: Repository, o: VfsOptions = {}) {
    this.trees = new ByteLru<LoadedTree>(o.treeCacheBytes ?? 16 << 20);
    this.listings = new ByteLru<Buffer>(o.listingCacheBytes ?? 8 << 20);
    this.reader = new BlobReader(repo, { blobCacheBytes: o.blobCacheBytes ?? 40 << 20 });
    this.ttl = o.snapshotTtlMs ?? 10_000;
  }

  // ---------- snapshots ----------

  /** every snapshot, oldest first; read again after the TTL (new ones bring their index files) */
  async snapshots(): Promise<SnapshotWithId[]> {
    if (this.snaps && Date.now() - this.snaps.at < this.ttl) return this.snaps.list;
    this.snapsLoad ??= (async () => {
      try {
        const list = sortSnapshots(await this.repo.listSnapshots());
        const etag = shortHash(...list.map((s) => s.id));
        if (this.snaps && this.snaps.etag !== etag) await this.repo.refreshIndex();
        this.snaps = { at: Date.now(), list, etag };
        return list;
      } finally {
        this.snapsLoad = null;
      }
    })();
    return this.snapsLoad;
  }

  private layoutEtag(extra: string): string {
    return quote(`v-${shortHash(this.snaps?.etag ?? '', extra)}`);
  }

  // ---------- trees ----------

  async loadTree(id: string): Promise<LoadedTree> {
    const hit = this.trees.get(id);
    if (hit) return hit;
    return this.treeLoads.run(id, async () => {
      const raw = await this.repo.loadBlob('tree', id);
      const nodes = decodeTree(raw, id);
      const byName = new Map<string, Node>();
      for (const n of nodes) { const k = n.name.toString('latin1'); if (!byName.has(k)) byName.set(k, n); }
      const t = { nodes, byName };
      this.trees.set(id, t, raw.length * TREE_WEIGHT);
      return t;
    });
  }

  /**
   * Follow a symlink's target inside the snapshot whose root tree is `root`, from the directory
   * `dir` (raw names from the root). Returns the node reached and its path, or null (dangling, a loop,
   * too many hops, a path through a non-directory).
   */
  async resolveLink(root: string, dir: readonly Buffer[], target: Buffer, hops = 0): Promise<{ node: Node; path: Buffer[] } | null> {
    if (hops >= MAX_HOPS) return null;
    const path = target[0] === 0x2f ? [] : [...dir];
    const parts: Buffer[] = [];
    let s = 0;
    for (let i = 0; i <= target.length; i++) {
      if (i < target.length && target[i] !== 0x2f) continue;
      parts.push(target.subarray(s, i));
      s = i + 1;
    }
    let node: Node | null = null;
    for (let k = 0; k < parts.length; k++) {
      const c = parts[k]!;
      if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
      if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) { path.pop(); node = null; continue; }
      // the directory `path` names, walked from the root (symlinks on the way followed)
      const d = await this.walk(root, path, hops + 1);
      if (!d) return null;
      const n = d.byName.get(c.toString('latin1'));
      if (!n) return null;
      if (n.type === 'symlink' && n.linktarget) {
        const r = await this.resolveLink(root, path, n.linktarget, hops + 1);
        if (!r) return null;
        path.length = 0;
        path.push(...r.path);
        node = r.node;
        hops++;
      } else {
        path.push(Buffer.from(c));
        node = n;
      }
    }
    if (!node) {
      // the target names a directory by "." or ".." (or the root): a directory, shown as its text
      return null;
    }
    return { node, path };
  }

  /** the tree of the directory at `path` (raw names, no symlinks expected but followed) */
  private async walk(root: string, path: readonly Buffer[], hops: number): Promise<LoadedTree | null> {
    let t = await this.loadTree(root);
    const here: Buffer[] = [];
    for (const c of path) {
      let n = t.byName.get(c.toString('latin1'));
      if (n?.type === 'symlink' && n.linktarget) {
        if (hops >= MAX_HOPS) return null;
        const r = await this.resolveLink(root, here, n.linktarget, hops + 1);
        n = r?.node;
      }
      if (!n || n.type !== 'dir' || !n.subtree) return null;
      t = await this.loadTree(n.subtree);
      here.push(c);
    }
    return t;
  }

  // ---------- entries ----------

  private layoutDir(name: string, path: readonly string[], v: VirtualDir, mtime: Date): Entry {
    return { name, path, kind: 'dir', size: 0, mtime, etag: this.layoutEtag(JSON.stringify(v)), virtual: v };
  }

  private snapshotRoot(name: string, path: readonly string[], s: SnapshotWithId): Entry {
    return { name, path, kind: 'dir', size: 0, mtime: mtimeOf(s.time), etag: quote(`t-${s.tree.slice(0, 32)}`), snapshot: s, tree: s.tree, treePath: [] };
  }

  /** the ETag of a file's content: its blob ids (one blob: its own id, no hashing) */
  private contentEtag(n: Node): string {
    const c = n.content ?? [];
    return quote(`c-${c.length === 1 ? c[0]!.slice(0, 32) : shortHash(...c)}`);
  }

  /** the entry a tree node is served as, in the directory `dir` (a promise only for symlinks, which resolve) */
  private nodeEntry(dir: Entry, n: Node): Entry | Promise<Entry> {
    const name = escapeName(n.name);
    const path = [...dir.path, name];
    const mtime = mtimeOf(n.mtime);
    const snapshot = dir.snapshot;
    switch (n.type) {
      case 'dir':
        return { name, path, snapshot, node: n, mtime, kind: 'dir', size: 0, etag: quote(`t-${(n.subtree ?? 'none').slice(0, 32)}`), tree: n.subtree, treePath: [...(dir.treePath ?? []), n.name] };
      case 'file':
        return { name, path, snapshot, node: n, mtime, kind: 'file', size: Number(n.size ?? 0n), etag: this.contentEtag(n), content: n };
      case 'symlink': return this.linkEntry(dir, n, { name, path, snapshot, node: n, mtime });
      default:
        return { name, path, snapshot, node: n, mtime, kind: 'other', size: 0, etag: quote(`o-${shortHash(n.type)}`), inline: Buffer.alloc(0) };
    }
  }

  private async linkEntry(dir: Entry, n: Node, base: Pick<Entry, 'name' | 'path' | 'snapshot' | 'node' | 'mtime'>): Promise<Entry> {
    const target = n.linktarget ?? Buffer.alloc(0);
    const r = dir.snapshot ? await this.resolveLink(dir.snapshot.tree, dir.treePath ?? [], target).catch(() => null) : null;
    if (r && r.node.type === 'file') return { ...base, kind: 'file', size: Number(r.node.size ?? 0n), etag: this.contentEtag(r.node), content: r.node };
    return { ...base, kind: 'symlink', size: target.length, etag: quote(`l-${shortHash(target.toString('latin1'))}`), inline: target };
  }

  /** the entries of a directory (names unique: a hostile tree's second node of a name is left out) */
  async list(dir: Entry): Promise<Entry[]> {
    if (dir.kind !== 'dir') throw new Error(`${dir.name} is not a directory`);
    if (dir.virtual) return this.listLayout(dir, dir.virtual);
    if (!dir.tree) return [];
    const t = await this.loadTree(dir.tree);
    const out: Entry[] = [];
    const seen = new Set<string>();
    for (const n of t.nodes) {
      const x = this.nodeEntry(dir, n);
      const e = x instanceof Promise ? await x : x;
      if (seen.has(e.name)) continue;
      seen.add(e.name);
      out.push(e);
    }
    return out;
  }

  private snapshotDirs(dir: Entry, list: readonly SnapshotWithId[]): Entry[] {
    const out: Entry[] = [];
    const seen = new Set<string>();
    for (const s of list) {
      const name = snapshotDirName(s);
      if (seen.has(name)) continue;
      seen.add(name);
      out.push(this.snapshotRoot(name, [...dir.path, name], s));
    }
    const newest = list.at(-1);
    if (newest) out.push(this.snapshotRoot('latest', [...dir.path, 'latest'], newest));
    return out;
  }

  private async listLayout(dir: Entry, v: VirtualDir): Promise<Entry[]> {
    const all = await this.snapshots();
    const newest = (l: readonly SnapshotWithId[]) => mtimeOf(l.at(-1)?.time);
    switch (v.v) {
      case 'root': {
        const t = newest(all);
        return (['snapshots', 'hosts', 'tags', 'ids'] as const).map((n) => this.layoutDir(n, [n], { v: n } as VirtualDir, t));
      }
      case 'snapshots': return this.snapshotDirs(dir, all);
      case 'hosts': case 'tags': {
        const groups = new Map<string, SnapshotWithId[]>();
        for (const s of all) {
          for (const k of v.v === 'hosts' ? [s.hostname ?? ''] : s.tags ?? []) {
            const l = groups.get(k);
            if (l) l.push(s); else groups.set(k, [s]);
          }
        }
        return [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, l]) => {
          const name = escapeName(k);
          return this.layoutDir(name, [...dir.path, name], v.v === 'hosts' ? { v: 'host', host: k } : { v: 'tag', tag: k }, newest(l));
        });
      }
      case 'host': return this.snapshotDirs(dir, all.filter((s) => (s.hostname ?? '') === v.host));
      case 'tag': return this.snapshotDirs(dir, all.filter((s) => s.tags?.includes(v.tag)));
      case 'ids': {
        const out: Entry[] = [];
        const seen = new Set<string>();
        for (const s of all) {
          const name = s.id.slice(0, 8);
          if (seen.has(name)) continue;
          seen.add(name);
          out.push(this.snapshotRoot(name, [...dir.path, name], s));
        }
        return out;
      }
    }
  }

  /** the root directory */
  async root(): Promise<Entry> {
    const all = await this.snapshots();
    return this.layoutDir('', [], { v: 'root' }, mtimeOf(all.at(-1)?.time));
  }

  /**
   * The entry at a path of escaped names (URL segments, percent-decoded), or null when there is none.
   * Names are matched exactly against the escaped names a listing gives; "." and ".." are no names
   * (splitUrlPath refuses them before this), so a path can only go down.
   */
  async stat(segments: readonly string[]): Promise<Entry | null> {
    let cur = await this.root();
    for (const seg of segments) {
      if (cur.kind !== 'dir') return null;
      const next = await this.child(cur, seg);
      if (!next) return null;
      cur = next;
    }
    return cur;
  }

  /** one step down: layout directories by listing (small), trees by the name's bytes */
  async child(dir: Entry, seg: string): Promise<Entry | null> {
    if (dir.virtual) return (await this.listLayout(dir, dir.virtual)).find((e) => e.name === seg) ?? null;
    if (!dir.tree) return null;
    const raw = unescapeName(seg);
    if (!raw) return null;
    const t = await this.loadTree(dir.tree);
    const n = t.byName.get(raw.toString('latin1'));
    return n ? this.nodeEntry(dir, n) : null;
  }

  /** the bytes of a file entry (kind file, symlink or other), by range */
  open(e: Entry): ContentSource {
    if (e.kind === 'dir') throw new Error(`${e.name} is a directory`);
    if (e.inline) {
      const b = e.inline;
      return { size: b.length, async *read(start: number, end: number) { if (start < Math.min(end, b.length)) yield b.subarray(start, Math.min(end, b.length)); } };
    }
    const c = e.content!;
    return this.reader.open(c.content ?? [], e.size);
  }
}
