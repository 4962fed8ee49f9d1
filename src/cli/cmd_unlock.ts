import type { Command } from 'commander';
import { isStale, listLocks } from '../repo/lock.js';
import { openRepo, type GlobalOpts } from './global.js';

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('unlock').description('remove locks other processes created')
    .option('--remove-all', 'remove all locks, even non-stale ones')
    .action(async (o: { removeAll?: boolean }) => {
      const opts = g();
      const repo = await openRepo(opts);
      let n = 0;
      const readable = new Set<string>();
      for (const { id, lock } of await listLocks(repo)) {
        readable.add(id);
        if (o.removeAll || isStale(lock)) { await repo.backend.remove({ type: 'locks', name: id }).catch(() => {}); n++; }
      }
      if (o.removeAll) {
        // lock files that cannot be decoded are only removed with --remove-all (as restic)
        for (const f of await repo.backend.list('locks')) {
          if (!readable.has(f.name)) { await repo.backend.remove({ type: 'locks', name: f.name }).catch(() => {}); n++; }
        }
      }
      if (!opts.quiet) process.stdout.write(`successfully removed ${n} locks\n`);
    });
}
