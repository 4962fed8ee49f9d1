import type { Command } from 'commander';
import { parseSubset } from '../maintenance/check.js';
import { check as checkRepository } from '../ops/check.js';
import { UserError } from '../repo/errors.js';
import { lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { setExitCode } from './exit.js';
import { validParsed } from './flags.js';
import { ItemProgress } from './progress.js';

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('check').description('check the repository for errors')
    .option('--read-data', 'read all data blobs')
    .option('--read-data-subset <subset>', 'read a subset of data packs, specified as n/t, x% or a size like 500M', validParsed('--read-data-subset', parseSubset))
    .option('--check-unused', 'find unused blobs')
    .action(async (o: { readData?: boolean; readDataSubset?: string; checkUnused?: boolean }) => {
      const opts = g();
      if (o.readData && o.readDataSubset) throw new UserError('check flags --read-data and --read-data-subset cannot be used together');
      let readData = o.readData ? { kind: 'all' as const } : null;
      if (o.readDataSubset) {
        try { readData = parseSubset(o.readDataSubset) as never; } catch (e) { throw new UserError((e as Error).message); }
      }
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, true, opts);
      const say = (s: string) => { if (!opts.quiet && !opts.json) process.stdout.write(`${s}\n`); };
      try {
        say('load indexes');
        // read-data progress: packs and bytes of the total, %, rate and ETA (a live stderr line on a
        // terminal, status lines with --json)
        const mode = opts.json ? 'json' : process.stderr.isTTY && !opts.quiet ? 'tty' : 'none';
        const progress = new ItemProgress(readData ? mode : 'none', { unit: 'packs', json: { done: 'packs_done', total: 'total_packs' } });
        let r;
        try {
          r = await checkRepository(repo, {
            readData,
            checkUnused: o.checkUnused,
            progress: {
              packRead: (d, t, bd, bt) => { Object.assign(progress.c, { itemsDone: d, itemsTotal: t, bytesDone: bd, bytesTotal: bt }); progress.start(); },
              error: () => { progress.c.errors++; },
            },
          });
        } catch (e) {
          progress.stop();
          throw e;
        }
        progress.finish();
        say(`checked ${r.packs} packs, ${r.snapshots} snapshots, ${r.trees} trees${readData ? `, read ${r.packsRead} packs` : ''}`);
        const verbose = (opts.verbose ?? 0) > 0;
        for (const p of r.problems) {
          if (p.kind === 'hint' && !verbose && !/several indexes|mix of tree/.test(p.message)) continue;
          const line = `${p.kind === 'error' ? 'error' : 'hint'}: ${p.object}: ${p.message}`;
          if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: p.kind, object: p.object, message: p.message })}\n`);
          else if (p.kind === 'error') process.stderr.write(`${line}\n`);
          else process.stdout.write(`${line}\n`);
        }
        if (r.ok) {
          if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'summary', ok: true, packs: r.packs, snapshots: r.snapshots, packs_read: r.packsRead })}\n`);
          else say('no errors were found');
        } else {
          const n = r.problems.filter((p) => p.kind === 'error').length;
          if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'summary', ok: false, errors: n })}\n`);
          process.stderr.write(`Fatal: repository contains errors (${n})\n`);
          setExitCode(1);
        }
      } finally {
        await unlockRepo(lock);
      }
    });
}
