import type { Command } from 'commander';
import { parseMaxUnused, prune, type PruneStats } from '../maintenance/prune.js';
import { UserError } from '../repo/errors.js';
import { parseSize } from './cmd_snapshot.js';
import { lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { formatBytes } from './progress.js';
import { validParsed } from './flags.js';
import type { Repository } from '../repo/repository.js';

export interface PruneFlags {
  maxUnused?: string; maxRepackSize?: string; repackUncompressed?: boolean; repackSmall?: boolean; dryRun?: boolean;
}

export function addPruneFlags(c: Command): Command {
  return c
    .option('--max-unused <limit>', 'tolerate given limit of unused data (absolute value in bytes with suffixes k/K, m/M, g/G, t/T, a value in % or the word \'unlimited\')', validParsed('--max-unused', parseMaxUnused), '5%')
    .option('--max-repack-size <size>', 'maximum size to repack (allowed suffixes: k/K, m/M, g/G, t/T)', validParsed('--max-repack-size', parseSize))
    .option('--repack-uncompressed', 'repack all uncompressed data')
    .option('--repack-small', 'repack pack files below 80% of target pack size');
}

/** Shared by `prune` and `forget --prune`. The caller holds the exclusive lock. */
export async function runPrune(repo: Repository, f: PruneFlags, opts: GlobalOpts): Promise<PruneStats> {
  let maxUnused;
  try { maxUnused = parseMaxUnused(f.maxUnused ?? '5%'); } catch (e) { throw new UserError((e as Error).message); }
  const delay = Number(process.env['JBACKUP_TEST_PRUNE_DELAY_MS'] ?? 0);
  const say = (s: string) => { if (!opts.quiet && !opts.json) process.stdout.write(`${s}\n`); };
  // a live progress line on a terminal (stderr), as restic shows for repacking and deleting
  const tty = !!process.stderr.isTTY && !opts.quiet && !opts.json;
  let live = false;
  const endLine = () => { if (live) { process.stderr.write('\n'); live = false; } };
  const s = await prune(repo, {
    maxUnused,
    maxRepackSize: f.maxRepackSize ? parseSize(f.maxRepackSize) : undefined,
    repackUncompressed: f.repackUncompressed,
    repackSmall: f.repackSmall,
    dryRun: f.dryRun,
    log: (l) => { endLine(); say(l); },
    progress: tty ? (phase, done, total) => {
      process.stderr.write(`\r${phase === 'repack' ? 'repacked' : 'deleted'} ${done} / ${total} packs`);
      live = true;
      if (done === total) endLine();
    } : undefined,
    beforeMutation: delay > 0 ? async (phase) => {
      if (process.env['JBACKUP_TEST_PRUNE_TRACE']) process.stderr.write(`phase ${phase}\n`);
      await new Promise((r) => setTimeout(r, delay));
    } : undefined,
  });
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ message_type: 'prune', dry_run: !!f.dryRun, ...s })}\n`);
  } else {
    say(`\nused:         ${s.blobsUsed} blobs / ${formatBytes(s.sizeUsed)}`);
    say(`unused:       ${s.blobsUnused} blobs / ${formatBytes(s.sizeUnused)}`);
    say(`to repack:    ${s.packsRepack} packs / ${formatBytes(s.sizeRepack)}`);
    say(`to delete:    ${s.packsRemove + s.packsUnreferenced} packs / ${formatBytes(s.sizeRemove)}`);
    say(`space freed:  ${formatBytes(s.sizeFreed)}`);
    say(`unused after: ${formatBytes(s.unusedAfter)}`);
    say(`packs: ${s.packsTotal} total, ${s.packsKeep} kept unchanged${f.dryRun ? '\n\nwould do the above; nothing changed (--dry-run)' : ''}`);
  }
  return s;
}

export function register(program: Command, g: () => GlobalOpts): void {
  addPruneFlags(program.command('prune').description('remove unneeded data from the repository'))
    .option('-n, --dry-run', 'do not modify the repository, just print what would be done')
    .action(async (f: PruneFlags) => {
      const opts = g();
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, true, opts);
      try {
        await runPrune(repo, f, opts);
      } finally {
        await unlockRepo(lock);
      }
    });
}
