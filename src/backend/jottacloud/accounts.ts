/**
 * Jottacloud accounts on disk: `<config dir>/jotta-accounts/<name>.json` (mode 0600) holds the
 * long-lived part (username, refresh token, token endpoint, device, mountpoint, host overrides);
 * `<name>.token.json` (0600) caches the current access token so that consecutive jbackup runs
 * do not each rotate the refresh token. Both are replaced atomically (temp file + rename).
 *
 * Refresh tokens are single-use (a reused one kills the whole token family), so every refresh
 * happens while holding `<name>.lock`, an O_EXCL lock file with stale detection, and the
 * account file is re-read after taking the lock: another process may have refreshed already.
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { configDir } from '../../util/paths.js';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { JottaError, NoAccountError } from './errors.js';

export const DEFAULT_ACCOUNT = 'default';
export const DEFAULT_DEVICE = 'Jotta';
export const DEFAULT_MOUNTPOINT = 'Archive';
export const DEFAULT_API_URL = 'https://api.jottacloud.com';
export const DEFAULT_JFS_URL = 'https://jfs.jottacloud.com';
export const DEFAULT_TOKEN_ENDPOINT = 'https://id.jottacloud.com/auth/realms/jottacloud/protocol/openid-connect/token';
export const DEFAULT_CLIENT_ID = 'jottacli';

export interface JottaAccount {
  version: 1;
  /** login name from the personal login token (the JFS user name comes from the customer call) */
  username: string;
  refreshToken: string;
  tokenEndpoint: string;
  clientId: string;
  device: string;
  mountpoint: string;
  /** origin overrides (white-label services, tests); default api.jottacloud.com / jfs.jottacloud.com */
  apiUrl?: string;
  jfsUrl?: string;
  created: string;
}

export interface TokenCache {
  accessToken: string;
  /** epoch ms */
  expiresAt: number;
  /** lifetime in seconds as issued (to choose the refresh margin) */
  lifetime: number;
}

export const ACCOUNT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validateAccountName(name: string): string {
  if (!ACCOUNT_NAME_RE.test(name)) {
    throw new JottaError(`invalid Jottacloud account name "${name}" (use letters, digits, '.', '_' and '-')`);
  }
  return name;
}

export function accountsDir(): string {
  return path.join(configDir(), 'jotta-accounts');
}

export function accountFile(name: string): string {
  return path.join(accountsDir(), `${validateAccountName(name)}.json`);
}

function tokenFile(name: string): string {
  return path.join(accountsDir(), `${validateAccountName(name)}.token.json`);
}

function lockFile(name: string): string {
  return path.join(accountsDir(), `${validateAccountName(name)}.lock`);
}

/** Write a file atomically with mode 0600: temp file in the same directory, fsync, rename, fsync dir. */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  try {
    await fh.writeFile(data);
    await fh.chmod(0o600);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => {});
    throw e;
  }
  try {
    const d = await fsp.open(dir, 'r');
    await d.sync().catch(() => {});
    await d.close();
  } catch {
    // directory fsync is best effort
  }
}

export async function readAccount(name: string): Promise<JottaAccount> {
  let text: string;
  try {
    text = await fsp.readFile(accountFile(name), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NoAccountError(`no Jottacloud account "${name}" is configured (${accountFile(name)} is missing): run \`jbackup jotta login${name === DEFAULT_ACCOUNT ? '' : ` --name ${name}`}\``);
    }
    throw e;
  }
  let a: Partial<JottaAccount>;
  try {
    a = JSON.parse(text) as Partial<JottaAccount>;
  } catch {
    throw new JottaError(`the Jottacloud account file ${accountFile(name)} is not valid JSON`);
  }
  if (typeof a.refreshToken !== 'string' || typeof a.username !== 'string') {
    throw new JottaError(`the Jottacloud account file ${accountFile(name)} is incomplete: run \`jbackup jotta login\` again`);
  }
  return {
    version: 1,
    username: a.username,
    refreshToken: a.refreshToken,
    tokenEndpoint: a.tokenEndpoint ?? DEFAULT_TOKEN_ENDPOINT,
    clientId: a.clientId ?? DEFAULT_CLIENT_ID,
    device: a.device || DEFAULT_DEVICE,
    mountpoint: a.mountpoint || DEFAULT_MOUNTPOINT,
    ...(a.apiUrl ? { apiUrl: a.apiUrl } : {}),
    ...(a.jfsUrl ? { jfsUrl: a.jfsUrl } : {}),
    created: a.created ?? new Date().toISOString(),
  };
}

export async function writeAccount(name: string, a: JottaAccount): Promise<void> {
  await writeFileAtomic(accountFile(name), `${JSON.stringify(a, null, 2)}\n`);
}

export async function readTokenCache(name: string): Promise<TokenCache | null> {
  try {
    const t = JSON.parse(await fsp.readFile(tokenFile(name), 'utf8')) as Partial<TokenCache>;
    if (typeof t.accessToken !== 'string' || typeof t.expiresAt !== 'number') return null;
    return { accessToken: t.accessToken, expiresAt: t.expiresAt, lifetime: typeof t.lifetime === 'number' ? t.lifetime : 3600 };
  } catch {
    return null;
  }
}

export async function writeTokenCache(name: string, t: TokenCache): Promise<void> {
  await writeFileAtomic(tokenFile(name), `${JSON.stringify(t)}\n`);
}

export function tokenCachePath(name: string): string {
  return tokenFile(name);
}

/** Remove the account file, its token cache and a leftover lock file. Returns false if there was no account. */
export async function removeAccount(name: string): Promise<boolean> {
  let existed = true;
  try {
    await fsp.unlink(accountFile(name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    existed = false;
  }
  await fsp.unlink(tokenFile(name)).catch(() => {});
  await fsp.unlink(lockFile(name)).catch(() => {});
  return existed;
}

// ---------------------------------------------------------------------------
// inter-process lock around token refresh

interface LockInfo {
  pid: number;
  host: string;
  time: number;
  nonce: string;
}

/**
 * A lock not refreshed for this long is taken over even if its process seems alive (on another
 * host, say); the holder rewrites it every LOCK_HEARTBEAT_MS, so only a hung holder gets there.
 */
const LOCK_STALE_MS = 120_000;
const LOCK_HEARTBEAT_MS = 10_000;
const LOCK_WAIT_MS = 180_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Run `fn` holding the account's lock file (created with O_EXCL). A lock whose process is gone
 * (same host) or that is older than LOCK_STALE_MS is stale: it is claimed by renaming it away
 * (only one waiter can win the rename), checked to be the one judged stale, and removed.
 */
export async function withAccountLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const file = lockFile(name);
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const me: LockInfo = { pid: process.pid, host: hostname(), time: Date.now(), nonce: randomBytes(8).toString('hex') };
  const deadline = Date.now() + LOCK_WAIT_MS;
  let delay = 20;
  for (;;) {
    try {
      const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        me.time = Date.now();
        await fh.writeFile(JSON.stringify(me));
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let other: LockInfo | null = null;
    let text = '';
    try {
      text = await fsp.readFile(file, 'utf8');
      other = JSON.parse(text) as LockInfo;
    } catch {
      other = null;
    }
    let stale = false;
    if (other && typeof other.pid === 'number') {
      stale = (other.host === me.host && !processAlive(other.pid)) || Date.now() - other.time > LOCK_STALE_MS;
    } else {
      // just created and not written yet, or an unreadable leftover: stale only if old
      try {
        const st = await fsp.stat(file);
        stale = Date.now() - st.mtimeMs > 10_000;
      } catch {
        continue;
      }
    }
    if (stale) {
      const claimed = `${file}.stale-${me.nonce}`;
      try {
        await fsp.rename(file, claimed);
        const got = await fsp.readFile(claimed, 'utf8').catch(() => '');
        if (got !== text) {
          // we took someone else's fresh lock: put it back if nobody created a new one meanwhile
          await fsp.link(claimed, file).catch(() => {});
        }
        await fsp.unlink(claimed).catch(() => {});
      } catch {
        // somebody else claimed it first
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new JottaError(`timed out waiting for the Jottacloud account lock ${file} (held by PID ${other?.pid ?? '?'} on ${other?.host ?? '?'}; remove the file if that process is gone)`);
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 250);
  }
  const heartbeat = setInterval(() => {
    void (async () => {
      try {
        const cur = JSON.parse(await fsp.readFile(file, 'utf8')) as LockInfo;
        if (cur.nonce === me.nonce) await fsp.writeFile(file, JSON.stringify({ ...me, time: Date.now() }));
      } catch {
        // lost or being rewritten: the next beat tries again
      }
    })();
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    try {
      const cur = JSON.parse(await fsp.readFile(file, 'utf8')) as LockInfo;
      if (cur.nonce === me.nonce) await fsp.unlink(file);
    } catch {
      // already gone
    }
  }
}
