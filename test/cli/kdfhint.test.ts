/**
 * The early key derivation of a remote repository starts from the hint the last command left in the
 * config dir; a local repository's starts from its key files; a stale hint only costs a derivation.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { randomBytes, scryptSync } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { start } from '../../src/cli/early.js';
import { earlyPending, scrypt } from '../../src/repo/kdf.js';
import { readKdfHint, saveKdfHint } from '../../src/cli/kdfhint.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

const K = { N: 1024, r: 8, p: 1 };
let cfg: string;
const saved = { cfg: process.env['JBACKUP_CONFIG_DIR'], pw: process.env['JBACKUP_PASSWORD'] };

beforeAll(async () => {
  cfg = await tmpDir('kdfhint');
  process.env['JBACKUP_CONFIG_DIR'] = cfg;
  process.env['JBACKUP_PASSWORD'] = 'hint-pw';
});
afterEach(async () => {
  // take whatever was started, so that the next test starts from nothing
  expect(earlyPending()).toBe(0);
});
afterAll(async () => {
  for (const [k, v] of [['JBACKUP_CONFIG_DIR', saved.cfg], ['JBACKUP_PASSWORD', saved.pw]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await cleanupTmpDirs();
});

it('a jotta: repository derives early from its stored hint (0600), and only with a hint', async () => {
  const salt = randomBytes(64);
  start(['-r', 'jotta:photos', 'snapshots']);
  expect(earlyPending()).toBe(0); // no hint yet

  saveKdfHint('jotta:photos', { ...K, salt: salt.toString('base64') });
  const files = await fsp.readdir(path.join(cfg, 'kdf-hints'));
  expect(files).toHaveLength(1);
  expect((await fsp.stat(path.join(cfg, 'kdf-hints', files[0]!))).mode & 0o777).toBe(0o600);
  expect((await fsp.stat(path.join(cfg, 'kdf-hints'))).mode & 0o777).toBe(0o700);
  expect(readKdfHint('jotta:photos')).toEqual({ ...K, salt: salt.toString('base64') });
  expect(readKdfHint('jotta:other')).toBeNull();

  start(['-r', 'jotta:photos', 'snapshots']);
  expect(earlyPending()).toBe(1);
  // the real open takes the early result (and it is the right key)
  expect((await scrypt(Buffer.from('hint-pw'), salt, K)).equals(scryptSync('hint-pw', salt, 64, K))).toBe(true);
  expect(earlyPending()).toBe(0);

  // a named account's repository too
  saveKdfHint('jotta@work:photos', { ...K, salt: salt.toString('base64') });
  start(['-r', 'jotta@work:photos', 'snapshots']);
  expect(earlyPending()).toBe(1);
  await scrypt(Buffer.from('hint-pw'), salt, K);
  expect(earlyPending()).toBe(0);

  // other repositories, init and a password command get no head start
  start(['-r', 'jotta:elsewhere', 'snapshots']);
  start(['-r', 'jotta:photos', 'init']);
  start(['-r', 'jotta:photos', '--password-command', 'echo x', 'snapshots']);
  expect(earlyPending()).toBe(0);
});

it('a stale hint (the key changed) is replaced; the derivation it started is not taken for another salt', async () => {
  const old = randomBytes(64);
  const now = randomBytes(64);
  saveKdfHint('jotta:k', { ...K, salt: old.toString('base64') });
  start(['-r', 'jotta:k', 'backup', '.']);
  expect(earlyPending()).toBe(1);
  // the key file's real salt derives afresh and gives its own key
  expect((await scrypt(Buffer.from('hint-pw'), now, K)).equals(scryptSync('hint-pw', now, 64, K))).toBe(true);
  saveKdfHint('jotta:k', { ...K, salt: now.toString('base64') });
  expect(readKdfHint('jotta:k')!.salt).toBe(now.toString('base64'));
  // (the stale one is still pending; taken here so the pool is empty again)
  await scrypt(Buffer.from('hint-pw'), old, K);
});
