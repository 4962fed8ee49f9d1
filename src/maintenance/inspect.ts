/** Read-only inspection: find, diff, stats, and tree lookup helpers for dump. */
import type { Repository } from '../repo/repository.js';
import { decodeTree, type Node } from '../repo/tree.js';
import type { SnapshotWithId } from '../repo/snapshot.js';
import { globToRegex } from '../archiver/exclude.js';
import { plaintextLength } from '../repo/index.js';

/** every node below a tree, depth first; `names`: the raw name bytes from the root (the path's exact bytes) */
export async function* walkSnapshot(repo: Repository, treeId: string, prefix = '', parents: readonly Buffer[] = []): AsyncGenerator<{ path: string; node: Node; names: Buffer[] }> {
  for (const n of decodeTree(await repo.loadBlob('tree', treeId), treeId)) {
    const p = `${prefix}/${n.name.toString()}`;
    const names = [...parents, n.name];
    yield { path: p, node: n, names };
    if (n.type === 'dir' && n.subtree) yield* walkSnapshot(repo, n.subtree, p, names);
  }
}

/** Find the node at `path` inside a snapshot tree ("/" → a synthetic root dir). */
export async function lookup(repo: Repository, treeId: string, path: string): Promise<Node | null> {
  const comps = path.split('/').filter((c) => c !== '' && c !== '.');
  // a path inside the snapshot never climbs: a hostile tree may hold a node named ".."
  if (comps.includes('..')) return null;
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

export interface FindMatch { snapshot: SnapshotWithId; path: string; node: Node; /** the path's raw name bytes from the root */ names: Buffer[] }

/** restic's filter.Match split: components, a leading "" (absolute) becomes "/" */
function splitPath(p: string): string[] {
  const parts = p.split('/');
  if (parts[0] === '') parts[0] = '/';
  return parts;
}

interface PatternPart { pattern: string; re: RegExp | null }

/** Go's filepath.Clean for a slash path (no trailing slash, no "." or "x/.." components, no "//") */
function cleanPath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else if (c !== '..' || !abs) out.push(c);
  }
  const r = (abs ? '/' : '') + out.join('/');
  return r || (abs ? '/' : '.');
}

function preparePattern(p: string): PatternPart[] {
  return splitPath(cleanPath(p)).map((part) => {
    if (part === '**') return { pattern: '', re: null }; // "" is a double wildcard, as in restic
    return { pattern: part, re: /[\\[\]*?]/.test(part) ? globToRegex(part, '') : null };
  });
}

/**
 * restic 0.14's filter.Match: the pattern's components match a run of the path's components
 * anywhere in it (an absolute pattern: from the root), "**" any number of components. So `find sub`
 * also finds everything below a directory named sub, as restic does.
 */
function matchParts(pattern: PatternPart[], strs: string[]): boolean {
  const dw = pattern.findIndex((x) => x.pattern === ''); // "**", and (as in restic) an empty component
  if (dw >= 0) {
    for (let i = 0; i <= strs.length - pattern.length + 1; i++) {
      const expanded = [...pattern.slice(0, dw), ...Array.from({ length: i }, () => ({ pattern: '*', re: /^[^/]*$/ })), ...pattern.slice(dw + 1)];
      if (matchParts(expanded, strs)) return true;
    }
    return false;
  }
  if (pattern.length === 0) return strs.length === 0;
  if (pattern.length > strs.length) return false;
  let minOffset = 0;
  let maxOffset = strs.length - pattern.length;
  if (pattern[0]!.pattern === '/') maxOffset = 0;
  else if (strs[0] === '/') minOffset = 1;
  outer: for (let off = maxOffset; off >= minOffset; off--) {
    for (let i = pattern.length - 1; i >= 0; i--) {
      const x = pattern[i]!;
      if (!(x.re ? x.re.test(strs[off + i]!) : x.pattern === strs[off + i])) continue outer;
    }
    return true;
  }
  return false;
}

/** restic find: each pattern as restic's filter.Match against the node's path; -i lowercases both */
export async function find(repo: Repository, snaps: SnapshotWithId[], patterns: string[], ignoreCase: boolean, onMatch: (m: FindMatch) => void): Promise<void> {
  const pats = patterns.map((p) => preparePattern(ignoreCase ? p.toLowerCase() : p));
  for (const s of snaps) {
    for await (const { path, node, names } of walkSnapshot(repo, s.tree)) {
      const strs = splitPath(ignoreCase ? path.toLowerCase() : path);
      if (pats.some((p) => matchParts(p, strs))) onMatch({ snapshot: s, path, node, names });
    }
  }
}

/** restic 0.14's DiffStat: what one side of a diff adds (or removes). */
export interface DiffStat { files: number; dirs: number; others: number; data_blobs: number; tree_blobs: number; bytes: number }
export interface DiffStatistics { changed_files: number; added: DiffStat; removed: DiffStat }
export interface DiffOptions {
  /** restic's `--metadata`: also report "U" for nodes whose metadata changed (restic prints these only then) */
  metadata?: boolean;
  /** a tree below the snapshots' roots that cannot be loaded: restic warns and goes on */
  warn?: (message: string) => void;
}

const newDiffStat = (): DiffStat => ({ files: 0, dirs: 0, others: 0, data_blobs: 0, tree_blobs: 0, bytes: 0 });

/** restic 0.14's Node.Equals (every serialised field; extended attributes in order) */
function nodesEqual(x: Node, y: Node): boolean {
  const b = (v: Buffer | undefined) => v ?? Buffer.alloc(0);
  return x.name.equals(y.name) && x.type === y.type && x.mode === y.mode && x.mtime === y.mtime && x.atime === y.atime
    && x.ctime === y.ctime && x.uid === y.uid && x.gid === y.gid && (x.user ?? '') === (y.user ?? '') && (x.group ?? '') === (y.group ?? '')
    && (x.inode ?? 0n) === (y.inode ?? 0n) && (x.deviceId ?? 0n) === (y.deviceId ?? 0n) && (x.size ?? 0n) === (y.size ?? 0n)
    && (x.links ?? 0n) === (y.links ?? 0n) && b(x.linktarget).equals(b(y.linktarget)) && (x.device ?? 0n) === (y.device ?? 0n)
    && sameContent(x, y)
    && JSON.stringify((x.extendedAttributes ?? []).map((a) => [a.name, a.value?.toString('base64')])) === JSON.stringify((y.extendedAttributes ?? []).map((a) => [a.name, a.value?.toString('base64')]))
    && (x.subtree ?? '') === (y.subtree ?? '');
}

const sameContent = (x: Node, y: Node) => (x.content ?? []).join() === (y.content ?? []).join();

/**
 * restic 0.14's `diff`: entries added (+), removed (-), with a changed type (T), files whose content
 * changed (M), and with `metadata` anything else that differs (U); paths of directories end in "/".
 * The statistics count the added and removed nodes, and the blobs only one side references (bytes:
 * plaintext sizes from the index, as restic's LookupBlobSize). `emit` also gets the path's raw name bytes.
 */
export async function diff(repo: Repository, a: string, b: string, o: DiffOptions, emit: (mode: string, path: string, names: readonly Buffer[]) => void): Promise<DiffStatistics> {
  const st: DiffStatistics = { changed_files: 0, added: newDiffStat(), removed: newDiffStat() };
  const before = new Set<string>([`tree:${a}`]);
  const after = new Set<string>([`tree:${b}`]);
  const common = new Set<string>();
  const warn = o.warn ?? (() => {});
  const load = async (id: string) => decodeTree(await repo.loadBlob('tree', id), id);
  const addBlobs = (set: Set<string>, n: Node | undefined) => {
    if (n?.type === 'file') for (const c of n.content ?? []) set.add(`data:${c}`);
    else if (n?.type === 'dir' && n.subtree) set.add(`tree:${n.subtree}`);
  };
  const count = (s: DiffStat, n: Node) => { if (n.type === 'file') s.files++; else if (n.type === 'dir') s.dirs++; else s.others++; };
  const join = (prefix: string, name: Buffer) => (prefix.endsWith('/') ? prefix : `${prefix}/`) + name.toString();
  // a whole subtree added or removed: every node is printed and counted
  const printDir = async (mode: string, s: DiffStat, blobs: Set<string>, prefix: string, raw: readonly Buffer[], id: string): Promise<void> => {
    for (const n of await load(id)) {
      const name = join(prefix, n.name) + (n.type === 'dir' ? '/' : '');
      const names = [...raw, n.name];
      emit(mode, name, names);
      count(s, n);
      addBlobs(blobs, n);
      if (n.type === 'dir' && n.subtree) await printDir(mode, s, blobs, name, names, n.subtree).catch((e: Error) => warn(`error: ${e.message}`));
    }
  };
  // an unchanged subtree: its blobs are in both snapshots
  const collectDir = async (id: string): Promise<void> => {
    for (const n of await load(id)) {
      addBlobs(common, n);
      if (n.type === 'dir' && n.subtree) await collectDir(n.subtree).catch((e: Error) => warn(`error: ${e.message}`));
    }
  };
  const rec = async (ta: string, tb: string, prefix: string, raw: readonly Buffer[]): Promise<void> => {
    const la = await load(ta);
    const lb = await load(tb);
    const ma = new Map(la.map((n) => [n.name.toString('latin1'), n]));
    const mb = new Map(lb.map((n) => [n.name.toString('latin1'), n]));
    const names = [...new Set([...ma.keys(), ...mb.keys()])].sort((x, y) => Buffer.compare(Buffer.from(x, 'latin1'), Buffer.from(y, 'latin1')));
    for (const k of names) {
      const x = ma.get(k);
      const y = mb.get(k);
      addBlobs(before, x);
      addBlobs(after, y);
      const names = [...raw, (y ?? x)!.name];
      if (x && y) {
        let name = join(prefix, y.name);
        let mod = '';
        if (x.type !== y.type) mod += 'T';
        if (y.type === 'dir') name += '/';
        if (x.type === 'file' && y.type === 'file' && !sameContent(x, y)) { mod += 'M'; st.changed_files++; }
        else if (o.metadata && !nodesEqual(x, y)) mod += 'U';
        if (mod) emit(mod, name, names);
        if (x.type === 'dir' && y.type === 'dir' && x.subtree && y.subtree) {
          const p = x.subtree === y.subtree ? collectDir(x.subtree) : rec(x.subtree, y.subtree, name, names);
          await p.catch((e: Error) => warn(`error: ${e.message}`));
        }
      } else if (x) {
        const name = join(prefix, x.name) + (x.type === 'dir' ? '/' : '');
        emit('-', name, names);
        count(st.removed, x);
        if (x.type === 'dir' && x.subtree) await printDir('-', st.removed, before, name, names, x.subtree).catch((e: Error) => warn(`error: ${e.message}`));
      } else if (y) {
        const name = join(prefix, y.name) + (y.type === 'dir' ? '/' : '');
        emit('+', name, names);
        count(st.added, y);
        if (y.type === 'dir' && y.subtree) await printDir('+', st.added, after, name, names, y.subtree).catch((e: Error) => warn(`error: ${e.message}`));
      }
    }
  };
  await rec(a, b, '/', []);
  const tally = (set: Set<string>, other: Set<string>, s: DiffStat) => {
    for (const h of set) {
      if (other.has(h) || common.has(h)) continue;
      const [type, id] = h.split(':') as ['data' | 'tree', string];
      if (type === 'data') s.data_blobs++; else s.tree_blobs++;
      const l = repo.index.get(type, id);
      if (l) s.bytes += plaintextLength(l);
      else warn(`unable to find blob size for ${type} ${id}`);
    }
  };
  tally(before, after, st.removed);
  tally(after, before, st.added);
  return st;
}

/** restic 0.14's stats JSON (key order as restic prints it; total_blob_count only when not zero) */
export interface RepoStats { total_size: number; total_file_count: number; total_blob_count?: number; snapshots_count: number }
export type StatsMode = 'restore-size' | 'files-by-contents' | 'blobs-per-file' | 'raw-data';
export const STATS_MODES: readonly StatsMode[] = ['restore-size', 'files-by-contents', 'blobs-per-file', 'raw-data'];

/**
 * restic 0.14's counting modes. restore-size: every node of every snapshot (directories and links
 * too) counts as a "file", sizes once per inode within a snapshot; files-by-contents: nodes unique
 * by their content list; blobs-per-file: data blob references unique per content list and path;
 * raw-data: the stored (encrypted) size of every blob the snapshots use, no file count.
 */
export async function stats(repo: Repository, snaps: SnapshotWithId[], mode: StatsMode): Promise<RepoStats> {
  let size = 0;
  let files = 0;
  let blobCount = 0;
  if (mode === 'raw-data') {
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
          if (n.type === 'file') for (const b of n.content ?? []) blobs.add(b);
        }
      }
    }
    for (const b of blobs) { const l = repo.index.get('data', b); if (!l) throw new Error(`blob data ${b} not found`); size += l.length; }
    for (const t of trees) { const l = repo.index.get('tree', t); if (!l) throw new Error(`blob tree ${t} not found`); size += l.length; }
    blobCount = blobs.size + trees.size;
  } else {
    const uniqueFiles = new Set<string>();
    const fileBlobs = new Map<string, Set<string>>();
    for (const s of snaps) {
      const inodes = new Set<bigint>();
      for await (const { path, node } of walkSnapshot(repo, s.tree)) {
        if (mode === 'restore-size') {
          files++;
          const ino = node.inode ?? 0n;
          if (ino === 0n || !inodes.has(ino)) { inodes.add(ino); size += Number(node.size ?? 0n); }
          continue;
        }
        const fid = (node.content ?? []).join('');
        if (uniqueFiles.has(fid)) continue;
        uniqueFiles.add(fid);
        if (mode === 'files-by-contents') { size += Number(node.size ?? 0n); files++; continue; }
        for (const b of node.content ?? []) {
          let seen = fileBlobs.get(path);
          if (!seen) { seen = new Set(); fileBlobs.set(path, seen); files++; }
          if (seen.has(b)) continue;
          const l = repo.index.get('data', b);
          if (!l) throw new Error(`blob ${b} not found`);
          size += plaintextLength(l);
          seen.add(b);
          blobCount++;
        }
      }
    }
  }
  const r: RepoStats = { total_size: size, total_file_count: files, snapshots_count: snaps.length };
  return blobCount ? { total_size: size, total_file_count: files, total_blob_count: blobCount, snapshots_count: snaps.length } : r;
}
