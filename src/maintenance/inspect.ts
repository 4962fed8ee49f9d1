/** Read-only inspection: find, diff, stats, and tree lookup helpers for dump. */
import type { Repository } from '../repo/repository.js';
import { decodeTree, type Node } from '../repo/tree.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { globToRegex } from '../archiver/exclude.js';

export async function* walkSnapshot(repo: Repository, treeId: string, prefix = ''): AsyncGenerator<{ path: string; node: Node }> {
  for (const n of decodeTree(await repo.loadBlob('tree', treeId), treeId)) {
    const p = `${prefix}/${n.name.toString()}`;
    yield { path: p, node: n };
    if (n.type === 'dir' && n.subtree) yield* walkSnapshot(repo, n.subtree, p);
  }
}

/** Find the node at `path` inside a snapshot tree ("/" → a synthetic root dir). */
export async function lookup(repo: Repository, treeId: string, path: string): Promise<Node | null> {
  const comps = path.split('/').filter((c) => c !== '' && c !== '.');
  let tree = treeId;
  let node: Node | null = null;
  if (comps.length === 0) return { name: Buffer.from(''), type: 'dir', mode: 0o755 + 2 ** 31, mtime: '', atime: '', ctime: '', uid: 0, gid: 0, subtree: treeId } as Node;
  for (let i = 0; i < comps.length; i++) {
    node = decodeTree(await repo.loadBlob('tree', tree), tree).find((n) => n.name.toString() === comps[i]) ?? null;
    if (!node) return null;
    if (i < comps.length - 1) {
      if (node.type !== 'dir' || !node.subtree) return null;
      tree = node.subtree;
    }
  }
  return node;
}

export interface FindMatch { snapshot: SnapshotWithId; path: string; node: Node }

/** restic find: a pattern matches the base name, or the whole path when it contains a "/" */
export async function find(repo: Repository, snaps: SnapshotWithId[], patterns: string[], ignoreCase: boolean, onMatch: (m: FindMatch) => void): Promise<void> {
  const flags = ignoreCase ? 'i' : '';
  const res = patterns.map((p) => {
    if (!p.includes('/')) return { full: false, re: globToRegex(p, flags) };
    const segs = p.split('/').map((x) => (x === '**' ? '.*' : globToRegex(x, flags).source.slice(1, -1)));
    return { full: true, re: new RegExp(`^${segs.join('/')}$`, flags) };
  });
  for (const s of snaps) {
    for await (const { path, node } of walkSnapshot(repo, s.tree)) {
      const name = path.slice(path.lastIndexOf('/') + 1);
      if (res.some((r) => r.re.test(r.full ? path : name))) onMatch({ snapshot: s, path, node });
    }
  }
}

export interface DiffStats { added: number; removed: number; modified: number; metadata: number }

export async function diff(repo: Repository, a: string, b: string, emit: (mode: '+' | '-' | 'M' | 'U' | 'T', path: string) => void): Promise<DiffStats> {
  const stats: DiffStats = { added: 0, removed: 0, modified: 0, metadata: 0 };
  const rec = async (ta: string | undefined, tb: string | undefined, prefix: string) => {
    if (ta && ta === tb) return;
    const la = ta ? decodeTree(await repo.loadBlob('tree', ta), ta) : [];
    const lb = tb ? decodeTree(await repo.loadBlob('tree', tb), tb) : [];
    const ma = new Map(la.map((n) => [n.name.toString('latin1'), n]));
    const mb = new Map(lb.map((n) => [n.name.toString('latin1'), n]));
    const names = [...new Set([...ma.keys(), ...mb.keys()])].sort((x, y) => Buffer.compare(Buffer.from(x, 'latin1'), Buffer.from(y, 'latin1')));
    for (const k of names) {
      const x = ma.get(k);
      const y = mb.get(k);
      const p = `${prefix}/${Buffer.from(k, 'latin1').toString()}`;
      const dirSuffix = (n: Node) => (n.type === 'dir' ? '/' : '');
      if (!x && y) { emit('+', p + dirSuffix(y)); stats.added++; if (y.type === 'dir') await rec(undefined, y.subtree, p); continue; }
      if (x && !y) { emit('-', p + dirSuffix(x)); stats.removed++; if (x.type === 'dir') await rec(x.subtree, undefined, p); continue; }
      if (!x || !y) continue;
      if (x.type !== y.type) { emit('T', p); stats.modified++; continue; }
      if (x.type === 'dir') { await rec(x.subtree, y.subtree, p); continue; }
      const contentChanged = JSON.stringify(x.content ?? null) !== JSON.stringify(y.content ?? null) || !(x.linktarget ?? Buffer.alloc(0)).equals(y.linktarget ?? Buffer.alloc(0));
      const metaChanged = x.mode !== y.mode || x.mtime !== y.mtime || x.uid !== y.uid || x.gid !== y.gid;
      if (contentChanged) { emit('M', p); stats.modified++; } else if (metaChanged) { emit('U', p); stats.metadata++; }
    }
  };
  await rec(a, b, '');
  return stats;
}

export interface RepoStats { total_size: number; total_file_count: number; total_blob_count?: number; snapshots_count: number }

export async function stats(repo: Repository, snaps: SnapshotWithId[], mode: 'restore-size' | 'raw-data'): Promise<RepoStats> {
  const r: RepoStats = { total_size: 0, total_file_count: 0, snapshots_count: snaps.length };
  if (mode === 'restore-size') {
    for (const s of snaps) {
      const seen = new Set<string>();
      for await (const { path, node } of walkSnapshot(repo, s.tree)) {
        if (seen.has(path)) continue;
        seen.add(path);
        if (node.type === 'file') { r.total_file_count++; r.total_size += Number(node.size ?? 0n); }
      }
    }
    return r;
  }
  const blobs = new Set<string>();
  const trees = new Set<string>();
  for (const s of snaps) {
    const stack = [s.tree];
    while (stack.length) {
      const t = stack.pop()!;
      if (trees.has(t)) continue;
      trees.add(t);
      for (const n of decodeTree(await repo.loadBlob('tree', t), t)) {
        if (n.type === 'dir' && n.subtree) stack.push(n.subtree);
        if (n.type === 'file') { r.total_file_count++; for (const b of n.content ?? []) blobs.add(b); }
      }
    }
  }
  for (const b of blobs) { const l = repo.index.get('data', b); if (l) r.total_size += l.length; }
  for (const t of trees) { const l = repo.index.get('tree', t); if (l) r.total_size += l.length; }
  r.total_blob_count = blobs.size + trees.size;
  return r;
}
