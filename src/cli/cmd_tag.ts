/** `jbackup tag`: ops tag. */
import type { Command } from 'commander';
import { tag } from '../ops/tag.js';
import { UserError } from '../repo/errors.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { collect, filterFlags, selection, type FilterFlags } from './filters.js';

export function register(program: Command, g: () => GlobalOpts): void {
  filterFlags(program.command('tag').description('modify tags on snapshots')
    .argument('[snapshotID...]')
    .option('--set <tags>', 'tags which will replace the existing tags (can be given multiple times)', collect, [])
    .option('--add <tags>', 'tags which will be added (can be given multiple times)', collect, [])
    .option('--remove <tags>', 'tags which will be removed (can be given multiple times)', collect, []))
    .action(async (ids: string[], o: { set: string[]; add: string[]; remove: string[] } & FilterFlags) => {
      const opts = g();
      if (!o.set.length && !o.add.length && !o.remove.length) throw new UserError('nothing to do: use --set, --add or --remove');
      if (o.set.length && (o.add.length || o.remove.length)) throw new UserError('--set and --add/--remove cannot be given at the same time');
      const repo = await openRepo(opts);
      const n = await tag(repo, {
        ...selection(ids, o), ...lockOptions(opts), set: o.set, add: o.add, remove: o.remove,
        changed: (id, nid) => { if (!opts.quiet) process.stdout.write(`old snapshot ID: ${id.slice(0, 8)} -> new snapshot ID: ${nid.slice(0, 8)}\n`); },
      });
      if (!opts.quiet) process.stdout.write(`modified tags on ${n} snapshots\n`);
    });
}
