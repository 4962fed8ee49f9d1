/** setMetaNoFollow: restore's metadata through a descriptor; a symlink at the path is never followed. */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { promises as fsp, lstatSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { hasNative, setMetaNoFollow } from '../../src/native/native.js';

afterAll(cleanupTmpDirs);

describe('setMetaNoFollow', () => {
  it('sets mode (setuid too) and ns times on a file, a FIFO and a directory', async () => {
    const dir = await tmpDir('setmeta');
    const f = path.join(dir, 'f');
    await fsp.writeFile(f, 'x');
    const p = path.join(dir, 'p');
    execFileSync('mkfifo', [p]);
    const d = path.join(dir, 'd');
    await fsp.mkdir(d);
    const mtime = 1_600_000_000_123_456_789n;
    setMetaNoFollow(Buffer.from(f), false, 0o4755, null, mtime - 5n, mtime);
    setMetaNoFollow(Buffer.from(p), false, 0o640, null, mtime, mtime);
    setMetaNoFollow(Buffer.from(d), true, 0o710, null, mtime, mtime);
    expect(statSync(f).mode & 0o7777).toBe(0o4755);
    expect(statSync(p).mode & 0o7777).toBe(0o640);
    expect(statSync(d).mode & 0o7777).toBe(0o710);
    const ns = (x: string) => statSync(x, { bigint: true }).mtimeNs;
    if (hasNative) {
      expect(ns(f)).toBe(mtime);
      expect(statSync(f, { bigint: true }).atimeNs).toBe(mtime - 5n);
      expect(ns(d)).toBe(mtime);
    }
  });

  it('refuses a symlink at the path (file or directory flavour) and leaves its target alone', async () => {
    const dir = await tmpDir('setmeta-link');
    const outside = path.join(dir, 'outside');
    await fsp.writeFile(outside, 'o');
    await fsp.chmod(outside, 0o600);
    const od = path.join(dir, 'odir');
    await fsp.mkdir(od, { mode: 0o700 });
    await fsp.symlink(outside, path.join(dir, 'l'));
    await fsp.symlink(od, path.join(dir, 'ld'));
    expect(() => setMetaNoFollow(Buffer.from(path.join(dir, 'l')), false, 0o4777, null, 0n, 0n)).toThrow(/ELOOP|symbolic/i);
    expect(() => setMetaNoFollow(Buffer.from(path.join(dir, 'ld')), true, 0o777, null, 0n, 0n)).toThrow();
    expect(statSync(outside).mode & 0o7777).toBe(0o600);
    expect(statSync(od).mode & 0o7777).toBe(0o700);
    expect(lstatSync(path.join(dir, 'l')).isSymbolicLink()).toBe(true);
  });
});
