/** `jbackup dump`: ops dump to standard output. */
import type { Command } from 'commander';
import { dump } from '../ops/inspect.js';
import { UserError } from '../repo/errors.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { setExitCode } from './exit.js';

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('dump').description('print a backed-up file to stdout (a directory as a tar archive)')
    .argument('<snapshotID>').argument('<file>')
    .option('-a, --archive <format>', 'set archive format as "tar"', 'tar')
    .action(async (ref: string, file: string, o: { archive: string }) => {
      const opts = g();
      if (o.archive !== 'tar') throw new UserError(`unknown archive format "${o.archive}" (only "tar" is supported)`);
      const repo = await openRepo(opts);
      // as restore: the rest of the archive is written, each damaged file named, exit 1
      const errors = await dump(repo, ref, file, process.stdout, {
        ...lockOptions(opts),
        onError: (p, e) => process.stderr.write(`ignoring error for ${p}: ${e.message}\n`),
      });
      if (errors) { process.stderr.write(`There were ${errors} errors\n`); setExitCode(1); }
    });
}
