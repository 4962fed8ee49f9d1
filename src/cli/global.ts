/** Global flags, environment, password sources, repository opening: the only place that knows argv/env/TTY. */
import { readFileSync, readSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Command, Option } from 'commander';
import { openBackend, type BackendOptions } from '../backend/location.js';
import { Repository, type RepoOptions } from '../repo/repository.js';
import { Lock } from '../repo/lock.js';
import { RepoNotFoundError, UserError } from '../repo/errors.js';
import { isRemoteSpec, saveKdfHint } from './kdfhint.js';
import { jottaHardDeleteFromEnv, kdfParamsFromEnv, kdfThreadsFromEnv } from './envopts.js';
import type { KdfParams } from '../repo/kdf.js';
import { isInteractive, jottaRetryPolicy } from './jotta_retry.js';
import { passwordFromLine, passwordFromText } from '../util/pwtext.js';
import { describeSystemError, formatSystemError, isSystemError } from '../util/syserr.js';
import { intFlag, positiveFlag } from './flags.js';

export interface GlobalOpts {
  repo?: string;
  passwordFile?: string;
  passwordCommand?: string;
  keyHint?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: number;
  debug?: boolean;
  packSize?: string;
  /** false with --no-lock (commander's negated flag); read it through skipLock() */
  lock?: boolean;
  limitUpload?: string;
  limitDownload?: string;
  jottaConnections?: string;
  jottaHardDelete?: boolean;
}

export function addGlobalOptions(p: Command): Command {
  return p
    .option('-r, --repo <repository>', 'repository to back up to or restore from (env JBACKUP_REPOSITORY)')
    .option('-p, --password-file <file>', 'file to read the repository password from (env JBACKUP_PASSWORD_FILE)')
    .option('--password-command <command>', 'shell command to obtain the repository password from (env JBACKUP_PASSWORD_COMMAND)')
    .option('--key-hint <key>', 'key ID of key to try decrypting first (env JBACKUP_KEY_HINT)')
    .option('--json', 'set output mode to JSON for commands that support it')
    .option('-q, --quiet', 'do not output comprehensive progress report')
    .addOption(new Option('-v, --verbose', 'be verbose (specify multiple times or a level using --verbose=n)').argParser((_v, prev: number | undefined) => (prev ?? 0) + 1))
    .option('--pack-size <MiB>', 'set target pack size in MiB (env JBACKUP_PACK_SIZE)')
    .option('--no-lock', 'do not lock the repository, this allows some operations on read-only repositories')
    .option('--debug', 'print stack traces on errors')
    .option('--limit-upload <KiB/s>', 'limit uploads to the repository to this rate in KiB/s (every backend)')
    .option('--limit-download <KiB/s>', 'limit downloads from the repository to this rate in KiB/s (every backend)')
    .option('--jotta-connections <n>', 'concurrent connections to Jottacloud (default 4)')
    .option('--jotta-hard-delete', 'delete files on Jottacloud permanently instead of moving them to the trash (frees quota at once; env JBACKUP_JOTTA_HARD_DELETE=1)')
    .hook('preAction', (_p, action) => {
      actionName = commandPath(action);
      actionOpts = action.opts();
      backendOptions(p.opts<GlobalOpts>()); // a bad --limit-upload is reported before any password is asked for
      repoOptions(p.opts<GlobalOpts>()); // a bad --pack-size is reported before any password is asked for
    });
}

/** the running command, as "key add" */
let actionName = '';
let actionOpts: Record<string, unknown> = {};
function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x?.parent; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/**
 * The commands that honour --no-lock, as in restic 0.14 (cat, check, copy's source, diff, dump, find,
 * forget --dry-run, restore, snapshots, stats, tag; ls takes no lock at all); the others, which write,
 * lock anyway, as restic's do.
 */
const NO_LOCK_COMMANDS = new Set(['cat', 'check', 'copy', 'diff', 'dump', 'find', 'forget', 'restore', 'snapshots', 'stats', 'tag']);
function skipLock(g: GlobalOpts): boolean {
  if (g.lock !== false || !NO_LOCK_COMMANDS.has(actionName)) return false;
  if (actionName === 'forget' && !actionOpts['dryRun']) throw new UserError('--no-lock is only applicable in combination with --dry-run for forget command');
  return true;
}

/**
 * Backend options from the global flags: --limit-upload/--limit-download (KiB/s) for every backend,
 * Jottacloud's own; -v prints retries, resumes and token refreshes.
 */
export function backendOptions(g: GlobalOpts, command: string | undefined = actionName || undefined): BackendOptions {
  const conns = intFlag('--jotta-connections', g.jottaConnections, 1);
  const up = positiveFlag('--limit-upload', g.limitUpload);
  const down = positiveFlag('--limit-download', g.limitDownload);
  return {
    limits: {
      ...(up !== undefined ? { upload: up * 1024 } : {}),
      ...(down !== undefined ? { download: down * 1024 } : {}),
    },
    jotta: {
      ...(conns !== undefined ? { connections: conns } : {}),
      ...(g.jottaHardDelete || jottaHardDeleteFromEnv() ? { hardDelete: true } : {}),
      ...((g.verbose ?? 0) >= 1 ? { logger: (m: string) => { process.stderr.write(`${m}\n`); } } : {}),
      ...jottaRetryPolicy(isInteractive(command), !!g.quiet || !!g.json),
    },
  };
}

export function repoLocation(g: GlobalOpts): string {
  const r = g.repo ?? process.env['JBACKUP_REPOSITORY'];
  if (!r) throw new UserError('Please specify repository location (-r or JBACKUP_REPOSITORY)');
  return r;
}

/** Ctrl-C at a password prompt: the command ends with restic's exit code 130 (src/cli/main.ts) */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

/** a prompt on the terminal that does not echo what is typed */
export async function prompt(question: string): Promise<string> {
  const { createInterface } = await import('node:readline');
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
    out._writeToOutput = (s: string) => { if (s.includes(question)) process.stderr.write(s); };
    let done = false;
    rl.question(question, (a) => { done = true; rl.close(); process.stderr.write('\n'); resolve(a); });
    // without a SIGINT listener readline only pauses on Ctrl-C: nothing is left to do and node exits 0
    rl.on('SIGINT', () => { done = true; rl.close(); process.stderr.write('\n'); reject(new InterruptedError('interrupted')); });
    // Ctrl-D: no password
    rl.on('close', () => { if (!done) { done = true; process.stderr.write('\n'); resolve(''); } });
  });
}

/** one line from standard input, read a byte at a time so that nothing after it is consumed */
function readStdinLine(): Buffer {
  const bytes: number[] = [];
  const b = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, b, 0, 1, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // a non-blocking pipe with nothing in it yet: wait a little (not a spin) and read again
      if (code === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); continue; }
      if (code === 'EOF') break;
      throw new UserError(`Fatal: unable to read the password from standard input: ${describeSystemError(e)}`);
    }
    if (n === 0) break;
    bytes.push(b[0]!);
    if (b[0] === 0x0a) break;
  }
  return passwordFromLine(Buffer.from(bytes));
}

const EMPTY = 'Fatal: an empty password is not a password';
function nonEmpty(pw: Buffer, why: string): Buffer {
  if (pw.length === 0) throw new UserError(`${EMPTY}: ${why}`);
  return pw;
}

/**
 * restic 0.14's sources and order: a password file (--password-file, else JBACKUP_PASSWORD_FILE) or a
 * password command (likewise; not both), then JBACKUP_PASSWORD (as it is; empty counts as unset), then the
 * terminal prompt, or one line of standard input when it is not a terminal (read once, also for init:
 * restic asks twice only on a terminal). Files and command output follow src/util/pwtext.ts (trimmed
 * as restic trims). An empty password is refused everywhere, as restic does.
 */
export async function getPassword(g: GlobalOpts, opts: { confirm?: boolean; what?: string } = {}): Promise<Buffer> {
  // a flag replaces the environment variable of its own kind only, as restic's flag defaults do
  const file = g.passwordFile || process.env['JBACKUP_PASSWORD_FILE'];
  const cmd = g.passwordCommand || process.env['JBACKUP_PASSWORD_COMMAND'];
  if (file && cmd) throw new UserError('Fatal: password file and command are mutually exclusive options (--password-file/JBACKUP_PASSWORD_FILE, --password-command/JBACKUP_PASSWORD_COMMAND)');
  if (file) return passwordFile(file);
  if (cmd) return nonEmpty(runPasswordCommand(cmd), 'the password command printed no password');
  const env = process.env['JBACKUP_PASSWORD'];
  if (env) return Buffer.from(env);
  if (!process.stdin.isTTY) {
    const line = readStdinLine();
    if (line.length === 0) throw new UserError(`${EMPTY}: none was given (set JBACKUP_PASSWORD, --password-file or --password-command, pipe it to standard input, or run on a terminal)`);
    return line;
  }
  const what = opts.what ?? 'repository';
  const first = await prompt(`enter password for ${what}: `);
  if (first === '') throw new UserError(EMPTY);
  if (opts.confirm) {
    const again = await prompt('enter password again: ');
    if (again !== first) throw new UserError('Fatal: passwords do not match');
  }
  return Buffer.from(first);
}

/** a password file's password (src/util/pwtext.ts: trimmed as restic trims); empty refused */
export function passwordFile(f: string): Buffer {
  return nonEmpty(readPasswordFile(f), `the password file ${f} holds no password (only white space)`);
}

function readPasswordFile(f: string): Buffer {
  try {
    return passwordFromText(readFileSync(f));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`Fatal: the password file ${f} does not exist`);
    throw new UserError(`Fatal: unable to read the password file ${f}: ${describeSystemError(e)}`);
  }
}

function runPasswordCommand(c: string): Buffer {
  const r = spawnSync('/bin/sh', ['-c', c], { stdio: ['inherit', 'pipe', 'inherit'] });
  if (r.error) throw new UserError(`Fatal: the password command could not be run: ${r.error.message}`);
  if (r.status !== 0) throw new UserError(`Fatal: the password command failed with ${r.signal ? `signal ${r.signal}` : `exit code ${r.status}`}`);
  return passwordFromText(r.stdout);
}

/** repository options from the flags and the environment (new keys' scrypt parameters for init) */
export function repoOptions(g: GlobalOpts): RepoOptions & { kdf?: KdfParams } {
  const ps = g.packSize ?? process.env['JBACKUP_PACK_SIZE'];
  const o: RepoOptions & { kdf?: KdfParams } = { kdfThreads: kdfThreadsFromEnv() };
  const kdf = kdfParamsFromEnv();
  if (kdf) o.kdf = kdf;
  if (ps) o.packSize = intFlag(g.packSize ? '--pack-size' : 'JBACKUP_PACK_SIZE', ps, 4, 128)! * 1024 * 1024;
  return o;
}

export async function openRepo(g: GlobalOpts, extra: RepoOptions = {}): Promise<Repository> {
  const spec = repoLocation(g);
  const backend = openBackend(spec, backendOptions(g));
  const password = await getPassword(g);
  let repo: Repository;
  try {
    repo = await Repository.open(backend, password, { ...repoOptions(g), ...extra, keyHint: g.keyHint ?? process.env['JBACKUP_KEY_HINT'] });
  } catch (e) {
    // a file where the repository's directory should be (or on its path)
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new RepoNotFoundError(`repository ${spec} does not exist: ${spec} or a directory above it is a file`);
    throw e;
  }
  rememberKdf(spec, repo);
  repo.warn = (m) => { process.stderr.write(`${m}\n`); };
  return repo;
}

/** a remote repository's key parameters, for the next command's early start (src/cli/kdfhint.ts) */
export function rememberKdf(spec: string, repo: Repository): void {
  if (repo.kdf && isRemoteSpec(spec)) saveKdfHint(spec, repo.kdf);
}

const held = new Set<Lock>();
/** a lock that could not be written (a read-only repository: EROFS) is named as such */
function lockFailed(e: unknown): never {
  if (isSystemError(e) && e.path?.includes('locks')) throw new UserError(`unable to create lock in backend: ${formatSystemError(e)}${e.code === 'EROFS' ? ' (--no-lock lets the commands that only read work without a lock)' : ''}`);
  throw e;
}
/** restic's wait between writing a lock and checking for others */
const LOCK_WAIT_MS = 200;
export async function lockRepo(repo: Repository, exclusive: boolean, g: GlobalOpts): Promise<Lock | null> {
  if (skipLock(g)) return null;
  const l = await Lock.acquire(repo, exclusive).catch(lockFailed);
  held.add(l);
  return l;
}
/**
 * Lock, and load the index (and read the snapshot files) during the lock's 200 ms settle wait; once
 * the lock holds, index files others wrote meanwhile are loaded too (Repository.refreshIndex).
 * Snapshot lists are always taken afresh; only their contents are cached. `afterLoad` runs once the
 * index is loaded, still within the wait (a snapshot starts its walk there).
 */
export async function lockAndLoadIndex(repo: Repository, exclusive: boolean, g: GlobalOpts, afterLoad?: () => void): Promise<Lock | null> {
  if (skipLock(g)) {
    await repo.loadIndex();
    return null;
  }
  // the snapshot files are read as well: the later listing after the lock only fetches new ones
  const l = await Lock.acquire(repo, exclusive, LOCK_WAIT_MS, async () => {
    await Promise.all([repo.loadIndex(), repo.listSnapshots()]);
    afterLoad?.();
  }).catch(lockFailed);
  held.add(l);
  // index files written by others while the lock settled
  await repo.refreshIndex();
  return l;
}

export async function unlockRepo(l: Lock | null): Promise<void> {
  if (!l) return;
  held.delete(l);
  await l.release();
}
/** release every held lock (on SIGINT/SIGTERM) */
export async function releaseAll(): Promise<void> {
  await Promise.all([...held].map((l) => l.release().catch(() => {})));
  held.clear();
}
