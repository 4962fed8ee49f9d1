/**
 * The addon's extended attribute calls: by path (no follow) and by fd, errno codes, and lists or
 * values larger than the first 4 KiB read (the ERANGE retry), checked against Python's os module.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  fgetxattrSync, flistxattrSync, fsetxattrSync, hasXattr, lgetxattrSync, llistxattrSync, lsetxattrSync,
} from '../../src/native/native.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

function py(code: string, ...args: string[]): string {
  const r = spawnSync('python3', ['-c', `import os, sys\n${code}`, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3: ${r.stderr}`);
  return r.stdout.trim();
}

function userXattrs(dir: string): boolean {
  const f = path.join(dir, 'probe');
  writeFileSync(f, '');
  try { lsetxattrSync(f, 'user.p', Buffer.from('1')); return true; } catch { return false; } finally { rmSync(f); }
}

if (!hasXattr) console.warn('[xattr] skipping: the native addon has no extended attribute support');
describe.skipIf(!hasXattr)('native extended attributes', () => {
  it('list, get and set by path and by fd; errors carry the errno name', async (ctx) => {
    const dir = await tmpDir('native-xattr');
    if (!userXattrs(dir)) { console.warn(`[xattr] skipping: ${dir} takes no user.* attributes`); ctx.skip(); }
    const f = path.join(dir, 'f');
    writeFileSync(f, 'x');
    expect(llistxattrSync(f)).toEqual([]);
    py('os.setxattr(sys.argv[1], "user.b", bytes([0, 255, 10]))\nos.setxattr(sys.argv[1], "user.e", b"")', f);
    expect(llistxattrSync(f).map(String)).toEqual(JSON.parse(py('import json; print(json.dumps(os.listxattr(sys.argv[1])))', f)));
    expect(lgetxattrSync(f, 'user.b')).toEqual(Buffer.from([0, 255, 10]));
    expect(lgetxattrSync(f, Buffer.from('user.e'))).toEqual(Buffer.alloc(0));
    lsetxattrSync(f, 'user.b', Buffer.from('replaced'));
    expect(py('print(os.getxattr(sys.argv[1], "user.b").decode())', f)).toBe('replaced');
    expect(() => lgetxattrSync(f, 'user.missing')).toThrow(expect.objectContaining({ code: 'ENODATA', syscall: 'lgetxattr' }));
    expect(() => lsetxattrSync(f, 'nonamespace', Buffer.from('1'))).toThrow(expect.objectContaining({ code: 'ENOTSUP' }));
    const fd = openSync(f, 'r');
    try {
      fsetxattrSync(fd, 'user.fd', Buffer.from('by fd'));
      expect(flistxattrSync(fd).map(String).sort()).toEqual(['user.b', 'user.e', 'user.fd']);
      expect(fgetxattrSync(fd, 'user.fd').toString()).toBe('by fd');
    } finally {
      closeSync(fd);
    }
    // the l-calls do not follow a symlink: its own (empty) list, not the target's
    const l = path.join(dir, 'l');
    symlinkSync('f', l);
    expect(llistxattrSync(l)).toEqual([]);
    expect(() => lsetxattrSync(l, 'user.x', Buffer.from('1'))).toThrow(expect.objectContaining({ code: 'EPERM' }));
  });

  // ext4 holds ~4 KiB of attributes per inode: lists and values beyond the first 4 KiB read need tmpfs
  const shm = '/dev/shm';
  it.skipIf(!existsSync(shm))('lists and values larger than 4 KiB are read whole (tmpfs)', (ctx) => {
    const dir = mkdtempSync(path.join(shm, 'jbackup-xattr-'));
    try {
      if (!userXattrs(dir)) { console.warn(`[xattr] skipping: ${shm} takes no user.* attributes`); ctx.skip(); }
      const f = path.join(dir, 'f');
      writeFileSync(f, '');
      const names = Array.from({ length: 500 }, (_, i) => `user.a-rather-long-attribute-name-${i}`);
      for (const n of names) lsetxattrSync(f, n, Buffer.from(n));
      const big = Buffer.alloc(60_000, 0xab);
      lsetxattrSync(f, 'user.big', big);
      expect(llistxattrSync(f).map(String).sort()).toEqual([...names, 'user.big'].sort());
      expect(lgetxattrSync(f, 'user.big')).toEqual(big);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
