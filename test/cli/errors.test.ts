/**
 * Errors a user can act on: one line, naming the path or flag, never Node's raw text ("ENOENT ENOENT",
 * a write with no file) nor a stack trace; directory creation fails fast with the real reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir } from '../helpers/tools.js';
import { mkdirp, mkdirpSync } from '../../src/util/mkdirp.js';
import { namespacesWork, onTmpfs, readOnly } from './ns.js';
import { describeSystemError, formatSystemError } from '../../src/util/syserr.js';

let dir: string;
let repo: string;
const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,1' });

function oneLine(stderr: string): void {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr).not.toMatch(/\b(E[A-Z]+) \1\b/);
}

beforeAll(async () => {
  dir = await tmpDir('cli-errors');
  repo = path.join(dir, 'repo');
  await fsp.mkdir(path.join(dir, 'src'));
  await fsp.writeFile(path.join(dir, 'src', 'a'), 'alpha\n');
  await fsp.writeFile(path.join(dir, 'afile'), 'not a directory\n');
  expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
  expect((await runJbackup(['backup', '-q', path.join(dir, 'src')], { env: env() })).code).toBe(0);
});
afterAll(cleanupTmpDirs);

describe('directory creation', () => {
  it('mkdirp fails at once where mkdir keeps saying ENOENT (/proc), where Node\'s recursive mkdir spins', async () => {
    await expect(mkdirp('/proc/nope/deeper')).rejects.toMatchObject({ code: 'ENOENT', path: '/proc/nope' });
    expect(() => mkdirpSync('/proc/nope/deeper')).toThrow(/ENOENT.*\/proc\/nope'/);
  });
  it('mkdirp: a file in the way is ENOTDIR naming it; existing directories are fine', async () => {
    await expect(mkdirp(path.join(dir, 'afile', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(mkdirp(path.join(dir, 'afile'))).rejects.toMatchObject({ code: 'ENOTDIR', path: path.join(dir, 'afile') });
    await mkdirp(path.join(dir, 'made', 'a', 'b'));
    await mkdirp(path.join(dir, 'made', 'a', 'b'));
    mkdirpSync(path.join(dir, 'made', 'c', 'd'));
    expect((await fsp.stat(path.join(dir, 'made', 'c', 'd'))).isDirectory()).toBe(true);
  });
  it('init -r /proc/nope fails at once with the reason', async () => {
    const r = await runJbackup(['-r', '/proc/nope', 'init'], { env: { ...env(), JBACKUP_REPOSITORY: '' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Fatal: create repository at \/proc\/nope failed: \/proc\/nope: no such file or directory \(ENOENT\) during mkdir/);
    oneLine(r.stderr);
  });
  it.skipIf(!namespacesWork)('init on a read-only filesystem says EROFS and names the directory', async () => {
    const ro = path.join(dir, 'ro');
    await fsp.mkdir(ro);
    const r = readOnly(ro, [process.execPath, JBACKUP_BIN, '-r', path.join(ro, 'a', 'b'), 'init'], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(ro, 'a')}: read-only file system (EROFS) during mkdir`);
    oneLine(r.stderr);
  });
});

describe('messages', () => {
  it('a repository that is a file: exit 10, named', async () => {
    const f = path.join(dir, 'afile');
    const r = await runJbackup(['-r', f, 'snapshots'], { env: env() });
    expect(r.code).toBe(10);
    expect(r.stderr).toBe(`Fatal: repository ${f} does not exist: ${f} or a directory above it is a file\n`);
  });
  it('init below a file names the file in the way', async () => {
    const r = await runJbackup(['-r', path.join(dir, 'afile', 'sub'), 'init'], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a directory \(ENOTDIR\).*a file is in the way/);
    oneLine(r.stderr);
  });
  it('a restore target that is a file', async () => {
    const f = path.join(dir, 'afile');
    const r = await runJbackup(['restore', 'latest', '--target', f], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Fatal: ${f}: not a directory (ENOTDIR) during mkdir; a file is in the way`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
  it('a missing --exclude-file / --iexclude-file / --files-from is named by its flag', async () => {
    for (const flag of ['--exclude-file', '--iexclude-file', '--files-from']) {
      const f = path.join(dir, 'no-such-list');
      const r = await runJbackup(['backup', flag, f, path.join(dir, 'src')], { env: env() });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`Fatal: ${flag} ${f}: no such file or directory (ENOENT)\n`);
    }
  });
  it('a source that does not exist: named once, skipped as restic does (it was "ENOENT ENOENT: …")', async () => {
    const missing = path.join(dir, 'src', 'missing');
    const r = await runJbackup(['backup', '-q', path.join(dir, 'src', 'a'), missing], { env: env() });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`${missing} does not exist, skipping\n`);
  });
  it('a Node system error is described once: reason and code, not the code twice', () => {
    const e = Object.assign(new Error("ENOENT: no such file or directory, lstat '/x'"), { code: 'ENOENT', syscall: 'lstat', path: '/x' });
    expect(describeSystemError(e)).toBe('no such file or directory (ENOENT)');
    expect(formatSystemError(e)).toBe('/x: no such file or directory (ENOENT) during lstat');
    const w = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    expect(formatSystemError(w, '/repo/data/ab/pack')).toBe('/repo/data/ab/pack: no space left on device (ENOSPC) during write; free some space or use another location');
    expect(describeSystemError(new Error('plain'))).toBe('plain');
  });
  it('invalid TOML in the profiles file gives the line and column', async () => {
    const cfg = path.join(dir, 'cfg');
    await fsp.mkdir(cfg);
    await fsp.writeFile(path.join(cfg, 'profiles.toml'), '[profiles.a]\nrepository = "x"\nsources = [ "a" "b" ]\n');
    const r = await runJbackup(['profile', 'list'], { env: { JBACKUP_CONFIG_DIR: cfg } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/profiles\.toml: line 3, column \d+: Invalid TOML document/);
    oneLine(r.stderr);
  });
  it.skipIf(!namespacesWork)('a full disk (ENOSPC) names the file being written, and leaves no lock', async () => {
    const small = path.join(dir, 'small');
    await fsp.mkdir(small);
    const big = path.join(dir, 'big');
    await fsp.mkdir(big);
    await fsp.writeFile(path.join(big, 'random'), (await import('node:crypto')).randomBytes(4 << 20));
    const sh = `"$0" "$1" -r "$2" init -q && "$0" "$1" -r "$2" backup -q "$3"; c=$?; ls -A "$2/locks"; exit $c`;
    const r = onTmpfs(small, '2m', ['sh', '-c', sh, process.execPath, JBACKUP_BIN, path.join(small, 'r'), big], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^Fatal: ${small}/r/\\S+: no space left on device \\(ENOSPC\\) during write; free some space`));
    expect(r.stdout).toBe('');
    oneLine(r.stderr);
  });
});
