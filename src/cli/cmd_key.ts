import { goLocalTime } from '../format/gotime.js';
import type { Command } from 'commander';
import { createKeyFile, parseKeyFile } from '../repo/keys.js';
import { kdfParamsFromEnv, kdfThreadsFromEnv } from './envopts.js';
import { sha256hex } from '../repo/ids.js';
import { UserError } from '../repo/errors.js';
import { getPassword, passwordFile, lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import type { Repository } from '../repo/repository.js';

async function newPassword(opts: GlobalOpts, file?: string): Promise<Buffer> {
  // restic's rule for password files (trimmed), also for the new password
  if (file) return passwordFile(file);
  const env = process.env['JBACKUP_NEW_PASSWORD'];
  if (env) return Buffer.from(env);
  return getPassword({ ...opts, passwordFile: undefined, passwordCommand: undefined }, { confirm: true, what: 'new key' });
}

async function addKey(repo: Repository, pw: Buffer): Promise<string> {
  const kf = await createKeyFile(pw, repo.key, kdfParamsFromEnv(), kdfThreadsFromEnv());
  const id = sha256hex(kf);
  await repo.backend.save({ type: 'keys', name: id }, kf);
  return id;
}

export function register(program: Command, g: () => GlobalOpts): void {
  const key = program.command('key').description('manage keys (passwords)');
  key.command('list').description('list keys').action(async () => {
    const opts = g();
    const repo = await openRepo(opts);
    const lock = await lockRepo(repo, false, opts);
    try {
      const rows: Record<string, unknown>[] = [];
      for (const f of await repo.backend.list('keys')) {
        const k = parseKeyFile(await repo.backend.load({ type: 'keys', name: f.name }));
        rows.push({ current: f.name === repo.keyId, id: f.name.slice(0, 8), userName: k.username, hostName: k.hostname, created: goLocalTime(k.created) });
      }
      if (opts.json) { process.stdout.write(`${JSON.stringify(rows)}\n`); return; }
      process.stdout.write(' ID        User        Host        Created\n----------------------------------------------------\n');
      for (const r of rows) process.stdout.write(`${r['current'] ? '*' : ' '}${String(r['id']).padEnd(10)}${String(r['userName']).padEnd(12)}${String(r['hostName']).padEnd(12)}${String(r['created'])}\n`);
    } finally {
      await unlockRepo(lock);
    }
  });
  key.command('add').description('add a new key (password)').option('--new-password-file <file>', 'file from which to read the new password')
    .action(async (o: { newPasswordFile?: string }) => {
      const opts = g();
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, false, opts);
      try {
        const id = await addKey(repo, await newPassword(opts, o.newPasswordFile));
        if (!opts.quiet) process.stdout.write(`saved new key as ${id.slice(0, 8)}\n`);
      } finally {
        await unlockRepo(lock);
      }
    });
  key.command('remove').description('remove a key').argument('<id>', 'key id (prefix)').action(async (ref: string) => {
    const opts = g();
    const repo = await openRepo(opts);
    const lock = await lockRepo(repo, true, opts);
    try {
      const id = await repo.resolveId('keys', ref);
      if (id === repo.keyId) throw new UserError('refusing to remove key currently used to access repository');
      if ((await repo.backend.list('keys')).length <= 1) throw new UserError('refusing to remove the last key');
      await repo.backend.remove({ type: 'keys', name: id });
      if (!opts.quiet) process.stdout.write(`removed key ${id.slice(0, 8)}\n`);
    } finally {
      await unlockRepo(lock);
    }
  });
  key.command('passwd').description('change the password of the current key').option('--new-password-file <file>', 'file from which to read the new password')
    .action(async (o: { newPasswordFile?: string }) => {
      const opts = g();
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, true, opts);
      try {
        const id = await addKey(repo, await newPassword(opts, o.newPasswordFile));
        await repo.backend.remove({ type: 'keys', name: repo.keyId });
        if (!opts.quiet) process.stdout.write(`saved new key as ${id.slice(0, 8)}\n`);
      } finally {
        await unlockRepo(lock);
      }
    });
}
