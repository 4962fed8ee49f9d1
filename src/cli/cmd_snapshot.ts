import type { Command } from 'commander';
import { parseExcludeFile } from '../archiver/exclude.js';
import { backup, type BackupProgress } from '../ops/backup.js';
import { UserError } from '../repo/errors.js';
import { parseCompression } from '../repo/zstd.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { Progress, formatBytes, formatDuration } from './progress.js';
import { readInputFile } from './inputfile.js';
import { setExitCode } from './exit.js';
import { validParsed } from './flags.js';
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
      const verbosity = opts.json || opts.quiet ? 0 : opts.verbose ?? 0;
      const text = !opts.json && !opts.quiet;
      // restic prints -v/-vv lines on stdout
      const out = (line: string) => { process.stdout.write(`${line}\n`); };
      const given = [...paths];
      // --files-from lines are literal paths: no ~, globs or variables are expanded (as restic)
      for (const f of o.filesFrom) given.push(...(await readInputFile(f, '--files-from')).split(/\r?\n/).filter((l) => l && !l.startsWith('#')));
      if (given.length === 0) throw new UserError('nothing to backup, please specify target files/dirs');
      const excludes = [...o.exclude];
      const iexcludes = [...o.iexclude];
      for (const f of o.excludeFile) excludes.push(...parseExcludeFile(await readInputFile(f, '--exclude-file'), process.env));
      for (const f of o.iexcludeFile) iexcludes.push(...parseExcludeFile(await readInputFile(f, '--iexclude-file'), process.env));
      const compression = parseCompression(o.compression ?? 'auto');
      const mode = opts.json ? 'json' : process.stderr.isTTY && !opts.quiet ? 'tty' : 'none';
      const progress = new Progress(mode);
      const missing = new Set<string>();
      const goTargets = () => `[${given.filter((t) => !missing.has(t)).join(' ')}]`;
      const events: BackupProgress = {
        // restic's rule (src/ops/backup.ts): missing targets are skipped with a warning; none left = fatal
        missing: (t) => { missing.add(t); process.stderr.write(`${t} does not exist, skipping\n`); },
        opening: () => { if (verbosity >= 1) out('open repository'); },
        locking: () => { if (verbosity >= 1) { out('lock repository'); out('load index files'); } },
        locked: () => { if (mode !== 'none') progress.start(); },
        fileDone: (b) => {
          progress.c.filesDone++;
          progress.c.bytesDone += b;
        },
        error: (p, e) => {
          progress.c.errors++;
          const msg = `error: ${p}: ${describeSystemError(e)}`.replace(/\s+/g, ' ');
          if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'error', error: { message: e.message }, during: 'archival', item: p })}\n`);
          else process.stderr.write(`${msg}\n`);
        },
        warning: (m) => { process.stderr.write(`warning: ${m}\n`); },
        parent: (id) => {
          if (text) out(id ? `using parent snapshot ${id.slice(0, 8)}` : 'no parent snapshot found, will read all files');
          if (verbosity >= 1) { out(`start scan on ${goTargets()}`); out(`start backup on ${goTargets()}`); }
        },
        // the scan counts what there is (progress totals, and -v's "scan finished" line)
        scanned: (f, b) => { progress.c.totalFiles += f; progress.c.totalBytes += b; },
        scanFinished: (files, bytes, sec) => {
          progress.c.scanDone = true;
          if (verbosity >= 1) out(`scan finished in ${sec.toFixed(3)}s: ${files} files, ${formatBytes(bytes)}`);
        },
        // restic's -vv lines (only then: a clock read per file)
        ...(verbosity >= 2 ? {
          item: (kind, status, p, sec, added, meta) => {
            if (status === 'unchanged') { out(`unchanged ${p}`); return; }
            const head = `${status === 'new' ? 'new      ' : 'modified '} ${p}, saved in ${sec.toFixed(3)}s`;
            // a directory adds no data of its own (restic prints 0 B added, 0 B stored); the per-file
            // stored (compressed) size is not known when the file completes: omitted
            out(kind === 'dir' ? `${head} (${formatBytes(added)} added, 0 B stored, ${formatBytes(meta)} metadata)` : `${head} (${formatBytes(added)} added)`);
          },
        } satisfies Partial<BackupProgress> : {}),
      };
      try {
        const s = await backup(() => openRepo(opts, { compression }), {
          targets: given,
          tags: o.tag.flatMap((t) => t.split(',')).filter(Boolean),
          host: o.host,
          excludes,
          iexcludes,
          excludeLargerThan: o.excludeLargerThan ? parseSize(o.excludeLargerThan) : undefined,
          oneFileSystem: o.oneFileSystem,
          parent: o.parent,
          force: o.force,
          scan: mode !== 'none' || verbosity >= 1,
          ...lockOptions(opts),
          progress: events,
        });
        progress.stop();
        if (opts.json) {
          const { errors: _e, parent: _p, ...rest } = s;
          process.stdout.write(`${JSON.stringify({ message_type: 'summary', ...rest })}\n`);
        } else if (!opts.quiet) {
          // restic 0.14's summary
          const n = (x: number) => String(x).padStart(5);
          out('');
          out(`Files:       ${n(s.files_new)} new, ${n(s.files_changed)} changed, ${n(s.files_unmodified)} unmodified`);
          out(`Dirs:        ${n(s.dirs_new)} new, ${n(s.dirs_changed)} changed, ${n(s.dirs_unmodified)} unmodified`);
          if (verbosity >= 1) {
            out(`Data Blobs:  ${n(s.data_blobs)} new`);
            out(`Tree Blobs:  ${n(s.tree_blobs)} new`);
          }
          out(`Added to the repository: ${formatBytes(s.data_added)}`);
          out('');
          out(`processed ${s.total_files_processed} files, ${formatBytes(s.total_bytes_processed)} in ${formatDuration(s.total_duration)}`);
          out(`snapshot ${s.snapshot_id.slice(0, 8)} saved`);
        }
        if (s.errors > 0) {
          if (!opts.json) process.stderr.write(`Warning: at least one source file could not be read\n`);
          setExitCode(3);
        }
      } finally {
        progress.stop();
      }
    });
}
