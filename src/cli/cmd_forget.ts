import type { Command } from 'commander';
import { parseDuration, parseGroupBy, parseTagList, type ForgetPolicy } from '../maintenance/forget.js';
import { forget } from '../ops/forget.js';
import { UserError } from '../repo/errors.js';
import { addPruneFlags, runPrune, type PruneFlags } from './cmd_prune.js';
import { lockRepo, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { snapshotJSON } from './cmd_snapshots.js';
import type { SnapshotWithId } from '../repo/snapshot.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface ForgetFlags extends PruneFlags {
  keepLast?: string; keepHourly?: string; keepDaily?: string; keepWeekly?: string; keepMonthly?: string; keepYearly?: string;
  keepWithin?: string; keepWithinHourly?: string; keepWithinDaily?: string; keepWithinWeekly?: string; keepWithinMonthly?: string; keepWithinYearly?: string;
  keepTag: string[]; host: string[]; tag: string[]; path: string[]; groupBy: string; dryRun?: boolean; prune?: boolean; unsafeAllowRemoveAll?: boolean;
}

function int(s: string | undefined, flag: string): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s)) throw new UserError(`invalid value "${s}" for ${flag}: expected a whole number of at least 0`);
  return Number(s);
}

function dur(s: string | undefined, flag: string) {
  if (s === undefined) return undefined;
  try { return parseDuration(s); } catch (e) { throw new UserError(`invalid duration "${s}" for ${flag}: ${(e as Error).message}`); }
}

export function register(program: Command, g: () => GlobalOpts): void {
  addPruneFlags(program.command('forget').description('remove snapshots from the repository according to a policy (and optionally prune)')
    .argument('[snapshotID...]', 'remove exactly these snapshots')
    .option('-l, --keep-last <n>', 'keep the last n snapshots')
    .option('-H, --keep-hourly <n>', 'keep the last n hourly snapshots')
    .option('-d, --keep-daily <n>', 'keep the last n daily snapshots')
    .option('-w, --keep-weekly <n>', 'keep the last n weekly snapshots')
    .option('-m, --keep-monthly <n>', 'keep the last n monthly snapshots')
    .option('-y, --keep-yearly <n>', 'keep the last n yearly snapshots')
    .option('--keep-within <duration>', 'keep snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot')
    .option('--keep-within-hourly <duration>', 'keep hourly snapshots that are newer than duration relative to the latest snapshot')
    .option('--keep-within-daily <duration>', 'keep daily snapshots that are newer than duration relative to the latest snapshot')
    .option('--keep-within-weekly <duration>', 'keep weekly snapshots that are newer than duration relative to the latest snapshot')
    .option('--keep-within-monthly <duration>', 'keep monthly snapshots that are newer than duration relative to the latest snapshot')
    .option('--keep-within-yearly <duration>', 'keep yearly snapshots that are newer than duration relative to the latest snapshot')
    .option('--keep-tag <taglist>', 'keep snapshots with this taglist (can be specified multiple times)', collect, [])
    .option('--host <host>', 'only consider snapshots with the given host (can be specified multiple times)', collect, [])
    .option('--tag <taglist>', 'only consider snapshots including tag[,tag,...] (can be specified multiple times)', collect, [])
    .option('--path <path>', 'only consider snapshots including this (absolute) path (can be specified multiple times)', collect, [])
    .option('-g, --group-by <group>', 'string for grouping snapshots by host,paths,tags', 'host,paths')
    .option('-n, --dry-run', 'do not delete anything, just print what would be done')
    .option('--prune', 'automatically run the \'prune\' command if snapshots have been removed')
    .option('--unsafe-allow-remove-all', 'allow deleting all snapshots of a snapshot group'))
    .action(async (ids: string[], f: ForgetFlags) => {
      const opts = g();
      const policy: ForgetPolicy = {
        last: int(f.keepLast, '--keep-last'), hourly: int(f.keepHourly, '--keep-hourly'), daily: int(f.keepDaily, '--keep-daily'),
        weekly: int(f.keepWeekly, '--keep-weekly'), monthly: int(f.keepMonthly, '--keep-monthly'), yearly: int(f.keepYearly, '--keep-yearly'),
        within: dur(f.keepWithin, '--keep-within'), withinHourly: dur(f.keepWithinHourly, '--keep-within-hourly'),
        withinDaily: dur(f.keepWithinDaily, '--keep-within-daily'), withinWeekly: dur(f.keepWithinWeekly, '--keep-within-weekly'),
        withinMonthly: dur(f.keepWithinMonthly, '--keep-within-monthly'), withinYearly: dur(f.keepWithinYearly, '--keep-within-yearly'),
        tags: f.keepTag.map(parseTagList),
      };
      let groupBy;
      try { groupBy = parseGroupBy(f.groupBy); } catch (e) { throw new UserError((e as Error).message); }
      const repo = await openRepo(opts);
      const lock = await lockRepo(repo, true, opts);
      const say = (s: string) => { if (!opts.quiet && !opts.json) process.stdout.write(`${s}\n`); };
      try {
        // restic's grouping sorts each snapshot's paths in place, and its tags when grouping by tags
        const byBytes = (l: string[]) => [...l].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        const sorted = (sn: SnapshotWithId): SnapshotWithId => ({ ...sn, paths: byBytes(sn.paths), ...(groupBy.tags && sn.tags ? { tags: byBytes(sn.tags) } : {}) });
        const r = await forget(repo, {
          ids, policy, filter: { hosts: f.host, tags: f.tag.map(parseTagList), paths: f.path }, groupBy,
          unsafeAllowRemoveAll: f.unsafeAllowRemoveAll, dryRun: f.dryRun,
          progress: {
            group: (gr) => {
              if (opts.json || opts.quiet) return;
              say(`snapshots for ${[gr.key.hostname !== undefined ? `host [${gr.key.hostname}]` : '', gr.key.paths ? `paths [${gr.key.paths.join(', ')}]` : '', gr.key.tags ? `tags [${gr.key.tags.join(', ')}]` : ''].filter(Boolean).join(', ') || '(all)'}:`);
              say(`keep ${gr.keep.length} snapshots:`);
              for (const x of gr.reasons) say(`  ${x.snapshot.id.slice(0, 8)}  ${x.snapshot.time}  ${x.matches.join(', ')}`);
              if (gr.remove.length) {
                say(`remove ${gr.remove.length} snapshots:`);
                for (const s of gr.remove) say(`  ${s.id.slice(0, 8)}  ${s.time}`);
              }
              say('');
            },
          },
        });
        if (r.noPolicy) say('no policy was specified, no snapshots will be removed');
        const toRemove = r.removed;
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(r.groups.map((gr) => ({
            tags: gr.key.tags ?? null, host: gr.key.hostname ?? '', paths: gr.key.paths ?? null,
            keep: gr.keep.map((sn) => snapshotJSON(sorted(sn))), remove: gr.remove.length ? gr.remove.map((sn) => snapshotJSON(sorted(sn))) : null,
            // restic 0.14 prints a reason's snapshot as stored: without id and short_id
            reasons: gr.reasons.map((x) => ({ snapshot: (({ id: _id, ...rest }) => rest)(sorted(x.snapshot)), matches: x.matches, counters: x.counters })),
          })))}\n`);
        }
        if (f.dryRun) {
          say(`would have removed ${toRemove.length} snapshots`);
          return;
        }
        say(`removed ${toRemove.length} snapshots`);
        if (f.prune && toRemove.length) {
          say('');
          await runPrune(repo, { ...f, dryRun: false }, opts);
        }
      } finally {
        await unlockRepo(lock);
      }
    });
}
