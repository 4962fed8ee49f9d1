import type { Command } from 'commander';
import { Archiver, type ArchiveSummary } from '../archiver/archiver.js';
import { makeMatcher, parseExcludeFile } from '../archiver/exclude.js';
import { scan } from '../archiver/scanner.js';
import { Prescan } from '../archiver/prescan.js';
import type { Repository } from '../repo/repository.js';
import type { Lock } from '../repo/lock.js';
import { UserError } from '../repo/errors.js';
import { parseCompression } from '../repo/zstd.js';
import { lockAndLoadIndex, openRepo, unlockRepo, type GlobalOpts } from './global.js';
import { Progress, formatBytes } from './progress.js';
import { setExitCode } from './exit.js';
import { readFlagFile, validParsed } from './flags.js';
import { describeSystemError } from '../util/syserr.js';

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new UserError(`invalid size "${s}"`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface SnapOpts {
  tag: string[]; host?: string; exclude: string[]; iexclude: string[]; excludeFile: string[]; iexcludeFile: string[];
  excludeLargerThan?: string; oneFileSystem?: boolean; parent?: string; force?: boolean; compression?: string; filesFrom: string[];
}

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('snapshot').alias('backup').description('create a new snapshot of files and directories')
    .argument('[paths...]', 'files and directories to back up')
    .option('--tag <tags>', 'add tags for the new snapshot in the format `tag[,tag,...]` (can be specified multiple times)', collect, [])
    .option('-H, --host <hostname>', 'set the hostname for the snapshot manually')
    .option('-e, --exclude <pattern>', 'exclude a pattern (can be specified multiple times)', collect, [])
    .option('--iexclude <pattern>', 'same as --exclude but ignores the casing of filenames', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file (can be specified multiple times)', collect, [])
    .option('--iexclude-file <file>', 'same as --exclude-file but ignores casing', collect, [])
    .option('--exclude-larger-than <size>', 'max size of the files to be backed up (allowed suffixes: k/K, m/M, g/G, t/T)', validParsed('--exclude-larger-than', parseSize))
    .option('-x, --one-file-system', 'exclude other file systems, don\'t cross filesystem boundaries and subvolumes')
    .option('--files-from <file>', 'read the files to backup from file (can be combined with file args)', collect, [])
    .option('--parent <snapshot>', 'use this parent snapshot (default: last snapshot in the repository that has the same target files/directories)')
    .option('-f, --force', 'force re-reading the target files/directories (overrides the "parent" flag)')
    .option('--compression <mode>', 'compression mode: auto, off or max', 'auto')
    .action(async (paths: string[], o: SnapOpts) => {
      const opts = g();
      const targets = [...paths];
      for (const f of o.filesFrom) targets.push(...readFlagFile('--files-from', f).split(/\r?\n/).filter((l) => l && !l.startsWith('#')));
      if (targets.length === 0) throw new UserError('nothing to backup, please specify target files/dirs');
      const excludes = [...o.exclude];
      const iexcludes = [...o.iexclude];
      for (const f of o.excludeFile) excludes.push(...parseExcludeFile(readFlagFile('--exclude-file', f)));
      for (const f of o.iexcludeFile) iexcludes.push(...parseExcludeFile(readFlagFile('--iexclude-file', f)));
      const matcher = makeMatcher(excludes, iexcludes);
      const compression = parseCompression(o.compression ?? 'auto');
      // read the targets' directories while the key is derived and the lock settles (main thread idle)
      const prescan = new Prescan(targets, matcher, !!o.oneFileSystem);
      let repo: Repository;
      try {
        repo = await openRepo(opts, { compression });
      } catch (e) {
        prescan.stop();
        throw e;
      }
      let archiver: Archiver | null = null;
      const mode = opts.json ? 'json' : process.stderr.isTTY && !opts.quiet ? 'tty' : 'none';
      const progress = new Progress(mode);
      const stopScan = { stop: false };
      const verbose = (opts.verbose ?? 0) > 0 && !opts.json;
      let lock: Lock | null;
      let running: Promise<ArchiveSummary> | null = null;
      try {
        const parent = o.parent ? await repo.findSnapshot(o.parent) : undefined;
        archiver = new Archiver(repo, {
          targets,
          tags: o.tag.flatMap((t) => t.split(',')).filter(Boolean),
          host: o.host,
          excludes: matcher,
          excludePatterns: [...excludes, ...iexcludes],
          excludeLargerThan: o.excludeLargerThan ? parseSize(o.excludeLargerThan) : undefined,
          oneFileSystem: o.oneFileSystem,
          parent: o.force ? null : parent,
          force: o.force,
          progress: {
            fileDone: (p, b) => {
              progress.c.filesDone++;
              progress.c.bytesDone += b;
              if ((opts.verbose ?? 0) > 1 && !opts.json) process.stderr.write(`${p}\n`);
            },
            error: (p, e) => {
              progress.c.errors++;
              const msg = `error: ${p}: ${describeSystemError(e)}`.replace(/\s+/g, ' ');
              if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'error', error: { message: e.message }, during: 'archival', item: p })}\n`);
              else process.stderr.write(`${msg}\n`);
            },
          },
          prescan,
        });
        // The walk starts while the lock settles (its 200 ms wait), once the index is loaded; nothing
        // it produces is published before the lock holds (the repository's write gate), and if the
        // lock fails the run is stopped and its pending writes fail.
        const a = archiver;
        let open!: () => void;
        let refuse!: (e: Error) => void;
        repo.gateWrites(new Promise<void>((resolve, reject) => { open = resolve; refuse = reject; }));
        try {
          lock = await lockAndLoadIndex(repo, false, opts, () => {
            running = a.run();
            running.catch(() => {});
          });
        } catch (e) {
          refuse(e as Error);
          if (running) {
            a.abort(e as Error);
            await (running as Promise<unknown>).catch(() => {});
          }
          throw e;
        }
        open();
      } catch (e) {
        prescan.stop();
        throw e;
      }
      try {
        if (mode !== 'none') {
          void scan(targets, matcher, (f, b) => { progress.c.totalFiles += f; progress.c.totalBytes += b; }, stopScan)
            .then(() => { progress.c.scanDone = true; });
          progress.start();
        }
        const s = await (running ?? archiver.run());
        stopScan.stop = true;
        progress.stop();
        if (opts.json) {
          const { errors: _e, parent: _p, ...rest } = s;
          process.stdout.write(`${JSON.stringify({ message_type: 'summary', ...rest })}\n`);
        } else if (!opts.quiet) {
          const out = process.stdout;
          if (s.parent) out.write(`using parent snapshot ${s.parent.slice(0, 8)}\n`);
          if (verbose || true) {
            out.write(`\nFiles:       ${s.files_new} new, ${s.files_changed} changed, ${s.files_unmodified} unmodified\n`);
            out.write(`Dirs:        ${s.dirs_new} new, ${s.dirs_changed} changed, ${s.dirs_unmodified} unmodified\n`);
            out.write(`Added to the repository: ${formatBytes(s.data_added)}\n\n`);
            out.write(`processed ${s.total_files_processed} files, ${formatBytes(s.total_bytes_processed)} in ${s.total_duration.toFixed(2)}s\n`);
          }
          out.write(`snapshot ${s.snapshot_id.slice(0, 8)} saved\n`);
        }
        if (s.errors > 0) {
          if (!opts.json) process.stderr.write(`Warning: at least one source file could not be read\n`);
          setExitCode(3);
        }
      } finally {
        stopScan.stop = true;
        progress.stop();
        await unlockRepo(lock);
      }
    });
}
