/**
 * The directory scan (native scanDir, or node:fs without the addon) against node:fs itself: the
 * same names in byte order, the same numbers, BigInt stats equal to lstatSync's, errors as Node's.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DirScan } from '../../src/archiver/dirscan.js';
import { hasNative, hasXattr, lsetxattrSync } from '../../src/native/native.js';

const dir = mkdtempSync(path.join(tmpdir(), 'dirscan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function build(): Buffer {
  const d = Buffer.from(path.join(dir, 'src'));
  mkdirSync(d);
  const P = (n: string | Buffer) => Buffer.concat([d, Buffer.from('/'), Buffer.from(n)]);
  writeFileSync(P('b.txt'), 'bee');
  writeFileSync(P('A.txt'), '');
  writeFileSync(P(Buffer.from([0x66, 0xff, 0x2e, 0x62, 0x69, 0x6e])), 'not utf-8 name'); // f\xff.bin
  writeFileSync(P('ünï'), 'x'.repeat(5000));
  linkSync(P('b.txt'), P('hard'));
  mkdirSync(P('sub'));
  symlinkSync('b.txt', P('link'));
  execFileSync('mkfifo', [P('fifo').toString()]);
  return d;
}

describe('DirScan', () => {
  const d = build();
  const scans = [['fs', DirScan.readFs(d)] as const, ...(hasNative ? [['native', DirScan.read(d, true)] as const] : [])];

  it.each(scans)('%s: names sorted by bytes, numbers and BigInt stats as lstatSync gives them', (_kind, scan) => {
    const want = ['A.txt', 'b.txt', 'fifo', 'hard', 'link', 'sub', 'ünï'].map((n) => Buffer.from(n));
    want.push(Buffer.from([0x66, 0xff, 0x2e, 0x62, 0x69, 0x6e]));
    want.sort(Buffer.compare);
    expect(want[3]![1]).toBe(0xff); // after 'fifo': bytes, not code points
    expect(scan.names.map((n) => n.toString('hex'))).toEqual(want.map((n) => n.toString('hex')));
    for (let i = 0; i < scan.length; i++) {
      const full = Buffer.concat([d, Buffer.from('/'), scan.names[i]!]);
      const st = lstatSync(full, { bigint: true });
      expect(scan.ok(i)).toBe(true);
      expect(scan.mode(i)).toBe(Number(st.mode));
      expect(scan.isDir(i)).toBe(st.isDirectory());
      expect(scan.isFile(i)).toBe(st.isFile());
      expect([scan.ino(i), scan.dev(i), scan.size(i), scan.nlink(i), scan.uid(i), scan.gid(i)]).toEqual([st.ino, st.dev, st.size, st.nlink, st.uid, st.gid].map(Number));
      expect(BigInt(scan.mtimeS(i)) * 1_000_000_000n + BigInt(scan.mtimeNsec(i))).toBe(st.mtimeNs);
      expect(BigInt(scan.ctimeS(i)) * 1_000_000_000n + BigInt(scan.ctimeNsec(i))).toBe(st.ctimeNs);
      const e = scan.entryStat(i, () => full);
      if (e instanceof Error) throw e;
      for (const k of ['mode', 'uid', 'gid', 'nlink', 'ino', 'dev', 'rdev', 'size', 'atimeNs', 'mtimeNs', 'ctimeNs'] as const) expect(e[k], k).toBe(st[k]);
      expect([e.isDirectory(), e.isFile(), e.isSymbolicLink(), e.isSocket()]).toEqual([st.isDirectory(), st.isFile(), st.isSymbolicLink(), st.isSocket()]);
    }
  });

  it.runIf(hasNative && hasXattr)('native: the xattr probe says which entries have attributes (never for symlinks)', () => {
    let ok = true;
    try { lsetxattrSync(Buffer.concat([d, Buffer.from('/b.txt')]), 'user.x', Buffer.from('1')); } catch { ok = false; }
    const scan = DirScan.read(d, true);
    const at = (n: string) => scan.xattrSize(scan.names.findIndex((x) => x.equals(Buffer.from(n))));
    if (ok) {
      expect(at('b.txt')).toBeGreaterThan(0);
      expect(at('hard')).toBeGreaterThan(0); // the same inode
    }
    expect(at('A.txt')).toBe(0);
    expect(at('link')).toBe(-1);
    expect(DirScan.read(d, false).xattrSize(0)).toBe(-1);
  });

  it('an entry that vanished after readdir reads as Node\'s ENOENT; a missing directory throws as readdir does', () => {
    const scan = DirScan.readFs(d);
    const e = scan.entryStat(0, () => Buffer.from(path.join(dir, 'nope')));
    expect(e instanceof Error).toBe(false); // the fs scan keeps what it read
    expect(() => DirScan.read(Buffer.from(path.join(dir, 'missing')), true)).toThrow(/ENOENT/);
  });
});
