/** The CLI contract: exit codes, one-line errors, env vars, --json shapes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, runJbackup, tmpDir } from './helpers/tools.js';

let dir: string;
let repo: string;
const base = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,1' });

beforeAll(async () => {
  dir = await tmpDir('cli');
  repo = path.join(dir, 'repo');
  await fsp.mkdir(path.join(dir, 'src'));
  await fsp.writeFile(path.join(dir, 'src', 'f.txt'), 'content\n');
  const r = await runJbackup(['init'], { env: base() });
  expect(r.code).toBe(0);
});
afterAll(cleanupTmpDirs);

describe('CLI contract', () => {
  it('init refuses an existing repository and leaves it untouched', async () => {
    const before = await fsp.readdir(path.join(repo, 'keys'));
    const r = await runJbackup(['init'], { env: base() });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/already exists/);
    expect(await fsp.readdir(path.join(repo, 'keys'))).toEqual(before);
  });

  it('exit 10 when the repository does not exist', async () => {
    const r = await runJbackup(['snapshots'], { env: { ...base(), JBACKUP_REPOSITORY: path.join(dir, 'nope') } });
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/does not exist/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  });

  it('exit 12 on a wrong password', async () => {
    const r = await runJbackup(['snapshots'], { env: { ...base(), JBACKUP_PASSWORD: 'wrong' } });
    expect(r.code).toBe(12);
    expect(r.stderr).toMatch(/wrong password/);
  });

  it('password from --password-file and --password-command', async () => {
    const f = path.join(dir, 'pwfile');
    await fsp.writeFile(f, 'pw\n', { mode: 0o600 });
    const e = { ...process.env, JBACKUP_REPOSITORY: repo } as Record<string, string>;
    delete e['JBACKUP_PASSWORD'];
    expect((await runJbackup(['--password-file', f, 'snapshots'], { env: e })).code).toBe(0);
    expect((await runJbackup(['--password-command', 'echo pw', 'snapshots'], { env: e })).code).toBe(0);
  });

  it('snapshot --json emits restic\'s summary shape; snapshots --json the restic fields', async () => {
    const r = await runJbackup(['--json', 'snapshot', '--tag', 'a,b', '--host', 'testhost', path.join(dir, 'src')], { env: base() });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    for (const k of ['message_type', 'files_new', 'files_changed', 'files_unmodified', 'dirs_new', 'dirs_changed', 'dirs_unmodified',
      'data_blobs', 'tree_blobs', 'data_added', 'total_files_processed', 'total_bytes_processed', 'total_duration', 'snapshot_id']) {
      expect(summary).toHaveProperty(k);
    }
    expect(summary['message_type']).toBe('summary');
    const list = JSON.parse((await runJbackup(['--json', 'snapshots'], { env: base() })).stdout) as Record<string, unknown>[];
    const s = list.find((x) => x['id'] === summary['snapshot_id'])!;
    expect(s['short_id']).toBe(String(summary['snapshot_id']).slice(0, 8));
    expect(s['hostname']).toBe('testhost');
    expect(s['tags']).toEqual(['a', 'b']);
    expect(s['paths']).toEqual([path.join(dir, 'src')]);
    for (const k of ['time', 'tree', 'username']) expect(s).toHaveProperty(k);
  });

  it('ls and cat', async () => {
    const ls = await runJbackup(['ls', 'latest'], { env: base() });
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain(`${path.join(dir, 'src')}/f.txt`);
    const cfg = JSON.parse((await runJbackup(['cat', 'config'], { env: base() })).stdout) as Record<string, unknown>;
    expect(cfg['version']).toBe(2);
    const snapshot = JSON.parse((await runJbackup(['cat', 'snapshot', 'latest'], { env: base() })).stdout) as Record<string, unknown>;
    expect(typeof snapshot['tree']).toBe('string');
  });

  it('restore of an unknown snapshot and bad flags fail with one line and exit 1', async () => {
    const r = await runJbackup(['restore', 'deadbeef', path.join(dir, 'out')], { env: base() });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const f = await runJbackup(['snapshot', '--no-such-flag'], { env: base() });
    expect(f.code).toBe(1);
  });

  it('a held exclusive lock makes snapshot exit 11', async () => {
    const { Repository } = await import('../src/repo/repository.js');
    const { LocalBackend } = await import('../src/backend/local.js');
    const { Lock } = await import('../src/repo/lock.js');
    const r = await Repository.open(new LocalBackend(repo), Buffer.from('pw'));
    const lock = await Lock.acquire(r, true);
    try {
      const s = await runJbackup(['snapshot', path.join(dir, 'src')], { env: base() });
      expect(s.code).toBe(11);
      expect(s.stderr).toMatch(/locked exclusively/);
    } finally {
      await lock.release();
    }
  });
});
