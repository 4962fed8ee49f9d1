/** `jbackup repair index`: ops repair. */
import type { Command } from 'commander';
import { repair } from '../ops/repair.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { setExitCode } from './exit.js';

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('repair').description('repair the repository').command('index').description('build a new index from the pack headers')
    .action(async () => {
      const opts = g();
      const repo = await openRepo(opts);
      const r = await repair(repo, { ...lockOptions(opts), log: (s) => { if (!opts.quiet) process.stdout.write(`${s}\n`); } });
      for (const b of r.badPacks) process.stderr.write(`pack ${b.id}: ${b.error}\n`);
      if (!opts.quiet) process.stdout.write(`indexed ${r.packs} packs in ${r.indexFilesNew} index files, replaced ${r.indexFilesOld}\n`);
      if (r.badPacks.length) setExitCode(1);
    });
}
