/** restic-compatible lock files: create, check others, refresh every 5 minutes, remove. */
import { hostname, userInfo } from 'node:os';
import { NotFoundError } from '../backend/backend.js';
import { LockError } from './errors.js';
import { nowRfc3339 } from './keys.js';
import type { Repository } from './repository.js';
import { snapshotTimeKey } from './snapshot.js';
import { MAX_LOCK_SIZE } from './unpacked.js';

export interface LockInfo {
  time: string;
  exclusive: boolean;
  hostname: string;
  username: string;
  pid: number;
  uid?: number;
  gid?: number;
}

const STALE_NS = 30n * 60n * 1_000_000_000n;
const REFRESH_MS = 5 * 60 * 1000;

export function isStale(l: LockInfo, now = BigInt(Date.now()) * 1_000_000n): boolean {
  if (now - snapshotTimeKey(l.time) > STALE_NS) return true;
  if (l.hostname !== hostname()) return false;
  try {
    process.kill(l.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function encodeLock(l: LockInfo): Buffer {
  const o: Record<string, unknown> = { time: l.time, exclusive: l.exclusive, hostname: l.hostname, username: l.username, pid: l.pid };
  if (l.uid) o['uid'] = l.uid;
  if (l.gid) o['gid'] = l.gid;
  return Buffer.from(JSON.stringify(o));
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

/** a lock file's JSON, checked as restic's decoding would (throws on what restic cannot load) */
export function decodeLock(b: Uint8Array): LockInfo {
  const j = JSON.parse(Buffer.from(b).toString('utf8')) as Partial<LockInfo> | null;
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('lock is not a JSON object');
  // no time at all is Go's zero time (a stale lock, which still blocks); a time that is not RFC 3339
  // fails restic's decoding (the lock is skipped)
  j.time ??= '0001-01-01T00:00:00Z';
  if (typeof j.time !== 'string' || !RFC3339.test(j.time) || Number.isNaN(Date.parse(j.time))) throw new Error(`lock has an invalid time ${JSON.stringify(j.time)}`);
  if (j.pid !== undefined && !Number.isSafeInteger(j.pid)) throw new Error(`lock has an invalid pid ${JSON.stringify(j.pid)}`);
  for (const k of ['hostname', 'username'] as const) if (j[k] !== undefined && typeof j[k] !== 'string') throw new Error(`lock has an invalid ${k}`);
  if (j.exclusive !== undefined && typeof j.exclusive !== 'boolean') throw new Error('lock has an invalid "exclusive"');
  return { time: j.time, exclusive: j.exclusive ?? false, hostname: j.hostname ?? '', username: j.username ?? '', pid: j.pid ?? 0, uid: j.uid, gid: j.gid };
}

export async function listLocks(repo: Repository, except?: string): Promise<{ id: string; lock: LockInfo }[]> {
  const out: { id: string; lock: LockInfo }[] = [];
  for (const f of await repo.backend.list('locks')) {
    if (f.name === except) continue;
    if (f.size > MAX_LOCK_SIZE) continue; // not a lock restic or we wrote (and not worth reading)
    try {
      out.push({ id: f.name, lock: decodeLock(await repo.loadUnpacked('locks', f.name)) });
    } catch {
      // restic 0.14 skips lock files it cannot read (gone meanwhile, undecodable, or with fields
      // Go's JSON decoding refuses, such as a time that is not RFC 3339): they block nobody, and
      // only "unlock --remove-all" deletes them
    }
  }
  return out;
}

export class Lock {
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  private constructor(private repo: Repository, private id: string, readonly exclusive: boolean) {}

  /**
   * Create a lock file, wait `waitMs`, and check that no conflicting lock appeared meanwhile.
   * `duringWait` runs concurrently with the wait (read-only work, e.g. loading the index; the caller
   * must re-validate what it read once the lock holds).
   */
  static async acquire(repo: Repository, exclusive: boolean, waitMs = 200, duringWait?: () => Promise<void>): Promise<Lock> {
    await Lock.checkOthers(repo, exclusive);
    const id = await Lock.write(repo, exclusive);
    try {
      await Promise.all([new Promise((r) => setTimeout(r, waitMs)), duringWait?.()]);
      await Lock.checkOthers(repo, exclusive, id);
    } catch (e) {
      await repo.backend.remove({ type: 'locks', name: id }).catch(() => {});
      throw e;
    }
    const l = new Lock(repo, id, exclusive);
    l.timer = setInterval(() => { l.refreshing = l.refresh().catch(() => {}); }, REFRESH_MS);
    l.timer.unref();
    return l;
  }

  private static async write(repo: Repository, exclusive: boolean): Promise<string> {
    let username = '';
    let uid = 0;
    let gid = 0;
    try { const u = userInfo(); username = u.username; uid = u.uid; gid = u.gid; } catch { /* none */ }
    const info: LockInfo = { time: nowRfc3339(), exclusive, hostname: hostname(), username, pid: process.pid, uid, gid };
    return repo.saveUnpacked('locks', encodeLock(info));
  }

  private static async checkOthers(repo: Repository, exclusive: boolean, self?: string): Promise<void> {
    for (const { id, lock } of await listLocks(repo, self)) {
      if (exclusive || lock.exclusive) {
        const what = lock.exclusive ? 'exclusive' : 'non-exclusive';
        const stale = isStale(lock) ? ' (stale: remove it with "jbackup unlock")' : '';
        throw new LockError(`repository is already locked ${lock.exclusive ? 'exclusively ' : ''}by PID ${lock.pid} on ${lock.hostname} by ${lock.username} (${what} lock ${id.slice(0, 8)}, created ${lock.time})${stale}`);
      }
    }
  }

  async refresh(): Promise<void> {
    const old = this.id;
    this.id = await Lock.write(this.repo, this.exclusive);
    await this.repo.backend.remove({ type: 'locks', name: old }).catch(() => {});
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    try {
      await this.repo.backend.remove({ type: 'locks', name: this.id });
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
}
