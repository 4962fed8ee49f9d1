/**
 * The native Jottacloud backend against the loopback emulator (TLS on, in-process): login via
 * the CLI, the shared backend conformance suite, init/snapshot/restore through `jotta:<path>`,
 * token single-use rules (used login token, revoked families, concurrent refreshes), trash vs
 * hard delete, quota/lock errors, and a faulty network (429/500/dropped uploads with resume).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { startEmulator, type RunningEmulator } from '../../tools/jotta-emulator/index.js';
import { JottaBackend } from '../../src/backend/jottacloud/backend.js';
import { openBackend } from '../../src/backend/location.js';
import {
  accountFile, decodeLoginToken, encodeName, INVALID_GRANT_MESSAGE, parseJottaLocation, tokenCachePath, writeAccount,
  writeTokenCache,
} from '../../src/backend/jottacloud/index.js';
import { backendConformance } from '../backend/conformance.js';
import { readKdfHint, saveKdfHint } from '../../src/cli/kdfhint.js';
import { compareTrees, makeInteropTree, prngBytes } from '../helpers/fstree.js';
import { startConnectProxy, tunnelHostsTo, type ConnectProxy } from '../../tools/jotta-emulator/connect-proxy.js';
import { cleanupTmpDirs, findTool, interopDescribe, runJbackup, runRestic, tmpDir, type RunResult } from '../helpers/tools.js';

const MiB = 1024 * 1024;

let base: string;
let cfgDir: string;
let emu: RunningEmulator;
let tokenFile: string;
let loginRun: RunResult;
let env: Record<string, string>;
const logs: string[] = [];
const logger = (m: string): void => { logs.push(m); };

const jb = (args: string[], opts: { cwd?: string; input?: string; env?: Record<string, string> } = {}): Promise<RunResult> =>
  runJbackup(args, { env: { ...env, ...(opts.env ?? {}) }, ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(opts.input !== undefined ? { input: opts.input } : {}) });

const ok = async (args: string[], opts: { cwd?: string; input?: string; env?: Record<string, string> } = {}): Promise<RunResult> => {
  const r = await jb(args, opts);
  if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r;
};

const stat = (k: string): number => emu.stats()[k] ?? 0;
const usage = (): number => emu.stats()['state.usage']!;

async function control(what: string): Promise<unknown> {
  const agent = new Agent({ connect: { ca: emu.caCertPem! } });
  try {
    const r = await request(`${emu.url}/_emulator/${what}`, { method: 'POST', dispatcher: agent });
    expect(r.statusCode).toBe(200);
    return await r.body.json();
  } finally {
    await agent.close();
  }
}

/** Make the cached access token look expired, so that the next command must refresh. */
async function expireAccessToken(name = 'default'): Promise<void> {
  const p = tokenCachePath(name);
  const t = JSON.parse(await fsp.readFile(p, 'utf8')) as Record<string, unknown>;
  await fsp.writeFile(p, JSON.stringify({ ...t, expiresAt: 0 }));
}

const loginArgs = (file: string, extra: string[] = []): string[] => ['jotta', 'login', '--token-file', file, '--api-url', emu.url, '--jfs-url', emu.url, ...extra];

beforeAll(async () => {
  base = await tmpDir('jotta-backend');
  cfgDir = path.join(base, 'config');
  emu = await startEmulator({ stateDir: path.join(base, 'state'), port: 0, tls: true, seed: 20240611 });
  env = { JBACKUP_CONFIG_DIR: cfgDir, NODE_EXTRA_CA_CERTS: emu.caCert!, JBACKUP_PASSWORD: 'jotta-secret' };
  // in-process backends find the account the same way
  process.env['JBACKUP_CONFIG_DIR'] = cfgDir;
  delete process.env['JBACKUP_JOTTA_HARD_DELETE'];
  tokenFile = path.join(base, 'login-token');
  await fsp.writeFile(tokenFile, `${emu.loginToken}\n`);
  loginRun = await jb(['-v', ...loginArgs(tokenFile)]);
});

afterAll(async () => {
  await emu?.close();
  await cleanupTmpDirs();
});

describe('jotta login', () => {
  it('exchanges the login token, saves a 0600 account file and prints no token', async () => {
    // what is being tried, on stderr; nothing else
    expect(loginRun.stderr).toMatch(/^contacting 127\.0\.0\.1:\d+ \(OpenID discovery\)…\ncontacting the API host 127\.0\.0\.1:\d+…\nexchanging the login token…\nchecking the account…\n$/);
    expect(loginRun.code).toBe(0);
    expect(loginRun.stdout).toMatch(/logged in to Jottacloud as testuser \(account "default", Jotta\/Archive\)/);
    expect(loginRun.stdout).toMatch(/quota: .* used \(unlimited\)/);
    const acctPath = accountFile('default');
    expect((await fsp.stat(acctPath)).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(path.dirname(acctPath))).mode & 0o777).toBe(0o700);
    expect((await fsp.stat(tokenCachePath('default'))).mode & 0o777).toBe(0o600);
    const acct = JSON.parse(await fsp.readFile(acctPath, 'utf8')) as Record<string, string>;
    expect(acct).toMatchObject({ username: 'testuser', device: 'Jotta', mountpoint: 'Archive', apiUrl: emu.url, jfsUrl: emu.url, clientId: 'jottacli' });
    expect(acct['tokenEndpoint']).toBe(`${emu.url}/auth/realms/jottacloud/protocol/openid-connect/token`);
    const access = (JSON.parse(await fsp.readFile(tokenCachePath('default'), 'utf8')) as { accessToken: string }).accessToken;
    expect(access.length).toBeGreaterThan(20);
    expect(JSON.stringify(acct)).not.toContain(access);
    for (const secret of [access, acct['refreshToken']!, decodeLoginToken(emu.loginToken).authToken]) {
      expect(loginRun.stdout + loginRun.stderr).not.toContain(secret);
    }
    expect(stat('token.login')).toBe(1);
    expect(stat('req.id.well-known')).toBe(1);
  });

  it('a second login with the same (used) token fails with the one-line invalid_grant message', async () => {
    const r = await jb(loginArgs(tokenFile, ['--name', 'again']));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`exchanging the login token…\nFatal: ${INVALID_GRANT_MESSAGE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n$`));
    await expect(fsp.stat(accountFile('again'))).rejects.toThrow();
  });

  it('accepts a padded token on standard input; about, named accounts and logout', async () => {
    const tok = await emu.mintLoginToken();
    const json = Buffer.from(tok, 'base64url').toString('utf8');
    const padded = Buffer.from(json.length % 3 === 0 ? `${json} ` : json).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    expect(padded).toMatch(/=$/);
    expect(decodeLoginToken(padded)).toEqual(decodeLoginToken(tok));
    const r = await jb(['-q', 'jotta', 'login', '--api-url', emu.url, '--jfs-url', emu.url, '--name', 'second'], { input: `${padded}\n` });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^logged in to Jottacloud as testuser \(account "second", Jotta\/Archive\)$/m);
    const about = await ok(['jotta', 'about', '--name', 'second']);
    expect(about.stdout).toMatch(/^total:\s+unlimited$/m);
    expect(about.stdout).toMatch(/^location:\s+Jotta\/Archive$/m);
    const aboutJson = JSON.parse((await ok(['--json', 'jotta', 'about', '--name', 'second'])).stdout) as { usage: number; capacity: number };
    expect(aboutJson.capacity).toBe(-1);
    await ok(['-r', 'jotta@second:named/repo', 'init']);
    expect((await ok(['-r', 'jotta@second:named/repo', 'snapshots'])).stdout).toMatch(/0 snapshots/);
    const out = await ok(['jotta', 'logout', '--name', 'second']);
    expect(out.stdout).toContain('removed Jottacloud account "second"');
    await expect(fsp.stat(accountFile('second'))).rejects.toThrow();
    const gone = await jb(['-r', 'jotta@second:named/repo', 'snapshots']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^Fatal: no Jottacloud account "second" is configured .*jbackup jotta login --name second/);
  });
});

describe('repository locations', () => {
  it('parses jotta:<path> and jotta@<account>:<path> (paths may contain ":") and encodes names like rclone', () => {
    expect(parseJottaLocation('jotta:backups/host:1')).toEqual({ account: 'default', segments: ['backups', 'host:1'] });
    expect(parseJottaLocation('jotta@work:/a//b/')).toEqual({ account: 'work', segments: ['a', 'b'] });
    expect(parseJottaLocation('jotta:')).toEqual({ account: 'default', segments: [] });
    expect(() => parseJottaLocation('jotta@bad name:x')).toThrow(/invalid Jottacloud account name/);
    expect(() => parseJottaLocation('jotta:a/../b')).toThrow(/not allowed/);
    expect(encodeName('host:1')).toBe('host\uff1a1');
    expect(encodeName('a<b>?*|"')).toBe('a\uff1cb\uff1e\uff1f\uff0a\uff5c\uff02');
    expect(encodeName('..')).toBe('\uff0e\uff0e');
    expect(encodeName('plain name ÆØÅ')).toBe('plain name ÆØÅ');
  });
});

let confN = 0;
backendConformance('jottacloud (emulator)', async () => new JottaBackend(`jotta:conformance/run ${++confN}`, { ca: emu.caCertPem!, logger }));

describe('jotta backend specifics', () => {
  it('lists data/ (256 subfolders) with one liststream request; keeps the repository where rclone puts jotta:<path>', async () => {
    const be = new JottaBackend('jotta:layout/re:po', { ca: emu.caCertPem!, logger });
    await be.create();
    const names: string[] = [];
    for (let i = 0; i < 12; i++) {
      const b = randomBytes(100 + i);
      const id = createHash('sha256').update(b).digest('hex');
      names.push(id);
      await be.save({ type: 'data', name: id }, [b.subarray(0, 50), b.subarray(50)]);
    }
    const before = stat('req.jfs.liststream');
    const listed = await be.list('data');
    expect(stat('req.jfs.liststream') - before).toBe(1);
    expect(listed.map((f) => f.name).sort()).toEqual(names.sort());
    // the JFS path: /jfs/<user>/Jotta/Archive/layout/re：po/data/xx/<id>
    const agent = new Agent({ connect: { ca: emu.caCertPem! } });
    const tok = (JSON.parse(await fsp.readFile(tokenCachePath('default'), 'utf8')) as { accessToken: string }).accessToken;
    const id = names[0]!;
    const r = await request(`${emu.url}/jfs/testuser/Jotta/Archive/layout/${encodeURIComponent('re\uff1apo')}/data/${id.slice(0, 2)}/${id}`, { dispatcher: agent, headers: { authorization: `Bearer ${tok}` } });
    expect(r.statusCode).toBe(200);
    expect(await r.body.text()).toMatch(/<file name="[0-9a-f]{64}"/);
    await agent.close();
    await be.close();
  });

  it('moves deleted files to the trash by default; --jotta-hard-delete frees the quota at once', async () => {
    const trash = new JottaBackend('jotta:deletes', { ca: emu.caCertPem! });
    const hard = new JottaBackend('jotta:deletes', { ca: emu.caCertPem!, hardDelete: true });
    await trash.create();
    const a = randomBytes(MiB);
    const b = randomBytes(MiB);
    const h = (x: Buffer) => ({ type: 'data' as const, name: createHash('sha256').update(x).digest('hex') });
    await trash.save(h(a), a);
    const u0 = usage();
    const dl0 = stat('req.jfs.dl');
    await trash.remove(h(a));
    expect(stat('req.jfs.dl') - dl0).toBe(1);
    expect(usage()).toBe(u0); // trashed bytes still count
    await expect(trash.stat(h(a))).rejects.toThrow(/does not exist/);
    await expect(trash.remove(h(a))).rejects.toThrow(/does not exist/);
    await hard.save(h(b), b);
    expect(usage()).toBe(u0 + MiB);
    const rm0 = stat('req.jfs.rm');
    await hard.remove(h(b));
    expect(stat('req.jfs.rm') - rm0).toBe(1);
    expect(usage()).toBe(u0);
    // saving trashed content again revives it
    await trash.save(h(a), a);
    expect((await trash.load(h(a))).equals(a)).toBe(true);
  });

  it('--limit-upload / --limit-download throttle to the given rate (the shared limiter, 1 s burst) through the backend stack of openBackend', async () => {
    const be = openBackend('jotta:throttle', { jotta: { ca: emu.caCertPem! }, limits: { upload: MiB, download: MiB, connections: 3 } });
    expect(be.properties.connections).toBe(3);
    await be.create();
    const b = randomBytes(2 * MiB);
    const h = { type: 'data' as const, name: createHash('sha256').update(b).digest('hex') };
    let t = Date.now();
    await be.save(h, b);
    expect(Date.now() - t).toBeGreaterThanOrEqual(900); // 1 MiB burst, then 1 MiB at 1 MiB/s
    t = Date.now();
    expect((await be.load(h)).equals(b)).toBe(true);
    expect(Date.now() - t).toBeGreaterThanOrEqual(900);
    await be.close();
  });

  it('init, snapshot, restore of a small tree through jotta:<path>; forget trashes, prune frees quota', async () => {
    const src = path.join(base, 'small-src');
    await makeInteropTree(src, { bigFileMiB: 2 });
    const repo = ['-r', 'jotta:backups/small tree'];
    const init = await ok([...repo, 'init']);
    expect(init.stdout).toMatch(/created jbackup repository [0-9a-f]{10} at jotta:backups\/small tree/);
    const snap1 = await ok([...repo, '--json', 'snapshot', '.'], { cwd: src });
    const id1 = (JSON.parse(snap1.stdout.trim().split('\n').pop()!) as { snapshot_id: string }).snapshot_id;
    const out = path.join(base, 'small-restore');
    await ok([...repo, 'restore', 'latest', out]);
    expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
    expect((await ok([...repo, 'check', '--read-data'])).stdout).toMatch(/no errors were found/);

    // replace the big file, snapshot again, forget the first snapshot and prune with hard delete
    await fsp.writeFile(path.join(src, 'files', 'random.bin'), prngBytes('replaced', 2 * MiB));
    await ok([...repo, 'snapshot', '.'], { cwd: src });
    const trashed0 = stat('req.jfs.dl');
    await ok([...repo, 'forget', id1]);
    // the snapshot file went to the trash (recoverable), not deleted
    expect(stat('req.jfs.dl') - trashed0).toBe(1);
    const u0 = usage();
    // no --jotta-hard-delete: prune deletes permanently anyway, since freeing space is its purpose
    const pr = await ok([...repo, 'prune']);
    expect(pr.stdout).toMatch(/space freed:\s+2\.\d+ MiB/);
    expect(usage()).toBeLessThan(u0 - 1.5 * MiB);
    const out2 = path.join(base, 'small-restore-2');
    await ok([...repo, 'restore', 'latest', out2]);
    expect(await compareTrees(src, out2, { ignore: ['atime', 'root'] })).toEqual([]);
  });

  it('a command on a jotta: repository leaves its key parameters as a hint for the next command\'s early start; a stale hint is mended', async () => {
    const spec = 'jotta:backups/small tree';
    const repo = ['-r', spec];
    const keys = JSON.parse((await ok([...repo, 'key', 'list', '--json'])).stdout) as Array<{ id: string }>;
    const kf = JSON.parse((await ok([...repo, 'cat', 'key', keys[0]!.id])).stdout) as { N: number; r: number; p: number; salt: string };
    const want = { N: kf.N, r: kf.r, p: kf.p, salt: kf.salt };
    expect(readKdfHint(spec)).toEqual(want);
    // a stale hint (another salt) costs a wasted derivation, nothing else, and is replaced
    saveKdfHint(spec, { ...want, salt: Buffer.alloc(64, 1).toString('base64') });
    expect((await ok([...repo, 'snapshots', '--json'])).stdout).toMatch(/"short_id"/);
    expect(readKdfHint(spec)).toEqual(want);
    // a wrong password is still exit 12 with a hint present
    expect((await jb([...repo, 'snapshots'], { env: { JBACKUP_PASSWORD: 'not it' } })).code).toBe(12);
  });

  it('quota exhaustion is a one-line error', async () => {
    const src = path.join(base, 'quota-src');
    await fsp.mkdir(src, { recursive: true });
    await fsp.writeFile(path.join(src, 'big'), prngBytes('quota', 2 * MiB));
    await ok(['-r', 'jotta:backups/quota', 'init']);
    emu.setQuota(usage() + 256 * 1024);
    try {
      const r = await jb(['-r', 'jotta:backups/quota', 'snapshot', '.'], { cwd: src });
      expect(r.code).not.toBe(0);
      const fatal = r.stderr.split('\n').filter((l) => l.startsWith('Fatal:'));
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toMatch(/^Fatal: the Jottacloud account testuser is out of storage space \(.* used of .*, .* more needed\): free space .*or upgrade the subscription$/);
    } finally {
      emu.setQuota(-1);
    }
  });

  it('a locked account is a one-line error (customer document: write_locked + locked_cause)', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/account/v1/customer' && req.headers.authorization === 'Bearer fake-access') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ username: 'lockeduser', usage: 10, quota: -1, write_locked: true, read_locked: false, locked_cause: 'payment overdue' }));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"code":404,"message":"nope","error_id":"NoSuchPathException"}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await writeAccount('locked', { version: 1, username: 'lockeduser', refreshToken: 'unused', tokenEndpoint: `${url}/token`, clientId: 'jottacli', device: 'Jotta', mountpoint: 'Archive', apiUrl: url, jfsUrl: url, created: new Date().toISOString() });
      await writeTokenCache('locked', { accessToken: 'fake-access', expiresAt: Date.now() + 3600_000, lifetime: 3600 });
      const r = await jb(['-r', 'jotta@locked:repo', 'init']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('Fatal: the Jottacloud account lockeduser is write-locked (payment overdue): log in to the Jottacloud web UI to see why and resolve it\n');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('two processes refreshing at once do not burn the token family (account lock + re-read)', async () => {
    const repo = ['-r', 'jotta:backups/small tree'];
    await expireAccessToken();
    const refresh0 = stat('token.refresh');
    const reuse0 = stat('token.refresh.reuse');
    const [a, b] = await Promise.all([jb([...repo, 'snapshots']), jb([...repo, 'snapshots'])]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    expect(a.stdout).toMatch(/^1 snapshots$/m);
    expect(stat('token.refresh') - refresh0).toBe(1); // one refreshed, the other re-read and reused it
    expect(stat('token.refresh.reuse')).toBe(reuse0);

    // no cache at all and a stale lock left by a dead process: both still succeed
    await fsp.unlink(tokenCachePath('default'));
    await fsp.writeFile(path.join(cfgDir, 'jotta-accounts', 'default.lock'), JSON.stringify({ pid: 99_999_999, host: os.hostname(), time: Date.now(), nonce: 'dead' }));
    const [c, d] = await Promise.all([jb([...repo, 'snapshots']), jb([...repo, 'snapshots'])]);
    expect([c.code, d.code, c.stderr, d.stderr]).toEqual([0, 0, '', '']);
    expect(stat('token.refresh') - refresh0).toBe(2);
    expect(stat('token.refresh.reuse')).toBe(reuse0);
    expect(emu.stats()['state.liveTokenFamilies']).toBeGreaterThanOrEqual(1);
    await expect(fsp.stat(path.join(cfgDir, 'jotta-accounts', 'default.lock'))).rejects.toThrow();
  });

  it('survives 429/500/dropped uploads: a 200 MB snapshot finishes with retries and resumes and restores identically', async () => {
    const src = path.join(base, 'faulty-src');
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 10; i++) await fsp.writeFile(path.join(src, i % 3 === 2 ? `sub/c${i}.bin` : `f${i}.bin`), prngBytes(`faulty-${i}`, 20 * MiB));
    await fsp.writeFile(path.join(src, 'small.txt'), 'hello jotta\n');
    const repo = ['-r', 'jotta:backups/faulty'];
    await ok([...repo, 'init']);
    const before = emu.stats();
    emu.setFaults('429=0.1,500=0.05,drop-upload=0.05', 7);
    // the random faults are seeded, but request order varies with concurrency: one certain drop
    emu.injectFault({ kind: 'drop-upload', minBytes: MiB });
    try {
      const snap = await ok(['-v', ...repo, '--pack-size', '4', 'snapshot', '.'], { cwd: src });
      expect(snap.stderr).toMatch(/^jotta: retry \d+\/\d+ of .* HTTP (429|500)/m);
      expect(snap.stderr).toMatch(/^jotta: upload of data\/.* interrupted \(connection lost: .*\); re-allocating to resume/m);
      expect(snap.stderr).toMatch(/^jotta: resuming upload of data\/[0-9a-f]{2}\/[0-9a-f]{12}… at byte [1-9]\d* of \d+ \(resume_pos from the server\)$/m);
      const out = path.join(base, 'faulty-restore');
      await ok(['-v', ...repo, 'restore', 'latest', out]);
      expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
    } finally {
      emu.setFaults(undefined);
    }
    const after = emu.stats();
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    expect(delta('fault.429')).toBeGreaterThan(0);
    expect(delta('fault.drop-upload')).toBeGreaterThanOrEqual(1);
    expect(delta('upload.resumed')).toBeGreaterThanOrEqual(1);
    expect(delta('allocate.resume')).toBeGreaterThanOrEqual(1);
    expect(after['upload.corrupt'] ?? 0).toBe(0);
    expect((await ok([...repo, 'check', '--read-data'])).stdout).toMatch(/no errors were found/);
  });

  it('a pack corrupted in transit is refused by the server md5 check, uploaded again, and the repository is intact', async () => {
    const src = path.join(base, 'corrupt-src');
    await fsp.mkdir(src, { recursive: true });
    await fsp.writeFile(path.join(src, 'one.bin'), prngBytes('corrupt-1', 6 * MiB));
    await fsp.writeFile(path.join(src, 'two.bin'), prngBytes('corrupt-2', 6 * MiB));
    const repo = ['-r', 'jotta:backups/corrupt'];
    await ok([...repo, 'init']);
    const before = emu.stats();
    // the next upload of at least 1 MiB (a data pack) gets one byte flipped on its way in
    emu.injectFault({ kind: 'corrupt-upload', minBytes: MiB });
    const snap = await ok(['-v', ...repo, '--pack-size', '4', 'snapshot', '.'], { cwd: src });
    const after = emu.stats();
    expect((after['fault.corrupt-upload'] ?? 0) - (before['fault.corrupt-upload'] ?? 0)).toBe(1);
    expect((after['upload.corrupt'] ?? 0) - (before['upload.corrupt'] ?? 0)).toBe(1);
    expect(snap.stderr).toMatch(/^jotta: upload of data\/.* interrupted \(.*md5.*\); re-allocating/m);
    expect((await ok([...repo, 'check', '--read-data'])).stdout).toMatch(/no errors were found/);
    const out = path.join(base, 'corrupt-restore');
    await ok([...repo, 'restore', 'latest', out]);
    expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
  });

  it('refreshes before expiry and once after a 401 (logged, never printed)', async () => {
    emu.setTokenTtl(3);
    await expireAccessToken();
    const be = new JottaBackend('jotta:backups/small tree', { ca: emu.caCertPem!, logger });
    try {
      logs.length = 0;
      const refresh0 = stat('token.refresh');
      const rejected0 = stat('auth.rejected');
      const t0 = Date.now();
      while (Date.now() - t0 < 4500) {
        expect((await be.list('snapshots')).length).toBe(1);
        await new Promise((r) => setTimeout(r, 250));
      }
      // a 3 s token refreshed ahead of expiry: at least twice, and never rejected
      expect(stat('token.refresh') - refresh0).toBeGreaterThanOrEqual(2);
      expect(stat('auth.rejected')).toBe(rejected0);
      expect(logs.filter((l) => l.startsWith('jotta: access token refreshed')).length).toBeGreaterThanOrEqual(2);
      // a long-lived token, then all access tokens revoked: one 401, one refresh, success
      emu.setTokenTtl(3600);
      await expireAccessToken();
      const be2 = new JottaBackend('jotta:backups/small tree', { ca: emu.caCertPem!, logger });
      expect((await be2.list('snapshots')).length).toBe(1);
      emu.revokeAccessTokens();
      const refresh1 = stat('token.refresh');
      expect((await be2.list('snapshots')).length).toBe(1);
      await be2.close();
      expect(stat('auth.rejected') - rejected0).toBe(1);
      expect(stat('token.refresh') - refresh1).toBe(1);
      expect(logs.some((l) => /^jotta: access token rejected \(HTTP 401\) on list snapshots; refreshing$/.test(l))).toBe(true);
      const cache = await fsp.readFile(tokenCachePath('default'), 'utf8');
      const access = (JSON.parse(cache) as { accessToken: string }).accessToken;
      expect(logs.join('\n')).not.toContain(access);
    } finally {
      emu.setTokenTtl(3600);
      await be.close();
    }
  });

  // restic (through `rclone serve restic`) and jbackup see the same repository: jotta:<path> is
  // where rclone puts jotta:<path> (Jotta/Archive, rclone's name encoding)
  interopDescribe('rclone', 'rclone:jotta:<path> in restic 0.14 is the same repository', () => {
    interopDescribe('restic', 'restic via rclone', () => {
      let proxy: ConnectProxy;
      let rcloneEnv: Record<string, string>;
      beforeAll(async () => {
        proxy = await startConnectProxy(tunnelHostsTo(['jfs.jottacloud.com', 'api.jottacloud.com', 'id.jottacloud.com', 'up.jottacloud.com'], Number(new URL(emu.url).port)));
        const conf = path.join(base, 'rclone', 'rclone.conf');
        await fsp.mkdir(path.dirname(conf), { recursive: true });
        rcloneEnv = { HTTPS_PROXY: proxy.url, https_proxy: proxy.url, SSL_CERT_FILE: emu.caCert!, RCLONE_CONFIG: conf, RCLONE_CACHE_DIR: path.join(base, 'rclone', 'cache') };
        // async spawn: the emulator runs in this process and must keep answering
        const { spawn } = await import('node:child_process');
        const token = await emu.mintLoginToken();
        const r = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
          const child = spawn(findTool('rclone')!, ['config', 'create', 'jotta', 'jottacloud', 'config_type=standard', `config_login_token=${token}`, 'config_non_standard=false', '--non-interactive'], { env: { ...process.env, ...rcloneEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
          child.on('error', reject);
          child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
        });
        expect(r.code, r.stderr).toBe(0);
      });
      afterAll(async () => {
        await proxy?.close();
      });

      it('restic lists and checks the jbackup snapshot; jbackup restores a restic snapshot', async () => {
        const repo = 'rclone:jotta:backups/small tree';
        const rs = async (args: string[]) => {
          const r = await runRestic(args, { repo, password: 'jotta-secret', env: rcloneEnv });
          if (r.code !== 0) throw new Error(`restic ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
          return r;
        };
        const jbIds = (JSON.parse((await ok(['-r', 'jotta:backups/small tree', '--json', 'snapshots'])).stdout) as Array<{ id: string }>).map((s) => s.id);
        const rsIds = (JSON.parse((await rs(['snapshots', '--json'])).stdout) as Array<{ id: string }>).map((s) => s.id);
        expect(rsIds).toEqual(jbIds);
        expect((await rs(['check', '--read-data'])).stdout).toMatch(/no errors were found/);
        const src = path.join(base, 'restic-src');
        await fsp.mkdir(src, { recursive: true });
        await fsp.writeFile(path.join(src, 'from-restic.txt'), 'written by restic through rclone\n');
        await fsp.writeFile(path.join(src, 'blob.bin'), prngBytes('restic', 3 * MiB));
        const backup = await runRestic(['backup', '--json', '.'], { repo, password: 'jotta-secret', env: rcloneEnv, cwd: src });
        expect(backup.code, backup.stderr).toBe(0);
        const out = path.join(base, 'restic-restore-by-jbackup');
        await ok(['-r', 'jotta:backups/small tree', 'restore', 'latest', out]);
        expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
        await ok(['-r', 'jotta:backups/small tree', 'check', '--read-data']);
      });
    });
  });

  it('after the refresh-token families are revoked, commands fail with the one-line invalid_grant message', async () => {
    expect(await control('revoke-refresh-tokens')).toMatchObject({ revoked: expect.any(Number) });
    await expireAccessToken();
    const r = await jb(['-r', 'jotta:backups/small tree', 'snapshots']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`Fatal: ${INVALID_GRANT_MESSAGE}\n`);
    // a new login token brings the account back
    await fsp.writeFile(tokenFile, await emu.mintLoginToken());
    await ok(loginArgs(tokenFile));
    expect((await ok(['-r', 'jotta:backups/small tree', 'snapshots'])).stdout).toMatch(/^\d snapshots$/m);
  });
});
