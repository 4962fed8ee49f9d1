/** Numeric flags checked everywhere (flag and value named, exit 1), restic's -v forms, help. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, runJbackup, tmpDir } from '../helpers/tools.js';

let dir: string;
let repo: string;
const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,1' });

beforeAll(async () => {
  dir = await tmpDir('cli-flags');
  repo = path.join(dir, 'repo');
  await fsp.mkdir(path.join(dir, 'src'));
  await fsp.writeFile(path.join(dir, 'src', 'f'), 'x');
  expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
  expect((await runJbackup(['backup', '-q', path.join(dir, 'src')], { env: env() })).code).toBe(0);
});
afterAll(cleanupTmpDirs);

describe('numeric flags', () => {
  const bad: [string[], string, string][] = [
    [['snapshots', '--latest'], '--latest', 'abc'],
    [['snapshots', '--latest'], '--latest', '0'],
    [['snapshots', '--latest'], '--latest', '-1'],
    [['snapshots', '--latest'], '--latest', '1.5'],
    [['forget', '--dry-run', '--keep-last'], '--keep-last', '-1'],
    [['forget', '--dry-run', '--keep-daily'], '--keep-daily', '2x'],
    [['prune', '--dry-run', '--max-repack-size'], '--max-repack-size', 'lots'],
    [['prune', '--dry-run', '--max-unused'], '--max-unused', '5 apples'],
    [['check', '--read-data-subset'], '--read-data-subset', '2/1'],
    [['backup', path.join('/nonexistent'), '--exclude-larger-than'], '--exclude-larger-than', '-5M'],
    [['snapshots', '--pack-size'], '--pack-size', '3'],
    [['snapshots', '--pack-size'], '--pack-size', '16.5'],
    [['snapshots', '--limit-upload'], '--limit-upload', '0x10'],
    [['snapshots', '--limit-download'], '--limit-download', '0'],
    [['snapshots', '--jotta-connections'], '--jotta-connections', '1.5'],
  ];
  for (const [args, flag, value] of bad) {
    it(`${flag} ${value} is refused, naming the flag and the value`, async () => {
      const r = await runJbackup([...args, value], { env: env() });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`invalid value "${value}" for ${flag}`);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  }
  it('JBACKUP_PACK_SIZE is checked the same way and named', async () => {
    const r = await runJbackup(['snapshots'], { env: { ...env(), JBACKUP_PACK_SIZE: 'big' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid value "big" for JBACKUP_PACK_SIZE');
  });
  it('good values pass', async () => {
    expect((await runJbackup(['snapshots', '--latest', '1'], { env: env() })).code).toBe(0);
    expect((await runJbackup(['--pack-size', '16', '--limit-upload', '0.5', 'snapshots'], { env: env() })).code).toBe(0);
    expect((await runJbackup(['forget', '--dry-run', '--keep-last', '0', '--keep-daily', '3'], { env: env() })).code).toBe(0);
  });
});

describe('verbosity', () => {
  for (const v of [['-v'], ['-vv'], ['--verbose'], ['--verbose=2'], ['--verbose=0'], ['-v', '-v']]) {
    it(`${v.join(' ')} is accepted`, async () => {
      const r = await runJbackup([...v, 'snapshots'], { env: env() });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
  }
  it('--verbose=x is refused', async () => {
    const r = await runJbackup(['--verbose=x', 'snapshots'], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid value "x" for --verbose');
  });
  it('--verbose=2 is level 2 (a backup lists its files from level 2 on)', async () => {
    const f = path.join(dir, 'src', 'f');
    await fsp.writeFile(f, 'changed');
    const r = await runJbackup(['--verbose=2', 'backup', path.join(dir, 'src')], { env: env() });
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).toContain(f);
  });
});

describe('help', () => {
  it('help for an unknown command exits 1', async () => {
    const r = await runJbackup(['help', 'nosuch']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown help topic "nosuch"/);
    expect((await runJbackup(['help', 'key', 'nosuch'])).code).toBe(1);
  });
  it('help <command> <subcommand> shows the subcommand', async () => {
    const r = await runJbackup(['help', 'jotta', 'login']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: jbackup jotta login/);
    const k = await runJbackup(['help', 'key', 'add']);
    expect(k.stdout).toMatch(/^Usage: jbackup key add/);
    expect((await runJbackup(['help', 'backup'])).stdout).toMatch(/^Usage: jbackup snapshot\|backup/);
    expect((await runJbackup(['help'])).code).toBe(0);
  });
  it('a command\'s help lists the global flags', async () => {
    for (const args of [['snapshots', '--help'], ['help', 'restore']]) {
      const r = await runJbackup(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Global Options:[\s\S]*--repo <repository>[\s\S]*--no-lock/);
    }
  });
});
