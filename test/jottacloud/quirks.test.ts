/**
 * What real users of Jottacloud meet (rclone, Duplicati and jotta-cli issue trackers), each
 * reproduced by an emulator quirk or fault, against the native backend and the CLI:
 * - HTTP 460 (out of quota) from allocate: one line naming the quota, exit 1, nothing left behind;
 * - allocate answering COMPLETED (server-side dedup): a pack counts as saved only when the stored
 *   file has our size and md5;
 * - listings carrying trashed files and unfinished uploads: filtered (a trashed lock does not
 *   block, a half-uploaded pack is not a pack);
 * - `+` and `%` in a repository path (the service decodes paths twice): init, snapshot, restore
 *   round-trip, and rclone (with Percent in its encoding) sees the same folder; an older repository
 *   with a raw `%` in its folder is still found;
 * - siblings: an account locked mid-run (403), a data/ listing too large for one request (500).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { startEmulator, type RunningEmulator } from '../../tools/jotta-emulator/index.js';
import { JottaBackend } from '../../src/backend/jottacloud/backend.js';
import { encodeName, tokenCachePath } from '../../src/backend/jottacloud/index.js';
import { startConnectProxy, tunnelHostsTo, type ConnectProxy } from '../../tools/jotta-emulator/connect-proxy.js';
import { compareTrees, makeInteropTree, prngBytes } from '../helpers/fstree.js';
import { cleanupTmpDirs, findTool, interopDescribe, runJbackup, tmpDir, type RunResult } from '../helpers/tools.js';

const MiB = 1024 * 1024;

let base: string;
let emu: RunningEmulator;
let env: Record<string, string>;
let agent: Agent;

const stat = (k: string): number => emu.stats()[k] ?? 0;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

const jb = (args: string[], opts: { cwd?: string } = {}): Promise<RunResult> => runJbackup(args, { env, ...(opts.cwd ? { cwd: opts.cwd } : {}) });
const ok = async (args: string[], opts: { cwd?: string } = {}): Promise<RunResult> => {
  const r = await jb(args, opts);
  if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r;
};

async function bearer(): Promise<string> {
  return `Bearer ${(JSON.parse(await fsp.readFile(tokenCachePath('default'), 'utf8')) as { accessToken: string }).accessToken}`;
}

/** A raw call on the emulator with the account's access token. */
async function raw(method: 'GET' | 'POST', pathAndQuery: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const r = await request(`${emu.url}${pathAndQuery}`, { method, dispatcher: agent, headers: { authorization: await bearer(), ...headers }, ...(body !== undefined ? { body } : {}) });
  return { status: r.statusCode, text: await r.body.text() };
}

/** `/jfs/testuser/Jotta/Archive/<segments>` with each (already name-encoded) segment escaped. */
const jfs = (segs: string[], query = ''): string => `/jfs/testuser/Jotta/Archive/${segs.map(encodeURIComponent).join('/')}${query ? `?${query}` : ''}`;

/** Leave an upload that never finished at `names` (allocated `data.length` bytes, sent half). */
async function halfUpload(names: string[], data: Buffer): Promise<void> {
  const a = await raw('POST', '/files/v1/allocate', JSON.stringify({ bytes: data.length, md5: md5(data), path: `/jfs/Jotta/Archive/${names.join('/')}` }), { 'content-type': 'application/json' });
  expect(a.status).toBe(200);
  const url = (JSON.parse(a.text) as { upload_url: string }).upload_url;
  const u = await request(url, { method: 'POST', dispatcher: agent, headers: { authorization: await bearer(), 'content-type': 'application/octet-stream' }, body: data.subarray(0, data.length >> 1) });
  await u.body.text();
  expect(u.statusCode).toBe(420); // incomplete
}

beforeAll(async () => {
  base = await tmpDir('jotta-quirks');
  const cfgDir = path.join(base, 'config');
  emu = await startEmulator({ stateDir: path.join(base, 'state'), port: 0, tls: true, seed: 460 });
  agent = new Agent({ connect: { ca: emu.caCertPem! } });
  env = { JBACKUP_CONFIG_DIR: cfgDir, NODE_EXTRA_CA_CERTS: emu.caCert!, JBACKUP_PASSWORD: 'quirks' };
  process.env['JBACKUP_CONFIG_DIR'] = cfgDir;
  const tok = path.join(base, 'token');
  await fsp.writeFile(tok, emu.loginToken);
  await ok(['-q', 'jotta', 'login', '--token-file', tok, '--api-url', emu.url, '--jfs-url', emu.url]);
});

afterAll(async () => {
  await agent?.close();
  await emu?.close();
  await cleanupTmpDirs();
});

describe('HTTP 460: out of quota', () => {
  it('the quota-460 quirk refuses an allocate past the quota with 460 (and only with the quirk on)', async () => {
    const data = randomBytes(4096);
    const body = (p: string) => JSON.stringify({ bytes: data.length, md5: md5(data), path: `/jfs/Jotta/Archive/q460/${p}` });
    emu.setQuota(stat('state.usage') + 1000);
    try {
      // default: the emulator does not enforce the quota (rclone's suite relies on that)
      expect((await raw('POST', '/files/v1/allocate', body('a'), { 'content-type': 'application/json' })).status).toBe(200);
      emu.setQuirks(['quota-460']);
      const r = await raw('POST', '/files/v1/allocate', body('b'), { 'content-type': 'application/json' });
      expect(r.status).toBe(460);
      expect(JSON.parse(r.text)).toMatchObject({ code: 460 });
      expect((await raw('GET', jfs(['q460', 'b']))).status).toBe(404); // nothing made
    } finally {
      emu.setQuirks([]);
      emu.setQuota(-1);
    }
  });

  it('a snapshot answered 460: one line naming the quota, exit 1, no lock, pack, index, snapshot or pending upload left', async () => {
    const src = path.join(base, 'q-src');
    await fsp.mkdir(src, { recursive: true });
    await fsp.writeFile(path.join(src, 'big.bin'), prngBytes('q460', 3 * MiB));
    await fsp.writeFile(path.join(src, 'small.txt'), 'small\n');
    const repo = ['-r', 'jotta:quota/460'];
    await ok([...repo, 'init']);
    const pending0 = stat('state.pendingUploads');
    // the customer document shows no quota (e.g. a family plan): only the 460 tells
    emu.injectFault({ kind: 460, endpoint: 'api.allocate', count: 1000 });
    let r: RunResult;
    try {
      r = await jb([...repo, 'snapshot', '.'], { cwd: src });
    } finally {
      emu.clearFaults(); // the rates and the remaining one-shot faults
    }
    expect(r.code).toBe(1);
    const fatal = r.stderr.split('\n').filter((l) => l.startsWith('Fatal:'));
    expect(fatal, r.stderr).toHaveLength(1);
    expect(fatal[0]).toMatch(/^Fatal: the Jottacloud account testuser is out of storage quota \(HTTP 460 on allocating [a-z]+\/.*\): free space \(prune with --jotta-hard-delete, empty the Jottacloud trash\) or upgrade the subscription$/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const be = new JottaBackend('jotta:quota/460', { ca: emu.caCertPem! });
    try {
      for (const t of ['data', 'index', 'snapshots', 'locks'] as const) expect(await be.list(t), t).toEqual([]);
      expect((await be.list('keys')).length).toBe(1);
    } finally {
      await be.close();
    }
    expect(stat('state.pendingUploads')).toBe(pending0);
    // and once there is room again, the same snapshot works
    await ok([...repo, 'snapshot', '.'], { cwd: src });
  });
});

describe('allocate answering COMPLETED (server-side dedup)', () => {
  it('the same pack saved again: nothing is sent, the stored file is checked (size and md5) and it counts as saved', async () => {
    const be = new JottaBackend('jotta:completed/same', { ca: emu.caCertPem! });
    try {
      await be.create();
      const a = randomBytes(256 * 1024);
      const h = { type: 'data' as const, name: sha(a) };
      await be.save(h, a);
      const up0 = stat('req.upload');
      const unchanged0 = stat('allocate.unchanged');
      const get0 = stat('req.jfs.get');
      await be.save(h, a);
      expect(stat('req.upload')).toBe(up0);
      expect(stat('allocate.unchanged') - unchanged0).toBe(1);
      expect(stat('req.jfs.get') - get0).toBe(1); // the check
      expect((await be.load(h)).equals(a)).toBe(true);
    } finally {
      await be.close();
    }
  });

  it('COMPLETED for a file whose bytes are not ours (same size, other md5) is an error, not a saved pack', async () => {
    const be = new JottaBackend('jotta:completed/other', { ca: emu.caCertPem! });
    try {
      await be.create();
      const ours = randomBytes(64 * 1024);
      const theirs = randomBytes(64 * 1024);
      const h = { type: 'data' as const, name: sha(ours) };
      await be.save(h, theirs); // other bytes already at our pack's name (a damaged earlier upload, say)
      emu.setQuirks(['completed-by-size']);
      const up0 = stat('req.upload');
      const bySize0 = stat('allocate.completedBySize');
      await expect(be.save(h, ours)).rejects.toThrow(
        `allocating data/${h.name.slice(0, 2)}/${h.name.slice(0, 12)}…: the server answered COMPLETED (already stored) but the stored file differs from ours (size ${64 * 1024}, md5 ${md5(theirs)}; ours ${64 * 1024}, ${md5(ours)}): not counted as saved`,
      );
      expect(stat('allocate.completedBySize') - bySize0).toBe(1);
      expect(stat('req.upload')).toBe(up0);
    } finally {
      emu.setQuirks([]);
      await be.close();
    }
  });
});

describe('listings with trashed files and unfinished uploads', () => {
  it('liststream (list-trashed quirk) carries them; the backend lists only live, complete files', async () => {
    const be = new JottaBackend('jotta:listq/unit', { ca: emu.caCertPem! });
    try {
      await be.create();
      const live = randomBytes(10_000);
      const trashed = randomBytes(10_001);
      const half = randomBytes(10_002);
      const lock = randomBytes(300);
      const id = (b: Buffer) => sha(b);
      await be.save({ type: 'data', name: id(live) }, live);
      await be.save({ type: 'data', name: id(trashed) }, trashed);
      await be.remove({ type: 'data', name: id(trashed) }); // to the trash (dl=true)
      await halfUpload(['listq', 'unit', 'data', id(half).slice(0, 2), id(half)], half);
      await be.save({ type: 'locks', name: id(lock) }, lock);
      expect((await raw('POST', jfs(['listq', 'unit', 'locks', id(lock)], 'dl=true'))).status).toBe(200);

      emu.setQuirks(['list-trashed']);
      const stream = await raw('GET', jfs(['listq', 'unit'], 'mode=liststream'));
      expect(stream.text).toMatch(new RegExp(`<file deleted="[^"]+"><path>[^<]*</path><filename>${id(trashed)}</filename>`));
      expect(stream.text).toMatch(new RegExp(`<filename>${id(half)}</filename><md5>${md5(half)}</md5><size>5001</size><state>INCOMPLETE</state>`));
      expect(stream.text).toMatch(new RegExp(`<file deleted="[^"]+"><path>[^<]*</path><filename>${id(lock)}</filename>`));

      expect((await be.list('data')).map((f) => f.name)).toEqual([id(live)]);
      expect(await be.list('locks')).toEqual([]);
      await expect(be.stat({ type: 'data', name: id(half) })).rejects.toThrow(/does not exist/);
    } finally {
      emu.setQuirks([]);
      await be.close();
    }
  });

  it('a repository with a trashed lock and a half-uploaded pack: check finds no errors, prune and snapshot are not blocked', async () => {
    const src = path.join(base, 'l-src');
    await makeInteropTree(src, { bigFileMiB: 1 });
    const spec = 'jotta:listq/repo';
    await ok(['-r', spec, 'init']);
    await ok(['-r', spec, 'snapshot', '.'], { cwd: src });
    // an exclusive-looking lock that went to the trash, and a pack whose upload never finished
    const junk = randomBytes(512);
    const be = new JottaBackend(spec, { ca: emu.caCertPem! });
    await be.save({ type: 'locks', name: sha(junk) }, junk);
    await be.close();
    expect((await raw('POST', jfs(['listq', 'repo', 'locks', sha(junk)], 'dl=true'))).status).toBe(200);
    const half = randomBytes(200_000);
    await halfUpload(['listq', 'repo', 'data', sha(half).slice(0, 2), sha(half)], half);
    emu.setQuirks(['list-trashed']);
    try {
      const check = await ok(['-r', spec, 'check']);
      expect(check.stdout).toMatch(/no errors were found/);
      expect(check.stderr).not.toMatch(/lock/i);
      await ok(['-r', spec, 'prune']);
      await ok(['-r', spec, 'snapshot', '.'], { cwd: src });
      expect((await ok(['-r', spec, 'snapshots'])).stdout).toMatch(/^2 snapshots$/m);
    } finally {
      emu.setQuirks([]);
    }
  });
});

describe('`+` and `%` in a repository path', () => {
  const spec = 'jotta:a+b%20c/repo';

  it('`%` is stored as `％` (rclone\'s Percent encoding); `+` is sent as %2B', () => {
    expect(encodeName('a+b%20c')).toBe('a+b\uff0520c');
    expect(encodeName('100\uff05')).toBe('100\u201b\uff05'); // a literal ％ is quoted, so it round-trips
  });

  it('init, snapshot and restore round-trip, with the service reading a raw `+` as a space', async () => {
    emu.setQuirks(['plus-is-space']);
    try {
      const src = path.join(base, 'p-src');
      await makeInteropTree(src, { bigFileMiB: 1 });
      await ok(['-r', spec, 'init']);
      await ok(['-r', spec, 'snapshot', '.'], { cwd: src });
      const out = path.join(base, 'p-out');
      await ok(['-r', spec, 'restore', 'latest', out]);
      expect(await compareTrees(src, out, { ignore: ['atime', 'root'] })).toEqual([]);
      expect((await ok(['-r', spec, 'check', '--read-data'])).stdout).toMatch(/no errors were found/);
      // the folder is named exactly a+b％20c on the service
      const r = await raw('GET', jfs(['a+b\uff0520c', 'repo']));
      expect(r.status).toBe(200);
      expect(r.text).toMatch(/<folder name="repo"/);
      // the raw form of the name (the double decoding of `%20`) is refused, as on the live service
      expect((await raw('GET', `/jfs/testuser/Jotta/Archive/a%2Bb%2520c/repo`)).status).toBe(400);
    } finally {
      emu.setQuirks([]);
    }
  });

  it('an older repository whose folder holds a raw `%` (made before the ％ mapping) is still found where it is', async () => {
    await ok(['-r', 'jotta:legacy-tmp/repo', 'init']);
    const dest = new URLSearchParams({ mvDir: '/testuser/Jotta/Archive/100%/repo' }).toString();
    expect((await raw('POST', `${jfs(['legacy-tmp', 'repo'])}/?${dest}`)).status).toBe(200);
    const r = await ok(['-v', '-r', 'jotta:100%/repo', 'snapshots']);
    expect(r.stdout).toMatch(/^0 snapshots$/m);
    expect(r.stderr).toContain('jotta: jotta:100%/repo is an older repository with `%` in its folder names; using it where it is');
    // a new repository with a `%` goes to the ％ folder
    await ok(['-r', 'jotta:100%/new', 'init']);
    expect((await raw('GET', jfs(['100\uff05', 'new', 'config']))).status).toBe(200);
  });

  interopDescribe('rclone', 'rclone 1.60.1 sees the same folder', () => {
    let proxy: ConnectProxy;
    let rcloneEnv: Record<string, string>;
    const rclone = async (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      const { spawn } = await import('node:child_process');
      return new Promise((resolve, reject) => {
        const child = spawn(findTool('rclone')!, args, { env: { ...process.env, ...rcloneEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
        child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      });
    };
    beforeAll(async () => {
      proxy = await startConnectProxy(tunnelHostsTo(['jfs.jottacloud.com', 'api.jottacloud.com', 'id.jottacloud.com', 'up.jottacloud.com'], Number(new URL(emu.url).port)));
      const conf = path.join(base, 'rclone', 'rclone.conf');
      await fsp.mkdir(path.dirname(conf), { recursive: true });
      rcloneEnv = { HTTPS_PROXY: proxy.url, https_proxy: proxy.url, SSL_CERT_FILE: emu.caCert!, RCLONE_CONFIG: conf, RCLONE_CACHE_DIR: path.join(base, 'rclone', 'cache') };
      const r = await rclone(['config', 'create', 'jotta', 'jottacloud', 'config_type=standard', `config_login_token=${await emu.mintLoginToken()}`, 'config_non_standard=false', '--non-interactive']);
      expect(r.code, r.stderr).toBe(0);
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it('with Percent added to its encoding, rclone lists the repository jbackup made at jotta:a+b%20c/repo', async () => {
      const enc = ['--jottacloud-encoding', 'Slash,LtGt,DoubleQuote,Colon,Question,Asterisk,Pipe,Del,Ctl,InvalidUtf8,Dot,Percent'];
      const r = await rclone(['lsf', ...enc, 'jotta:a+b%20c/repo']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split('\n').filter((l) => l !== '').sort()).toEqual(['config', 'data/', 'index/', 'keys/', 'locks/', 'snapshots/']);
      const top = await rclone(['lsf', ...enc, 'jotta:']);
      expect(top.stdout.split('\n')).toContain('a+b%20c/');
    });
  });
});

describe('siblings', () => {
  it('an account locked mid-run (403 on a write): the one-line lock message, not an HTTP error', async () => {
    const be = new JottaBackend('jotta:siblings/locked', { ca: emu.caCertPem! });
    try {
      await be.create(); // reads the customer document while the account is still unlocked
      const a = randomBytes(1000);
      const h = { type: 'snapshots' as const, name: sha(a) };
      await be.save(h, a);
      emu.setLocked({ write: true, cause: 'payment overdue' });
      const msg = 'the Jottacloud account testuser is write-locked (payment overdue): log in to the Jottacloud web UI to see why and resolve it';
      await expect(be.remove(h)).rejects.toThrow(msg);
      const b = randomBytes(1000);
      await expect(be.save({ type: 'snapshots', name: sha(b) }, b)).rejects.toThrow(msg);
      expect((await be.load(h)).equals(a)).toBe(true); // reading still works
    } finally {
      emu.setLocked({});
      await be.close();
    }
  });
});

describe('a data/ listing too large for one request', () => {
  it('a lasting 500 on the one-request listing of data/ ("packet too large") falls back to its 256 folders', async () => {
    const logs: string[] = [];
    const be = new JottaBackend('jotta:siblings/big', { ca: emu.caCertPem!, logger: (m) => logs.push(m) });
    try {
      await be.create();
      const names: string[] = [];
      for (let i = 0; i < 12; i++) {
        const b = randomBytes(500 + i);
        names.push(sha(b));
        await be.save({ type: 'data', name: sha(b) }, b);
      }
      emu.setListstreamMaxFiles(5);
      const tooLarge0 = stat('liststream.tooLarge');
      const listed = (await be.list('data')).map((f) => f.name).sort();
      expect(listed).toEqual(names.sort());
      expect(stat('liststream.tooLarge') - tooLarge0).toBe(3); // three attempts, then the folders
      expect(logs.some((l) => /^jotta: listing data\/ in one request failed \(list data: giving up after 3 attempts: HTTP 500 .*\); listing its 256 folders one by one$/.test(l)), logs.join('\n')).toBe(true);
    } finally {
      emu.setListstreamMaxFiles(Infinity);
      await be.close();
    }
  });
});
