import type { Command } from 'commander';
import { UserError } from '../repo/errors.js';
import { restore } from '../ops/restore.js';
import { lockOptions, openRepo, type GlobalOpts } from './global.js';
import { formatBytes, formatDuration } from './progress.js';
import { setExitCode } from './exit.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * Restore progress as restic ≥ 0.16 shows it (0.14 shows none): a live line on a TTY (stderr)
 * with files and bytes done of the totals, percentage, rate and ETA; with --json `status` lines
 * once a second (`message_type, seconds_elapsed, seconds_remaining, percent_done, total_files,
 * files_restored, total_bytes, bytes_restored`).
 */
class RestoreProgressView {
  files = 0;
  bytes = 0;
  totalFiles = 0;
  totalBytes = 0;
  errors = 0;
  private known = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private lastLen = 0;

  constructor(private mode: 'tty' | 'json' | 'none') {}

  totals(files: number, bytes: number): void {
    this.totalFiles = files;
    this.totalBytes = bytes;
    this.known = true;
  }

  elapsed(): number {
    return (Date.now() - this.started) / 1000;
  }

  start(): void {
    if (this.mode === 'none') return;
    this.timer = setInterval(() => this.render(), this.mode === 'json' ? 1000 : 250);
    this.timer.unref();
  }

  private render(): void {
    const el = this.elapsed();
    const rate = el > 0 ? this.bytes / el : 0;
    const pct = this.totalBytes > 0 ? Math.min(1, this.bytes / this.totalBytes) : this.known && this.files >= this.totalFiles ? 1 : 0;
    const remaining = this.known && rate > 0 ? Math.max(0, (this.totalBytes - this.bytes) / rate) : undefined;
    if (this.mode === 'json') {
      const o: Record<string, unknown> = { message_type: 'status', seconds_elapsed: Math.round(el) };
      if (remaining !== undefined) o['seconds_remaining'] = Math.round(remaining);
      Object.assign(o, { percent_done: pct, total_files: this.totalFiles, files_restored: this.files, total_bytes: this.totalBytes, bytes_restored: this.bytes });
      process.stdout.write(`${JSON.stringify(o)}\n`);
      return;
    }
    const eta = remaining !== undefined ? ` ETA ${formatDuration(remaining)}` : '';
    const line = `[${formatDuration(el)}] ${(pct * 100).toFixed(2)}%  ${this.files} files ${formatBytes(this.bytes)}, total ${this.totalFiles} files ${formatBytes(this.totalBytes)}, ${formatBytes(rate)}/s${eta}${this.errors ? `, ${this.errors} errors` : ''}`;
    const cols = process.stderr.columns || 120;
    const out = line.length > cols - 1 ? line.slice(0, cols - 1) : line;
    process.stderr.write(`\r${out}${' '.repeat(Math.max(0, this.lastLen - out.length))}`);
    this.lastLen = out.length;
  }

  /** a line that is not progress: clear the live line first */
  clearLine(): void {
    if (this.mode === 'tty' && this.lastLen) process.stderr.write(`\r${' '.repeat(this.lastLen)}\r`);
    this.lastLen = 0;
  }

  /** a last status with the final figures (a restore shorter than the interval shows one too), then the line is cleared */
  stop(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.render();
    }
    this.timer = undefined;
    this.clearLine();
  }
}

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
      const mode = opts.json ? 'json' : process.stderr.isTTY && !opts.quiet ? 'tty' : 'none';
      const progress = new RestoreProgressView(mode);
      try {
        const s = await restore(repo, {
          ...lockOptions(opts),
          snapshot: snapRef, host: o.host, paths: o.path, tags: o.tag.flatMap((t) => t.split(',')),
          target,
          subpath,
          includes: o.include, iincludes: o.iinclude,
          excludes: o.exclude, iexcludes: o.iexclude,
          verify: o.verify,
          progress: {
            snapshot: (snap) => {
              if (!opts.json && !opts.quiet) process.stdout.write(`restoring snapshot ${snap.id.slice(0, 8)} of ${JSON.stringify(snap.paths)} at ${snap.time} by ${snap.username}@${snap.hostname} to ${target}\n`);
              progress.start();
            },
            totals: (files, bytes) => progress.totals(files, bytes),
            bytes: (n) => { progress.bytes += n; },
            fileDone: () => { progress.files++; },
            error: (p, e) => {
              progress.errors++;
              if (opts.json) process.stdout.write(`${JSON.stringify({ message_type: 'error', error: { message: e.message }, during: 'restore', item: p })}\n`);
              else {
                progress.clearLine();
                process.stderr.write(`ignoring error for ${p}: ${e.message}\n`);
              }
            },
          },
        });
        const snap = s.snapshot;
        progress.stop();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({
            message_type: 'summary', seconds_elapsed: Math.round(progress.elapsed()), total_files: s.totalFiles, files_restored: s.files,
            total_bytes: s.totalBytes, bytes_restored: s.bytes, snapshot_id: snap.id,
          })}\n`);
        } else if (!opts.quiet) {
          const failed = s.totalFiles - s.files;
          process.stdout.write(`restored ${s.files} files${failed ? ` (${failed} failed)` : ''}, ${s.dirs} dirs, ${formatBytes(s.bytes)}${o.verify ? ' (verified)' : ''}\n`);
        }
        if (s.errors) {
          process.stderr.write(`There were ${s.errors} errors\n`);
          setExitCode(1);
        }
      } finally {
        progress.stop();
      }
    });
}
