/**
 * `jbackup run PROFILE`: before hook → snapshot → forget per the retention policy → prune and check
 * when due → after hook; on any failure the on-failure hook. Repository locks are taken as restic
 * does (non-exclusive for the snapshot, exclusive for forget/prune/check); a run lock in the state
 * dir keeps a second run of the same profile from starting. Every run leaves a status record.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Archiver } from '../archiver/archiver.js';
import { makeMatcher, parseExcludeFile } from '../archiver/exclude.js';
import { openBackend, type BackendOptions } from '../backend/location.js';
import { checkRepository } from '../maintenance/check.js';
import { forgetGroups } from '../maintenance/forget.js';
import { prune } from '../maintenance/prune.js';
import { LockError, RepoNotFoundError, WrongPasswordError } from '../repo/errors.js';
import type { Lock } from '../repo/lock.js';
import { Repository } from '../repo/repository.js';
import { hookEnv, killRunningHooks, runHook } from './hooks.js';
import { stricterLimits } from '../backend/decorators/limits.js';
import { readPassword } from './password.js';
import { isDue, loadProfile, ProfileError, PROFILE_NAME_RE, type Profile } from './profile.js';
import { AlreadyRunningError, appendHistory, readStatus, RunLock, statusFile, writeStatus, type StatusRecord, type StepRecord } from './status.js';
import { describeSystemError } from '../util/syserr.js';

export const RUN_EXIT = { ok: 0, fatal: 1, partial: 3, noRepo: 10, lock: 11, password: 12, interrupted: 130 } as const;

export interface RunOptions {
  log?: (line: string) => void;
  /** password when the profile names no source (the CLI's global sources) */
  fallbackPassword?: () => Promise<Buffer>;
  /** take / release a repository lock (the CLI's, so that a signal releases it) */
  lock?: (repo: Repository, exclusive: boolean) => Promise<Lock | null>;
  unlock?: (l: Lock | null) => Promise<void>;
  keyHint?: string;
  /** scrypt lanes at a time when the key is opened (the CLI: JBACKUP_KDF_THREADS) */
  kdfThreads?: number;
  now?: () => Date;
  /** backend options (the CLI's global flags); the profile's [limits] are applied over their limits */
  backend?: BackendOptions;
}

export interface RunOutcome {
  exitCode: number;
  /** null when the run did not start (another run holds the profile) */
  status: StatusRecord | null;
  message?: string;
}

class StepError extends Error {
  constructor(message: string, readonly exitCode: number = RUN_EXIT.fatal) { super(message); }
}

function exitCodeOf(e: unknown): number {
  if (e instanceof StepError) return e.exitCode;
  if (e instanceof RepoNotFoundError) return RUN_EXIT.noRepo;
  if (e instanceof WrongPasswordError) return RUN_EXIT.password;
  if (e instanceof LockError) return RUN_EXIT.lock;
  return RUN_EXIT.fatal;
}

function messageOf(e: unknown): string {
  const err = e as Error;
  const m = (err?.message || String(e)).replace(/^Fatal: /, '').split('\n')[0]!;
  if (e instanceof LockError) return `unable to lock the repository: ${m}`;
  return m;
}

const iso = (d: Date) => d.toISOString();

async function lockWithRetry(o: RunOptions, repo: Repository, exclusive: boolean, retryMs: number, log: (s: string) => void): Promise<Lock | null> {
  const take = o.lock ?? (async (r: Repository, x: boolean) => (await import('../repo/lock.js')).Lock.acquire(r, x));
  const deadline = Date.now() + retryMs;
  for (;;) {
    try {
      return await take(repo, exclusive);
    } catch (e) {
      if (!(e instanceof LockError) || Date.now() >= deadline) throw e;
      log(`repository is locked, retrying: ${e.message}`);
      await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(100, deadline - Date.now()))));
    }
  }
}

export async function runProfile(name: string, o: RunOptions = {}): Promise<RunOutcome> {
  const log = o.log ?? (() => {});
  const now = o.now ?? (() => new Date());
  if (!PROFILE_NAME_RE.test(name)) throw new ProfileError(`invalid profile name "${name}"`);

  let runLock: RunLock;
  try {
    runLock = RunLock.acquire(name);
  } catch (e) {
    if (e instanceof AlreadyRunningError) return { exitCode: RUN_EXIT.lock, status: null, message: e.message };
    throw e;
  }

  const prev = readStatus(name);
  const started = now();
  const rec: StatusRecord = {
    version: 1, profile: name, host: hostname(), pid: process.pid, start: iso(started), result: 'running',
    pruned: false, checked: false, errors: [], steps: [], lastPrune: prev?.lastPrune, lastCheck: prev?.lastCheck,
  };
  writeStatus(rec);
  let profile: Profile | null = null;
  const unlock = o.unlock ?? (async (l: Lock | null) => { await l?.release(); });

  // killed (SIGINT/SIGTERM → process.exit): finish the record, tell the on-failure hook, free the profile
  const onExit = () => {
    if (rec.result !== 'running') return;
    killRunningHooks();
    const end = new Date();
    rec.result = 'interrupted';
    rec.exitCode = RUN_EXIT.interrupted;
    rec.errors.unshift('interrupted by a signal');
    rec.end = iso(end);
    rec.durationSeconds = (end.getTime() - started.getTime()) / 1000;
    if (profile?.hooks.onFailure) {
      spawnSync('/bin/sh', ['-c', profile.hooks.onFailure], {
        stdio: ['pipe', 'inherit', 'inherit'], input: 'interrupted by a signal\n', timeout: 30_000,
        env: hookEnv({ JBACKUP_PROFILE: name, JBACKUP_HOOK: 'on-failure', JBACKUP_ERROR: 'interrupted by a signal', JBACKUP_EXIT_CODE: String(RUN_EXIT.interrupted), JBACKUP_STATUS_FILE: statusFile(name) }),
      });
    }
    try { writeStatus(rec); appendHistory(rec); } catch { /* nothing more to do */ }
    runLock.release();
  };
  process.on('exit', onExit);

  const step = async (s: StepRecord['step'], f: () => Promise<{ result?: StepRecord['result']; detail?: string } | void>): Promise<void> => {
    const t0 = now();
    try {
      const r = (await f()) ?? {};
      rec.steps.push({ step: s, result: r.result ?? 'ok', detail: r.detail, start: iso(t0), end: iso(now()) });
    } catch (e) {
      rec.steps.push({ step: s, result: 'failed', detail: messageOf(e), start: iso(t0), end: iso(now()) });
      throw e;
    } finally {
      writeStatus(rec);
    }
  };
  const hook = (which: 'before' | 'after', cmd: string | undefined) => step(which, async () => {
    if (!cmd) return { result: 'skipped' };
    log(`running ${which} hook`);
    const h = await runHook(cmd, hookEnv({
      JBACKUP_PROFILE: name, JBACKUP_HOOK: which, JBACKUP_STATUS_FILE: statusFile(name), JBACKUP_REPOSITORY: profile?.repository,
      JBACKUP_SNAPSHOT_ID: rec.snapshotId,
    }), { timeoutMs: profile!.hooks.timeoutMs });
    if (!h.ok) throw new StepError(`${which} hook failed: ${h.detail}`);
    return { detail: h.detail };
  });

  let partial = false;
  let exitCode: number = RUN_EXIT.ok;
  try {
    profile = loadProfile(name);
    const p = profile;
    rec.repository = p.repository;
    log(`profile ${name}: ${p.sources.join(', ')} → ${p.repository}`);
    await hook('before', p.hooks.before);

    const password = p.password ? await readPassword(p.password)
      : o.fallbackPassword ? await o.fallbackPassword()
      : (() => { throw new ProfileError(`profile "${name}" names no password source (password-file, password-command or password-keyring)`); })();
    const open = async () => Repository.open(openBackend(p.repository, { ...o.backend, limits: stricterLimits(o.backend?.limits, p.limits) }), password, {
      compression: p.compression, packSize: p.packSize, keyHint: o.keyHint, kdfThreads: o.kdfThreads,
    });

    // 1. snapshot
    await step('snapshot', async () => {
      const repo = await open();
      const excludes = [...p.excludes];
      const iexcludes = [...p.iexcludes];
      for (const f of p.excludeFiles) excludes.push(...parseExcludeFile(readExcludeFile(f), process.env));
      for (const f of p.iexcludeFiles) iexcludes.push(...parseExcludeFile(readExcludeFile(f), process.env));
      const lock = await lockWithRetry(o, repo, false, p.retryLockMs, log);
      const fileErrors: string[] = [];
      try {
        await repo.loadIndex();
        const s = await new Archiver(repo, {
          targets: p.sources,
          tags: p.tags,
          host: p.host,
          excludes: makeMatcher(excludes, iexcludes),
          excludePatterns: [...excludes, ...iexcludes],
          excludeLargerThan: p.excludeLargerThan,
          oneFileSystem: p.oneFileSystem,
          progress: {
            missing: (t) => log(`warning: source ${t} does not exist, skipping`),
            error: (path, e) => {
              const msg = `${path}: ${describeSystemError(e)}`.replace(/\s+/g, ' ');
              if (fileErrors.length < 50) fileErrors.push(msg);
              log(`error: ${msg}`);
            },
            warning: (m) => log(`warning: ${m}`),
          },
        }).run();
        rec.snapshotId = s.snapshot_id;
        rec.bytesAdded = s.data_added;
        rec.filesNew = s.files_new;
        rec.filesChanged = s.files_changed;
        rec.filesUnmodified = s.files_unmodified;
        log(`snapshot ${s.snapshot_id.slice(0, 8)} saved: ${s.files_new} new, ${s.files_changed} changed, ${s.files_unmodified} unmodified files, ${s.data_added} bytes added`);
        if (s.errors > 0) {
          partial = true;
          rec.errors.push(`${s.errors} source file(s) or directories could not be read`, ...fileErrors);
          return { result: 'warning', detail: `${s.errors} unreadable` };
        }
        return { detail: s.snapshot_id };
      } finally {
        await unlock(lock);
        await repo.backend.close().catch(() => {});
      }
    });

    // 2. forget, prune, check under one exclusive lock
    const t = now();
    const pruneDue = isDue(p.prune.every, rec.lastPrune, t);
    const checkDue = isDue(p.check.every, rec.lastCheck, t);
    if (p.retention || pruneDue || checkDue) {
      const repo = await open();
      const lock = await lockWithRetry(o, repo, true, p.retryLockMs, log);
      try {
        await step('forget', async () => {
          if (!p.retention) return { result: 'skipped', detail: 'no retention policy' };
          const all = await repo.listSnapshots();
          const groups = forgetGroups(all, p.retention.policy, { filter: { hosts: [p.host], paths: p.sources }, groupBy: p.retention.groupBy });
          const remove: string[] = [];
          for (const g of groups) {
            if (g.keep.length === 0 && g.remove.length > 0) throw new StepError(`retention policy would remove all ${g.remove.length} snapshots of a group; refusing`);
            remove.push(...g.remove.map((s) => s.id));
          }
          for (const id of new Set(remove)) await repo.backend.remove({ type: 'snapshots', name: id });
          rec.snapshotsRemoved = new Set(remove).size;
          log(`forget: removed ${rec.snapshotsRemoved} snapshot(s)`);
          return { detail: `removed ${rec.snapshotsRemoved}` };
        });
        await step('prune', async () => {
          if (!pruneDue) return { result: 'skipped', detail: p.prune.every.kind === 'never' ? 'never' : `not due (last ${rec.lastPrune})` };
          log('prune: started');
          const s = await prune(repo, {
            maxUnused: p.prune.maxUnused, maxRepackSize: p.prune.maxRepackSize,
            repackUncompressed: p.prune.repackUncompressed, repackSmall: p.prune.repackSmall,
          });
          rec.pruned = true;
          rec.lastPrune = iso(now());
          log(`prune: ${s.packsRemove + s.packsUnreferenced} pack(s) removed, ${s.packsRepack} repacked, ${s.sizeFreed} bytes freed`);
          return { detail: `freed ${s.sizeFreed} bytes` };
        });
        await step('check', async () => {
          if (!checkDue) return { result: 'skipped', detail: p.check.every.kind === 'never' ? 'never' : `not due (last ${rec.lastCheck})` };
          log(`check: started${p.check.readDataText ? ` (read data: ${p.check.readDataText})` : ''}`);
          const fresh = await open();
          const r = await checkRepository(fresh, { readData: p.check.readData });
          rec.checked = true;
          const errs = r.problems.filter((x) => x.kind === 'error');
          if (!r.ok) {
            rec.errors.push(...errs.slice(0, 20).map((x) => `check: ${x.object}: ${x.message}`));
            throw new StepError(`check found ${errs.length} error(s) in the repository`);
          }
          rec.lastCheck = iso(now());
          log(`check: no errors (${r.packs} packs, ${r.snapshots} snapshots${p.check.readData ? `, ${r.packsRead} packs read` : ''})`);
          return { detail: `${r.packsRead} packs read` };
        });
      } finally {
        await unlock(lock);
        await repo.backend.close().catch(() => {});
      }
    }

    if (!partial) await hook('after', p.hooks.after);
    exitCode = partial ? RUN_EXIT.partial : RUN_EXIT.ok;
    rec.result = partial ? 'partial' : 'success';
  } catch (e) {
    exitCode = exitCodeOf(e);
    rec.result = 'failed';
    const msg = messageOf(e);
    rec.errors.unshift(msg);
    log(`failed: ${msg}`);
    if (process.env['JBACKUP_DEBUG'] && e instanceof Error) log(e.stack ?? '');
  }

  const end = now();
  rec.exitCode = exitCode;
  rec.end = iso(end);
  rec.durationSeconds = (end.getTime() - started.getTime()) / 1000;
  if (exitCode !== 0 && profile?.hooks.onFailure) {
    const cmd = profile.hooks.onFailure;
    const error = rec.errors[0] ?? `exit code ${exitCode}`;
    await step('on-failure', async () => {
      log('running on-failure hook');
      const h = await runHook(cmd, hookEnv({
        JBACKUP_PROFILE: name, JBACKUP_HOOK: 'on-failure', JBACKUP_STATUS_FILE: statusFile(name), JBACKUP_REPOSITORY: profile?.repository,
        JBACKUP_ERROR: error, JBACKUP_EXIT_CODE: String(exitCode), JBACKUP_RESULT: rec.result, JBACKUP_SNAPSHOT_ID: rec.snapshotId,
      }), { timeoutMs: profile!.hooks.timeoutMs, stdin: `${rec.errors.join('\n')}\n` });
      if (!h.ok) {
        rec.errors.push(`on-failure hook failed: ${h.detail}`);
        return { result: 'failed', detail: h.detail };
      }
      return { detail: h.detail };
    }).catch(() => {});
  }
  process.removeListener('exit', onExit);
  writeStatus(rec);
  appendHistory(rec);
  runLock.release();
  return { exitCode, status: rec };
}

function readExcludeFile(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch (e) {
    throw new StepError(`cannot read exclude file ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
