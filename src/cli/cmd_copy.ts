import type { Command } from 'commander';
import { openBackend } from '../backend/location.js';
import { copy } from '../ops/copy.js';
import { Repository } from '../repo/repository.js';
import { UserError } from '../repo/errors.js';
import { backendOptions, lockOptions, openRepo, passwordSource, type GlobalOpts } from './global.js';
import { resolvePassword } from '../util/password.js';
import { kdfThreadsFromEnv } from './envopts.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('copy').description('copy snapshots from one repository to another')
    .argument('[snapshotID...]')
    .option('--from-repo <repository>', 'source repository to copy snapshots from (env JBACKUP_FROM_REPOSITORY)')
    .option('--from-password-file <file>', 'file to read the source repository password from (env JBACKUP_FROM_PASSWORD_FILE)')
    .option('--from-password-command <command>', 'shell command to obtain the source repository password from (env JBACKUP_FROM_PASSWORD_COMMAND)')
    .option('-H, --host <host>', 'only consider snapshots for this host', collect, [])
    .option('--tag <taglist>', 'only consider snapshots including tag[,tag,...]', collect, [])
    .option('--path <path>', 'only consider snapshots including this (absolute) path', collect, [])
    .action(async (ids: string[], o: { fromRepo?: string; fromPasswordFile?: string; fromPasswordCommand?: string; host: string[]; tag: string[]; path: string[] }) => {
      const opts = g();
      const from = o.fromRepo ?? process.env['JBACKUP_FROM_REPOSITORY'];
      if (!from) throw new UserError('Please specify a source repository location (--from-repo or JBACKUP_FROM_REPOSITORY)');
      // the source password comes from the --from-* flags or JBACKUP_FROM_* variables only
      const fromEnvPw = process.env['JBACKUP_FROM_PASSWORD'];
      const srcPw = fromEnvPw !== undefined && !o.fromPasswordFile && !o.fromPasswordCommand
        ? Buffer.from(fromEnvPw)
        : await resolvePassword(passwordSource({ passwordFile: o.fromPasswordFile, passwordCommand: o.fromPasswordCommand }, { what: 'source repository' },
          { file: process.env['JBACKUP_FROM_PASSWORD_FILE'], command: process.env['JBACKUP_FROM_PASSWORD_COMMAND'] }));
      const src = await Repository.open(openBackend(from, backendOptions(opts)), srcPw, { kdfThreads: kdfThreadsFromEnv() });
      const dst = await openRepo(opts);
      try {
        const r = await copy(src, dst, {
          ...lockOptions(opts), ids, hosts: o.host, paths: o.path, tags: o.tag,
          log: (s) => { if (!opts.quiet && !opts.json) process.stdout.write(`${s}\n`); },
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else if (!opts.quiet) process.stdout.write(`copied ${r.copied.length} snapshots (${r.blobsCopied} blobs), skipped ${r.skipped.length} already present\n`);
      } finally {
        await src.backend.close().catch(() => {});
      }
    });
}
