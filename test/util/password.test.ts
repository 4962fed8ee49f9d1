/** The one password resolver (src/util/password.ts): the same rules for every source and every caller. */
import { afterAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { readPasswordFile, resolvePassword } from '../../src/util/password.js';
import { readPassword } from '../../src/schedule/password.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

it('files and commands are trimmed as restic trims; values and prompts are taken as they are; empty is refused', async () => {
  const d = await tmpDir('pwresolve');
  const f = path.join(d, 'pw');
  await fsp.writeFile(f, '\ufeff  pw with spaces \r\n', { mode: 0o600 });
  expect((await resolvePassword({ kind: 'file', path: f })).toString()).toBe('pw with spaces');
  expect(readPasswordFile(f).toString()).toBe('pw with spaces');
  expect((await resolvePassword({ kind: 'command', command: "printf ' from command \\n'" })).toString()).toBe('from command');
  expect((await resolvePassword({ kind: 'value', value: ' as is ' })).toString()).toBe(' as is ');
  const asked: string[] = [];
  const answers = ['typed ', 'typed '];
  expect((await resolvePassword({ kind: 'prompt', what: 'new key', confirm: true, ask: async (q) => { asked.push(q); return answers.shift()!; } })).toString()).toBe('typed ');
  expect(asked).toEqual(['enter password for new key: ', 'enter password again: ']);
  await expect(resolvePassword({ kind: 'prompt', confirm: true, ask: async (q) => (q.includes('again') ? 'b' : 'a') })).rejects.toThrow(/passwords do not match/);

  const blank = path.join(d, 'blank');
  await fsp.writeFile(blank, ' \n', { mode: 0o600 });
  await expect(resolvePassword({ kind: 'file', path: blank })).rejects.toThrow(/^an empty password is not a password: the password file .* holds no password/);
  await expect(resolvePassword({ kind: 'command', command: 'true' })).rejects.toThrow(/^an empty password is not a password: the password command printed no password/);
  await expect(resolvePassword({ kind: 'value', value: '' })).rejects.toThrow(/^an empty password is not a password/);
  await expect(resolvePassword({ kind: 'command', command: 'exit 3' })).rejects.toThrow(/the password command failed with exit code 3/);
  await expect(resolvePassword({ kind: 'file', path: path.join(d, 'none') })).rejects.toThrow(/the password file .* does not exist/);
});

it('the owner-only rule: profiles always apply it, the CLI only when asked (restic reads any password file)', async () => {
  const d = await tmpDir('pwmode');
  const f = path.join(d, 'pw');
  await fsp.writeFile(f, 'secret\n');
  await fsp.chmod(f, 0o644);
  await expect(readPassword({ kind: 'file', path: f })).rejects.toThrow(/has mode 0644: other users can read it.*chmod 600/);
  await expect(resolvePassword({ kind: 'file', path: f }, { ownerOnly: true })).rejects.toThrow(/has mode 0644/);
  expect(() => readPasswordFile(f, { ownerOnly: true })).toThrow(/has mode 0644/);
  expect((await resolvePassword({ kind: 'file', path: f })).toString()).toBe('secret');
  await fsp.chmod(f, 0o600);
  expect((await readPassword({ kind: 'file', path: f })).toString()).toBe('secret');
});
