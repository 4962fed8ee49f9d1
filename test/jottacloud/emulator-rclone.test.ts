/**
 * The loopback Jottacloud emulator: unit-level checks over HTTP, then Debian's rclone 1.60.1
 * (a client we did not write) driving it over TLS through a CONNECT proxy (reference §8.2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator, type RunningEmulator } from '../../tools/jotta-emulator/index.js';
import { FaultInjector } from '../../tools/jotta-emulator/faults.js';
import { startConnectProxy, tunnelHostsTo, type ConnectProxy } from '../../tools/jotta-emulator/connect-proxy.js';
import { cleanupTmpDirs, findTool, interopDescribe, tmpDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const USER = 'testuser';
const JOTTA_HOSTS = ['jfs.jottacloud.com', 'api.jottacloud.com', 'id.jottacloud.com', 'up.jottacloud.com'];

// ---------------------------------------------------------------------------
// HTTP helpers

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

interface ReqOpts {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Value of the Host header (default: the emulator's own host:port). */
  host?: string;
}

function request(emu: RunningEmulator, method: string, pathAndQuery: string, opts: ReqOpts = {}): Promise<Resp> {
  const u = new URL(emu.url);
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.host) headers.host = opts.host;
  if (body) headers['content-length'] = String(body.length);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      { host: u.hostname, port: u.port, method, path: pathAndQuery, headers, ca: emu.caCertPem ?? undefined, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const b = Buffer.concat(parts);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const form = (o: Record<string, string>): string => new URLSearchParams(o).toString();

function decodeLoginToken(tok: string): { username: string; realm: string; well_known_link: string; auth_token: string } {
  expect(tok).not.toMatch(/[=+/]/); // unpadded base64url
  return JSON.parse(Buffer.from(tok, 'base64url').toString('utf8'));
}

async function tokenRequest(emu: RunningEmulator, body: Record<string, string>, basic?: string): Promise<Resp> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic !== undefined) headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
  return request(emu, 'POST', '/auth/realms/jottacloud/protocol/openid-connect/token', { headers, body: form(body) });
}

async function login(emu: RunningEmulator, loginToken?: string): Promise<{ access: string; refresh: string; expiresIn: number }> {
  const lt = decodeLoginToken(loginToken ?? (await emu.mintLoginToken()));
  const r = await tokenRequest(emu, { client_id: 'jottacli', grant_type: 'password', password: lt.auth_token, scope: 'openid offline_access', username: lt.username });
  expect(r.status, r.text).toBe(200);
  const j = JSON.parse(r.text) as { access_token: string; refresh_token: string; expires_in: number };
  return { access: j.access_token, refresh: j.refresh_token, expiresIn: j.expires_in };
}

const onPath = (name: string): boolean => (process.env.PATH ?? '').split(path.delimiter).some((d) => d !== '' && existsSync(path.join(d, name)));

const md5hex = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

/** Deterministic pseudo-random bytes (xorshift32). */
function prngBytes(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil(n / 4) * 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out.subarray(0, n);
}

/** A tiny API client for the unit tests. */
class Client {
  constructor(
    readonly emu: RunningEmulator,
    public token: string,
  ) {}
  auth(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...extra };
  }
  jfs(method: string, rel: string, query = '', opts: ReqOpts = {}): Promise<Resp> {
    const p = `/jfs/${USER}/Jotta/Archive${rel ? `/${rel.split('/').map(encodeURIComponent).join('/')}` : ''}${query ? `?${query}` : ''}`;
    return request(this.emu, method, p, { ...opts, headers: this.auth(opts.headers), host: opts.host ?? 'jfs.jottacloud.com' });
  }
  async allocate(rel: string, data: Buffer, modified = '2023-05-06T09:08:07+02:00'): Promise<{ state: string; upload_url: string; resume_pos: number; upload_id: string }> {
    const r = await request(this.emu, 'POST', '/files/v1/allocate', {
      host: 'api.jottacloud.com',
      headers: this.auth({ 'content-type': 'application/json' }),
      body: JSON.stringify({ bytes: data.length, created: modified, md5: md5hex(data), modified, path: `/jfs/Jotta/Archive/${rel}` }),
    });
    expect(r.status, r.text).toBe(200);
    return JSON.parse(r.text);
  }
  async sendBytes(uploadUrl: string, data: Buffer, from = 0): Promise<Resp> {
    const headers = this.auth({ 'content-type': 'application/octet-stream' });
    if (from > 0) headers.range = `bytes=${from}-${data.length - 1}`;
    return request(this.emu, 'POST', new URL(uploadUrl).pathname, { headers, body: data.subarray(from) });
  }
  async put(rel: string, data: Buffer, modified?: string): Promise<void> {
    const a = await this.allocate(rel, data, modified);
    if (a.state === 'COMPLETED') return;
    const r = await this.sendBytes(a.upload_url, data, a.resume_pos);
    expect(r.status, r.text).toBe(201);
  }
}

const JOTTA_TIME = /^\d{4}-\d{2}-\d{2}-T\d{2}:\d{2}:\d{2}Z$/;

function tagValues(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}(?: [^>]*)?>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]!);
}

// ---------------------------------------------------------------------------

describe('jottacloud emulator over HTTP', () => {
  let stateDir: string;
  let emu: RunningEmulator;
  let c: Client;

  beforeAll(async () => {
    stateDir = path.join(await tmpDir('jotta-emu-unit'), 'state');
    emu = await startEmulator({ stateDir });
    c = new Client(emu, (await login(emu, emu.loginToken)).access);
  });
  afterAll(async () => {
    await emu?.close();
  });

  it('login tokens are unpadded base64url JSON pointing back at the emulator, and single-use', async () => {
    const tok = await emu.mintLoginToken();
    const lt = decodeLoginToken(tok);
    expect(lt.username).toBe(USER);
    expect(lt.realm).toBe('jottacloud');
    expect(lt.well_known_link).toBe(`${emu.url}/auth/realms/jottacloud/.well-known/openid-configuration`);
    const wk = await request(emu, 'GET', new URL(lt.well_known_link).pathname);
    expect(wk.status).toBe(200);
    const tokenEndpoint = (JSON.parse(wk.text) as { token_endpoint: string }).token_endpoint;
    expect(tokenEndpoint).toBe(`${emu.url}/auth/realms/jottacloud/protocol/openid-connect/token`);
    // via the id host the document names the id host
    const wk2 = await request(emu, 'GET', new URL(lt.well_known_link).pathname, { host: 'id.jottacloud.com' });
    expect(JSON.parse(wk2.text).token_endpoint).toBe('https://id.jottacloud.com/auth/realms/jottacloud/protocol/openid-connect/token');

    const body = { client_id: 'jottacli', grant_type: 'password', password: lt.auth_token, scope: 'openid offline_access', username: lt.username };
    const first = await tokenRequest(emu, body);
    expect(first.status).toBe(200);
    const j = JSON.parse(first.text);
    expect(j).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    expect(typeof j.access_token).toBe('string');
    expect(typeof j.refresh_token).toBe('string');
    const second = await tokenRequest(emu, body);
    expect(second.status).toBe(400);
    expect(JSON.parse(second.text).error).toBe('invalid_grant');
    // the control endpoint mints fresh ones
    const minted = await request(emu, 'POST', '/_emulator/login-token');
    expect(minted.status).toBe(200);
    await login(emu, (JSON.parse(minted.text) as { loginToken: string }).loginToken);
  });

  it('refresh rotates tokens (both client auth styles); reusing one kills the whole family', async () => {
    const t0 = await login(emu);
    const r1 = await tokenRequest(emu, { grant_type: 'refresh_token', refresh_token: t0.refresh }, 'jottacli:');
    expect(r1.status, r1.text).toBe(200);
    const t1 = JSON.parse(r1.text) as { refresh_token: string; access_token: string };
    expect(t1.refresh_token).not.toBe(t0.refresh);
    const r2 = await tokenRequest(emu, { grant_type: 'refresh_token', refresh_token: t1.refresh_token, client_id: 'jottacli' });
    expect(r2.status, r2.text).toBe(200);
    const t2 = JSON.parse(r2.text) as { refresh_token: string };
    // reuse of t1 → invalid_grant, and the newest token of the family dies with it
    const reuse = await tokenRequest(emu, { grant_type: 'refresh_token', refresh_token: t1.refresh_token }, 'jottacli:');
    expect(reuse.status).toBe(400);
    expect(JSON.parse(reuse.text)).toMatchObject({ error: 'invalid_grant' });
    const after = await tokenRequest(emu, { grant_type: 'refresh_token', refresh_token: t2.refresh_token }, 'jottacli:');
    expect(after.status).toBe(400);
    expect(JSON.parse(after.text).error).toBe('invalid_grant');
    expect(emu.stats()['token.refresh.reuse']).toBe(1);
    // no client at all → 401; other families are unaffected
    const noClient = await tokenRequest(emu, { grant_type: 'refresh_token', refresh_token: t2.refresh_token });
    expect(noClient.status).toBe(401);
    const other = await login(emu);
    expect((await tokenRequest(emu, { grant_type: 'refresh_token', refresh_token: other.refresh }, 'jottacli:')).status).toBe(200);
    // revoke-refresh-tokens kills every family
    const rv = await request(emu, 'POST', '/_emulator/revoke-refresh-tokens');
    expect(rv.status).toBe(200);
    const other2 = await login(emu);
    await request(emu, 'POST', '/_emulator/revoke-refresh-tokens');
    expect((await tokenRequest(emu, { grant_type: 'refresh_token', refresh_token: other2.refresh }, 'jottacli:')).status).toBe(400);
  });

  it('answers missing/invalid bearers with 401 (XML on jfs, JSON on api) and honours revoke-access-tokens', async () => {
    const noAuth = await request(emu, 'GET', `/jfs/${USER}/Jotta/Archive`, { host: 'jfs.jottacloud.com' });
    expect(noAuth.status).toBe(401);
    expect(tagValues(noAuth.text, 'code')).toEqual(['401']);
    expect(noAuth.text).toContain('BadCredentialsException');
    const api = await request(emu, 'GET', '/account/v1/customer', { headers: { authorization: 'Bearer nope' }, host: 'api.jottacloud.com' });
    expect(api.status).toBe(401);
    expect(JSON.parse(api.text).code).toBe(401);
    const other = new Client(emu, (await login(emu)).access);
    expect((await other.jfs('GET', '')).status).toBe(200);
    await request(emu, 'POST', '/_emulator/revoke-access-tokens');
    expect((await other.jfs('GET', '')).status).toBe(401);
    c.token = (await login(emu)).access;
    expect((await c.jfs('GET', '')).status).toBe(200);
  });

  it('serves customer JSON with integer usage and user/device/mountpoint XML', async () => {
    const cust = await request(emu, 'GET', '/account/v1/customer', { headers: c.auth(), host: 'api.jottacloud.com' });
    const j = JSON.parse(cust.text);
    expect(j.username).toBe(USER);
    expect(Number.isInteger(j.usage)).toBe(true);
    expect(typeof j.write_locked).toBe('boolean');
    const user = await request(emu, 'GET', `/jfs/${USER}`, { headers: c.auth(), host: 'jfs.jottacloud.com' });
    expect(user.text).toMatch(/^<\?xml[^>]*\?>\n<user /);
    expect(tagValues(user.text, 'capacity')).toEqual(['-1']);
    const dev = await request(emu, 'GET', `/jfs/${USER}/Jotta`, { headers: c.auth() });
    expect(tagValues(dev.text, 'name')).toEqual(expect.arrayContaining(['Jotta', 'Archive', 'Sync', 'Trash']));
    const mp = await c.jfs('GET', '');
    expect(mp.text).toMatch(/<mountPoint [^>]*><name xml:space="preserve">Archive<\/name>/);
    // the jfs host does not serve api paths and vice versa
    expect((await request(emu, 'GET', '/account/v1/customer', { headers: c.auth(), host: 'jfs.jottacloud.com' })).status).toBe(404);
    expect((await request(emu, 'GET', `/jfs/${USER}`, { headers: c.auth(), host: 'api.jottacloud.com' })).status).toBe(404);
  });

  it('error XML carries code = HTTP status (404 unknown path, 400 wrong user, 404 unknown mountpoint)', async () => {
    const r = await c.jfs('GET', 'does/not/exist');
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toMatch(/xml/);
    expect(r.text).toMatch(/<error><code>404<\/code><message>no\.jotta\.backup\.errors\.NoSuchPathException: [^<]+<\/message><reason>Not Found<\/reason><cause><\/cause><hostname>[^<]+<\/hostname><x-id>\d+<\/x-id><\/error>/);
    const wrongUser = await request(emu, 'GET', '/jfs/someoneelse/Jotta/Archive', { headers: c.auth() });
    expect(wrongUser.status).toBe(400);
    expect(tagValues(wrongUser.text, 'code')).toEqual(['400']);
    const noMp = await request(emu, 'GET', `/jfs/${USER}/Jotta/Nope`, { headers: c.auth() });
    expect(noMp.status).toBe(404);
    expect(noMp.text).toContain('NoSuchMountPointException');
  });

  it('uploads via allocate + upload URL, keeps revisions, dedups by md5 and reports Jotta times', async () => {
    const v1 = Buffer.from('first version\n');
    const a = await c.allocate('rev/file.txt', v1);
    expect(a.state).not.toBe('COMPLETED');
    expect(a.resume_pos).toBe(0);
    expect(a.upload_url.startsWith(`${emu.url}/`)).toBe(true);
    const up = await c.sendBytes(a.upload_url, v1);
    expect(up.status).toBe(201);
    expect(JSON.parse(up.text)).toMatchObject({ bytes: v1.length, md5: md5hex(v1), modified: Date.parse('2023-05-06T09:08:07+02:00') });
    const v2 = Buffer.from('second version, longer\n');
    await c.put('rev/file.txt', v2, '2023-05-07T00:00:00Z');
    const f = await c.jfs('GET', 'rev/file.txt');
    expect(f.text).toMatch(/<file name="file.txt" uuid="[^"]+"/);
    expect(f.text).not.toContain('deleted=');
    const cur = /<currentRevision>(.*?)<\/currentRevision>/.exec(f.text)![1]!;
    expect(tagValues(cur, 'number')).toEqual(['2']);
    expect(tagValues(cur, 'state')).toEqual(['COMPLETED']);
    expect(tagValues(cur, 'md5')).toEqual([md5hex(v2)]);
    expect(tagValues(cur, 'modified')).toEqual(['2023-05-07-T00:00:00Z']);
    for (const t of [...tagValues(f.text, 'created'), ...tagValues(f.text, 'modified'), ...tagValues(f.text, 'updated')]) expect(t).toMatch(JOTTA_TIME);
    const revs = /<revisions>(.*)<\/revisions>/.exec(f.text)![1]!;
    expect(tagValues(revs, 'md5')).toEqual([md5hex(v1)]);
    // dedup: same md5+size anywhere → COMPLETED without bytes, parents created
    const before = emu.stats()['req.upload'];
    const d = await c.allocate('elsewhere/deep/copy.txt', v1);
    expect(d.state).toBe('COMPLETED');
    expect(emu.stats()['req.upload']).toBe(before);
    const dd = await c.jfs('GET', 'elsewhere/deep/copy.txt', 'mode=bin');
    expect(dd.body.equals(v1)).toBe(true);
    // upload response md5 is lower-case and the file is invisible while incomplete
    const big = prngBytes(100_000, 5);
    const inc = await c.allocate('rev/incomplete.bin', big);
    const partial = await c.sendBytes(inc.upload_url, big.subarray(0, 30_000));
    expect(partial.status).toBe(420);
    expect(JSON.parse(partial.text)).toMatchObject({ error_id: 'IncompleteUploadOpenApiException', resume_pos: 30_000 });
    const incXml = await c.jfs('GET', 'rev/incomplete.bin');
    expect(incXml.text).not.toContain('<currentRevision>');
    expect(/<latestRevision>.*<state>INCOMPLETE<\/state>.*<size>30000<\/size>/.test(incXml.text)).toBe(true);
    expect((await c.jfs('GET', 'rev/incomplete.bin', 'mode=bin')).status).toBe(404);
    const again = await c.allocate('rev/incomplete.bin', big);
    expect(again.resume_pos).toBe(30_000);
    expect((await c.sendBytes(again.upload_url, big, 30_000)).status).toBe(201);
    expect(md5hex((await c.jfs('GET', 'rev/incomplete.bin', 'mode=bin')).body)).toBe(md5hex(big));
    // a wrong md5 gives a CORRUPT revision
    const bad = await c.allocate('rev/corrupt.bin', Buffer.from('announced'));
    const corrupt = await c.sendBytes(bad.upload_url, Buffer.from('different'));
    expect(corrupt.status).toBe(400);
    expect(corrupt.text).toContain('CorruptUploadOpenApiException');
    expect((await c.jfs('GET', 'rev/corrupt.bin')).text).toContain('<state>CORRUPT</state>');
  });

  it('mode=liststream is flat folder/file/stats records of live COMPLETED files with RFC 3339 times', async () => {
    await c.put('ls/a.txt', Buffer.from('a'));
    await c.put('ls/sub/b.txt', Buffer.from('bb'));
    await c.put('ls/sub/deeper/c.txt', Buffer.from('ccc'));
    await c.put('ls/sub/gone.txt', Buffer.from('gone'));
    expect((await c.jfs('POST', 'ls/sub/gone.txt', 'dl=true')).status).toBe(200);
    await c.jfs('POST', 'ls/empty dir', 'mkDir=true');
    await c.jfs('POST', 'ls/trashed dir', 'mkDir=true');
    await c.jfs('POST', 'ls/trashed dir', 'dlDir=true');
    const inc = await c.allocate('ls/sub/incomplete.bin', Buffer.from('not yet'));
    expect(inc.state).not.toBe('COMPLETED');

    const r = await c.jfs('GET', 'ls', 'mode=liststream');
    expect(r.status).toBe(200);
    const body = r.text.replace(/^<\?xml[^>]*\?>\s*/, '');
    const records = [...body.matchAll(/<(folder|file|stats)>(.*?)<\/\1>/g)].map((m) => ({ kind: m[1]!, inner: m[2]! }));
    // flat: no element nests another record
    for (const rec of records) expect(rec.inner).not.toMatch(/<(folder|file|stats)>/);
    const folders = records.filter((x) => x.kind === 'folder').map((x) => tagValues(x.inner, 'path')[0]);
    expect(folders.sort()).toEqual(['/Archive/ls', '/Archive/ls/empty dir', '/Archive/ls/sub', '/Archive/ls/sub/deeper']);
    const files = records.filter((x) => x.kind === 'file');
    const got = files.map((x) => `${tagValues(x.inner, 'path')[0]}|${tagValues(x.inner, 'filename')[0]}|${tagValues(x.inner, 'size')[0]}|${tagValues(x.inner, 'md5')[0]}`).sort();
    expect(got).toEqual(['/Archive/ls/sub/deeper|c.txt|3|' + md5hex('ccc'), '/Archive/ls/sub|b.txt|2|' + md5hex('bb'), '/Archive/ls|a.txt|1|' + md5hex('a')].sort());
    for (const x of files) {
      expect(tagValues(x.inner, 'modified')[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(tagValues(x.inner, 'created')[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    const stats = records.filter((x) => x.kind === 'stats');
    expect(stats).toHaveLength(1);
    expect(records[records.length - 1]!.kind).toBe('stats');
    expect(tagValues(stats[0]!.inner, 'folders')).toEqual([String(folders.length)]);
    expect(tagValues(stats[0]!.inner, 'files')).toEqual([String(files.length)]);
    expect((await c.jfs('GET', 'ls/nothing-here', 'mode=liststream')).status).toBe(404);
    // the one-level listing still shows trashed items with a deleted attribute
    const one = await c.jfs('GET', 'ls/sub');
    expect(one.text).toMatch(/<file name="gone.txt" uuid="[^"]+" deleted="[^"]+"><abspath xml:space="preserve">\/testuser\/Jotta\/Archive\/ls\/sub<\/abspath>/);
    expect(one.text).toMatch(/<file name="b.txt" uuid="[^"]+"><currentRevision>/);
  });

  it('mode=bin honours single byte ranges with 206 + Content-Range, 416 when unsatisfiable', async () => {
    const data = prngBytes(10_000, 42);
    await c.put('range/data.bin', data);
    const full = await c.jfs('GET', 'range/data.bin', 'mode=bin');
    expect(full.status).toBe(200);
    expect(full.body.equals(data)).toBe(true);
    const cases: Array<[string, number, number]> = [
      ['bytes=100-149', 100, 149],
      ['bytes=9990-', 9990, 9999],
      ['bytes=-10', 9990, 9999],
      ['bytes=5000-20000', 5000, 9999],
      ['bytes=0-0', 0, 0],
    ];
    for (const [range, a, b] of cases) {
      const r = await c.jfs('GET', 'range/data.bin', 'mode=bin', { headers: { range } });
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${a}-${b}/${data.length}`);
      expect(r.body.equals(data.subarray(a, b + 1)), range).toBe(true);
    }
    const bad = await c.jfs('GET', 'range/data.bin', 'mode=bin', { headers: { range: 'bytes=10000-' } });
    expect(bad.status).toBe(416);
    expect(tagValues(bad.text, 'code')).toEqual(['416']);
  });

  it('trash: dl/dlDir leave tombstones, usage counts them, purge_trash removes them and frees usage', async () => {
    const usage = async (): Promise<number> => Number(tagValues((await request(emu, 'GET', `/jfs/${USER}`, { headers: c.auth() })).text, 'usage')[0]);
    const purgeTrash = () => request(emu, 'POST', '/files/v1/purge_trash', { headers: c.auth(), host: 'api.jottacloud.com' });
    expect((await purgeTrash()).status).toBe(200); // start from an empty trash
    const u0 = await usage();
    await c.put('trash/keep.txt', Buffer.from('keep me'));
    await c.put('trash/dir/x.bin', prngBytes(5000, 1));
    await c.put('trash/dir/y.bin', prngBytes(7000, 2));
    expect(await usage()).toBe(u0 + 7 + 5000 + 7000);
    expect((await c.jfs('POST', 'trash/dir', 'dlDir=true')).status).toBe(200);
    const dir = await c.jfs('GET', 'trash/dir');
    expect(dir.status).toBe(200);
    expect(dir.text).toMatch(/^<\?xml[^>]*\?>\n<folder name="dir" deleted="[^"]+"/);
    expect(dir.text).toMatch(/<file name="x.bin" uuid="[^"]+" deleted=/);
    const parent = await c.jfs('GET', 'trash');
    expect(parent.text).toMatch(/<folder name="dir" deleted="[^"]+">/);
    expect(await usage()).toBe(u0 + 7 + 5000 + 7000);
    // mkdir revives the folder; the old children stay trashed; a new file is live
    await c.jfs('POST', 'trash/dir', 'mkDir=true');
    await c.put('trash/dir/new.txt', Buffer.from('new'));
    const revived = await c.jfs('GET', 'trash/dir');
    expect(revived.text).toMatch(/^<\?xml[^>]*\?>\n<folder name="dir" time=/);
    expect(revived.text).toMatch(/<file name="x.bin" uuid="[^"]+" deleted=/);
    expect(revived.text).toMatch(/<file name="new.txt" uuid="[^"]+"><currentRevision>/);
    // the Trash view lists top-level trashed items
    const trashView = await request(emu, 'GET', `/jfs/${USER}/Jotta/Trash`, { headers: c.auth() });
    expect(trashView.text).toMatch(/<file name="x.bin" uuid="[^"]+" deleted="[^"]+" contextType="TRASH">/);
    const purge = await purgeTrash();
    expect(purge.status).toBe(200);
    expect(JSON.parse(purge.text)).toEqual({ folders: 0, files: 2 });
    expect(await usage()).toBe(u0 + 7 + 3);
    expect((await c.jfs('GET', 'trash/dir/x.bin')).status).toBe(404);
    expect((await c.jfs('POST', 'trash/dir/x.bin', 'rm=true')).status).toBe(404);
    // hard delete of a folder
    expect((await c.jfs('POST', 'trash/dir', 'rmDir=true')).status).toBe(200);
    expect((await c.jfs('GET', 'trash/dir')).status).toBe(404);
    expect(await usage()).toBe(u0 + 7);
  });

  it('names are case-insensitive and case-preserving, limited to 255 characters, %XX rejected', async () => {
    await c.put('Case/Hello.TXT', Buffer.from('v1'));
    const r = await c.jfs('GET', 'case/hello.txt');
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/<file name="Hello.TXT"/);
    await c.put('CASE/HELLO.txt', Buffer.from('v2'));
    const r2 = await c.jfs('GET', 'Case/Hello.TXT');
    expect(r2.text).toMatch(/<file name="Hello.TXT"/);
    expect(tagValues(/<currentRevision>(.*?)<\/currentRevision>/.exec(r2.text)![1]!, 'number')).toEqual(['2']);
    const ok = 'n'.repeat(251) + '.txt';
    expect((await c.jfs('POST', `long/${ok.slice(0, 255)}`, 'mkDir=true')).status).toBe(200);
    const tooLong = await c.jfs('POST', `long/${'n'.repeat(256)}`, 'mkDir=true');
    expect(tooLong.status).toBe(400);
    expect(tagValues(tooLong.text, 'code')).toEqual(['400']);
    const alloc = await request(emu, 'POST', '/files/v1/allocate', {
      headers: c.auth({ 'content-type': 'application/json' }),
      body: JSON.stringify({ bytes: 1, md5: md5hex('x'), path: `/jfs/Jotta/Archive/long/${'x'.repeat(256)}` }),
    });
    expect(alloc.status).toBe(400);
    expect(JSON.parse(alloc.text).code).toBe(400);
    expect((await c.jfs('GET', 'Pinus%20palustris.jpg')).status).toBe(400);
  });

  it('mv, cp, mvDir and cphash behave as rclone expects', async () => {
    const data = Buffer.from('move me please');
    await c.put('ops/src/a b+c.txt', data);
    const mv = await c.jfs('POST', 'ops/src/a b+c.txt', `mv=${encodeURIComponent(`/${USER}/Jotta/Archive/ops/new parent/moved+1.txt`).replace(/%20/g, '+')}`);
    expect(mv.status, mv.text).toBe(200);
    expect(mv.text).toMatch(/<file name="moved\+1.txt"/);
    expect(tagValues(mv.text, 'md5')).toEqual([md5hex(data)]);
    expect((await c.jfs('GET', 'ops/src/a b+c.txt')).status).toBe(404);
    const cp = await c.jfs('POST', 'ops/new parent/moved+1.txt', `cp=${encodeURIComponent(`/${USER}/Jotta/Archive/ops/copy.txt`)}`);
    expect(cp.status).toBe(200);
    expect((await c.jfs('GET', 'ops/copy.txt', 'mode=bin')).body.equals(data)).toBe(true);
    // mvDir: trailing slash on the source, destination ancestors created, source gone
    const mvd = await request(emu, 'POST', `/jfs/${USER}/Jotta/Archive/ops/new%20parent/?mvDir=${encodeURIComponent(`/${USER}/Jotta/Archive/ops/x/y/renamed`)}`, { headers: c.auth() });
    expect(mvd.status, mvd.text).toBe(200);
    expect((await c.jfs('GET', 'ops/new parent')).status).toBe(404);
    expect((await c.jfs('GET', 'ops/x/y/renamed/moved+1.txt', 'mode=bin')).body.equals(data)).toBe(true);
    // cphash: known content → 200 (touch or dedup-create), unknown → 404
    const hdr = (md5: string, size: number) => ({ JMd5: md5, JSize: String(size), JCreated: '2020-01-02-T03:04:05Z', JModified: '2020-01-02-T03:04:05Z' });
    const touch = await c.jfs('POST', 'ops/copy.txt', 'cphash=true', { headers: hdr(md5hex(data), data.length) });
    expect(touch.status).toBe(200);
    expect(tagValues(touch.text, 'modified')[0]).toBe('2020-01-02-T03:04:05Z');
    expect((await c.jfs('POST', 'ops/dedup.txt', 'cphash=true', { headers: hdr(md5hex(data), data.length) })).status).toBe(200);
    expect((await c.jfs('POST', 'ops/unknown.txt', 'cphash=true', { headers: hdr(md5hex('never uploaded'), 14) })).status).toBe(404);
    // cphash restores a trashed file
    await c.jfs('POST', 'ops/copy.txt', 'dl=true');
    const restored = await c.jfs('POST', 'ops/copy.txt', 'cphash=true', { headers: hdr(md5hex(data), data.length) });
    expect(restored.status).toBe(200);
    expect(restored.text).not.toContain('deleted=');
  });

  it('drops an upload mid-body on an injected fault and resumes from the kept prefix', async () => {
    const data = prngBytes(200_000, 9);
    emu.injectFault({ kind: 'drop-upload', dropAt: 70_001 });
    const a = await c.allocate('resume/file.bin', data);
    await expect(c.sendBytes(a.upload_url, data)).rejects.toThrow();
    const b = await c.allocate('resume/file.bin', data);
    expect(b.state).toBe('INCOMPLETE');
    expect(b.resume_pos).toBe(70_001);
    expect((await c.sendBytes(b.upload_url, data, b.resume_pos)).status).toBe(201);
    expect(md5hex((await c.jfs('GET', 'resume/file.bin', 'mode=bin')).body)).toBe(md5hex(data));
    const s = emu.stats();
    expect(s['fault.drop-upload']).toBe(1);
    expect(s['upload.maxResumePos']).toBe(70_001);
  });

  it('injects status faults (429 with Retry-After: 1) but never on _emulator endpoints; PRNG is seeded', async () => {
    emu.setFaults('429=1');
    try {
      const r = await c.jfs('GET', '');
      expect(r.status).toBe(429);
      expect(r.headers['retry-after']).toBe('1');
      expect(tagValues(r.text, 'code')).toEqual(['429']);
      const api = await request(emu, 'GET', '/account/v1/customer', { headers: c.auth() });
      expect(api.status).toBe(429);
      expect(JSON.parse(api.text).code).toBe(429);
      expect((await request(emu, 'GET', '/_emulator/stats')).status).toBe(200);
      expect((await request(emu, 'POST', '/_emulator/login-token')).status).toBe(200);
    } finally {
      emu.setFaults(undefined);
    }
    emu.injectFault({ kind: 500, endpoint: 'jfs.get' });
    expect((await c.jfs('GET', '')).status).toBe(500);
    expect((await c.jfs('GET', '')).status).toBe(200);
    // the control endpoint takes the same spec syntax
    expect((await request(emu, 'POST', '/_emulator/faults', { body: JSON.stringify({ spec: '503=1' }) })).status).toBe(200);
    expect((await c.jfs('GET', '')).status).toBe(503);
    await request(emu, 'POST', '/_emulator/faults', { body: JSON.stringify({ clear: true }) });
    expect((await c.jfs('GET', '')).status).toBe(200);
    const seq = (seed: number): number[] => {
      const f = new FaultInjector('500=0.3,drop-upload=0.2', seed);
      return Array.from({ length: 50 }, () => f.statusFault('jfs.get') ?? f.dropUploadAt(0, 1000) ?? 0);
    };
    expect(seq(7)).toEqual(seq(7));
    expect(seq(7)).not.toEqual(seq(8));
    expect(() => new FaultInjector('bogus=1', 1)).toThrow();
    const scoped = new FaultInjector('503@api.allocate=1', 1);
    expect(scoped.statusFault('jfs.get')).toBeNull();
    expect(scoped.statusFault('api.allocate')).toBe(503);
  });

  it('keeps files, tokens, used login tokens and the CA across restarts', async () => {
    const dir = path.join(await tmpDir('jotta-emu-restart'), 'state');
    const e1 = await startEmulator({ stateDir: dir, tls: true });
    expect(e1.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(e1.caCert).toBe(path.join(dir, 'tls', 'ca.pem'));
    const lt = decodeLoginToken(e1.loginToken);
    const t = await login(e1, e1.loginToken);
    const c1 = new Client(e1, t.access);
    const data = prngBytes(3000, 3);
    await c1.put('persist/kept.bin', data);
    // via the TLS listener, Host-routed like rclone through the proxy
    expect((await c1.jfs('GET', 'persist/kept.bin')).status).toBe(200);
    const pem = e1.caCertPem;
    await e1.close();

    const e2 = await startEmulator({ stateDir: dir, tls: true });
    try {
      expect(e2.caCertPem).toBe(pem);
      const c2 = new Client(e2, t.access);
      expect((await c2.jfs('GET', 'persist/kept.bin', 'mode=bin')).body.equals(data)).toBe(true);
      const again = await tokenRequest(e2, { client_id: 'jottacli', grant_type: 'password', password: lt.auth_token, scope: 'openid offline_access', username: USER });
      expect(again.status).toBe(400);
      const r = await tokenRequest(e2, { grant_type: 'refresh_token', refresh_token: t.refresh }, 'jottacli:');
      expect(r.status).toBe(200);
      expect(readdirSync(path.join(dir, 'content')).length).toBeGreaterThan(0);
    } finally {
      await e2.close();
    }
  });

  const mainJs = fileURLToPath(new URL('../../dist/tools/jotta-emulator/main.js', import.meta.url));
  const srcDir = fileURLToPath(new URL('../../tools/jotta-emulator/', import.meta.url));
  const distFresh = (): boolean => {
    if (!existsSync(mainJs)) return false;
    const built = statSync(mainJs).mtimeMs;
    const distDir = path.dirname(mainJs);
    return readdirSync(srcDir)
      .filter((f) => f.endsWith('.ts'))
      .every((f) => existsSync(path.join(distDir, f.replace(/\.ts$/, '.js'))) && statSync(path.join(distDir, f.replace(/\.ts$/, '.js'))).mtimeMs >= statSync(path.join(srcDir, f)).mtimeMs && built > 0);
  };

  /** Spawn the CLI and wait for its JSON line. */
  const launch = async (cmd: string, args: string[]): Promise<{ child: ReturnType<typeof spawn>; info: { url: string; loginToken: string; username: string; caCert: string } }> => {
    const child = spawn(cmd, args, { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(buf.slice(0, nl));
      });
      child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
      child.on('exit', (code) => reject(new Error(`emulator exited ${code}: ${err}`)));
    });
    return { child, info: JSON.parse(line) };
  };
  const portOpen = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });

  it.skipIf(!distFresh())('the built CLI prints one JSON line, serves, and stops on SIGTERM', async () => {
    const dir = path.join(await tmpDir('jotta-emu-cli'), 'state');
    const { child, info } = await launch(process.execPath, [mainJs, '--state', dir, '--tls', '--port', '0', '--faults', '500@jfs=0.5', '--seed', '3']);
    try {
      expect(Object.keys(info).sort()).toEqual(['caCert', 'loginToken', 'url', 'username']);
      expect(info.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(info.caCert).toBe(path.join(dir, 'tls', 'ca.pem'));
      expect(decodeLoginToken(info.loginToken).well_known_link.startsWith(info.url)).toBe(true);
      const pem = await fsp.readFile(info.caCert, 'utf8');
      const remote = { url: info.url, caCertPem: pem } as RunningEmulator;
      expect((await request(remote, 'GET', '/_emulator/health')).status).toBe(200);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it.skipIf(!distFresh() || !onPath('npm'))('`npm run jotta-emulator` serves and dies with its npm launcher', async () => {
    const dir = path.join(await tmpDir('jotta-emu-npm'), 'state');
    const { child, info } = await launch('npm', ['run', '-s', 'jotta-emulator', '--', '--state', dir, '--port', '0']);
    const port = Number(new URL(info.url).port);
    try {
      expect(info.caCert).toBeNull();
      expect(await portOpen(port)).toBe(true);
      child.kill('SIGTERM');
      const deadline = Date.now() + 5000;
      while ((await portOpen(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await portOpen(port)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

// ---------------------------------------------------------------------------
// rclone 1.60.1

interface RunOut {
  code: number;
  stdout: string;
  stderr: string;
}

interface LocalFile {
  rel: string;
  size: number;
  md5: string;
  mtime: number;
}

/** Local source tree with awkward names. Returns its files keyed by relative path. */
async function makeOddTree(root: string): Promise<Map<string, LocalFile>> {
  const dup = prngBytes(100 * 1024, 77);
  const files: Array<[string, Buffer]> = [
    ['plain.txt', Buffer.from('plain text\n')],
    ['with space.txt', Buffer.from('space in name\n')],
    ['+;#%ÆØÅ&.txt', Buffer.from('odd punctuation and Norwegian letters\n')],
    ['a+b;c#d%e&ÆØÅ f.txt', Buffer.from('more odd punctuation\n')],
    ["symbols !'()[]{}~$@=,.txt", Buffer.from('symbols\n')],
    ['nfc-caf\u00e9.txt', Buffer.from('NFC name\n')],
    ['nfd-cafe\u0301.txt', Buffer.from('NFD name\n')],
    ['日本語 テキスト.md', Buffer.from('unicode\n')],
    ['empty.txt', Buffer.alloc(0)],
    ['dup-a.bin', dup],
    ['dir with spaces/inner file.txt', Buffer.from('inner\n')],
    ['ÆØÅ dir/æøå.txt', Buffer.from('lower-case Norwegian\n')],
    ['nested/l1/file1.txt', Buffer.from('level one\n')],
    ['nested/l1/l2/file2.txt', Buffer.from('level two\n')],
    ['nested/l1/l2/l3/dup-b.bin', dup],
    ['big-12MiB.bin', prngBytes(12 * MiB, 1234)],
  ];
  const out = new Map<string, LocalFile>();
  let t = Date.parse('2023-05-06T07:08:09Z') / 1000;
  for (const [rel, data] of files) {
    const p = path.join(root, rel);
    await fsp.mkdir(path.dirname(p), { recursive: true });
    await fsp.writeFile(p, data);
    t += 61;
    await fsp.utimes(p, t, t);
    out.set(rel, { rel, size: data.length, md5: md5hex(data), mtime: t * 1000 });
  }
  return out;
}

interopDescribe('rclone', 'rclone 1.60.1 against the emulator (TLS via CONNECT proxy)', () => {
  let base: string;
  let src: string;
  let confPath: string;
  let emu: RunningEmulator;
  let proxy: ConnectProxy;
  let local: Map<string, LocalFile>;
  const QUOTA = 5 * 1024 * MiB;

  const rcloneEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (/^(https?_proxy|all_proxy|no_proxy|rclone_.*|ssl_cert_.*)$/i.test(k)) continue;
      env[k] = v;
    }
    Object.assign(env, {
      HTTPS_PROXY: proxy.url,
      SSL_CERT_FILE: emu.caCert!,
      RCLONE_CONFIG: confPath,
      RCLONE_CACHE_DIR: path.join(base, 'rclone-cache'),
      TZ: 'Europe/Oslo',
      ...extra,
    });
    return env;
  };

  const rclone = (args: string[], extra: Record<string, string> = {}): Promise<RunOut> =>
    new Promise((resolve, reject) => {
      const child = spawn(findTool('rclone')!, args, { env: rcloneEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    });

  const ok = async (args: string[], extra: Record<string, string> = {}): Promise<RunOut> => {
    const r = await rclone(args, extra);
    if (r.code !== 0) throw new Error(`rclone ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
    return r;
  };

  const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

  /** Expected remote listing: the local tree, possibly edited by later steps. */
  let expected: Map<string, LocalFile>;

  const checkListing = async (remote: string, want: Map<string, LocalFile>): Promise<void> => {
    const md5 = lines((await ok(['md5sum', remote])).stdout).map((l) => `${l.slice(34)} ${l.slice(0, 32)}`).sort();
    expect(md5).toEqual([...want.values()].map((f) => `${f.rel} ${f.md5}`).sort());
    const ls = lines((await ok(['ls', remote])).stdout).map((l) => l.trim()).sort();
    expect(ls).toEqual([...want.values()].map((f) => `${f.size} ${f.rel}`).sort());
    const lsl = lines((await ok(['lsl', remote], { TZ: 'UTC' })).stdout).map((l) => {
      const m = /^\s*(\d+) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\.\d{9} (.*)$/.exec(l)!;
      return `${m[3]} ${m[1]} ${Date.parse(`${m[2]!.replace(' ', 'T')}Z`)}`;
    });
    expect(lsl.sort()).toEqual([...want.values()].map((f) => `${f.rel} ${f.size} ${f.mtime}`).sort());
  };

  const aboutJson = async (): Promise<{ used: number; total?: number; free?: number }> => JSON.parse((await ok(['about', '--json', 'jotta:'])).stdout);

  beforeAll(async () => {
    base = await tmpDir('jotta-rclone');
    src = path.join(base, 'src');
    confPath = path.join(base, 'conf', 'rclone.conf');
    await fsp.mkdir(path.dirname(confPath), { recursive: true });
    local = await makeOddTree(src);
    expected = new Map(local);
    emu = await startEmulator({ stateDir: path.join(base, 'state'), tls: true, quota: QUOTA });
    proxy = await startConnectProxy(tunnelHostsTo(JOTTA_HOSTS, Number(new URL(emu.url).port)));
  });

  afterAll(async () => {
    await emu?.close();
    await proxy?.close();
    await cleanupTmpDirs();
  });

  it('config create consumes the login token (well-known + token endpoint on the emulator)', async () => {
    await ok(['config', 'create', 'jotta', 'jottacloud', 'config_type=standard', `config_login_token=${emu.loginToken}`, 'config_non_standard=false', '--non-interactive']);
    const conf = await fsp.readFile(confPath, 'utf8');
    expect(conf).toContain('type = jottacloud');
    expect(conf).toContain('configVersion = 1');
    expect(conf).toContain(`tokenURL = ${emu.url}/auth/realms/jottacloud/protocol/openid-connect/token`);
    expect(conf).toMatch(/token = \{"access_token":"[^"]+","token_type":"Bearer","refresh_token":"[^"]+","expiry":"[^"]+"\}/);
    const s = emu.stats();
    expect(s['token.login']).toBe(1);
    expect(s['req.id.well-known']).toBe(1);
    // the token is now used up
    const again = await rclone(['config', 'create', 'jotta-again', 'jottacloud', 'config_type=standard', `config_login_token=${emu.loginToken}`, 'config_non_standard=false', '--non-interactive']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('invalid_grant');
    expect(emu.stats()['token.login']).toBe(1);
  });

  it('mkdir + copy of an odd tree; ls, lsl, md5sum and check agree with the local tree', async () => {
    await ok(['mkdir', 'jotta:t']);
    await ok(['copy', src, 'jotta:t/tree']);
    await checkListing('jotta:t/tree', expected);
    const check = await ok(['check', src, 'jotta:t/tree']);
    expect(check.stderr).toMatch(/0 differences found/);
    expect(check.stderr).toMatch(new RegExp(`${expected.size} matching files`));
    const lsf = lines((await ok(['lsf', '-R', '--fast-list', '--dirs-only', 'jotta:t/tree'])).stdout).sort();
    expect(lsf).toEqual(['dir with spaces/', 'nested/', 'nested/l1/', 'nested/l1/l2/', 'nested/l1/l2/l3/', 'ÆØÅ dir/'].sort());
    // everything went over the proxy to the hard-coded hosts, nothing else was dialled
    expect(new Set(proxy.connects)).toEqual(new Set(['api.jottacloud.com:443', 'jfs.jottacloud.com:443']));
    expect(proxy.refused).toEqual([]);
    const s = emu.stats();
    expect(s['upload.completed']).toBeGreaterThanOrEqual(expected.size - 1);
    expect(s['internalErrors'] ?? 0).toBe(0);
  });

  it('a second upload of known content is deduplicated (allocate answers COMPLETED)', async () => {
    const before = emu.stats();
    await ok(['copyto', path.join(src, 'big-12MiB.bin'), 'jotta:t/dedup/big-again.bin']);
    const after = emu.stats();
    expect(after['allocate.dedup']! - (before['allocate.dedup'] ?? 0)).toBe(1);
    expect(after['req.upload']).toBe(before['req.upload']);
    const big = local.get('big-12MiB.bin')!;
    expect((await ok(['md5sum', 'jotta:t/dedup'])).stdout.trim()).toBe(`${big.md5}  big-again.bin`);
  });

  it('moveto and copyto work server-side', async () => {
    const before = emu.stats();
    await ok(['moveto', 'jotta:t/tree/with space.txt', 'jotta:t/moved/renamed +;ÆØÅ.txt']);
    await ok(['copyto', 'jotta:t/tree/nested/l1/file1.txt', 'jotta:t/copied/sub dir/file1 copy.txt']);
    const after = emu.stats();
    expect(after['req.jfs.mv']! - (before['req.jfs.mv'] ?? 0)).toBe(1);
    expect(after['req.jfs.cp']! - (before['req.jfs.cp'] ?? 0)).toBe(1);
    expect(after['req.upload']).toBe(before['req.upload']);
    const moved = local.get('with space.txt')!;
    expected.delete('with space.txt');
    await checkListing('jotta:t/tree', expected);
    await checkListing('jotta:t/moved', new Map([['renamed +;ÆØÅ.txt', { ...moved, rel: 'renamed +;ÆØÅ.txt' }]]));
    const f1 = local.get('nested/l1/file1.txt')!;
    await checkListing('jotta:t/copied', new Map([['sub dir/file1 copy.txt', { ...f1, rel: 'sub dir/file1 copy.txt' }]]));
  });

  it('DirMove (mvDir), touch (cphash) and link/unlink work', async () => {
    const before = emu.stats();
    await ok(['moveto', 'jotta:t/tree/dir with spaces', 'jotta:t/dirmoved/new name']);
    expect(emu.stats()['req.jfs.mvDir']! - (before['req.jfs.mvDir'] ?? 0)).toBe(1);
    const inner = local.get('dir with spaces/inner file.txt')!;
    expected.delete(inner.rel);
    await checkListing('jotta:t/tree', expected);
    const gone = await rclone(['lsf', 'jotta:t/tree/dir with spaces']);
    expect(gone.stderr).toMatch(/directory not found/);
    await ok(['touch', '-t', '2021-02-03T04:05:06', 'jotta:t/dirmoved/new name/inner file.txt'], { TZ: 'UTC' });
    expect(emu.stats()['cphash.touch']! - (before['cphash.touch'] ?? 0)).toBe(1);
    await checkListing('jotta:t/dirmoved', new Map([['x', { ...inner, rel: 'new name/inner file.txt', mtime: Date.parse('2021-02-03T04:05:06Z') }]]));
    const link = await ok(['link', 'jotta:t/dirmoved/new name/inner file.txt']);
    expect(link.stdout.trim()).toMatch(/^https:\/\/www\.jottacloud\.com\/opin\/io\/downloadPublic\/testuser\/[0-9a-f]{32}$/);
    await ok(['link', '--unlink', 'jotta:t/dirmoved/new name/inner file.txt']);
  });

  it('cat --offset/--count returns exactly the requested bytes (Range → 206)', async () => {
    const data = await fsp.readFile(path.join(src, 'big-12MiB.bin'));
    const cat = (args: string[]): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const child = spawn(findTool('rclone')!, ['cat', ...args], { env: rcloneEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        let err = '';
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`rclone cat exited ${code}: ${err}`))));
      });
    expect((await cat(['--offset', '100', '--count', '50', 'jotta:t/tree/big-12MiB.bin'])).equals(data.subarray(100, 150))).toBe(true);
    expect((await cat(['--offset', String(7 * MiB + 3), '--count', String(MiB), 'jotta:t/tree/big-12MiB.bin'])).equals(data.subarray(7 * MiB + 3, 8 * MiB + 3))).toBe(true);
    expect((await cat(['--offset', String(data.length - 10), 'jotta:t/tree/big-12MiB.bin'])).equals(data.subarray(data.length - 10))).toBe(true);
    expect((await cat(['jotta:t/tree/+;#%ÆØÅ&.txt'])).toString()).toBe('odd punctuation and Norwegian letters\n');
    expect(emu.stats()['download.range']).toBeGreaterThanOrEqual(3);
  });

  it('delete and purge trash things; about reports usage including trash; cleanup purges it', async () => {
    const sum = (m: Iterable<LocalFile>): number => [...m].reduce((a, f) => a + f.size, 0);
    const liveBefore = sum(local.values()) + local.get('big-12MiB.bin')!.size /* dedup copy */ + local.get('nested/l1/file1.txt')!.size; /* copyto */
    const a0 = await aboutJson();
    expect(a0.used).toBe(liveBefore);
    expect(a0.total).toBe(QUOTA);
    expect(a0.free).toBe(QUOTA - liveBefore);

    await ok(['delete', 'jotta:t/tree/nested']);
    await ok(['purge', 'jotta:t/copied']);
    const trashed = [...expected.values()].filter((f) => f.rel.startsWith('nested/'));
    for (const f of trashed) expected.delete(f.rel);
    await checkListing('jotta:t/tree', expected);
    const gone = await rclone(['lsf', 'jotta:t/copied']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/directory not found/);
    // `delete` leaves the (now empty) directories
    expect(lines((await ok(['lsf', '--dirs-only', 'jotta:t/tree/nested'])).stdout)).toEqual(['l1/']);

    const a1 = await aboutJson();
    expect(a1.used).toBe(liveBefore); // trashed files still count
    const s0 = emu.stats();
    await ok(['cleanup', 'jotta:']);
    const s1 = emu.stats();
    expect(s1['req.api.purge_trash']).toBe((s0['req.api.purge_trash'] ?? 0) + 1);
    expect(s1['trash.purgedFiles']! - (s0['trash.purgedFiles'] ?? 0)).toBe(trashed.length + 1);
    const a2 = await aboutJson();
    const trashedBytes = sum(trashed) + local.get('nested/l1/file1.txt')!.size;
    expect(a2.used).toBe(liveBefore - trashedBytes);
    expect(a2.free).toBe(QUOTA - a2.used);
    await checkListing('jotta:t/tree', expected);
  });

  it('resumes an upload after a dropped connection (resume_pos > 0, final md5 right)', async () => {
    const data = prngBytes(9 * MiB + 12345, 99);
    const p = path.join(base, 'resume-src', 'resume me.bin');
    await fsp.mkdir(path.dirname(p), { recursive: true });
    await fsp.writeFile(p, data);
    const dropAt = 3 * MiB + 17;
    emu.injectFault({ kind: 'drop-upload', minBytes: MiB, dropAt });
    const before = emu.stats();
    const r = await ok(['copyto', p, 'jotta:t/resume/resume me.bin']);
    const after = emu.stats();
    expect(after['fault.drop-upload']! - (before['fault.drop-upload'] ?? 0)).toBe(1);
    expect(after['upload.resumed']! - (before['upload.resumed'] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(after['upload.maxResumePos']).toBeGreaterThanOrEqual(dropAt);
    expect(after['allocate.resume']! - (before['allocate.resume'] ?? 0)).toBeGreaterThanOrEqual(1);
    // rclone re-ran the whole Update: a second allocate, then only the tail was sent
    expect(after['req.api.allocate']! - before['req.api.allocate']!).toBe(2);
    expect(after['req.upload']! - before['req.upload']!).toBe(2);
    void r;
    expect((await ok(['md5sum', 'jotta:t/resume'])).stdout.trim()).toBe(`${md5hex(data)}  resume me.bin`);
  });

  it('retries injected 500/429 answers on JFS calls', async () => {
    emu.injectFault({ kind: 500, endpoint: 'jfs.liststream' });
    emu.injectFault({ kind: 429, endpoint: 'jfs.liststream' });
    const before = emu.stats();
    await checkListing('jotta:t/tree', expected);
    const after = emu.stats();
    expect(after['fault.500']! - (before['fault.500'] ?? 0)).toBe(1);
    expect(after['fault.429']! - (before['fault.429'] ?? 0)).toBe(1);
  });

  it('refreshes short-lived tokens with rotation (config rewritten, no reuse detected)', async () => {
    emu.setTokenTtl(11); // rclone refreshes 10 s before expiry → stale after ~1 s
    try {
      const tok = await emu.mintLoginToken();
      await ok(['config', 'create', 'jotta2', 'jottacloud', 'config_type=standard', `config_login_token=${tok}`, 'config_non_standard=false', '--non-interactive']);
      const refreshOf = async (): Promise<string> => {
        const conf = await fsp.readFile(confPath, 'utf8');
        const section = conf.slice(conf.indexOf('[jotta2]'));
        return /"refresh_token":"([^"]+)"/.exec(section)![1]!;
      };
      const r0 = await refreshOf();
      const s0 = emu.stats();
      await new Promise((r) => setTimeout(r, 1500));
      await ok(['lsf', 'jotta2:t/moved']);
      const r1 = await refreshOf();
      expect(r1).not.toBe(r0);
      await new Promise((r) => setTimeout(r, 1500));
      expect(lines((await ok(['lsf', 'jotta2:t/moved'])).stdout)).toEqual(['renamed +;ÆØÅ.txt']);
      const r2 = await refreshOf();
      expect(r2).not.toBe(r1);
      const s1 = emu.stats();
      const refreshes = (s1['token.refresh'] ?? 0) - (s0['token.refresh'] ?? 0);
      expect(refreshes).toBeGreaterThanOrEqual(2);
      expect((s1['token.refresh.basic'] ?? 0) - (s0['token.refresh.basic'] ?? 0)).toBeGreaterThanOrEqual(2);
      expect(s1['token.refresh.reuse'] ?? 0).toBe(s0['token.refresh.reuse'] ?? 0);
      expect(s1['token.refresh.rejected'] ?? 0).toBe(s0['token.refresh.rejected'] ?? 0);
    } finally {
      emu.setTokenTtl(3600);
    }
  });

  it('a 401 is fatal for rclone: no retry, no refresh', async () => {
    emu.revokeAccessTokens();
    const before = emu.stats();
    const r = await rclone(['lsf', 'jotta:t/tree']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/401/);
    const after = emu.stats();
    expect(after['req.api.customer']! - before['req.api.customer']!).toBe(1);
    expect(after['token.refresh'] ?? 0).toBe(before['token.refresh'] ?? 0);
  });
});
