import type { Command } from 'commander';
import { parseMaxUnused } from '../maintenance/prune.js';
import { prune, type PruneStats } from '../ops/prune.js';
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

/** restic's Go "%3.2f%%" of a fraction; empty when there is no total */
function percent(n: number, d: number): string {
  return d === 0 ? '' : `${Math.min(100, (100 * n) / d).toFixed(2)}%`;
}

/**
 * restic 0.14's printPruneStats, printed before prune changes anything: the blob statistics with -v,
 * always what will be repacked, deleted, pruned and what remains.
 */
export function planText(s: PruneStats, verbose: boolean): string {
  const p = s.plan ?? { repackBlobs: 0, repackSize: 0, repackRmBlobs: 0, repackRmSize: 0, removeBlobs: 0, removeSize: 0, unrefSize: 0 };
  const n = (x: number) => String(x).padStart(10);
  const totalBlobs = s.blobsUsed + s.blobsUnused;
  const totalSize = s.sizeUsed + s.sizeUnused + p.unrefSize;
  const pruneBlobs = p.removeBlobs + p.repackRmBlobs;
  const pruneSize = p.removeSize + p.repackRmSize + p.unrefSize;
  const unusedAfter = s.sizeUnused - p.removeSize - p.repackRmSize;
  let o = '';
  if (verbose) {
    o += `\nused:         ${n(s.blobsUsed)} blobs / ${formatBytes(s.sizeUsed)}\n`;
    o += `unused:       ${n(s.blobsUnused)} blobs / ${formatBytes(s.sizeUnused)}\n`;
    if (p.unrefSize > 0) o += `unreferenced:                    ${formatBytes(p.unrefSize)}\n`;
    o += `total:        ${n(totalBlobs)} blobs / ${formatBytes(totalSize)}\n`;
    o += `unused size: ${percent(s.sizeUnused, totalSize)} of total size\n`;
  }
  o += `\nto repack:    ${n(p.repackBlobs)} blobs / ${formatBytes(p.repackSize)}\n`;
  o += `this removes: ${n(p.repackRmBlobs)} blobs / ${formatBytes(p.repackRmSize)}\n`;
  o += `to delete:    ${n(p.removeBlobs)} blobs / ${formatBytes(p.removeSize + p.unrefSize)}\n`;
  o += `total prune:  ${n(pruneBlobs)} blobs / ${formatBytes(pruneSize)}\n`;
  o += `remaining:    ${n(totalBlobs - pruneBlobs)} blobs / ${formatBytes(totalSize - pruneSize)}\n`;
  o += `unused size after prune: ${formatBytes(unusedAfter)} (${percent(unusedAfter, totalSize - pruneSize)} of remaining size)\n\n`;
  if (verbose) {
    o += `to keep:      ${n(s.packsKeep)} packs\nto repack:    ${n(s.packsRepack)} packs\nto delete:    ${n(s.packsRemove)} packs\n`;
    if (s.packsUnreferenced > 0) o += `to delete:    ${n(s.packsUnreferenced)} unreferenced packs\n\n`;
  }
  return o;
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
    onPlan: (st) => { endLine(); if (!opts.quiet && !opts.json) process.stdout.write(planText(st, (opts.verbose ?? 0) > 0)); },
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
    say(f.dryRun ? 'would do the above; nothing changed (--dry-run)' : `done\nspace freed: ${formatBytes(s.sizeFreed)}`);
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
