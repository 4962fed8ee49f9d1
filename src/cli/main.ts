/** CLI entry: parse flags, call the library, map errors to restic's exit codes. */
import { Command, CommanderError } from 'commander';
import { addGlobalOptions, InterruptedError, releaseAll, type GlobalOpts } from './global.js';
import { formatSystemError, isSystemError } from '../util/syserr.js';
import { exitCode } from './exit.js';
import { EXIT, exitCodeOf } from '../ops/exit.js';
import { RepoNotFoundError, LockError, UserError, WrongPasswordError } from '../repo/errors.js';
import { AlreadyExistsError } from '../backend/backend.js';
import { removeOwnTempFiles } from '../backend/local.js';
import { VERSION } from '../version.js';
import { setMmapThreshold, setTrimThreshold } from '../native/native.js';
import * as init from './cmd_init.js';
import * as snapshot from './cmd_snapshot.js';
import * as restore from './cmd_restore.js';
import * as snapshots from './cmd_snapshots.js';
import * as ls from './cmd_ls.js';
import * as cat from './cmd_cat.js';
import * as check from './cmd_check.js';
import * as prune from './cmd_prune.js';
import * as key from './cmd_key.js';
import * as unlock from './cmd_unlock.js';
import * as find from './cmd_find.js';
import * as diff from './cmd_diff.js';
import * as dump from './cmd_dump.js';
import * as stats from './cmd_stats.js';
import * as repair from './cmd_repair.js';
import * as tag from './cmd_tag.js';
import * as copy from './cmd_copy.js';
import * as forget from './cmd_forget.js';
import * as jotta from './cmd_jotta.js';

type CommandModule = { register(program: Command, g: () => GlobalOpts): void };

/**
 * profile, run and schedule pull in TOML/plist parsers and the whole scheduling layer (~100 ms of
 * start-up): they are loaded only when their name appears on the command line, or for help.
 */
async function lazyCommands(argv: string[]): Promise<CommandModule[]> {
  const words = new Set(argv.slice(2));
  const all = words.has('help') || words.has('-h') || words.has('--help') || argv.length <= 2;
  const out: CommandModule[] = [];
  if (all || words.has('profile')) out.push(await import('./cmd_profile.js'));
  if (all || words.has('run')) out.push(await import('./cmd_run.js'));
  if (all || words.has('schedule')) out.push(await import('./cmd_schedule.js'));
  // the HTTP server and its modules, only for the commands that serve
  if (all || words.has('serve')) out.push(await import('./cmd_serve.js'));
  if (all || words.has('mount')) out.push(await import('./cmd_mount.js'));
  return out;
}

/**
 * restic's -v is a counter that also takes a level: -v, -vv, --verbose, --verbose=2. Commander knows
 * only the counter, so --verbose=N becomes N times --verbose (0: none). As in restic, "--verbose 2" is
 * level 1 followed by the argument "2".
 */
export function expandVerbose(argv: string[]): string[] {
  const out = argv.slice(0, 2);
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { out.push(...argv.slice(i)); break; }
    const m = /^--verbose=(.*)$/s.exec(a);
    if (!m) { out.push(a); continue; }
    if (!/^\d{1,2}$/.test(m[1]!)) throw new UserError(`invalid value "${m[1]}" for --verbose: expected a level from 0 to 99 (or repeat -v)`);
    for (let n = Number(m[1]); n > 0; n--) out.push('--verbose');
  }
  return out;
}

/**
 * `help <command> [<subcommand>…]` for every command that has subcommands: commander's own help
 * command looks at one word only (`help jotta login` showed jotta's help) and answered an unknown
 * topic with the general help and exit 0; restic says "unknown help topic" and exits 1.
 */
function addHelpCommands(c: Command): void {
  if (c.commands.length === 0) return;
  for (const sub of c.commands) addHelpCommands(sub);
  c.helpCommand(false);
  c.command('help [command...]').description('display help for command').action((words: string[]) => {
    let cur = c;
    for (const w of words) {
      const next = cur.commands.find((x) => x.name() === w || x.aliases().includes(w));
      if (!next || next.name() === 'help') throw new UserError(`unknown help topic "${words.join(' ')}": see "jbackup help" for the commands`);
      cur = next;
    }
    cur.help();
  });
}

let stdoutClosed = false;

export async function main(argv: string[]): Promise<number> {
  // glibc malloc (native addon; no-ops elsewhere): memory freed at the top of a heap goes back to the
  // OS beyond 1 MiB, and buffers up to 16 MiB come from the heaps (a fixed mmap threshold: glibc's
  // dynamic one is turned off by the first setting, and 128 KiB made every chunk buffer a fresh
  // mmap, +1 s of page faults per backup). Measured on the bench: peak RSS -10 MiB on backup and
  // restore, same time; a 1 MiB trim threshold alone gave -40 MiB at +10% time.
  // JBACKUP_TRIM_THRESHOLD / JBACKUP_MMAP_THRESHOLD (bytes) override; 0 leaves glibc's default.
  const mmapThreshold = process.env['JBACKUP_MMAP_THRESHOLD'];
  const trim = process.env['JBACKUP_TRIM_THRESHOLD'];
  if (trim !== '0') setTrimThreshold(trim ? Number(trim) : 1024 * 1024);
  if (mmapThreshold !== '0') setMmapThreshold(mmapThreshold ? Number(mmapThreshold) : 16 * 1024 * 1024);
  const program = new Command('jbackup');
  program.version(VERSION, '-V, --version').description('Deduplicating, encrypted backups in restic format v2 (local, Jottacloud)')
    .showHelpAfterError(false).exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) })
    // a subcommand's help lists the global flags too (they are accepted after the command's name)
    .configureHelp({ showGlobalOptions: true });
  addGlobalOptions(program);
  const g = () => program.opts<GlobalOpts>();
  for (const m of [init, snapshot, restore, snapshots, ls, cat, check, prune, key, unlock, find, diff, dump, stats, repair, tag, copy, forget, jotta, ...await lazyCommands(argv)]) m.register(program, g);
  program.command('version').description('print version information (as restic version)').action(() => {
    if (g().json) {
      process.stdout.write(`${JSON.stringify({ message_type: 'version', version: VERSION, node: process.version, platform: process.platform, arch: process.arch, node_flags: process.execArgv })}\n`);
    } else {
      process.stdout.write(`jbackup ${VERSION} on node ${process.version} ${process.platform}/${process.arch}\n`);
    }
  });
  addHelpCommands(program);
  program.commands.forEach((c) => c.exitOverride());

  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\nsignal ${sig} received, cleaning up\n`);
    void releaseAll().finally(() => process.exit(EXIT.interrupted));
  };
  // restic 0.14 tests whether a lock's process is alive with SIGHUP (unlock, stale checks): a backup
  // must survive that probe, so SIGHUP is ignored (this also keeps a backup running when its terminal closes)
  process.on('SIGHUP', () => {});
  // every way out (a signal's process.exit included) removes this process's temp files
  process.on('exit', () => { removeOwnTempFiles(); });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // a reader that went away (`jbackup dump … | head`): end quietly with restic's status, releasing the
  // lock (node ignores SIGPIPE and reports EPIPE as an error on the stream, uncaught: a stack trace)
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    stdoutClosed = e.code === 'EPIPE';
    if (!stdoutClosed) process.stderr.write(`Fatal: ${formatSystemError(e, 'standard output')}\n`);
    void releaseAll().finally(() => process.exit(stdoutClosed ? EXIT.pipe : EXIT.fatal));
  });
  // a closed standard error: nothing left to tell
  process.stderr.on('error', () => {});

  if (process.env['JBACKUP_DEBUG_MEM']) {
    const t = setInterval(() => {
      const m = process.memoryUsage();
      process.stderr.write(`mem rss=${m.rss >> 20} heap=${m.heapUsed >> 20}/${m.heapTotal >> 20} ext=${m.external >> 20} ab=${m.arrayBuffers >> 20} MiB\n`);
    }, 200);
    t.unref();
  }
  try {
    await program.parseAsync(expandVerbose(argv));
    return exitCode();
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return EXIT.fatal;
    }
    const err = e as Error;
    if (err instanceof InterruptedError) return exitCodeOf(err);
    const sys = err as NodeJS.ErrnoException;
    // a write to standard output after its reader left (the 'error' event may come after this)
    if (stdoutClosed || (sys.code === 'EPIPE' && sys.syscall === 'write' && sys.path === undefined)) return EXIT.pipe;
    const debug = program.opts<GlobalOpts>().debug || process.env['JBACKUP_DEBUG'];
    if (debug) process.stderr.write(`${err.stack ?? String(err)}\n`);
    // the message as restic words it; the code from the one mapping (src/ops/exit.ts)
    const msg = err instanceof LockError ? `unable to create lock in backend: ${err.message}`
      : err instanceof AlreadyExistsError ? `create repository failed: ${err.message}`
      : err instanceof RepoNotFoundError || err instanceof WrongPasswordError ? err.message
      : err instanceof UserError ? err.message.replace(/^Fatal: /, '')
      : isSystemError(err) ? formatSystemError(err) : (err.message || String(err));
    process.stderr.write(`Fatal: ${err instanceof LockError || err instanceof AlreadyExistsError || err instanceof RepoNotFoundError || err instanceof WrongPasswordError ? msg : msg.split('\n')[0]}\n`);
    return exitCodeOf(err);
  } finally {
    await releaseAll();
  }
}
