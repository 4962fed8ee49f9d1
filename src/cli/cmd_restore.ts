import type { Command } from 'commander';
import { makeMatcher } from '../archiver/exclude.js';
import { UserError } from '../repo/errors.js';
import { Restorer } from '../restorer/restorer.js';
import { lockAndLoadIndex, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { formatBytes, Progress } from './progress.js';
import { setExitCode } from './exit.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface RestoreOpts {
  target?: string; include: string[]; exclude: string[]; iinclude: string[]; iexclude: string[]; verify?: boolean;
  host?: string; path: string[]; tag: string[];
}

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('restore').description('extract the data from a snapshot')
    .argument('<snapshotID>', 'snapshot id, or "latest", optionally followed by :subfolder')
    .argument('[target]', 'directory to restore into (or --target)')
    .option('-t, --target <dir>', 'directory to extract data to')
    .option('-i, --include <pattern>', 'include a pattern, exclude everything else (can be specified multiple times)', collect, [])
    .option('--iinclude <pattern>', 'same as --include but ignores the casing of filenames', collect, [])
    .option('-e, --exclude <pattern>', 'exclude a pattern (can be specified multiple times)', collect, [])
    .option('--iexclude <pattern>', 'same as --exclude but ignores the casing of filenames', collect, [])
    .option('--verify', 'verify restored files content')
    .option('-H, --host <host>', 'only consider snapshots for this host when the snapshot ID is "latest"')
    .option('--path <path>', 'only consider snapshots which include this (absolute) path for snapshot ID "latest"', collect, [])
    .option('--tag <taglist>', 'only consider snapshots which include this taglist for snapshot ID "latest"', collect, [])
    .action(async (ref: string, targetArg: string | undefined, o: RestoreOpts) => {
      const opts = g();
      const target = o.target ?? targetArg;
      if (!target) throw new UserError('please specify a directory to restore to (--target)');
      if (o.target && targetArg) throw new UserError('specify the target either as an argument or with --target, not both');
      const colon = ref.indexOf(':');
      const snapRef = colon >= 0 ? ref.slice(0, colon) : ref;
      const subpath = colon >= 0 ? ref.slice(colon + 1) : undefined;
      const repo = await openRepo(opts);
      const lock = await lockAndLoadIndex(repo, false, opts);
      const mode = opts.json ? 'json' : process.stderr.isTTY && !opts.quiet ? 'tty' : 'none';
      const progress = new Progress(mode);
      try {
        const snap = await repo.findSnapshot(snapRef, { host: o.host, paths: o.path, tags: o.tag.flatMap((t) => t.split(',')) });
        if (!opts.json && !opts.quiet) process.stdout.write(`restoring snapshot ${snap.id.slice(0, 8)} of ${JSON.stringify(snap.paths)} at ${snap.time} by ${snap.username}@${snap.hostname} to ${target}\n`);
        progress.start();
        const r = new Restorer(repo, {
          target,
          subpath,
          includes: makeMatcher(o.include, o.iinclude),
          excludes: makeMatcher(o.exclude, o.iexclude),
          verify: o.verify,
          progress: {
            bytes: (n) => { progress.c.bytesDone += n; },
            error: (p, e) => {
              if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'error', error: { message: e.message }, during: 'restore', item: p })}\n`);
              else process.stderr.write(`ignoring error for ${p}: ${e.message}\n`);
            },
          },
        });
        const s = await r.run(snap.tree);
        progress.stop();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ message_type: 'summary', total_files: s.files, files_restored: s.files, total_bytes: s.bytes, bytes_restored: s.bytes, snapshot_id: snap.id })}\n`);
        } else if (!opts.quiet) {
          process.stdout.write(`restored ${s.files} files, ${s.dirs} dirs, ${formatBytes(s.bytes)}${o.verify ? ' (verified)' : ''}\n`);
        }
        if (s.errors) {
          process.stderr.write(`There were ${s.errors} errors\n`);
          setExitCode(1);
        }
      } finally {
        progress.stop();
        await unlockRepo(lock);
      }
    });
}
