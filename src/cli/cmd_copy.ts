import type { Command } from 'commander';
import { openBackend } from '../backend/location.js';
import { copySnapshots } from '../maintenance/copy.js';
import { Repository } from '../repo/repository.js';
import { UserError } from '../repo/errors.js';
import { backendOptions, getPassword, lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
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
        : await withEnv({ JBACKUP_PASSWORD: undefined, JBACKUP_PASSWORD_FILE: process.env['JBACKUP_FROM_PASSWORD_FILE'], JBACKUP_PASSWORD_COMMAND: process.env['JBACKUP_FROM_PASSWORD_COMMAND'] },
          () => getPassword({ passwordFile: o.fromPasswordFile, passwordCommand: o.fromPasswordCommand }, { what: 'source repository' }));
      const src = await Repository.open(openBackend(from, backendOptions(opts)), srcPw, { kdfThreads: kdfThreadsFromEnv() });
      const dst = await openRepo(opts);
      const l1 = await lockRepo(src, false, opts);
      const l2 = await lockRepo(dst, false, { ...opts, lock: true }); // --no-lock spares the source only, as restic's copy
      try {
        await src.loadIndex();
        await dst.loadIndex();
        let snaps = await src.listSnapshots();
        if (ids.length) {
          const want = new Set<string>();
          for (const i of ids) want.add((await src.findSnapshot(i)).id);
          snaps = snaps.filter((s) => want.has(s.id));
        }
        if (o.host.length) snaps = snaps.filter((s) => o.host.includes(s.hostname ?? ''));
        if (o.path.length) snaps = snaps.filter((s) => o.path.every((p) => s.paths.includes(p)));
        if (o.tag.length) snaps = snaps.filter((s) => o.tag.some((tl) => tl.split(',').every((t) => s.tags?.includes(t))));
        const r = await copySnapshots(src, dst, snaps, (s) => { if (!opts.quiet && !opts.json) process.stdout.write(`${s}\n`); });
        if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else if (!opts.quiet) process.stdout.write(`copied ${r.copied.length} snapshots (${r.blobsCopied} blobs), skipped ${r.skipped.length} already present\n`);
      } finally {
        await unlockRepo(l2);
        await unlockRepo(l1);
      }
    });
}

async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const old: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    old[k] = process.env[k];
    if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) { if (v === undefined) delete process.env[k]; else process.env[k] = v; }
  }
}
