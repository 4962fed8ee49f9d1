/** `jbackup jotta login|about|logout`: Jottacloud accounts for `jotta:<path>` / `jotta@<account>:<path>` repositories. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  type JottaAccount, DEFAULT_ACCOUNT, DEFAULT_CLIENT_ID, DEFAULT_DEVICE, DEFAULT_MOUNTPOINT, accountFile, readAccount,
  removeAccount, validateAccountName, withAccountLock, writeAccount, writeTokenCache,
} from '../backend/jottacloud/accounts.js';
import { cacheFromResponse, decodeLoginToken, discoverTokenEndpoint, passwordGrant } from '../backend/jottacloud/auth.js';
import { JottaClient } from '../backend/jottacloud/client.js';
import { formatBytes, JottaError } from '../backend/jottacloud/errors.js';
import { Http } from '../backend/jottacloud/http.js';
import { UserError } from '../repo/errors.js';
import { backendOptions, prompt, type GlobalOpts } from './global.js';

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
  const http = new Http(backendOptions(g).jotta);
  try {
    const endpoint = await discoverTokenEndpoint(http, lt.wellKnownLink);
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
    await withAccountLock(name, async () => {
      const r = await passwordGrant(http, endpoint, lt, account.clientId);
      if (!r.refresh_token) throw new JottaError('the Jottacloud token endpoint returned no refresh token (scope offline_access refused?)');
      account.refreshToken = r.refresh_token;
      await writeAccount(name, account);
      await writeTokenCache(name, cacheFromResponse(r));
    });
    const client = new JottaClient(name, account, http);
    const c = await client.customer();
    if (account.device !== DEFAULT_DEVICE || account.mountpoint !== DEFAULT_MOUNTPOINT) await client.ensureDeviceAndMountpoint();
    const d = await client.drive();
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
