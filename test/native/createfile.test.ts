/**
 * createFileWithMeta: restore's one-call creation of a whole file (content, holes, mode, ns times),
 * exclusive and never through a symlink.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { promises as fsp, lstatSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { createFileWithMeta, hasNative } from '../../src/native/native.js';

afterAll(cleanupTmpDirs);

const meta = (mode: number) => ({ mode, owner: null, aSec: 1_600_000_000, aNsec: 5, mSec: 1_600_000_001, mNsec: 123_456_789 });

describe('createFileWithMeta', () => {
  it('writes the content, extends with a hole to the size, sets mode and ns times (read-only too)', async () => {
    const dir = await tmpDir('createfile');
    const f = path.join(dir, 'f');
    createFileWithMeta(Buffer.from(f), Buffer.from('hello'), 5, meta(0o444));
    // times first: reading the file may move its atime (relatime)
    if (hasNative) {
      const st = statSync(f, { bigint: true });
      expect(st.mtimeNs).toBe(1_600_000_001_123_456_789n);
      expect(st.atimeNs).toBe(1_600_000_000_000_000_005n);
    }
    expect(readFileSync(f, 'utf8')).toBe('hello');
    expect(statSync(f).mode & 0o7777).toBe(0o444);
    const z = path.join(dir, 'zero');
    createFileWithMeta(Buffer.from(z), null, 1 << 20, meta(0o640));
    expect(statSync(z).size).toBe(1 << 20);
    expect(readFileSync(z).every((b) => b === 0)).toBe(true);
    const e = path.join(dir, 'empty');
    createFileWithMeta(Buffer.from(e), null, 0, meta(0o600));
    expect(statSync(e).size).toBe(0);
  });

  it('refuses a path that exists: a file is left as it was, a symlink is not followed', async () => {
    const dir = await tmpDir('createfile-exists');
    const f = path.join(dir, 'f');
    await fsp.writeFile(f, 'old');
    await fsp.chmod(f, 0o600);
    expect(() => createFileWithMeta(Buffer.from(f), Buffer.from('new'), 3, meta(0o777))).toThrow(/EEXIST|exists/);
    expect(readFileSync(f, 'utf8')).toBe('old');
    expect(statSync(f).mode & 0o7777).toBe(0o600);
    const outside = path.join(dir, 'outside');
    const link = path.join(dir, 'link');
    symlinkSync(outside, link);
    expect(() => createFileWithMeta(Buffer.from(link), Buffer.from('x'), 1, meta(0o777))).toThrow();
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    await expect(fsp.stat(outside)).rejects.toThrow();
  });
});
