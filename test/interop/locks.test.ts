/** Locks follow restic's rules in both directions; an interrupted snapshot leaves a repository restic accepts. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { Lock, listLocks } from '../../src/repo/lock.js';
import { encodeUnpacked } from '../../src/repo/unpacked.js';
import { sha256hex } from '../../src/repo/ids.js';
import { LockError } from '../../src/repo/errors.js';
import { cleanupTmpDirs, findTool, interopDescribe, JBACKUP_BIN, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'lock-pw';

interopDescribe('restic', 'locks with restic', () => {
  let dir: string;
  let repoPath: string;
  let repo: Repository;
  const env = () => ({ JBACKUP_REPOSITORY: repoPath, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });

  let big: string;
  beforeAll(async () => {
    dir = await tmpDir('locks');
    big = path.join(dir, 'big');
    await fsp.mkdir(big);
    for (let i = 0; i < 12; i++) await fsp.writeFile(path.join(big, `f${i}`), prngBytes(`kill${i}`, 12 * 1024 * 1024));
    repoPath = path.join(dir, 'repo');
    await fsp.mkdir(path.join(dir, 'src'));
    await fsp.writeFile(path.join(dir, 'src', 'a'), 'a');
    expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
    repo = await Repository.open(new LocalBackend(repoPath), Buffer.from(PW));
  });
  afterAll(cleanupTmpDirs);

  it('restic backup refuses while jbackup holds an exclusive lock', async () => {
    const l = await Lock.acquire(repo, true);
    try {
      const r = await runRestic(['backup', path.join(dir, 'src')], { repo: repoPath, password: PW });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/locked/);
    } finally {
      await l.release();
    }
  });

  it('restic prune refuses while a jbackup snapshot (non-exclusive lock) runs', async () => {
    const l = await Lock.acquire(repo, false);
    try {
      const r = await runRestic(['prune'], { repo: repoPath, password: PW });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/locked/);
    } finally {
      await l.release();
    }
  });

  it('jbackup exclusive locking refuses while restic holds a lock; a snapshot beside it works', async () => {
    const child = spawn(findTool('restic')!, ['backup', '--stdin', '--stdin-filename', 'x'], {
      env: { ...process.env, RESTIC_REPOSITORY: repoPath, RESTIC_PASSWORD: PW, RESTIC_CACHE_DIR: path.join(dir, 'cache') },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    try {
      // wait for restic's lock to appear
      for (let i = 0; i < 100 && (await listLocks(repo)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      const locks = await listLocks(repo);
      expect(locks.length).toBe(1);
      expect(locks[0]!.lock.exclusive).toBe(false);
      await expect(Lock.acquire(repo, true)).rejects.toBeInstanceOf(LockError);
      const s = await runJbackup(['snapshot', path.join(dir, 'src')], { env: env() });
      expect(s.code).toBe(0);
    } finally {
      child.stdin!.end('data from stdin\n');
      await new Promise((r) => child.on('exit', r));
    }
  });

  it('restic unlock removes a stale jbackup lock; restic sees a live one as not stale', async () => {
    const stale = { time: '2020-01-01T00:00:00Z', exclusive: true, hostname: 'elsewhere', username: 'x', pid: 1 };
    const stored = encodeUnpacked(repo.key, Buffer.from(JSON.stringify(stale)), 2);
    await repo.backend.save({ type: 'locks', name: sha256hex(stored) }, stored);
    const live = await Lock.acquire(repo, false, 0).catch((e: Error) => e);
    expect(live).toBeInstanceOf(LockError); // stale locks still block, as in restic
    const u = await runRestic(['unlock'], { repo: repoPath, password: PW });
    expect(u.code).toBe(0);
    expect(await listLocks(repo)).toEqual([]);
  });

  it('restic unlock leaves a running jbackup alone (restic 0.14 probes the pid with SIGHUP)', async () => {
    const child = spawn(process.execPath, [JBACKUP_BIN, 'snapshot', '--force', big], { env: { ...process.env, ...env() }, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 200 && (await listLocks(repo)).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await listLocks(repo)).length).toBe(1);
    expect((await runRestic(['unlock'], { repo: repoPath, password: PW })).code).toBe(0);
    expect(await exited).toBe(0);
  });

  it('a snapshot killed with SIGKILL leaves a repository restic check accepts; the next snapshot completes', async () => {
    const child = spawn(process.execPath, [JBACKUP_BIN, '--pack-size', '4', 'snapshot', big], { env: { ...process.env, ...env() }, stdio: 'ignore' });
    // kill once at least one pack is on disk
    const packCount = async () => (await repo.backend.list('data')).length;
    for (let i = 0; i < 200 && (await packCount()) < 2; i++) await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(await packCount()).toBeGreaterThan(0);
    // the dead process's lock is stale (same host, dead pid): restic unlock removes it
    expect((await runRestic(['unlock'], { repo: repoPath, password: PW })).code).toBe(0);
    const c = await runRestic(['check', '--read-data'], { repo: repoPath, password: PW });
    expect(c.stdout + c.stderr).toMatch(/no errors were found/);
    expect(c.code).toBe(0);
    const s = await runJbackup(['snapshot', big], { env: env() });
    expect(s.code).toBe(0);
    const c2 = await runRestic(['check'], { repo: repoPath, password: PW });
    expect(c2.code).toBe(0);
  });
});
