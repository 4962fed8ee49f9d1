/** `jbackup jotta login|about|logout`: Jottacloud accounts for `jotta:<path>` / `jotta@<account>:<path>` repositories. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  type JottaAccount, DEFAULT_ACCOUNT, DEFAULT_API_URL, DEFAULT_CLIENT_ID, DEFAULT_DEVICE, DEFAULT_JFS_URL, DEFAULT_MOUNTPOINT,
  accountFile, readAccount, removeAccount, validateAccountName, withAccountLock, writeAccount, writeTokenCache,
} from '../backend/jottacloud/accounts.js';
import { cacheFromResponse, decodeLoginToken, discoverTokenEndpoint, passwordGrant } from '../backend/jottacloud/auth.js';
import { JottaClient } from '../backend/jottacloud/client.js';
import { formatBytes, InvalidGrantError, JottaError, JottaHttpError } from '../backend/jottacloud/errors.js';
import { Http, RETRY_STATUSES, RetryableError } from '../backend/jottacloud/http.js';
import { UserError } from '../repo/errors.js';
import { backendOptions, prompt, type GlobalOpts } from './global.js';
import { renderRetry } from './jotta_retry.js';

interface LoginOpts {
  name: string;
  tokenFile?: string;
  apiUrl?: string;
  jfsUrl?: string;
  device?: string;
  mountpoint?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** the password prompt's (src/cli/global.ts): Ctrl-C ends the command with exit 130 */
async function hiddenPrompt(question: string): Promise<string> {
  return prompt(question);
}

function checkUrl(u: string | undefined, flag: string): string | undefined {
  if (u === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw new UserError(`${flag}: not a URL: ${u}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UserError(`${flag}: must be an http(s) URL`);
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function quotaLine(usage: number, capacity: number): string {
  if (capacity < 0) return `${formatBytes(usage)} used (unlimited)`;
  return `${formatBytes(usage)} used of ${formatBytes(capacity)} (${formatBytes(Math.max(0, capacity - usage))} free)`;
}

/** `host[:port]` of a URL, for messages. */
function hostOf(u: string): string {
  try {
    return new URL(u).host;
  } catch {
    return u;
  }
}

/** A network-level failure (nothing answered), as opposed to an HTTP answer. */
function unreachable(e: unknown): boolean {
  return e instanceof RetryableError || (e instanceof JottaError && e.code === 'network');
}

const UNUSED = 'nothing was saved and the login token is still unused';
const USED = 'the login token has been used up by this attempt (tokens work once): create a new personal login token in the Jottacloud web UI and run `jbackup jotta login` again; nothing was saved';

/**
 * Make sure a host answers before the single-use token is spent: an unauthenticated GET that a
 * Jottacloud host answers with 401 (or 403). No answer, a 404 (wrong URL) or a server error stop
 * the login with the token still unused.
 */
async function probe(http: Http, what: string, url: string, flag: string): Promise<void> {
  let status: number;
  try {
    status = await http.retry(`${what} ${hostOf(url)}`, async () => {
      const r = await http.once({ method: 'GET', url, headers: { accept: 'application/json' }, unlimited: true });
      if (RETRY_STATUSES.has(r.status)) throw new RetryableError(`HTTP ${r.status}`, undefined, r.status);
      return r.status;
    });
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^.*giving up after/, 'giving up after') : String(e);
    if (unreachable(e) || (e instanceof JottaError && e.status === undefined)) {
      throw new UserError(`cannot reach the Jottacloud ${what} ${hostOf(url)} (${why})${flag ? `: check ${flag}` : ''}; ${UNUSED}`);
    }
    throw new UserError(`the Jottacloud ${what} ${hostOf(url)} is not answering properly (${why}): try again later; ${UNUSED}`);
  }
  if (status === 404 || status === 405 || status >= 500) {
    throw new UserError(`${url} answered HTTP ${status}: that is not the Jottacloud ${what}${flag ? ` (check ${flag})` : ''}; ${UNUSED}`);
  }
}

async function login(o: LoginOpts, g: GlobalOpts): Promise<void> {
  const name = validateAccountName(o.name);
  const apiUrl = checkUrl(o.apiUrl, '--api-url');
  const jfsUrl = checkUrl(o.jfsUrl, '--jfs-url');
  let token: string;
  if (o.tokenFile) {
    try {
      token = readFileSync(o.tokenFile, 'utf8');
    } catch (e) {
      throw new UserError(`cannot read the login token file ${o.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  } else if (!process.stdin.isTTY) {
    token = await readStdin();
  } else {
    process.stderr.write('Create a personal login token in the Jottacloud web UI (Settings → Security → Personal login token).\n');
    token = await hiddenPrompt('personal login token: ');
  }
  if (!token.trim()) throw new UserError('no Jottacloud login token given (use --token-file, standard input or the prompt)');
  const lt = decodeLoginToken(token);
  const say = (m: string): void => { if (!g.quiet) process.stderr.write(`${m}\n`); };
  // A login is run by a person, and its token works once: short retries, each one shown, and a
  // short connect timeout, so that a wrong or unreachable host is reported in seconds.
  const http = new Http({
    ...backendOptions(g).jotta,
    maxAttempts: 3, maxElapsedMs: 8_000, connectTimeoutMs: 10_000,
    ...(g.quiet ? {} : { onRetry: renderRetry }),
  });
  const api = apiUrl ?? DEFAULT_API_URL;
  const jfs = jfsUrl ?? DEFAULT_JFS_URL;
  try {
    // 1. everything that can be checked without spending the token
    say(`contacting ${hostOf(lt.wellKnownLink)} (OpenID discovery)…`);
    let endpoint: string;
    try {
      endpoint = await discoverTokenEndpoint(http, lt.wellKnownLink);
    } catch (e) {
      if (e instanceof JottaError && !(e instanceof JottaHttpError)) {
        throw new UserError(`cannot reach the Jottacloud identity host ${hostOf(lt.wellKnownLink)} (${e.message.replace(/^OpenID discovery: /, '')}); ${UNUSED}`);
      }
      throw new UserError(`${(e as Error).message}; ${UNUSED}`);
    }
    say(`contacting the API host ${hostOf(api)}…`);
    await probe(http, 'API host', `${api}/account/v1/customer`, apiUrl ? '--api-url' : '');
    if (hostOf(jfs) !== hostOf(api) || jfsUrl !== apiUrl) {
      say(`contacting the file host ${hostOf(jfs)}…`);
      await probe(http, 'file (JFS) host', `${jfs}/jfs/${encodeURIComponent(lt.username)}`, jfsUrl ? '--jfs-url' : '');
    }
    const account: JottaAccount = {
      version: 1,
      username: lt.username,
      refreshToken: '',
      tokenEndpoint: endpoint,
      clientId: DEFAULT_CLIENT_ID,
      device: o.device || DEFAULT_DEVICE,
      mountpoint: o.mountpoint || DEFAULT_MOUNTPOINT,
      ...(apiUrl ? { apiUrl } : {}),
      ...(jfsUrl ? { jfsUrl } : {}),
      created: new Date().toISOString(),
    };
    // 2. the exchange spends the token
    say('exchanging the login token…');
    let r;
    try {
      r = await passwordGrant(http, endpoint, lt, account.clientId);
    } catch (e) {
      if (e instanceof InvalidGrantError) throw e;
      throw new UserError(`the login token exchange at ${hostOf(endpoint)} failed (${(e as Error).message}); the token may have been used up: if a new attempt says so, create a new personal login token; nothing was saved`);
    }
    if (!r.refresh_token) throw new UserError(`the Jottacloud token endpoint returned no refresh token (scope offline_access refused?); ${USED}`);
    account.refreshToken = r.refresh_token;
    const cache = cacheFromResponse(r);
    // 3. a cheap authenticated call on each host before anything is written
    say('checking the account…');
    const client = new JottaClient(name, account, http);
    client.tokens.seed(cache);
    let c;
    let d;
    try {
      c = await client.customer();
      if (account.device !== DEFAULT_DEVICE || account.mountpoint !== DEFAULT_MOUNTPOINT) await client.ensureDeviceAndMountpoint();
      d = await client.drive();
    } catch (e) {
      throw new UserError(`checking the new login failed (${(e as Error).message}); ${USED}`);
    }
    // 4. only now the account is saved
    await withAccountLock(name, async () => {
      await writeAccount(name, account);
      await writeTokenCache(name, cache);
    });
    if (g.json) {
      process.stdout.write(`${JSON.stringify({ message_type: 'jotta_login', account: name, username: c.username, device: account.device, mountpoint: account.mountpoint, usage: d.usage, capacity: d.capacity, account_file: accountFile(name) })}\n`);
    } else {
      process.stdout.write(`logged in to Jottacloud as ${c.username} (account "${name}", ${account.device}/${account.mountpoint})\n`);
      process.stdout.write(`quota: ${quotaLine(d.usage, d.capacity)}\n`);
      const spec = name === DEFAULT_ACCOUNT ? 'jotta:<path>' : `jotta@${name}:<path>`;
      if (!g.quiet) process.stdout.write(`credentials saved to ${accountFile(name)}; use repositories as ${spec}\n`);
    }
  } finally {
    await http.close();
  }
}

async function about(name: string, g: GlobalOpts): Promise<void> {
  const client = await JottaClient.open(validateAccountName(name), backendOptions(g).jotta);
  try {
    const c = await client.customer();
    const d = await client.drive();
    if (g.json) {
      process.stdout.write(`${JSON.stringify({
        account: name, username: c.username, email: c.email ?? null, account_type: c.accountType ?? d.accountType ?? null,
        subscription_type: c.subscriptionType ?? null, device: client.account.device, mountpoint: client.account.mountpoint,
        usage: d.usage, capacity: d.capacity, free: d.capacity < 0 ? null : Math.max(0, d.capacity - d.usage),
        write_locked: c.writeLocked || d.writeLocked, read_locked: c.readLocked || d.readLocked,
      })}\n`);
      return;
    }
    const rows: Array<[string, string]> = [
      ['account', `${name} (user ${c.username}${c.email ? `, ${c.email}` : ''})`],
      ['subscription', [c.accountType ?? d.accountType, c.subscriptionType].filter(Boolean).join(', ') || 'unknown'],
      ['location', `${client.account.device}/${client.account.mountpoint}`],
      ['used', formatBytes(d.usage)],
      ['total', d.capacity < 0 ? 'unlimited' : formatBytes(d.capacity)],
    ];
    if (d.capacity >= 0) rows.push(['free', formatBytes(Math.max(0, d.capacity - d.usage))]);
    if (c.readLocked || c.writeLocked || d.writeLocked || d.readLocked) rows.push(['locked', `${c.readLocked || d.readLocked ? 'read' : 'write'}-locked${c.lockedCause ? ` (${c.lockedCause})` : ''}`]);
    for (const [k, v] of rows) process.stdout.write(`${`${k}:`.padEnd(14)}${v}\n`);
  } finally {
    await client.close();
  }
}

async function logout(name: string, g: GlobalOpts): Promise<void> {
  validateAccountName(name);
  let username: string | null = null;
  try {
    username = (await readAccount(name)).username;
  } catch {
    username = null;
  }
  const existed = await removeAccount(name);
  if (!existed) throw new UserError(`no Jottacloud account "${name}" is configured`);
  if (!g.quiet) {
    process.stdout.write(`removed Jottacloud account "${name}"${username ? ` (${username})` : ''}\n`);
    process.stdout.write('the login stays listed under "My logged in devices" in the Jottacloud web UI until you remove it there\n');
  }
}

export function register(program: Command, g: () => GlobalOpts): void {
  const jotta = program.command('jotta').description('manage Jottacloud accounts (repositories: jotta:<path>, jotta@<account>:<path>)');
  jotta.command('login').description('log in with a personal login token (from --token-file, standard input, or a prompt)')
    .option('--name <name>', 'account name (repositories jotta@<name>:<path>)', DEFAULT_ACCOUNT)
    .option('--token-file <file>', 'read the personal login token from this file')
    .option('--api-url <url>', 'api host origin (default https://api.jottacloud.com)')
    .option('--jfs-url <url>', 'JFS host origin (default https://jfs.jottacloud.com)')
    .option('--device <device>', `device to store repositories on (default ${DEFAULT_DEVICE})`)
    .option('--mountpoint <mountpoint>', `mountpoint on the device (default ${DEFAULT_MOUNTPOINT})`)
    .action(async (o: LoginOpts) => login(o, g()));
  jotta.command('about').description('show usage and capacity of a Jottacloud account')
    .option('--name <name>', 'account name', DEFAULT_ACCOUNT)
    .action(async (o: { name: string }) => about(o.name, g()));
  jotta.command('logout').description('forget a Jottacloud account (removes its saved tokens)')
    .option('--name <name>', 'account name', DEFAULT_ACCOUNT)
    .action(async (o: { name: string }) => logout(o.name, g()));
}
