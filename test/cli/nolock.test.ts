/**
 * --no-lock on a read-only repository (a real read-only mount): the commands that only read work as
 * restic 0.14's do, and create no lock; without --no-lock the failure says that the lock could not be
 * created and why.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, findTool, runJbackup, tmpDir } from '../helpers/tools.js';
import { jbackupReadOnly, namespacesWork, readOnly } from './ns.js';

let dir: string;
let repo: string;
const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,1' });

beforeAll(async () => {
  dir = await tmpDir('cli-nolock');
  repo = path.join(dir, 'repo');
  await fsp.mkdir(path.join(dir, 'src'));
  await fsp.writeFile(path.join(dir, 'src', 'a'), 'alpha\n');
  expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
  expect((await runJbackup(['backup', '-q', path.join(dir, 'src')], { env: env() })).code).toBe(0);
});
afterAll(cleanupTmpDirs);

describe.skipIf(!namespacesWork)('--no-lock on a read-only repository', () => {
  const readers = () => [['snapshots'], ['ls', 'latest'], ['cat', 'config'], ['check'], ['check', '--read-data'], ['find', 'a'], ['stats'],
    ['dump', 'latest', path.join(dir, 'src', 'a')], ['diff', 'latest', 'latest'], ['forget', '--dry-run', '--keep-last', '1'], ['snapshots', '--json']];
  it('snapshots, ls, cat, check, find, stats, dump, diff, forget --dry-run work with --no-lock', () => {
    for (const args of readers()) {
      const r = jbackupReadOnly(repo, ['--no-lock', ...args], env());
      expect({ args, stderr: r.stderr, code: r.code }).toEqual({ args, stderr: '', code: 0 });
    }
  });
  it('restore works with --no-lock', async () => {
    const target = path.join(dir, 'restored');
    const r = jbackupReadOnly(repo, ['--no-lock', 'restore', 'latest', '--target', target], env());
    expect(r.code).toBe(0);
    expect(await fsp.readFile(path.join(target, dir, 'src', 'a'), 'utf8')).toBe('alpha\n');
  });
  it('without --no-lock the lock cannot be created, and the message says so', () => {
    const r = jbackupReadOnly(repo, ['snapshots'], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Fatal: unable to create lock in backend: .*locks\/.*: read-only file system \(EROFS\).*--no-lock/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
  it('forget --no-lock without --dry-run is refused, as restic does', () => {
    const r = jbackupReadOnly(repo, ['--no-lock', 'forget', '--keep-last', '1'], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--no-lock is only applicable in combination with --dry-run/);
  });
  it('commands that write lock anyway (backup fails on the lock, not later)', () => {
    const r = jbackupReadOnly(repo, ['--no-lock', 'backup', path.join(dir, 'src')], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unable to create lock/);
  });
  it.skipIf(!findTool('restic'))('restic 0.14 agrees: snapshots with --no-lock works, without fails', () => {
    const renv = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'pw', RESTIC_CACHE_DIR: path.join(dir, 'restic-cache') };
    expect(readOnly(repo, [findTool('restic')!, '--no-lock', 'snapshots'], renv).code).toBe(0);
    expect(readOnly(repo, [findTool('restic')!, 'snapshots'], renv).code).not.toBe(0);
  });
  it('copy --no-lock spares only the read-only source; the destination is locked', async () => {
    const dst = path.join(dir, 'dst');
    expect((await runJbackup(['-r', dst, 'init'], { env: env() })).code).toBe(0);
    const copyEnv = env();
    const r = jbackupReadOnly(repo, ['--no-lock', '-r', dst, 'copy', '--from-repo', repo, '--from-password-command', 'echo pw'], copyEnv);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await runJbackup(['-r', dst, 'snapshots', '--json'], { env: env() })).stdout).toMatch(/"id"/);
    // with the destination read-only instead, its lock fails even with --no-lock
    const r2 = jbackupReadOnly(dst, ['--no-lock', '-r', dst, 'copy', '--from-repo', repo, '--from-password-command', 'echo pw'], copyEnv);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/unable to create lock in backend: .*dst\/locks/);
  });
  it('no lock file is written with --no-lock (writable repository)', async () => {
    // a file where the locks directory was: any lock attempt fails
    await fsp.rename(path.join(repo, 'locks'), path.join(dir, 'locks-away'));
    await fsp.writeFile(path.join(repo, 'locks'), '');
    try {
      expect((await runJbackup(['--no-lock', 'cat', 'config'], { env: env() })).code).toBe(0);
      expect((await runJbackup(['cat', 'config'], { env: env() })).code).toBe(1);
    } finally {
      await fsp.rm(path.join(repo, 'locks'));
      await fsp.rename(path.join(dir, 'locks-away'), path.join(repo, 'locks'));
    }
  });
});
