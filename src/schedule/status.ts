/**
 * Per-profile state in the state dir: the status record of the last (or current) run, a history of
 * finished runs, and the run lock that keeps two runs of one profile apart.
 */
import { appendFileSync, closeSync, existsSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stateDir } from '../util/paths.js';
import { writeFileAtomicSync } from '../util/atomic.js';
import { mkdirpSync } from '../util/mkdirp.js';

export type RunResult = 'running' | 'success' | 'partial' | 'failed' | 'interrupted';

export interface StepRecord {
  step: 'before' | 'snapshot' | 'forget' | 'prune' | 'check' | 'after' | 'on-failure';
  result: 'ok' | 'skipped' | 'failed' | 'warning';
  detail?: string;
  start: string;
  end: string;
}

export interface StatusRecord {
  version: 1;
  profile: string;
  host: string;
  pid: number;
  repository?: string;
  start: string;
  end?: string;
  durationSeconds?: number;
  result: RunResult;
  exitCode?: number;
  snapshotId?: string;
  /** bytes added to the repository by the snapshot (after dedup and compression) */
  bytesAdded?: number;
  filesNew?: number;
  filesChanged?: number;
  filesUnmodified?: number;
  snapshotsRemoved?: number;
  pruned: boolean;
  checked: boolean;
  /** the error that failed the run first, then any others (unreadable files, hook failures) */
  errors: string[];
  steps: StepRecord[];
  /** last successful prune / check (carried from run to run; decides when they are due) */
  lastPrune?: string;
  lastCheck?: string;
}

const HISTORY_KEEP = 200;

export function statusFile(profile: string): string {
  return path.join(stateDir(), 'status', `${profile}.json`);
}
export function historyFile(profile: string): string {
  return path.join(stateDir(), 'history', `${profile}.jsonl`);
}
export function runLockFile(profile: string): string {
  return path.join(stateDir(), 'run', `${profile}.lock`);
}

export function readStatus(profile: string): StatusRecord | null {
  try {
    return JSON.parse(readFileSync(statusFile(profile), 'utf8')) as StatusRecord;
  } catch {
    return null;
  }
}

/** profiles that have a status record */
export function listStatusProfiles(): string[] {
  try {
    return readdirSync(path.join(stateDir(), 'status')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  } catch {
    return [];
  }
}

/** atomic replace (synchronous: also used from the process 'exit' handler) */
export function writeStatus(rec: StatusRecord): void {
  const f = statusFile(rec.profile);
  mkdirpSync(path.dirname(f), 0o700);
  writeFileAtomicSync(f, `${JSON.stringify(rec, null, 2)}\n`, 0o600);
}

export function appendHistory(rec: StatusRecord): void {
  const f = historyFile(rec.profile);
  mkdirpSync(path.dirname(f), 0o700);
  appendFileSync(f, `${JSON.stringify(rec)}\n`, { mode: 0o600 });
  try {
    const lines = readFileSync(f, 'utf8').split('\n').filter(Boolean);
    if (lines.length > HISTORY_KEEP * 1.5) {
      writeFileAtomicSync(f, `${lines.slice(-HISTORY_KEEP).join('\n')}\n`, 0o600);
    }
  } catch { /* the history is best effort */ }
}

// ---------------------------------------------------------------------------------------------
// run lock

export interface RunLockInfo {
  pid: number;
  host: string;
  /** seconds since the epoch at which this machine booted (a pid from before a reboot is not alive) */
  boot: number;
  started: string;
}

export class AlreadyRunningError extends Error {
  override name = 'AlreadyRunningError';
  constructor(readonly profile: string, readonly holder: RunLockInfo) {
    super(`another "jbackup run ${profile}" is already running (PID ${holder.pid} on ${holder.host}, started ${holder.started}); not starting a second one`);
  }
}

const bootTime = () => Math.round(Date.now() / 1000 - os.uptime());

export function lockHolderAlive(l: RunLockInfo): boolean {
  if (l.host !== os.hostname()) return true; // a shared state dir: cannot tell, assume it runs
  if (Math.abs(l.boot - bootTime()) > 120) return false;
  if (l.pid === process.pid) return true;
  try {
    process.kill(l.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readRunLock(profile: string): RunLockInfo | null {
  try {
    return JSON.parse(readFileSync(runLockFile(profile), 'utf8')) as RunLockInfo;
  } catch {
    return null;
  }
}

/** the profile's run, if one is running now */
export function runningHolder(profile: string): RunLockInfo | null {
  const l = readRunLock(profile);
  return l && lockHolderAlive(l) ? l : null;
}

export class RunLock {
  private released = false;
  private constructor(readonly profile: string, readonly file: string, readonly info: RunLockInfo) {}

  /** create the lock file exclusively; a lock left by a dead process is taken over; a live one throws AlreadyRunningError */
  static acquire(profile: string): RunLock {
    const file = runLockFile(profile);
    mkdirpSync(path.dirname(file), 0o700);
    const info: RunLockInfo = { pid: process.pid, host: os.hostname(), boot: bootTime(), started: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = openSync(file, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        let holder = readRunLock(profile);
        if (!holder) {
          // just created and not written yet, or garbage: give a writer a moment
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
          holder = readRunLock(profile);
        }
        if (holder && lockHolderAlive(holder)) throw new AlreadyRunningError(profile, holder);
        try { unlinkSync(file); } catch { /* someone else took it over */ }
        continue;
      }
      try {
        writeSync(fd, JSON.stringify(info));
      } finally {
        closeSync(fd);
      }
      const check = readRunLock(profile);
      if (check && check.pid === process.pid && check.started === info.started) return new RunLock(profile, file, info);
      if (check && lockHolderAlive(check)) throw new AlreadyRunningError(profile, check);
    }
    throw new Error(`cannot take the run lock ${file}`);
  }

  /** synchronous, idempotent: safe from an 'exit' handler */
  release(): void {
    if (this.released) return;
    this.released = true;
    const cur = readRunLock(this.profile);
    if (cur && cur.pid === this.info.pid && cur.started === this.info.started && existsSync(this.file)) {
      try { unlinkSync(this.file); } catch { /* gone */ }
    }
  }
}
