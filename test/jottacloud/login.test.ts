/**
 * `jbackup jotta login` when things go wrong, and the retry budget the CLI gives the backend:
 * - an unreachable API host (a closed loopback port) or one that only answers 503 stops the login
 *   before the single-use token is spent: nothing saved, the host named, in seconds, and the same
 *   token then works;
 * - a failure after the exchange says the token is used up and saves nothing (an existing account
 *   of that name is left as it was);
 * - the Http retry budget (maxElapsedMs, onRetry) and, on a terminal, a short budget with one line
 *   per retry, while a non-terminal run keeps the long one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { startEmulator, type RunningEmulator } from '../../tools/jotta-emulator/index.js';
import { accountFile } from '../../src/backend/jottacloud/index.js';
import { Http, type RetryNotice } from '../../src/backend/jottacloud/http.js';
import { isInteractive, retryLine, retryPolicy } from '../../src/cli/jotta_retry.js';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir, type RunResult } from '../helpers/tools.js';

let base: string;
let cfgDir: string;
let emu: RunningEmulator;
let env: Record<string, string>;
let n = 0;

const stat = (k: string): number => emu.stats()[k] ?? 0;

const jb = (args: string[]): Promise<RunResult> => runJbackup(args, { env });

async function tokenFile(): Promise<string> {
  const f = path.join(base, `token-${++n}`);
  await fsp.writeFile(f, `${await emu.mintLoginToken()}\n`);
  return f;
}

/** A loopback port nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const exists = (p: string): Promise<boolean> => fsp.stat(p).then(() => true, () => false);

beforeAll(async () => {
  base = await tmpDir('jotta-login');
  cfgDir = path.join(base, 'config');
  emu = await startEmulator({ stateDir: path.join(base, 'state'), port: 0, tls: true, seed: 17 });
  env = { JBACKUP_CONFIG_DIR: cfgDir, NODE_EXTRA_CA_CERTS: emu.caCert!, JBACKUP_PASSWORD: 'pw' };
  process.env['JBACKUP_CONFIG_DIR'] = cfgDir;
});

afterAll(async () => {
  await emu?.close();
  await cleanupTmpDirs();
});

describe('jotta login validates before it saves', () => {
  it('an unreachable API host: the host is named, nothing is saved, the token stays unused, in seconds', async () => {
    const port = await closedPort();
    const tok = await tokenFile();
    const password0 = stat('token.password');
    const t0 = Date.now();
    const r = await jb(['jotta', 'login', '--name', 'unreach', '--token-file', tok, '--api-url', `http://127.0.0.1:${port}`, '--jfs-url', emu.url]);
    const took = Date.now() - t0;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^contacting 127\.0\.0\.1:\d+ \(OpenID discovery\)…$/m);
    expect(r.stderr).toContain(`contacting the API host 127.0.0.1:${port}…`);
    expect(r.stderr).toMatch(new RegExp(`^jotta: API host 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*; retry 1/2 in \\d+\\.\\ds$`, 'm'));
    const fatal = r.stderr.split('\n').filter((l) => l.startsWith('Fatal:'));
    // (3 attempts, fewer only if a loaded machine spent the 8 s budget first)
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(new RegExp(`^Fatal: cannot reach the Jottacloud API host 127\\.0\\.0\\.1:${port} \\(giving up after \\d attempts?(?: \\([\\d.]+s\\))?: connect ECONNREFUSED 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)\\): check --api-url; nothing was saved and the login token is still unused$`));
    expect(took).toBeLessThan(20_000); // was 47 s of silence; ~1 s here
    expect(await exists(accountFile('unreach'))).toBe(false);
    expect(stat('token.password')).toBe(password0);
    // the same token still works once the URL is right
    const ok = await jb(['jotta', 'login', '--name', 'unreach', '--token-file', tok, '--api-url', emu.url, '--jfs-url', emu.url]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await exists(accountFile('unreach'))).toBe(true);
    expect(stat('token.password')).toBe(password0 + 1);
  });

  it('an API host that answers only 503: stopped before the exchange, token unused', async () => {
    const tok = await tokenFile();
    const password0 = stat('token.password');
    emu.setFaults('503@api.customer=1');
    let r: RunResult;
    try {
      r = await jb(['jotta', 'login', '--name', 'busy', '--token-file', tok, '--api-url', emu.url, '--jfs-url', emu.url]);
    } finally {
      emu.setFaults(undefined);
    }
    expect(r.code).toBe(1);
    const host = new URL(emu.url).host;
    expect(r.stderr).toMatch(new RegExp(`^jotta: API host ${host.replace(/\./g, '\\.')}: HTTP 503; retry 1/2 in`, 'm'));
    expect(r.stderr).toMatch(new RegExp(`^Fatal: the Jottacloud API host ${host.replace(/\./g, '\\.')} is not answering properly \\(giving up after \\d attempts?(?: \\([\\d.]+s\\))?: HTTP 503\\): try again later; nothing was saved and the login token is still unused$`, 'm'));
    expect(stat('token.password')).toBe(password0);
    expect(await exists(accountFile('busy'))).toBe(false);
  });

  it('a URL that is not a Jottacloud API host (404) is refused before the exchange', async () => {
    const tok = await tokenFile();
    const password0 = stat('token.password');
    const r = await jb(['jotta', 'login', '--name', 'wrongurl', '--token-file', tok, '--api-url', `${emu.url}/nothing-here`, '--jfs-url', emu.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Fatal: .*\/nothing-here\/account\/v1\/customer answered HTTP 404: that is not the Jottacloud API host \(check --api-url\); nothing was saved and the login token is still unused$/m);
    expect(stat('token.password')).toBe(password0);
  });

  it('a failure after the exchange says the token is used up; an existing account of that name is kept as it was', async () => {
    const good = await jb(['jotta', 'login', '--name', 'keep', '--token-file', await tokenFile(), '--api-url', emu.url, '--jfs-url', emu.url]);
    expect(good.code, good.stderr).toBe(0);
    const before = await fsp.readFile(accountFile('keep'), 'utf8');
    const password0 = stat('token.password');
    // the account check after the exchange (GET /jfs/<user>) is refused
    emu.injectFault({ kind: 403, endpoint: 'jfs.user', count: 1 });
    const r = await jb(['jotta', 'login', '--name', 'keep', '--token-file', await tokenFile(), '--api-url', emu.url, '--jfs-url', emu.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^exchanging the login token…$/m);
    expect(r.stderr).toMatch(/^Fatal: checking the new login failed \(Jottacloud account info: HTTP 403 .*\); the login token has been used up by this attempt \(tokens work once\): create a new personal login token .*; nothing was saved$/m);
    expect(stat('token.password')).toBe(password0 + 1);
    expect(await fsp.readFile(accountFile('keep'), 'utf8')).toBe(before);
  });
});

describe('retry budget', () => {
  it('the CLI\'s choice: a terminal (stdin and stderr) gets 4 attempts within 20 s, `run` and no terminal the default', () => {
    const saved = [process.stdin.isTTY, process.stderr.isTTY];
    try {
      Object.assign(process.stdin, { isTTY: true });
      Object.assign(process.stderr, { isTTY: true });
      expect(isInteractive('snapshot')).toBe(true);
      expect(isInteractive('run')).toBe(false);
      Object.assign(process.stdin, { isTTY: undefined });
      expect(isInteractive('snapshot')).toBe(false);
    } finally {
      Object.assign(process.stdin, { isTTY: saved[0] });
      Object.assign(process.stderr, { isTTY: saved[1] });
    }
    expect(retryPolicy(false, false, 'jotta')).toEqual({});
    expect(retryPolicy(true, false, 'jotta')).toMatchObject({ maxAttempts: 4, maxElapsedMs: 20_000, onRetry: expect.any(Function) });
    expect(retryPolicy(true, true, 'jotta')).toEqual({ maxAttempts: 4, maxElapsedMs: 20_000 });
    expect(retryLine({ label: 'GET config', retry: 2, maxRetries: 3, waitMs: 800, reason: 'HTTP 503 busy' })).toBe('jotta: GET config: HTTP 503 busy; retry 2/3 in 0.8s');
  });

  it('Http stops retrying at maxElapsedMs and reports each retry through onRetry', async () => {
    const port = await closedPort();
    const notices: RetryNotice[] = [];
    const http = new Http({ maxAttempts: 50, maxElapsedMs: 3000, baseDelayMs: 100, maxDelayMs: 400, onRetry: (r) => notices.push(r) });
    // load undici and make the agent first (that can take a second on a loaded machine)
    await http.once({ method: 'GET', url: `http://127.0.0.1:${port}/` }).catch(() => {});
    const t0 = Date.now();
    await expect(http.retry('probe', () => http.once({ method: 'GET', url: `http://127.0.0.1:${port}/` }))).rejects.toThrow(/^probe: giving up after \d+ attempts \(\d+\.\ds\): connect ECONNREFUSED/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(notices.length).toBeGreaterThanOrEqual(2);
    expect(notices.length).toBeLessThan(49);
    expect(notices.map((x) => x.retry)).toEqual(notices.map((_, i) => i + 1));
    expect(notices.every((x) => x.label === 'probe' && x.maxRetries === 49 && /ECONNREFUSED/.test(x.reason))).toBe(true);
    await http.close();
  });

  it('on a terminal a command gets a short budget with one line per retry; without one, the long budget stays silent', async () => {
    const r0 = await jb(['jotta', 'login', '--token-file', await tokenFile(), '--api-url', emu.url, '--jfs-url', emu.url]);
    expect(r0.code, r0.stderr).toBe(0);
    expect((await jb(['-r', 'jotta:budget/repo', 'init'])).code).toBe(0);
    // the next 4 listings answer 503: 4 attempts are all an interactive command makes
    emu.injectFault({ kind: 503, endpoint: 'jfs.liststream', count: 4 });
    // a pseudo-terminal for stdin and stderr (util-linux script); the output comes back merged
    const cmd = [process.execPath, JBACKUP_BIN, '-r', 'jotta:budget/repo', 'snapshots'].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const tty = await new Promise<{ code: number; out: string }>((resolve, reject) => {
      const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, out }));
    });
    const lines = tty.out.replace(/\r\x1b\[K/g, '').split(/\r?\n/);
    const retries = lines.filter((l) => /^jotta: list \w+: HTTP 503 .*; retry \d\/3 in \d+\.\ds$/.test(l));
    expect(retries.length, tty.out).toBe(3);
    expect(tty.code, tty.out).not.toBe(0);
    expect(lines.some((l) => /^Fatal: .*giving up after 4 attempts.*HTTP 503/.test(l)), tty.out).toBe(true);
    // no terminal: the default budget (10 attempts) rides out the same 4 failures, silently without -v
    emu.injectFault({ kind: 503, endpoint: 'jfs.liststream', count: 4 });
    const f0 = stat('fault.503');
    const bg = await jb(['-r', 'jotta:budget/repo', 'snapshots']);
    expect(bg.code, bg.stderr).toBe(0);
    expect(bg.stderr).toBe('');
    expect(stat('fault.503') - f0).toBe(4);
  }, 180_000);
});
