/**
 * File-tree helpers for interoperability tests.
 *
 *  - makeInteropTree(): builds a nasty, deterministic source tree.
 *  - snapshotTree():    records everything we expect a backup tool to preserve.
 *  - compareTrees():    human-readable differences between two trees.
 *
 * All paths are handled as raw bytes (Buffer) so that non-UTF-8 names survive.
 * Snapshot keys are printable: ASCII 0x20..0x7e is kept, `\` becomes `\\`,
 * every other byte becomes `\xNN` (see pathKey / keyToPath).
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { constants as fsc, promises as fsp, type BigIntStats } from 'node:fs';
import * as path from 'node:path';

// ---------------------------------------------------------------------------
// small utilities

const SLASH = Buffer.from('/');

function b(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** Join path components as bytes. Empty components are skipped. */
export function joinBytes(...parts: (Buffer | string)[]): Buffer {
  const bufs: Buffer[] = [];
  for (const p of parts) {
    const buf = typeof p === 'string' ? b(p) : p;
    if (buf.length === 0) continue;
    if (bufs.length > 0) bufs.push(SLASH);
    bufs.push(buf);
  }
  return Buffer.concat(bufs);
}

/** Printable, reversible encoding of a relative path; the root is ".". */
export function pathKey(rel: Buffer): string {
  if (rel.length === 0) return '.';
  let s = '';
  for (const c of rel) {
    if (c === 0x5c) s += '\\\\';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

/** Inverse of pathKey. */
export function keyToPath(key: string): Buffer {
  if (key === '.') return Buffer.alloc(0);
  const out: number[] = [];
  for (let i = 0; i < key.length; i++) {
    const ch = key[i]!;
    if (ch === '\\') {
      const next = key[i + 1];
      if (next === '\\') {
        out.push(0x5c);
        i += 1;
      } else if (next === 'x') {
        out.push(parseInt(key.slice(i + 2, i + 4), 16));
        i += 3;
      } else {
        throw new Error(`keyToPath: bad escape in ${JSON.stringify(key)}`);
      }
    } else {
      out.push(ch.charCodeAt(0));
    }
  }
  return Buffer.from(out);
}

/** Deterministic pseudo-random bytes (AES-256-CTR keystream keyed by sha256(seed)). */
export function prngStream(seed: string): (len: number) => Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (len: number) => cipher.update(Buffer.alloc(len));
}

export function prngBytes(seed: string, len: number): Buffer {
  return prngStream(seed)(len);
}

const NS_PER_S = 1_000_000_000n;

/** Parse "YYYY-MM-DDTHH:MM:SS[.fffffffff]Z" to nanoseconds since the epoch (exact). */
export function isoToNs(iso: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(iso);
  if (!m) throw new Error(`isoToNs: unsupported timestamp ${iso}`);
  const ms = Date.parse(m[1]! + 'Z');
  if (!Number.isFinite(ms)) throw new Error(`isoToNs: bad timestamp ${iso}`);
  const frac = BigInt((m[2] ?? '').padEnd(9, '0'));
  return BigInt(ms / 1000) * NS_PER_S + frac;
}

/** Format nanoseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (UTC). */
export function nsToIso(ns: bigint): string {
  let sec = ns / NS_PER_S;
  let frac = ns % NS_PER_S;
  if (frac < 0n) {
    frac += NS_PER_S;
    sec -= 1n;
  }
  const base = new Date(Number(sec) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${base}.${frac.toString().padStart(9, '0')}Z`;
}

/** Bash ANSI-C quoted word for arbitrary path bytes. */
function shellQuoteBytes(p: Buffer): string {
  let s = "$'";
  for (const c of p) {
    const ch = String.fromCharCode(c);
    if (/[A-Za-z0-9_.\/-]/.test(ch)) s += ch;
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s + "'";
}

function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    if (child.stdin) {
      child.stdin.on('error', () => {
        // the child may exit without reading its input (EPIPE); its exit code tells
      });
      child.stdin.end(opts.input);
    }
  });
}

async function runChecked(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): Promise<void> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
}

export interface TimeSpec {
  /** Absolute path (bytes or string). */
  path: Buffer | string;
  mtimeNs: bigint;
  /** Defaults to mtimeNs. */
  atimeNs?: bigint;
}

/**
 * Set atime/mtime with nanosecond precision, without following symlinks
 * (fs.utimes/lutimes take doubles and lose nanoseconds). Runs one bash script
 * with GNU `touch -h`; entries are applied in the given order.
 */
export async function setTimes(specs: TimeSpec[]): Promise<void> {
  if (specs.length === 0) return;
  const lines = ['set -e'];
  for (const s of specs) {
    const p = shellQuoteBytes(typeof s.path === 'string' ? b(s.path) : s.path);
    const atime = s.atimeNs ?? s.mtimeNs;
    if (atime === s.mtimeNs) {
      lines.push(`touch -h -d '${nsToIso(s.mtimeNs)}' -- ${p}`);
    } else {
      lines.push(`touch -h -m -d '${nsToIso(s.mtimeNs)}' -- ${p}`);
      lines.push(`touch -h -a -d '${nsToIso(atime)}' -- ${p}`);
    }
  }
  await runChecked('bash', ['-s'], { input: lines.join('\n') + '\n' });
}

// ---------------------------------------------------------------------------
// tree builder

/** Explicit timestamps set by makeInteropTree, keyed by pathKey of the relative path. */
export const INTEROP_MTIMES: Readonly<Record<string, bigint>> = {
  'times/y1980': isoToNs('1980-01-01T00:00:00.123456789Z'),
  'times/y2100': isoToNs('2100-06-07T12:34:56.987654321Z'),
  'times/y1969': isoToNs('1969-07-20T20:17:40.123456789Z'),
  // "random" nanoseconds, derived from the PRNG so runs are repeatable
  'times/random-ns': isoToNs('2024-02-29T23:59:59Z') + (prngBytes('random-ns', 8).readBigUInt64BE() % NS_PER_S),
  'times/dir-1969': isoToNs('1969-12-31T23:59:59.999999999Z'),
  'times/link-2100': isoToNs('2100-06-07T00:00:00.000000001Z'),
  'times/fifo-1980': isoToNs('1980-01-01T00:00:00.000000001Z'),
};

/** Names exercised under names/ (as raw bytes). */
export const INTEROP_NAMES: readonly Buffer[] = [
  b('quo"te'),
  b('back\\slash'),
  b('new\nline'),
  b('tab\tname'),
  Buffer.concat([b('bad-'), Buffer.from([0xff]), b('-utf8')]),
  b('<html>&'),
  b('u\u0308mlaut'), // NFD
  b('\u00fcmlaut'), // NFC
  b('emoji-\u{1F980}\u{1F389}'),
  b('nb\u00a0sp'),
  b('-leading-dash'),
  b('L'.repeat(250)),
  b('\u00e9'.repeat(125)), // 250 bytes, 2-byte chars
  b(' leading and trailing space '),
];

export const INTEROP_DEEP_LEVELS = 40;

export interface InteropTreeOptions {
  /** Size of the pseudo-random file (default 20). */
  bigFileMiB?: number;
}

const MiB = 1024 * 1024;

/**
 * Build the interop source tree under `root` (created if missing; should be empty).
 * Deterministic except for ctimes/inode numbers. Devices need root; when not root
 * they are skipped with a console note.
 */
export async function makeInteropTree(root: string, opts: InteropTreeOptions = {}): Promise<void> {
  const bigFileMiB = opts.bigFileMiB ?? 20;
  const R = b(path.resolve(root));
  const P = (...parts: (Buffer | string)[]) => joinBytes(R, ...parts);
  await fsp.mkdir(R, { recursive: true });
  const mkdir = (...parts: (Buffer | string)[]) => fsp.mkdir(P(...parts), { recursive: true });
  const write = (rel: Buffer | string, data: Buffer | string) => fsp.writeFile(P(rel), data);

  // -- regular files of various sizes
  await mkdir('files');
  await write('files/empty', '');
  await write('files/one', 'x');
  {
    const lines: string[] = [];
    let len = 0;
    for (let i = 0; len < 100 * 1024; i++) {
      const line = `line ${String(i).padStart(5, '0')}: the quick brown fox jumps over the lazy dog \u00e6\u00f8\u00e5\n`;
      lines.push(line);
      len += Buffer.byteLength(line);
    }
    await write('files/text-100k.txt', Buffer.from(lines.join('')).subarray(0, 100 * 1024));
  }
  {
    const next = prngStream('big-random');
    const fh = await fsp.open(P('files/random.bin'), 'w');
    try {
      for (let i = 0; i < bigFileMiB; i++) await fh.write(next(MiB));
    } finally {
      await fh.close();
    }
  }
  {
    // 64 MiB sparse file with a few written regions
    const p = P('files/sparse-64m.img');
    await write('files/sparse-64m.img', '');
    await fsp.truncate(p, 64 * MiB);
    const fh = await fsp.open(p, 'r+');
    try {
      const regions: [number, Buffer][] = [
        [0, b('HEAD')],
        [MiB + 123, prngBytes('sparse-1', 4096)],
        [32 * MiB, prngBytes('sparse-2', 65536)],
        [64 * MiB - 4, b('TAIL')],
      ];
      for (const [pos, data] of regions) await fh.write(data, 0, data.length, pos);
    } finally {
      await fh.close();
    }
  }
  {
    // dedup-heavy: the same 1 MiB block 10 times
    const block = prngBytes('dedup-block', MiB);
    const fh = await fsp.open(P('files/dedup-10m.bin'), 'w');
    try {
      for (let i = 0; i < 10; i++) await fh.write(block);
    } finally {
      await fh.close();
    }
  }
  {
    // two identical (non-hard-linked) 3 MiB files in different directories
    const data = prngBytes('copies-3m', 3 * MiB);
    await mkdir('copies/a');
    await mkdir('copies/b/nested');
    await write('copies/a/three-m.bin', data);
    await write('copies/b/nested/three-m.bin', data);
  }

  // -- awkward names
  await mkdir('names');
  for (const name of INTEROP_NAMES) await write(joinBytes(b('names'), name), Buffer.concat([b('name: '), name, b('\n')]));
  await mkdir(joinBytes(b('names'), b('dir\nwith newline'), Buffer.from([0xfe])));
  await write(joinBytes(b('names'), b('dir\nwith newline'), Buffer.from([0xfe]), b('inner')), 'inner\n');

  // -- 40-deep directory chain
  {
    const parts: string[] = ['deep'];
    for (let i = 1; i <= INTEROP_DEEP_LEVELS; i++) parts.push(`d${String(i).padStart(2, '0')}`);
    await mkdir(...parts);
    await write(joinBytes(...parts.map(b), b('leaf.txt')), 'bottom\n');
  }

  // -- symlinks
  await mkdir('links');
  await fsp.symlink('../files/one', P('links/relative'));
  await fsp.symlink(path.join(path.resolve(root), 'files/one'), P('links/absolute'));
  await fsp.symlink('does/not/exist', P('links/dangling'));
  await fsp.symlink(Buffer.concat([b('target-'), Buffer.from([0xfe, 0xff]), b('-bytes')]), P('links/non-utf8-target'));
  await fsp.symlink('../names', P('links/to-dir'));

  // -- hard links: a pair and a triple (one member in a subdirectory)
  await mkdir('hardlinks/sub');
  await write('hardlinks/pair-a', 'pair\n');
  await fsp.link(P('hardlinks/pair-a'), P('hardlinks/pair-b'));
  await write('hardlinks/triple-1', prngBytes('triple', 5000));
  await fsp.link(P('hardlinks/triple-1'), P('hardlinks/triple-2'));
  await fsp.link(P('hardlinks/triple-1'), P('hardlinks/sub/triple-3'));

  // -- special files
  await mkdir('special');
  await runChecked('mkfifo', [path.join(path.resolve(root), 'special/fifo')]);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) {
    await runChecked('mknod', [path.join(path.resolve(root), 'special/chardev'), 'c', '1', '3']);
    await runChecked('mknod', [path.join(path.resolve(root), 'special/blockdev'), 'b', '7', '0']);
  } else {
    console.warn('[makeInteropTree] not running as root: skipping char/block devices and foreign ownership');
  }

  // -- modes (chmod after writing: writes would clear setuid)
  await mkdir('modes/setgid-dir');
  await mkdir('modes/sticky-dir');
  await write('modes/setgid-dir/child', 'child of setgid dir\n');
  await write('modes/sticky-dir/child', 'child of sticky dir\n');
  await write('modes/setuid', '#!/bin/sh\necho setuid\n');
  await write('modes/private-0600', 'secret\n');
  await write('modes/readonly-0444', 'read only\n');
  await write('modes/exec-0750', '#!/bin/sh\n');
  await fsp.chmod(P('modes/setuid'), 0o4755);
  await fsp.chmod(P('modes/setgid-dir'), 0o2775);
  await fsp.chmod(P('modes/sticky-dir'), 0o1777);
  await fsp.chmod(P('modes/private-0600'), 0o600);
  await fsp.chmod(P('modes/readonly-0444'), 0o444);
  await fsp.chmod(P('modes/exec-0750'), 0o750);
  await fsp.chmod(P('modes/setgid-dir/child'), 0o640);

  // -- ownership (root only)
  if (isRoot) {
    await mkdir('owners');
    await write('owners/uid1234-gid5678', 'owned\n');
    await fsp.chown(P('owners/uid1234-gid5678'), 1234, 5678);
    await fsp.symlink('uid1234-gid5678', P('owners/link-uid4321'));
    await fsp.lchown(P('owners/link-uid4321'), 4321, 8765);
    await fsp.mkdir(P('owners/dir-uid1000'));
    await fsp.chown(P('owners/dir-uid1000'), 1000, 1000);
  }

  // -- timestamps
  await mkdir('times/dir-1969');
  await write('times/y1980', '1980\n');
  await write('times/y2100', '2100\n');
  await write('times/y1969', '1969\n');
  await write('times/random-ns', 'random ns\n');
  await write('times/dir-1969/inside', 'inside\n');
  await fsp.symlink('y2100', P('times/link-2100'));
  await runChecked('mkfifo', [path.join(path.resolve(root), 'times/fifo-1980')]);

  // Every entry gets a deterministic timestamp (atime = mtime): explicit ones from
  // INTEROP_MTIMES, others derived from the path. Non-directories first, then
  // directories deepest first, the root last.
  const all = await walk(R);
  const base = isoToNs('2001-09-09T01:46:40Z');
  const timeFor = (rel: Buffer): bigint => {
    const explicit = INTEROP_MTIMES[pathKey(rel)];
    if (explicit !== undefined) return explicit;
    const h = createHash('sha256').update('mtime:').update(rel).digest();
    return base + (h.readBigUInt64BE(0) % (20n * 365n * 86400n * NS_PER_S));
  };
  const depth = (rel: Buffer) => (rel.length === 0 ? 0 : rel.toString('latin1').split('/').length);
  const nonDirs = all.filter((e) => !e.st.isDirectory());
  const dirs = all.filter((e) => e.st.isDirectory()).sort((x, y) => depth(y.rel) - depth(x.rel) || Buffer.compare(x.rel, y.rel));
  await setTimes([...nonDirs, ...dirs].map((e) => ({ path: joinBytes(R, e.rel), mtimeNs: timeFor(e.rel) })));
}

// ---------------------------------------------------------------------------
// snapshot

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket' | 'unknown';

export interface Entry {
  /** Relative path bytes (empty for the root). */
  path: Buffer;
  type: EntryType;
  /** Permission + setuid/setgid/sticky bits (mode & 0o7777). */
  mode: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  /** Content size for files, target length for symlinks, 0 otherwise. */
  size: number;
  /** Hex sha256 of the content (files only). */
  sha256?: string;
  /** Raw target bytes (symlinks only). */
  linkTarget?: Buffer;
  /** Device number (char/block devices only). */
  rdev?: bigint;
  /** Hard-link group (entries sharing dev+ino within the tree), numbered from 1 in sorted order; null if not hard linked. */
  linkGroup: number | null;
  uid: number;
  gid: number;
}

function typeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isSocket()) return 'socket';
  return 'unknown';
}

async function walk(rootB: Buffer): Promise<{ rel: Buffer; st: BigIntStats }[]> {
  const out: { rel: Buffer; st: BigIntStats }[] = [];
  const visit = async (rel: Buffer): Promise<void> => {
    const abs = rel.length === 0 ? rootB : joinBytes(rootB, rel);
    const st = await fsp.lstat(abs, { bigint: true });
    out.push({ rel, st });
    if (st.isDirectory()) {
      const names = await fsp.readdir(abs, { encoding: 'buffer' });
      names.sort(Buffer.compare);
      for (const name of names) await visit(rel.length === 0 ? name : joinBytes(rel, name));
    }
  };
  await visit(Buffer.alloc(0));
  out.sort((x, y) => Buffer.compare(x.rel, y.rel));
  return out;
}

let noAtimeFlag: number = fsc.O_NOATIME ?? 0;

async function hashFile(abs: Buffer): Promise<string> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(abs, fsc.O_RDONLY | noAtimeFlag);
  } catch (e) {
    if (noAtimeFlag === 0 || (e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    noAtimeFlag = 0; // O_NOATIME needs ownership or CAP_FOWNER
    fh = await fsp.open(abs, fsc.O_RDONLY);
  }
  try {
    const h = createHash('sha256');
    const buf = Buffer.alloc(MiB);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}

/**
 * Walk `root` (lstat, never following symlinks) and record every entry, the root
 * itself included (key "."). The map is ordered by raw path bytes.
 * Files are read with O_NOATIME where permitted, so snapshotting does not disturb file atimes.
 */
export async function snapshotTree(root: string): Promise<Map<string, Entry>> {
  const R = b(path.resolve(root));
  const items = await walk(R);
  const inodeCount = new Map<string, number>();
  for (const { st } of items) {
    if (st.isDirectory()) continue;
    const id = `${st.dev}:${st.ino}`;
    inodeCount.set(id, (inodeCount.get(id) ?? 0) + 1);
  }
  const groupOf = new Map<string, number>();
  const result = new Map<string, Entry>();
  for (const { rel, st } of items) {
    const type = typeOf(st);
    const abs = rel.length === 0 ? R : joinBytes(R, rel);
    let linkGroup: number | null = null;
    if (type !== 'dir') {
      const id = `${st.dev}:${st.ino}`;
      if ((inodeCount.get(id) ?? 0) > 1) {
        if (!groupOf.has(id)) groupOf.set(id, groupOf.size + 1);
        linkGroup = groupOf.get(id)!;
      }
    }
    const entry: Entry = {
      path: rel,
      type,
      mode: Number(st.mode & 0o7777n),
      mtimeNs: st.mtimeNs,
      atimeNs: st.atimeNs,
      size: type === 'file' || type === 'symlink' ? Number(st.size) : 0,
      linkGroup,
      uid: Number(st.uid),
      gid: Number(st.gid),
    };
    if (type === 'file') entry.sha256 = await hashFile(abs);
    if (type === 'symlink') entry.linkTarget = await fsp.readlink(abs, { encoding: 'buffer' });
    if (type === 'char' || type === 'block') entry.rdev = st.rdev;
    result.set(pathKey(rel), entry);
  }
  return result;
}

// ---------------------------------------------------------------------------
// comparison

export type CompareIgnore =
  /** directory mtimes */
  | 'dirMtime'
  /** uid and gid */
  | 'uid'
  /** atimes of all entries (reading a tree, e.g. by a backup tool, changes them) */
  | 'atime'
  /** all metadata of the top-level directory itself (its contents are still compared) */
  | 'root';

export interface CompareOptions {
  ignore?: CompareIgnore[];
}

function fmtMode(m: number): string {
  return m.toString(8).padStart(4, '0');
}

function fmtTime(ns: bigint): string {
  return `${nsToIso(ns)} (${ns}ns)`;
}

function fmtTarget(t: Buffer | undefined): string {
  return t === undefined ? '<none>' : `"${pathKey(t)}"`;
}

function groupMembers(snap: Map<string, Entry>): Map<number, string[]> {
  const m = new Map<number, string[]>();
  for (const [k, e] of snap) {
    if (e.linkGroup === null) continue;
    const arr = m.get(e.linkGroup) ?? [];
    arr.push(k);
    m.set(e.linkGroup, arr);
  }
  return m;
}

/**
 * Compare two snapshots. Sparse files compare by size and content only
 * (allocation is not looked at). Hard links compare by group membership,
 * not by group number. Returns one line per difference; empty means identical.
 */
export function compareSnapshots(a: Map<string, Entry>, b: Map<string, Entry>, opts: CompareOptions = {}): string[] {
  const ignore = new Set(opts.ignore ?? []);
  const diffs: string[] = [];
  const groupsA = groupMembers(a);
  const groupsB = groupMembers(b);
  const membersOf = (groups: Map<number, string[]>, key: string, e: Entry) =>
    e.linkGroup === null ? [key] : groups.get(e.linkGroup)!;

  const keys = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => Buffer.compare(keyToPath(x), keyToPath(y)));
  for (const key of keys) {
    const ea = a.get(key);
    const eb = b.get(key);
    if (!ea || !eb) {
      const e = (ea ?? eb)!;
      diffs.push(`${key}: only in ${ea ? 'a' : 'b'} (${e.type})`);
      continue;
    }
    if (ea.type !== eb.type) {
      diffs.push(`${key}: type ${ea.type} != ${eb.type}`);
      continue;
    }
    if (key === '.' && ignore.has('root')) continue;
    if (ea.mode !== eb.mode) diffs.push(`${key}: mode ${fmtMode(ea.mode)} != ${fmtMode(eb.mode)}`);
    if (!ignore.has('uid') && (ea.uid !== eb.uid || ea.gid !== eb.gid)) {
      diffs.push(`${key}: owner ${ea.uid}:${ea.gid} != ${eb.uid}:${eb.gid}`);
    }
    if (!(ea.type === 'dir' && ignore.has('dirMtime')) && ea.mtimeNs !== eb.mtimeNs) {
      diffs.push(`${key}: mtime ${fmtTime(ea.mtimeNs)} != ${fmtTime(eb.mtimeNs)}`);
    }
    if (!ignore.has('atime') && ea.atimeNs !== eb.atimeNs) {
      diffs.push(`${key}: atime ${fmtTime(ea.atimeNs)} != ${fmtTime(eb.atimeNs)}`);
    }
    if (ea.type === 'file') {
      if (ea.size !== eb.size) diffs.push(`${key}: size ${ea.size} != ${eb.size}`);
      else if (ea.sha256 !== eb.sha256) diffs.push(`${key}: content sha256 ${ea.sha256} != ${eb.sha256}`);
    }
    if (ea.type === 'symlink' && !Buffer.from(ea.linkTarget ?? []).equals(Buffer.from(eb.linkTarget ?? []))) {
      diffs.push(`${key}: link target ${fmtTarget(ea.linkTarget)} != ${fmtTarget(eb.linkTarget)}`);
    }
    if ((ea.type === 'char' || ea.type === 'block') && ea.rdev !== eb.rdev) {
      diffs.push(`${key}: rdev ${ea.rdev} != ${eb.rdev}`);
    }
    if (ea.type !== 'dir') {
      const ma = membersOf(groupsA, key, ea).join(', ');
      const mb = membersOf(groupsB, key, eb).join(', ');
      if (ma !== mb) diffs.push(`${key}: hard links {${ma}} != {${mb}}`);
    }
  }
  return diffs;
}

/** Snapshot both trees and compare them (see compareSnapshots). */
export async function compareTrees(a: string, b: string, opts: CompareOptions = {}): Promise<string[]> {
  const [sa, sb] = [await snapshotTree(a), await snapshotTree(b)];
  return compareSnapshots(sa, sb, opts);
}
