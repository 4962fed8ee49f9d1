/**
 * Library options the CLI takes from the environment (SPEC §3: only the CLI reads env; the library
 * gets plain options). Kept apart from global.ts so that early.ts, which runs before the rest of
 * jbackup loads, can use it too.
 */
import type { KdfParams } from '../repo/kdf.js';

/** JBACKUP_KDF_PARAMS="N,r,p": scrypt parameters for new keys (tests only: cheap keys); undefined = the default */
export function kdfParamsFromEnv(): KdfParams | undefined {
  const env = process.env['JBACKUP_KDF_PARAMS'];
  if (!env) return undefined;
  const [N, r, p] = env.split(',').map((x) => Number.parseInt(x, 10));
  return N && r && p ? { N, r, p } : undefined;
}

/** JBACKUP_KDF_THREADS=2: derive keys two scrypt lanes at a time (on two cores, 32 MiB more) */
export function kdfThreadsFromEnv(): 1 | 2 {
  return process.env['JBACKUP_KDF_THREADS'] === '2' ? 2 : 1;
}

/** JBACKUP_JOTTA_HARD_DELETE=1|true: Jottacloud deletions skip the trash (as --jotta-hard-delete) */
export function jottaHardDeleteFromEnv(): boolean {
  const env = process.env['JBACKUP_JOTTA_HARD_DELETE'];
  return env !== undefined && (env === '1' || env.toLowerCase() === 'true');
}

/**
 * JBACKUP_LOCK_SETTLE_MS: the wait between writing a lock and checking for others (restic's 200 ms).
 * For tests: a competing lock written from another process must land inside the window however
 * loaded the machine is.
 */
export function lockSettleMsFromEnv(): number | undefined {
  const v = Number.parseInt(process.env['JBACKUP_LOCK_SETTLE_MS'] ?? '', 10);
  return Number.isFinite(v) && v >= 0 ? v : undefined;
}
