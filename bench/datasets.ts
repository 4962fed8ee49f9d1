/**
 * Dataset makers for the bench's real and scale cases (bench.ts keeps the generated one), and the
 * deterministic text they share.
 */
import { existsSync, mkdirSync, openSync, writeSync, closeSync, appendFileSync, readdirSync, lstatSync } from 'node:fs';
import * as path from 'node:path';
import { createCipheriv } from 'node:crypto';

/** xorshift32: deterministic text and sizes, so every run backs up the same tree */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

const WORDS = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they ' +
  'you were her she there been one all we their has would when if so no what up can more out about into them some could ' +
  'backup snapshot repository restore archive photograph mountain fjord winter summer letter invoice document chapter ' +
  'river harbour north light evening morning garden kitchen window station bridge island forest meadow').split(' ');

export function prose(rand: () => number, bytes: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const sentence: string[] = [];
    const len = 6 + Math.floor(rand() * 14);
    for (let i = 0; i < len; i++) sentence.push(WORDS[Math.floor(rand() * WORDS.length)]!);
    const s = `${sentence.join(' ')}.${rand() < 0.15 ? '\n\n' : ' '}`;
    parts.push(s);
    n += s.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

/**
 * What a real or scale case backs up: `paths` relative to `root` (the command's working directory),
 * so both tools store the same paths; `files` and `bytes` count regular files.
 */
export interface FileSet { root: string; paths: string[]; files: number; bytes: number; describe: string }

/** count regular files and their bytes under a path (symbolic links are not followed) */
function tally(p: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const walk = (q: string): void => {
    const st = lstatSync(q);
    if (st.isDirectory()) for (const e of readdirSync(q)) walk(path.join(q, e));
    else if (st.isFile()) { files++; bytes += st.size; }
  };
  walk(p);
  return { files, bytes };
}

/**
 * Real files backed up in place (read only): a fixed list of directories present on a Debian
 * machine with this project installed. On the bench VM (Debian 12) they hold ~1 GB in ~60k files;
 * their content differs between machines, so the totals are reported with the figures.
 */
export function realDirectories(projectRoot: string): string[] {
  const py = readdirSync('/usr/lib').filter((n) => /^python3(\.\d+)?$/.test(n)).sort().map((n) => `/usr/lib/${n}`);
  return ['/usr/include', ...py, '/usr/share', path.join(projectRoot, 'node_modules')];
}

export function realDataset(projectRoot: string): FileSet {
  const dirs = realDirectories(projectRoot).filter((d) => existsSync(d));
  let files = 0;
  let bytes = 0;
  for (const d of dirs) {
    const t = tally(d);
    files += t.files;
    bytes += t.bytes;
  }
  return { root: '/', paths: dirs.map((d) => path.relative('/', d)), files, bytes, describe: `real directories ${dirs.join(' ')}` };
}

export interface ScaleSet extends FileSet { touchable: string[] }

/**
 * `count` small files (0–24 KiB, skewed to the small end: 24 KiB × r², 8 KiB on average) in a tree
 * 6 directories deep (fan-out 4: 4,096 leaf directories), half prose, half random, all from fixed
 * seeds: the same tree on every run and machine. Written synchronously: ~4× faster than awaiting
 * each of 250k writes.
 */
export function scaleDataset(root: string, count: number): ScaleSet {
  const rand = prng(20261202);
  // one corpus of prose; each text file is a slice of it at its own offset, behind a line naming
  // the file, so no two files are equal (each is one blob: nothing deduplicates between files)
  const corpus = prose(prng(99), 4 * 1024 * 1024);
  const key = Buffer.alloc(16, 7);
  const zeros = Buffer.alloc(24 * 1024);
  const iv = Buffer.alloc(16);
  const touchable: string[] = [];
  const perLeaf = Math.ceil(count / 4096);
  let bytes = 0;
  let dir = '';
  for (let i = 0; i < count; i++) {
    if (i % perLeaf === 0) {
      const leaf = i / perLeaf;
      const parts: string[] = [];
      for (let level = 5; level >= 0; level--) parts.push(`d${(leaf >> (2 * level)) & 3}`);
      dir = path.join(root, ...parts);
      mkdirSync(dir, { recursive: true });
    }
    const r = rand();
    const size = Math.floor(24 * 1024 * r * r);
    let data: Buffer;
    const name = path.join(dir, i % 2 === 0 ? `f${i}.txt` : `f${i}.bin`);
    if (i % 2 === 0) {
      const head = Buffer.from(`${path.relative(root, name)}\n`); // not the root: the same bytes wherever it is made
      const off = Math.floor(rand() * (corpus.length - size));
      data = Buffer.concat([head, corpus.subarray(off, off + size)]).subarray(0, size);
    } else {
      // AES-CTR keystream, one counter block per file: random-looking and reproducible
      iv.writeUInt32BE(i, 0);
      data = createCipheriv('aes-128-ctr', key, iv).update(zeros.subarray(0, size));
    }
    const fd = openSync(name, 'w');
    writeSync(fd, data);
    closeSync(fd);
    bytes += size;
    if (i % 100 === 0) touchable.push(name);
  }
  return { root, paths: ['.'], files: count, bytes, touchable, describe: `scale: ${count} files (0–24 KiB, half prose, half random) 6 levels deep` };
}

/** modify 1 % of the files (every 100th): append one byte */
export function touchOnePercent(s: ScaleSet): void {
  for (const f of s.touchable) appendFileSync(f, 'x');
  s.bytes += s.touchable.length;
}
