/** Global flags, environment, password sources, repository opening: the only place that knows argv/env/TTY. */
import { Command, Option } from 'commander';
import { openBackend, redactLocation, type BackendOptions } from '../backend/location.js';
import { Repository, type RepoOptions } from '../repo/repository.js';
import type { Lock } from '../repo/lock.js';
import { InterruptedError } from '../ops/exit.js';
import { lockRepository, unlockRepository, type LockOptions } from '../ops/lock.js';
import { UserError } from '../repo/errors.js';
import { openRepository } from '../ops/repository.js';
import { isRemoteSpec, saveKdfHint } from './kdfhint.js';
import { jottaHardDeleteFromEnv, kdfParamsFromEnv, kdfThreadsFromEnv, lockSettleMsFromEnv } from './envopts.js';
import type { KdfParams } from '../repo/kdf.js';
import { isInteractive, retryPolicy } from './jotta_retry.js';
import { RCLONE_DEFAULT_ARGS, RCLONE_DEFAULT_PROGRAM } from '../backend/rest/rclone.js';
import { readFileSync } from 'node:fs';
import { readPasswordFile, resolvePassword, type PasswordSource } from '../util/password.js';
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
  restConnections?: string;
  cacert?: string[];
  rcloneProgram?: string;
  rcloneArgs?: string;
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
    .option('--rest-connections <n>', 'concurrent requests to a rest: or rclone: repository (default 5, as restic\'s rest.connections)')
    .option('--cacert <file>', 'file to load an extra trusted root certificate from, for HTTPS (can be given more than once; env JBACKUP_CACERT)', (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .option('--rclone-program <path>', `program started for rclone: repositories (default "${RCLONE_DEFAULT_PROGRAM}"; env JBACKUP_RCLONE_PROGRAM)`)
    .option('--rclone-args <args>', `arguments before the remote for rclone: repositories (default "${RCLONE_DEFAULT_ARGS}"; env JBACKUP_RCLONE_ARGS)`)
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
const NO_LOCK_COMMANDS = new Set(['cat', 'check', 'copy', 'diff', 'dump', 'find', 'forget', 'restore', 'snapshots', 'stats', 'tag', 'serve', 'mount']);
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
  const restConns = intFlag('--rest-connections', g.restConnections, 1, 128);
  const caFiles = g.cacert ?? (process.env['JBACKUP_CACERT'] ? [process.env['JBACKUP_CACERT']] : []);
  const ca = caFiles.map((f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new UserError(`cannot read --cacert file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  });
  const verbose = (g.verbose ?? 0) >= 1;
  const logger = (m: string) => { process.stderr.write(`${m}\n`); };
  const restUser = process.env['JBACKUP_REST_USERNAME'];
  const restPass = process.env['JBACKUP_REST_PASSWORD'];
  return {
    limits: {
      ...(up !== undefined ? { upload: up * 1024 } : {}),
      ...(down !== undefined ? { download: down * 1024 } : {}),
    },
    jotta: {
      ...(conns !== undefined ? { connections: conns } : {}),
      ...(g.jottaHardDelete || jottaHardDeleteFromEnv() ? { hardDelete: true } : {}),
      ...((g.verbose ?? 0) >= 1 ? { logger: (m: string) => { process.stderr.write(`${m}\n`); } } : {}),
      ...retryPolicy(isInteractive(command), !!g.quiet || !!g.json, 'jotta'),
      ...(ca.length ? { ca } : {}),
    },
    rest: {
      ...(restConns !== undefined ? { connections: restConns } : {}),
      ...(ca.length ? { ca } : {}),
      ...(restUser !== undefined ? { username: restUser } : {}),
      ...(restPass !== undefined ? { password: restPass } : {}),
    },
    rclone: {
      ...(restConns !== undefined ? { connections: restConns } : {}),
      ...(g.rcloneProgram ?? process.env['JBACKUP_RCLONE_PROGRAM'] ? { program: g.rcloneProgram ?? process.env['JBACKUP_RCLONE_PROGRAM'] } : {}),
      ...(g.rcloneArgs ?? process.env['JBACKUP_RCLONE_ARGS'] ? { args: g.rcloneArgs ?? process.env['JBACKUP_RCLONE_ARGS'] } : {}),
      ...(verbose ? { logger } : {}),
    },
    retry: {
      ...(verbose ? { logger } : {}),
      ...retryPolicy(isInteractive(command), !!g.quiet || !!g.json),
    },
  };
}

export function repoLocation(g: GlobalOpts): string {
  const r = g.repo ?? process.env['JBACKUP_REPOSITORY'];
  if (!r) throw new UserError('Please specify repository location (-r or JBACKUP_REPOSITORY)');
  return r;
}

/** Ctrl-C at a password prompt: the command ends with restic's exit code 130 (src/ops/exit.ts) */
export { InterruptedError };

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

/**
 * restic 0.14's sources and order: a password file (--password-file, else JBACKUP_PASSWORD_FILE) or a
 * password command (likewise; not both), then JBACKUP_PASSWORD (as it is; empty counts as unset), then the
 * terminal prompt, or one line of standard input when it is not a terminal (read once, also for init:
 * restic asks twice only on a terminal). The source is read by the one resolver (src/util/password.ts:
 * trimming, empty passwords refused).
 */
/** the environment variables a password source is taken from (copy's source repository has its own) */
export interface PasswordEnv { file?: string; command?: string; password?: string }
const passwordEnv = (): PasswordEnv => ({
  file: process.env['JBACKUP_PASSWORD_FILE'], command: process.env['JBACKUP_PASSWORD_COMMAND'], password: process.env['JBACKUP_PASSWORD'],
});

export function passwordSource(g: Pick<GlobalOpts, 'passwordFile' | 'passwordCommand'>, opts: { confirm?: boolean; what?: string } = {}, env: PasswordEnv = passwordEnv()): PasswordSource {
  // a flag replaces the environment variable of its own kind only, as restic's flag defaults do
  const file = g.passwordFile || env.file;
  const cmd = g.passwordCommand || env.command;
  if (file && cmd) throw new UserError('Fatal: password file and command are mutually exclusive options (--password-file/JBACKUP_PASSWORD_FILE, --password-command/JBACKUP_PASSWORD_COMMAND)');
  if (file) return { kind: 'file', path: file };
  if (cmd) return { kind: 'command', command: cmd };
  if (env.password) return { kind: 'value', value: env.password };
  if (!process.stdin.isTTY) return { kind: 'stdin' };
  return { kind: 'prompt', ask: prompt, what: opts.what, confirm: opts.confirm };
}

export async function getPassword(g: GlobalOpts, opts: { confirm?: boolean; what?: string } = {}): Promise<Buffer> {
  return resolvePassword(passwordSource(g, opts));
}

/** a password file's password (src/util/password.ts: trimmed as restic trims); empty refused */
export function passwordFile(f: string): Buffer {
  return readPasswordFile(f);
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
  const repo = await openRepository(backend, password, { ...repoOptions(g), ...extra, keyHint: g.keyHint ?? process.env['JBACKUP_KEY_HINT'], name: redactLocation(spec) });
  rememberKdf(spec, repo);
  repo.warn = (m) => { process.stderr.write(`${m}\n`); };
  return repo;
}

/** a remote repository's key parameters, for the next command's early start (src/cli/kdfhint.ts) */
export function rememberKdf(spec: string, repo: Repository): void {
  if (repo.kdf && isRemoteSpec(spec)) saveKdfHint(spec, repo.kdf);
}

const held = new Set<Lock>();
/** the lock options of the running command: --no-lock where it applies, and every lock held registered for releaseAll */
export function lockOptions(g: GlobalOpts): LockOptions {
  const settleMs = lockSettleMsFromEnv();
  return { noLock: skipLock(g), held, ...(settleMs !== undefined ? { settleMs } : {}) };
}
export async function lockRepo(repo: Repository, exclusive: boolean, g: GlobalOpts): Promise<Lock | null> {
  return lockRepository(repo, exclusive, lockOptions(g));
}
export async function unlockRepo(l: Lock | null): Promise<void> {
  await unlockRepository(l, { held });
}
/** release every held lock (on SIGINT/SIGTERM) */
export async function releaseAll(): Promise<void> {
  await Promise.all([...held].map((l) => l.release().catch(() => {})));
  held.clear();
}
