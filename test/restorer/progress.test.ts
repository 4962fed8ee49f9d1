/**
 * Restore progress: restic ≥ 0.16's JSON status and summary lines with --json (0.14 prints none),
 * and a live line with totals, percentage, rate and ETA on a TTY (run under script(1)).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'progress-pw';
afterAll(cleanupTmpDirs);

describe('restore progress', () => {
  let dir: string;
  let repo: string;
  const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });
  const TOTAL = 3 * 300_000 + 5;

  beforeAll(async () => {
    dir = await tmpDir('restore-progress');
    repo = path.join(dir, 'repo');
    const src = path.join(dir, 'src');
    await fsp.mkdir(src);
    for (const n of ['a', 'b', 'c']) await fsp.writeFile(path.join(src, n), prngBytes(n, 300_000));
    await fsp.writeFile(path.join(src, 'd'), 'dddd\n');
    await fsp.writeFile(path.join(src, 'empty'), '');
    expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
    expect((await runJbackup(['snapshot', src], { env: env() })).code).toBe(0);
  });

  it('--json prints status lines with restic\'s restore fields and a summary with totals', async () => {
    const r = await runJbackup(['restore', 'latest', '--target', path.join(dir, 't1'), '--json'], { env: env() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const status = lines.filter((l) => l['message_type'] === 'status');
    expect(status.length).toBeGreaterThan(0);
    for (const s of status) {
      expect(Object.keys(s)).toEqual(expect.arrayContaining(['seconds_elapsed', 'percent_done', 'total_files', 'files_restored', 'total_bytes', 'bytes_restored']));
    }
    expect(status.at(-1)).toMatchObject({ percent_done: 1, total_files: 5, files_restored: 5, total_bytes: TOTAL, bytes_restored: TOTAL });
    expect(lines.at(-1)).toMatchObject({ message_type: 'summary', total_files: 5, files_restored: 5, total_bytes: TOTAL, bytes_restored: TOTAL });
    expect(typeof lines.at(-1)!['seconds_elapsed']).toBe('number');
  });

  it('on a TTY a live line shows files and bytes of the totals, percentage, rate and ETA', () => {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const cmd = [process.execPath, JBACKUP_BIN, 'restore', 'latest', '--target', path.join(dir, 't2')].map(q).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env() }, encoding: 'utf8' });
    expect(r.status, r.stdout).toBe(0);
    const lines = r.stdout.split('\r').map((l) => l.trim());
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d+:\d\d\] 100\.00%  5 files 878\.911 KiB, total 5 files 878\.911 KiB, .*\/s ETA 0:00$/));
  });
});
