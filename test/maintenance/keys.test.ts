import { afterAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, findTool, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

it('key add/list/passwd/remove, and restic opens the repository with the new passwords', async () => {
  const dir = await tmpDir('keys');
  const repo = path.join(dir, 'repo');
  const env = (pw: string) => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: pw, JBACKUP_KDF_PARAMS: '1024,8,1' });
  expect((await runJbackup(['init'], { env: env('one') })).code).toBe(0);
  const f2 = path.join(dir, 'pw2');
  await fsp.writeFile(f2, 'two\n');
  expect((await runJbackup(['key', 'add', '--new-password-file', f2], { env: env('one') })).code).toBe(0);
  const list = JSON.parse((await runJbackup(['--json', 'key', 'list'], { env: env('two') })).stdout) as { current: boolean; id: string }[];
  expect(list).toHaveLength(2);
  expect(list.filter((k) => k.current)).toHaveLength(1);
  if (findTool('restic')) expect((await runRestic(['snapshots'], { repo, password: 'two' })).code).toBe(0);
  // the key in use and the last key are never removed
  const current = list.find((k) => k.current)!.id;
  const other = list.find((k) => !k.current)!.id;
  const r1 = await runJbackup(['key', 'remove', current], { env: env('two') });
  expect(r1.code).toBe(1);
  expect(r1.stderr).toMatch(/currently used/);
  // passwd replaces the current key ("two") by "three"
  const f3 = path.join(dir, 'pw3');
  await fsp.writeFile(f3, 'three\n');
  expect((await runJbackup(['key', 'passwd', '--new-password-file', f3], { env: env('two') })).code).toBe(0);
  expect((await runJbackup(['snapshots'], { env: env('two') })).code).toBe(12);
  expect((await runJbackup(['snapshots'], { env: env('three') })).code).toBe(0);
  if (findTool('restic')) expect((await runRestic(['snapshots'], { repo, password: 'three' })).code).toBe(0);
  // remove the "one" key using "three"; then only one key is left and it cannot be removed
  const keys = JSON.parse((await runJbackup(['--json', 'key', 'list'], { env: env('three') })).stdout) as { current: boolean; id: string }[];
  expect(keys).toHaveLength(2);
  expect(keys.map((k) => k.id)).toContain(other);
  expect((await runJbackup(['key', 'remove', keys.find((k) => !k.current)!.id], { env: env('three') })).code).toBe(0);
  expect((await runJbackup(['snapshots'], { env: env('one') })).code).toBe(12);
});

it('unlock removes stale locks only, --remove-all removes all', async () => {
  const dir = await tmpDir('unlock');
  const repo = path.join(dir, 'repo');
  const env = { JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,1' };
  expect((await runJbackup(['init'], { env })).code).toBe(0);
  const { Repository } = await import('../../src/repo/repository.js');
  const { LocalBackend } = await import('../../src/backend/local.js');
  const { Lock, listLocks } = await import('../../src/repo/lock.js');
  const { encodeUnpacked } = await import('../../src/repo/unpacked.js');
  const { sha256hex } = await import('../../src/repo/ids.js');
  const r = await Repository.open(new LocalBackend(repo), Buffer.from('pw'));
  const stale = encodeUnpacked(r.key, Buffer.from(JSON.stringify({ time: '2020-01-01T00:00:00Z', exclusive: true, hostname: 'x', username: 'y', pid: 5 })), 2);
  await r.backend.save({ type: 'locks', name: sha256hex(stale) }, stale);
  const live = await Lock.acquire(r, false, 0).catch(() => null);
  expect(live).toBeNull();
  const u = await runJbackup(['unlock'], { env });
  expect(u.stdout).toMatch(/removed 1 locks/);
  const mine = await Lock.acquire(r, false, 0);
  expect((await runJbackup(['unlock'], { env })).stdout).toMatch(/removed 0 locks/);
  expect((await listLocks(r)).length).toBe(1);
  expect((await runJbackup(['unlock', '--remove-all'], { env })).stdout).toMatch(/removed 1 locks/);
  expect((await listLocks(r)).length).toBe(0);
  await mine.release();
});
