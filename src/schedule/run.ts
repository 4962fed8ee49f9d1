/**
 * `jbackup run PROFILE`: before hook → snapshot → forget per the retention policy → prune and check
 * when due → after hook; on any failure the on-failure hook. Repository locks are taken as restic
 * does (non-exclusive for the snapshot, exclusive for forget/prune/check); a run lock in the state
 * dir keeps a second run of the same profile from starting. Every run leaves a status record.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseExcludeFile } from '../archiver/exclude.js';
import { openBackend, redactLocation, type BackendOptions } from '../backend/location.js';
import { backup } from '../ops/backup.js';
import { check } from '../ops/check.js';
import { EXIT, ExitCodeError, exitCodeOf } from '../ops/exit.js';
import { forget, RemoveAllRefusedError } from '../ops/forget.js';
import { lockRepository, unlockRepository, type LockOptions, type LockRegistry } from '../ops/lock.js';
import { prune } from '../ops/prune.js';
import { LockError } from '../repo/errors.js';
import type { Lock } from '../repo/lock.js';
import { Repository } from '../repo/repository.js';
import { hookEnv, killRunningHooks, runHook } from './hooks.js';
import { stricterLimits } from '../backend/decorators/limits.js';
import { readPassword } from './password.js';
import { isDue, loadProfile, ProfileError, PROFILE_NAME_RE, type Profile } from './profile.js';
import { AlreadyRunningError, appendHistory, readStatus, RunLock, statusFile, writeStatus, type StatusRecord, type StepRecord } from './status.js';
import { describeSystemError } from '../util/syserr.js';

export interface RunOptions {
  log?: (line: string) => void;
  /** password when the profile names no source (the CLI's global sources) */
  fallbackPassword?: () => Promise<Buffer>;
  /** every repository lock held is registered here (the CLI's, so that a signal releases it) */
  held?: LockRegistry;
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

/** a step that failed (its message is the run's error) */
class StepError extends ExitCodeError {}

function messageOf(e: unknown): string {
  const err = e as Error;
  const m = (err?.message || String(e)).replace(/^Fatal: /, '').split('\n')[0]!;
  if (e instanceof LockError) return `unable to lock the repository: ${m}`;
  return m;
}

const iso = (d: Date) => d.toISOString();

export async function runProfile(name: string, o: RunOptions = {}): Promise<RunOutcome> {
  const log = o.log ?? (() => {});
  const now = o.now ?? (() => new Date());
  if (!PROFILE_NAME_RE.test(name)) throw new ProfileError(`invalid profile name "${name}"`);

  let runLock: RunLock;
  try {
    runLock = RunLock.acquire(name);
  } catch (e) {
    if (e instanceof AlreadyRunningError) return { exitCode: EXIT.lock, status: null, message: e.message };
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

  // killed (SIGINT/SIGTERM → process.exit): finish the record, tell the on-failure hook, free the profile
  const onExit = () => {
    if (rec.result !== 'running') return;
    killRunningHooks();
    const end = new Date();
    rec.result = 'interrupted';
    rec.exitCode = EXIT.interrupted;
    rec.errors.unshift('interrupted by a signal');
    rec.end = iso(end);
    rec.durationSeconds = (end.getTime() - started.getTime()) / 1000;
    if (profile?.hooks.onFailure) {
      spawnSync('/bin/sh', ['-c', profile.hooks.onFailure], {
        stdio: ['pipe', 'inherit', 'inherit'], input: 'interrupted by a signal\n', timeout: 30_000,
        env: hookEnv({ JBACKUP_PROFILE: name, JBACKUP_HOOK: 'on-failure', JBACKUP_ERROR: 'interrupted by a signal', JBACKUP_EXIT_CODE: String(EXIT.interrupted), JBACKUP_STATUS_FILE: statusFile(name) }),
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
  let exitCode: number = EXIT.ok;
  try {
    profile = loadProfile(name);
    const p = profile;
    rec.repository = redactLocation(p.repository);
    log(`profile ${name}: ${p.sources.join(', ')} → ${rec.repository}`);
    await hook('before', p.hooks.before);

    const password = p.password ? await readPassword(p.password)
      : o.fallbackPassword ? await o.fallbackPassword()
      : (() => { throw new ProfileError(`profile "${name}" names no password source (password-file, password-command or password-keyring)`); })();
    const repoOpts = { compression: p.compression, packSize: p.packSize, keyHint: o.keyHint, kdfThreads: o.kdfThreads };
    const open = async () => {
      const backend = openBackend(p.repository, { ...o.backend, limits: stricterLimits(o.backend?.limits, p.limits) });
      try {
        return await Repository.open(backend, password, repoOpts);
      } catch (e) {
        await backend.close().catch(() => {});
        throw e;
      }
    };

    // 1. snapshot (the CLI's orchestration: src/ops/backup.ts)
    const locks: LockOptions = { retryLockMs: p.retryLockMs, onRetry: log, held: o.held };
    await step('snapshot', async () => {
      const excludes = [...p.excludes];
      const iexcludes = [...p.iexcludes];
      for (const f of p.excludeFiles) excludes.push(...parseExcludeFile(readExcludeFile(f), process.env));
      for (const f of p.iexcludeFiles) iexcludes.push(...parseExcludeFile(readExcludeFile(f), process.env));
      const fileErrors: string[] = [];
      let repo: Repository | undefined;
      try {
        const s = await backup(async () => (repo = await open()), {
          targets: p.sources,
          tags: p.tags,
          host: p.host,
          excludes,
          iexcludes,
          excludeLargerThan: p.excludeLargerThan,
          oneFileSystem: p.oneFileSystem,
          ...locks,
          progress: {
            missing: (t) => log(`warning: source ${t} does not exist, skipping`),
            error: (path, e) => {
              const msg = `${path}: ${describeSystemError(e)}`.replace(/\s+/g, ' ');
              if (fileErrors.length < 50) fileErrors.push(msg);
              log(`error: ${msg}`);
            },
            warning: (m) => log(`warning: ${m}`),
          },
        });
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
        await repo?.backend.close().catch(() => {});
      }
    });

    // 2. forget, prune, check under one exclusive lock
    const t = now();
    const pruneDue = isDue(p.prune.every, rec.lastPrune, t);
    const checkDue = isDue(p.check.every, rec.lastCheck, t);
    if (p.retention || pruneDue || checkDue) {
      const repo = await open();
      let lock: Lock | null = null;
      try {
        lock = await lockRepository(repo, true, locks);
        await step('forget', async () => {
          if (!p.retention) return { result: 'skipped', detail: 'no retention policy' };
          const r = await forget(repo, { policy: p.retention.policy, filter: { hosts: [p.host], paths: p.sources }, groupBy: p.retention.groupBy }).catch((e: unknown) => {
            if (e instanceof RemoveAllRefusedError) throw new StepError(`retention policy would remove all ${e.group.remove.length} snapshots of a group; refusing`);
            throw e;
          });
          rec.snapshotsRemoved = r.removed.length;
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
          // a repository object of its own (prune changed what this one holds in memory), over the
          // same backend: closed with it below
          const fresh = await Repository.open(repo.backend, password, repoOpts);
          const r = await check(fresh, { readData: p.check.readData });
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
        await unlockRepository(lock, locks);
        await repo.backend.close().catch(() => {});
      }
    }

    if (!partial) await hook('after', p.hooks.after);
    exitCode = partial ? EXIT.partial : EXIT.ok;
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
