/** `jbackup stats`: ops stats, rendered as restic 0.14 prints it (text or --json). */
import type { Command } from 'commander';
import { stats, STATS_MODES, type StatsMode } from '../ops/inspect.js';
import { UserError } from '../repo/errors.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { formatBytes } from './progress.js';
import { filterFlags, selection, type FilterFlags } from './filters.js';

export function register(program: Command, g: () => GlobalOpts): void {
  filterFlags(program.command('stats').description('scan the repository and show basic statistics')
    .argument('[snapshotID...]')
    .option('--mode <mode>', 'counting mode: restore-size (default), files-by-contents, blobs-per-file or raw-data', 'restore-size'))
    .action(async (ids: string[], o: { mode: string } & FilterFlags) => {
      const opts = g();
      if (!STATS_MODES.includes(o.mode as StatsMode)) throw new UserError(`unknown counting mode: ${o.mode} (use ${STATS_MODES.join(', ')})`);
      const repo = await openRepo(opts);
      const r = await stats(repo, {
        ...selection(ids, o), ...lockOptions(opts), mode: o.mode as StatsMode,
        scanning: () => { if (!opts.json && !opts.quiet) process.stdout.write('scanning...\n'); },
      });
      if (opts.json) { process.stdout.write(`${JSON.stringify(r)}\n`); return; }
      process.stdout.write(`Stats in ${o.mode} mode:\nSnapshots processed:   ${r.snapshots_count}\n`);
      if (r.total_blob_count) process.stdout.write(`   Total Blob Count:   ${r.total_blob_count}\n`);
      if (r.total_file_count) process.stdout.write(`   Total File Count:   ${r.total_file_count}\n`);
      process.stdout.write(`         Total Size:   ${formatBytes(r.total_size).padEnd(5)}\n`);
    });
}
