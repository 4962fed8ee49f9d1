/**
 * SPEC §3: only the CLI reads the environment. The library takes the scrypt parameters, the KDF
 * threads, Jottacloud's hard delete and the exclude-file variables as options; the CLI reads
 * JBACKUP_KDF_PARAMS, JBACKUP_KDF_THREADS, JBACKUP_JOTTA_HARD_DELETE and its own environment and
 * passes them down.
 */
import { afterAll, afterEach, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Repository } from '../../src/repo/repository.js';
import { parseExcludeFile } from '../../src/archiver/exclude.js';
import { backendOptions, repoOptions, type GlobalOpts } from '../../src/cli/global.js';
import { scrypt } from '../../src/repo/kdf.js';
import { cleanupTmpDirs, runJbackup, tmpDir } from '../helpers/tools.js';

const saved = { ...process.env };
afterEach(() => {
  for (const k of ['JBACKUP_KDF_PARAMS', 'JBACKUP_KDF_THREADS', 'JBACKUP_JOTTA_HARD_DELETE', 'JB_TEST_DIR']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});
afterAll(cleanupTmpDirs);

const keyParams = async (be: MemoryBackend) => {
  const [k] = await be.list('keys');
  return JSON.parse((await be.load({ type: 'keys', name: k!.name })).toString('utf8')) as { N: number; r: number; p: number };
};

it('the library makes keys with the parameters it is given, whatever JBACKUP_KDF_PARAMS says', async () => {
  process.env['JBACKUP_KDF_PARAMS'] = '1024,8,1';
  const given = new MemoryBackend();
  await Repository.init(given, Buffer.from('pw'), { kdf: { N: 2048, r: 8, p: 1 } });
  expect(await keyParams(given)).toMatchObject({ N: 2048, r: 8, p: 1 });
  // no parameters: restic's default, not the environment's
  const dflt = new MemoryBackend();
  await Repository.init(dflt, Buffer.from('pw'));
  expect(await keyParams(dflt)).toMatchObject({ N: 32768, r: 8, p: 6 });
});

it('the CLI passes JBACKUP_KDF_PARAMS to init and key add', async () => {
  const repo = path.join(await tmpDir('envopts'), 'repo');
  const env = { JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,2' };
  expect((await runJbackup(['init'], { env })).code).toBe(0);
  expect((await runJbackup(['key', 'add'], { env: { ...env, JBACKUP_NEW_PASSWORD: 'pw2' } })).code).toBe(0);
  const keys = await fsp.readdir(path.join(repo, 'keys'));
  expect(keys).toHaveLength(2);
  for (const k of keys) {
    expect(JSON.parse(await fsp.readFile(path.join(repo, 'keys', k), 'utf8'))).toMatchObject({ N: 1024, r: 8, p: 2 });
  }
});

it('exclude-file variables come from the environment the caller passes', () => {
  process.env['JB_TEST_DIR'] = '/from-process-env';
  expect(parseExcludeFile('# comment\n$JB_TEST_DIR/cache\n${JB_TEST_DIR}/tmp\n', { JB_TEST_DIR: '/given' })).toEqual(['/given/cache', '/given/tmp']);
  expect(parseExcludeFile('$JB_TEST_DIR/x\n', {})).toEqual(['/x']);
});

it('JBACKUP_JOTTA_HARD_DELETE reaches the Jottacloud options through the CLI', () => {
  const g = {} as GlobalOpts;
  expect(backendOptions(g).jotta?.hardDelete).toBeUndefined();
  process.env['JBACKUP_JOTTA_HARD_DELETE'] = 'true';
  expect(backendOptions(g).jotta?.hardDelete).toBe(true);
  process.env['JBACKUP_JOTTA_HARD_DELETE'] = '0';
  expect(backendOptions(g).jotta?.hardDelete).toBeUndefined();
});

it('JBACKUP_KDF_THREADS reaches the repository options; two lanes at a time derive the same key', async () => {
  const g = {} as GlobalOpts;
  expect(repoOptions(g).kdfThreads).toBe(1);
  process.env['JBACKUP_KDF_THREADS'] = '2';
  expect(repoOptions(g).kdfThreads).toBe(2);
  process.env['JBACKUP_KDF_PARAMS'] = '1024,8,3';
  expect(repoOptions(g).kdf).toEqual({ N: 1024, r: 8, p: 3 });
  const salt = Buffer.alloc(64, 7);
  const k = { N: 1024, r: 8, p: 3 };
  expect((await scrypt(Buffer.from('pw'), salt, k, 2)).equals(await scrypt(Buffer.from('pw'), salt, k, 1))).toBe(true);
});
