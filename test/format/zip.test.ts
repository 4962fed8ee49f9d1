/**
 * The streaming ZIP writer against readers nobody here wrote: Info-ZIP's `unzip -t` / `unzip -x`
 * and Python's zipfile (which reads the central directory, ZIP64 records included). Cases: files,
 * directories, UTF-8 names, a symlink (recreated as a symlink by unzip), an empty file, more than
 * 65,535 entries (ZIP64 end records), and a > 4 GiB entry written into a sparse file (ZIP64 sizes).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fsp, openSync, closeSync, writeSync, ftruncateSync } from 'node:fs';
import * as path from 'node:path';
import { ZipWriter } from '../../src/format/zip.js';
import { cleanupTmpDirs, requireInterop, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

const have = (cmd: string, arg = '--version') => spawnSync(cmd, [arg]).error === undefined;
const HAVE_UNZIP = have('unzip', '-v');
const HAVE_PY = have('python3');
if ((!HAVE_UNZIP || !HAVE_PY) && requireInterop()) throw new Error('unzip and python3 are required (JBACKUP_REQUIRE_INTEROP=1)');
if (!HAVE_UNZIP || !HAVE_PY) console.warn('[interop] skipping zip reader checks: unzip or python3 missing');

/** Python's zipfile view: per entry name, size, CRC check (testzip), mode, sha256 of small contents */
const PY = `
import sys, zipfile, json, hashlib, stat
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip() if sys.argv[2] == 'test' else None
out = []
for i in z.infolist():
    e = {'name': i.filename, 'size': i.file_size, 'mode': i.external_attr >> 16, 'utf8': bool(i.flag_bits & 0x800), 'dt': list(i.date_time)}
    if i.file_size < 1 << 23:
        e['sha'] = hashlib.sha256(z.read(i)).hexdigest()
    out.append(e)
print(json.dumps({'bad': bad, 'count': len(out), 'entries': out[:50]}))
`;

interface PyView { bad: string | null; count: number; entries: { name: string; size: number; mode: number; utf8: boolean; sha?: string; dt: number[] }[] }

function pyRead(file: string, test = true): PyView {
  const r = spawnSync('python3', ['-c', PY, file, test ? 'test' : 'list'], { maxBuffer: 64 << 20 });
  expect(r.status, r.stderr.toString()).toBe(0);
  return JSON.parse(r.stdout.toString()) as PyView;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const ZEROS = Buffer.alloc(8 << 20);
const isZero = (b: Buffer) => (b.length <= ZEROS.length ? b.equals(ZEROS.subarray(0, b.length)) : b.every((c) => c === 0));

/** a sink into a file; all-zero chunks are skipped (left as holes) so a 4 GiB entry costs no disk */
function fileSink(file: string): { sink: (b: Buffer) => Promise<void>; close: () => void } {
  const fd = openSync(file, 'w');
  let pos = 0;
  return {
    sink: async (b) => {
      if (!isZero(b)) writeSync(fd, b, 0, b.length, pos);
      pos += b.length;
    },
    close: () => { ftruncateSync(fd, pos); closeSync(fd); },
  };
}

describe.runIf(HAVE_UNZIP && HAVE_PY)('ZipWriter', () => {
  it('files, directories, UTF-8 names, a symlink and an empty file read back with unzip and Python', async () => {
    const dir = await tmpDir('zip-basic');
    const file = path.join(dir, 'a.zip');
    const { sink, close } = fileSink(file);
    const z = new ZipWriter(sink);
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const mtime = Date.UTC(2024, 4, 17, 10, 20, 30) / 1000;
    await z.directory('d', { mtime, perm: 0o750 });
    await z.file('d/hello.txt', 6, { mtime, perm: 0o640 }, async (w) => { await w(Buffer.from('hel')); await w(Buffer.from('lo\n')); });
    await z.file('d/big.bin', big.length, { mtime, perm: 0o644 }, async (w) => { for (let o = 0; o < big.length; o += 65536) await w(big.subarray(o, o + 65536)); });
    await z.file('d/empty', 0, { mtime, perm: 0o600 }, async () => {});
    await z.directory('d/Ünïcødé 日本', { mtime, perm: 0o755 });
    await z.file('d/Ünïcødé 日本/photo ☃.jpg', 4, { mtime, perm: 0o644 }, (w) => w(Buffer.from([0xff, 0xd8, 0xff, 0xe0])));
    await z.symlink('d/link', Buffer.from('hello.txt'), { mtime, perm: 0o777 });
    await z.finish();
    close();

    const t = spawnSync('unzip', ['-t', file]);
    expect(t.status, t.stdout.toString() + t.stderr.toString()).toBe(0);
    expect(t.stdout.toString()).toContain('No errors detected');

    const v = pyRead(file);
    expect(v.bad).toBeNull();
    const by = new Map(v.entries.map((e) => [e.name, e]));
    expect([...by.keys()]).toEqual(['d/', 'd/hello.txt', 'd/big.bin', 'd/empty', 'd/Ünïcødé 日本/', 'd/Ünïcødé 日本/photo ☃.jpg', 'd/link']);
    expect(v.entries.every((e) => e.utf8)).toBe(true);
    expect(by.get('d/big.bin')!.sha).toBe(sha(big));
    expect(by.get('d/hello.txt')!.mode).toBe(0o100640);
    expect(by.get('d/')!.mode).toBe(0o40750);
    expect(by.get('d/link')!.mode).toBe(0o120777);
    expect(by.get('d/empty')!.size).toBe(0);

    // unzip recreates the tree: contents, the symlink as a symlink, mtime from the UT field
    const out = path.join(dir, 'x');
    const x = spawnSync('unzip', ['-q', file, '-d', out]);
    expect(x.status, x.stderr.toString()).toBe(0);
    expect((await fsp.readFile(path.join(out, 'd/big.bin'))).equals(big)).toBe(true);
    expect(await fsp.readFile(path.join(out, 'd/hello.txt'), 'utf8')).toBe('hello\n');
    expect(await fsp.readlink(path.join(out, 'd/link'))).toBe('hello.txt');
    expect(await fsp.readFile(path.join(out, 'd/Ünïcødé 日本/photo ☃.jpg'))).toEqual(Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
    expect((await fsp.stat(path.join(out, 'd/hello.txt'))).mtimeMs).toBe(mtime * 1000);
  });

  it('a declared size that the body does not meet is an error', async () => {
    const z = new ZipWriter(async () => {});
    await expect(z.file('x', 5, { mtime: 0, perm: 0o644 }, (w) => w(Buffer.from('abc')))).rejects.toThrow(/3 bytes written, 5 declared/);
  });

  it('more than 65,535 entries: ZIP64 end records, every entry listed', async () => {
    const dir = await tmpDir('zip-many');
    const file = path.join(dir, 'many.zip');
    const { sink, close } = fileSink(file);
    const z = new ZipWriter(sink);
    const n = 70_000;
    for (let i = 0; i < n; i++) await z.file(`f/${i}`, 1, { mtime: 1.7e9, perm: 0o644 }, (w) => w(Buffer.from([i & 0xff | 1])));
    await z.finish();
    close();
    const v = pyRead(file);
    expect(v.bad).toBeNull();
    expect(v.count).toBe(n);
    const t = spawnSync('unzip', ['-tq', file], { maxBuffer: 64 << 20 });
    expect(t.status, t.stdout.toString().slice(0, 2000)).toBe(0);
  });

  it('an entry over 4 GiB: ZIP64 sizes and offsets (sparse file, zeros not written to disk)', async () => {
    const dir = await tmpDir('zip-large');
    const file = path.join(dir, 'large.zip');
    const { sink, close } = fileSink(file);
    const z = new ZipWriter(sink);
    const size = 2 ** 32 + 3;
    const zero = Buffer.alloc(8 << 20);
    await z.file('big/zeros.bin', size, { mtime: 1.7e9, perm: 0o644 }, async (w) => {
      let left = size - 3;
      while (left > 0) { const k = Math.min(left, zero.length); await w(zero.subarray(0, k)); left -= k; }
      await w(Buffer.from('end'));
    });
    // an entry after it has a local header offset past 4 GiB
    await z.file('big/after.txt', 6, { mtime: 1.7e9, perm: 0o644 }, (w) => w(Buffer.from('after\n')));
    await z.finish();
    close();
    const v = pyRead(file, false);
    expect(v.entries.map((e) => [e.name, e.size])).toEqual([['big/zeros.bin', size], ['big/after.txt', 6]]);
    expect(v.entries[1]!.sha).toBe(sha(Buffer.from('after\n')));
    // the CRC of the whole 4 GiB entry: unzip reads it back (holes read as zeros)
    const t = spawnSync('unzip', ['-t', file], { maxBuffer: 1 << 20 });
    expect(t.status, t.stdout.toString() + t.stderr.toString()).toBe(0);
    expect(t.stdout.toString()).toContain('No errors detected');
  }, 300_000);
});
