/** Global flags, environment, password sources, repository opening: the only place that knows argv/env/TTY. */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Command, Option } from 'commander';
import { openBackend, setDefaultBackendOptions, type BackendOptions } from '../backend/location.js';
import { Repository, type RepoOptions } from '../repo/repository.js';
import { Lock } from '../repo/lock.js';
import { UserError } from '../repo/errors.js';
import { isRemoteSpec, saveKdfHint } from '../repo/kdfhint.js';

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
  noLock?: boolean;
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
    .option('--limit-upload <KiB/s>', 'limit uploads to a remote repository to this rate in KiB/s')
    .option('--limit-download <KiB/s>', 'limit downloads from a remote repository to this rate in KiB/s')
    .option('--jotta-connections <n>', 'concurrent connections to Jottacloud (default 4)')
    .option('--jotta-hard-delete', 'delete files on Jottacloud permanently instead of moving them to the trash (frees quota at once; env JBACKUP_JOTTA_HARD_DELETE=1)')
    .hook('preAction', () => setDefaultBackendOptions(backendOptions(p.opts<GlobalOpts>())));
}

function positiveNumber(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`${what} must be a positive number, got "${v}"`);
  return n;
}

/** Options for remote backends from the global flags; -v prints retries, resumes and token refreshes. */
export function backendOptions(g: GlobalOpts): BackendOptions {
  const conns = positiveNumber(g.jottaConnections, '--jotta-connections');
  const up = positiveNumber(g.limitUpload, '--limit-upload');
  const down = positiveNumber(g.limitDownload, '--limit-download');
  return {
    jotta: {
      ...(conns !== undefined ? { connections: Math.floor(conns) } : {}),
      ...(up !== undefined ? { limitUploadKiB: up } : {}),
      ...(down !== undefined ? { limitDownloadKiB: down } : {}),
      ...(g.jottaHardDelete ? { hardDelete: true } : {}),
      ...((g.verbose ?? 0) >= 1 ? { logger: (m: string) => { process.stderr.write(`${m}\n`); } } : {}),
    },
  };
}

export function repoLocation(g: GlobalOpts): string {
  const r = g.repo ?? process.env['JBACKUP_REPOSITORY'];
  if (!r) throw new UserError('Please specify repository location (-r or JBACKUP_REPOSITORY)');
  return r;
}

async function prompt(question: string): Promise<string> {
  const { createInterface } = await import('node:readline');
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
    out._writeToOutput = (s: string) => { if (s.includes(question)) process.stderr.write(s); };
    rl.question(question, (a) => { rl.close(); process.stderr.write('\n'); resolve(a); });
  });
}

/** restic's order: --password-file, --password-command, env password, env file, env command, TTY prompt. */
export async function getPassword(g: GlobalOpts, opts: { confirm?: boolean; what?: string } = {}): Promise<Buffer> {
  const file = g.passwordFile ?? process.env['JBACKUP_PASSWORD_FILE'];
  const cmd = g.passwordCommand ?? process.env['JBACKUP_PASSWORD_COMMAND'];
  if (g.passwordFile) return readPasswordFile(g.passwordFile);
  if (g.passwordCommand) return runPasswordCommand(g.passwordCommand);
  const env = process.env['JBACKUP_PASSWORD'];
  if (env !== undefined) return Buffer.from(env);
  if (file) return readPasswordFile(file);
  if (cmd) return runPasswordCommand(cmd);
  if (!process.stdin.isTTY) throw new UserError('Fatal: an empty password is not allowed by default. Set JBACKUP_PASSWORD, --password-file or --password-command, or run on a terminal');
  const what = opts.what ?? 'repository';
  const pw = await prompt(`enter password for ${what}: `);
  if (opts.confirm) {
    const again = await prompt('enter password again: ');
    if (again !== pw) throw new UserError('Fatal: passwords do not match');
  }
  if (pw === '') throw new UserError('Fatal: an empty password is not allowed');
  return Buffer.from(pw);
}

function readPasswordFile(f: string): Buffer {
  try {
    const s = readFileSync(f, 'utf8');
    return Buffer.from(s.replace(/\r?\n$/, ''));
  } catch (e) {
    throw new UserError(`Fatal: unable to read password file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function runPasswordCommand(c: string): Buffer {
  const r = spawnSync('/bin/sh', ['-c', c], { stdio: ['inherit', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new UserError(`Fatal: password command failed with exit code ${r.status ?? 'signal'}`);
  return Buffer.from(r.stdout.toString('utf8').replace(/\r?\n$/, ''));
}

export function repoOptions(g: GlobalOpts): RepoOptions {
  const ps = g.packSize ?? process.env['JBACKUP_PACK_SIZE'];
  const o: RepoOptions = {};
  if (ps) {
    const n = Number(ps);
    if (!Number.isInteger(n) || n < 4 || n > 128) throw new UserError('pack size must be between 4 and 128 MiB');
    o.packSize = n * 1024 * 1024;
  }
  return o;
}

export async function openRepo(g: GlobalOpts, extra: RepoOptions = {}): Promise<Repository> {
  const spec = repoLocation(g);
  const backend = openBackend(spec);
  const password = await getPassword(g);
  const repo = await Repository.open(backend, password, { ...repoOptions(g), ...extra, keyHint: g.keyHint ?? process.env['JBACKUP_KEY_HINT'] });
  rememberKdf(spec, repo);
  repo.warn = (m) => { process.stderr.write(`${m}\n`); };
  return repo;
}

/** a remote repository's key parameters, for the next command's early start (src/repo/kdfhint.ts) */
export function rememberKdf(spec: string, repo: Repository): void {
  if (repo.kdf && isRemoteSpec(spec)) saveKdfHint(spec, repo.kdf);
}

const held = new Set<Lock>();
/** restic's wait between writing a lock and checking for others */
const LOCK_WAIT_MS = 200;
export async function lockRepo(repo: Repository, exclusive: boolean, g: GlobalOpts): Promise<Lock | null> {
  if (g.noLock) return null;
  const l = await Lock.acquire(repo, exclusive);
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
  if (g.noLock) {
    await repo.loadIndex();
    return null;
  }
  // the snapshot files are read as well: the later listing after the lock only fetches new ones
  const l = await Lock.acquire(repo, exclusive, LOCK_WAIT_MS, async () => {
    await Promise.all([repo.loadIndex(), repo.listSnapshots()]);
    afterLoad?.();
  });
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
