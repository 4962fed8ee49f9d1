/**
 * The WebDAV/HTTP contract of `jbackup serve` over loopback (node's own HTTP client): access, the
 * layout, PROPFIND, GET/HEAD with ranges and conditions, refused writes, path normalisation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { request } from 'node:http';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { makeSource, repoWithSnapshot, servedPath, startServe, type TestServer } from './helpers.js';

let s: TestServer;
let files: Record<string, Buffer>;
let base: string;

beforeAll(async () => {
  const dir = await tmpDir('serve-webdav');
  const src = path.join(dir, 'src');
  files = await makeSource(src);
  await repoWithSnapshot(path.join(dir, 'repo'), src);
  s = await startServe(path.join(dir, 'repo'));
  base = `snapshots/latest/${servedPath(src)}`;
});
afterAll(async () => { await s?.close(); await cleanupTmpDirs(); });

const go = (rel: string, init: RequestInit = {}) => fetch(s.url(rel), { ...init, headers: { Authorization: s.auth, ...(init.headers as Record<string, string> ?? {}) }, redirect: 'manual' });

/** a raw request (paths fetch would normalise: "..", "%2e%2e") */
function raw(method: string, p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; location?: string }> {
  const u = new URL(s.h.url);
  return new Promise((resolve, reject) => {
    const r = request({ host: u.hostname, port: u.port, method, path: p, headers: { Authorization: s.auth, ...headers } }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => { b += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body: b, ...(res.headers.location ? { location: res.headers.location } : {}) }));
    });
    r.on('error', reject);
    r.end();
  });
}

describe('access', () => {
  it('answers 401 with a Basic challenge to every method without the password', async () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'PROPFIND', 'PUT', 'DELETE']) {
      const r = await fetch(s.url(`${base}/a.txt`), { method });
      expect(r.status, method).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm="jbackup"/);
    }
    const wrong = await fetch(s.url(''), { headers: { Authorization: `Basic ${Buffer.from('jbackup:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const wrongUser = await fetch(s.url(''), { headers: { Authorization: `Basic ${Buffer.from(`root:${s.h.password}`).toString('base64')}` } });
    expect(wrongUser.status).toBe(401);
    expect((await fetch(`${s.h.url}?token=nope`)).status).toBe(401);
  });

  it('logs a browser in with ?token= (HttpOnly SameSite=Strict cookie, redirect to the clean URL)', async () => {
    const r = await fetch(`${s.url(base)}/?token=${encodeURIComponent(s.h.password)}&x=1`, { redirect: 'manual' });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/${base.split('/').map(encodeURIComponent).join('/')}/?x=1`);
    const cookie = r.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(s.h.password);
    // never a redirect to another site
    const odd = await raw('GET', `/.//evil.example/?token=${encodeURIComponent(s.h.password)}`, { Authorization: '' });
    expect(odd.status).toBe(303);
    expect(odd.location).toBe('/.//evil.example/'); // path-absolute: this host
    const again = await fetch(s.url(`${base}/a.txt`), { headers: { Cookie: cookie.split(';')[0]! } });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe('alpha\n');
  });
});

describe('WebDAV', () => {
  it('OPTIONS says class 1 and the methods', async () => {
    const r = await go('', { method: 'OPTIONS' });
    expect(r.status).toBe(200);
    expect(r.headers.get('dav')).toBe('1');
    expect(r.headers.get('allow')).toBe('OPTIONS, GET, HEAD, PROPFIND');
  });

  it('PROPFIND Depth 1 lists restic mount\'s layout and a snapshot folder with sizes, times and types', async () => {
    const root = await (await go('', { method: 'PROPFIND', headers: { Depth: '1' } })).text();
    expect([...root.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1])).toEqual(['/', '/snapshots/', '/hosts/', '/tags/', '/ids/']);
    const hosts = await (await go('hosts/', { method: 'PROPFIND', headers: { Depth: '1' } })).text();
    expect(hosts).toContain('<D:href>/hosts/serve-host/</D:href>');
    const tags = await (await go('tags/t1/', { method: 'PROPFIND', headers: { Depth: '1' } })).text();
    expect(tags).toContain('<D:href>/tags/t1/latest/</D:href>');
    const r = await go(`${base}/docs/`, { method: 'PROPFIND', headers: { Depth: '1', 'Content-Type': 'application/xml' }, body: '<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>' });
    expect(r.status).toBe(207);
    const xml = await r.text();
    const responses = xml.split('<D:response>').slice(1);
    expect(responses).toHaveLength(5);
    const uni = responses.find((x) => x.includes('%C3%BCn%C3%AFc%C3%B6d%C3%A9'))!;
    expect(uni).toContain(`<D:href>/${base.split('/').map(encodeURIComponent).join('/')}/docs/%C3%BCn%C3%AFc%C3%B6d%C3%A9%20%E2%80%93%20%E2%9C%93.txt</D:href>`);
    expect(uni).toContain('<D:displayname>ünïcödé – ✓.txt</D:displayname>');
    expect(uni).toContain(`<D:getcontentlength>${files['docs/ünïcödé – ✓.txt']!.length}</D:getcontentlength>`);
    expect(uni).toContain('<D:getlastmodified>Mon, 06 May 2024 07:08:09 GMT</D:getlastmodified>');
    expect(uni).toContain('<D:creationdate>2024-05-06T07:08:09.000Z</D:creationdate>');
    expect(uni).toMatch(/<D:getetag>&quot;c-[0-9a-f]{32}&quot;<\/D:getetag>/);
    expect(uni).toContain('<D:resourcetype/>');
    const odd = responses.find((x) => x.includes('with%20space'))!;
    expect(odd).toContain('with%20space%20%26%20more%23%3F.txt</D:href>');
    expect(odd).toContain('<D:displayname>with space &amp; more#?.txt</D:displayname>');
    const link = responses.find((x) => x.includes('link-to-a'))!;
    expect(link).toContain('<D:getcontentlength>6</D:getcontentlength>');
  });

  it('PROPFIND with a prop list answers those, unknown ones as 404; Depth 0 the resource only', async () => {
    const body = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:Z="urn:x"><D:prop><D:getcontentlength/><Z:color/></D:prop></D:propfind>';
    const xml = await (await go(`${base}/a.txt`, { method: 'PROPFIND', headers: { Depth: '0' }, body })).text();
    expect(xml.match(/<D:response>/g)).toHaveLength(1);
    expect(xml).toContain('<D:prop><D:getcontentlength>6</D:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status>');
    expect(xml).toMatch(/<X1:color xmlns:X1="urn:x"\/><\/D:prop><D:status>HTTP\/1.1 404 Not Found<\/D:status>/);
  });

  it('refuses Depth: infinity (and no Depth) with propfind-finite-depth', async () => {
    for (const h of [{ Depth: 'infinity' }, {}]) {
      const r = await go('', { method: 'PROPFIND', headers: h });
      expect(r.status).toBe(403);
      expect(await r.text()).toContain('<D:propfind-finite-depth/>');
    }
  });

  it('refuses every write with 405 and Allow, and unknown methods with 501', async () => {
    for (const method of ['PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPPATCH', 'LOCK', 'UNLOCK', 'POST']) {
      const r = await go(`${base}/a.txt`, { method, ...(method === 'PUT' || method === 'POST' ? { body: 'x' } : {}) });
      expect(r.status, method).toBe(405);
      expect(r.headers.get('allow')).toBe('OPTIONS, GET, HEAD, PROPFIND');
    }
    // (node's parser answers methods it does not know with 400 itself; REPORT is known, not served)
    expect((await go('', { method: 'REPORT' })).status).toBe(501);
  });
});

describe('GET and HEAD', () => {
  it('serves whole files with validators and types', async () => {
    for (const [rel, content] of Object.entries(files)) {
      const r = await go(`${base}/${rel}`);
      expect(r.status, rel).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(content), rel).toBe(true);
      expect(r.headers.get('accept-ranges')).toBe('bytes');
      expect(r.headers.get('etag')).toMatch(/^"c-[0-9a-f]{32}"$/);
    }
    const h = await go(`${base}/docs/readme.md`, { method: 'HEAD' });
    expect(h.headers.get('content-length')).toBe(String(files['docs/readme.md']!.length));
    expect(h.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    expect(h.headers.get('last-modified')).toBe('Mon, 06 May 2024 07:08:09 GMT');
    expect(h.headers.get('content-security-policy')).toMatch(/^sandbox/);
    expect(h.headers.get('content-disposition')).toBeNull();
    // a backed-up page never runs on the server's origin: sandboxed, and a download
    const page = await go(`${base}/page.html`, { method: 'HEAD' });
    expect(page.headers.get('content-security-policy')).toMatch(/^sandbox/);
    expect(page.headers.get('content-disposition')).toBe('attachment');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('serves one range (206), suffix and open ranges, 416 past the end', async () => {
    const big = files['photos/big.bin']!;
    const cases: [string, number, number][] = [['bytes=0-0', 0, 1], ['bytes=5000000-5999999', 5_000_000, 6_000_000], ['bytes=-100', big.length - 100, big.length], [`bytes=${big.length - 10}-`, big.length - 10, big.length], [`bytes=100-${big.length + 50}`, 100, big.length]];
    for (const [range, a, b] of cases) {
      const r = await go(`${base}/photos/big.bin`, { headers: { Range: range } });
      expect(r.status, range).toBe(206);
      expect(r.headers.get('content-range')).toBe(`bytes ${a}-${b - 1}/${big.length}`);
      expect(Buffer.from(await r.arrayBuffer()).equals(big.subarray(a, b)), range).toBe(true);
    }
    const bad = await go(`${base}/photos/big.bin`, { headers: { Range: `bytes=${big.length}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${big.length}`);
  });

  it('a range reads only the blobs it covers', async () => {
    const { SnapshotFs } = await import('../../src/serve/vfs.js');
    const vfs = new SnapshotFs(s.repo);
    const e = (await vfs.stat(`${base}/photos/big.bin`.split('/')))!;
    const parts: Buffer[] = [];
    for await (const b of vfs.open(e).read(6_000_000, 6_000_010)) parts.push(Buffer.from(b));
    expect(Buffer.concat(parts).equals(files['photos/big.bin']!.subarray(6_000_000, 6_000_010))).toBe(true);
    expect(vfs.reader.loads).toBeLessThanOrEqual(2);
    expect(e.content!.content!.length).toBeGreaterThan(4);
  });

  it('answers conditional requests: If-None-Match / If-Modified-Since → 304, If-Range with a stale ETag → 200', async () => {
    const first = await go(`${base}/a.txt`);
    const etag = first.headers.get('etag')!;
    await first.arrayBuffer();
    expect((await go(`${base}/a.txt`, { headers: { 'If-None-Match': etag } })).status).toBe(304);
    expect((await go(`${base}/a.txt`, { headers: { 'If-None-Match': '"other"' } })).status).toBe(200);
    expect((await go(`${base}/a.txt`, { headers: { 'If-Modified-Since': 'Mon, 06 May 2024 07:08:09 GMT' } })).status).toBe(304);
    expect((await go(`${base}/a.txt`, { headers: { 'If-Modified-Since': 'Mon, 06 May 2024 07:08:08 GMT' } })).status).toBe(200);
    const ok = await go(`${base}/a.txt`, { headers: { Range: 'bytes=1-2', 'If-Range': etag } });
    expect(ok.status).toBe(206);
    expect(await ok.text()).toBe('lp');
    const stale = await go(`${base}/a.txt`, { headers: { Range: 'bytes=1-2', 'If-Range': '"stale"' } });
    expect(stale.status).toBe(200);
    expect(await stale.text()).toBe('alpha\n');
    expect((await go(`${base}/a.txt`, { headers: { 'If-Match': '"stale"' } })).status).toBe(412);
  });

  it('gives a directory to a browser as HTML, redirecting to the trailing slash', async () => {
    const r = await go(`${base}/docs`, { headers: { Accept: 'text/html' } });
    expect(r.status).toBe(301);
    expect(r.headers.get('location')).toMatch(/\/docs\/$/);
    const page = await go(`${base}/docs/`, { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('readme.md');
  });
});

describe('paths', () => {
  it('never leaves the snapshot: dot segments, encoded dots and slashes are refused, unknown names 404', async () => {
    for (const p of [`/${base}/../../../etc/passwd`, `/${base}/%2e%2e/%2e%2e/a.txt`, `/${base}/%2E%2E%2F%2E%2E%2Fa.txt`, `/${base}/docs%2f..%2fa.txt`, `/${base}/./a.txt`, `/${base}/a.txt%00`, '/%ff']) {
      const r = await raw('GET', p);
      expect(r.status, p).toBe(400);
    }
    expect((await raw('GET', '/etc/passwd')).status).toBe(404);
    expect((await raw('GET', `/${base}/nope`)).status).toBe(404);
    expect((await raw('GET', `/${base}/a.txt/x`)).status).toBe(404);
    expect((await raw('GET', `/snapshots/latest/%EF%BC%8561`)).status).toBe(404);
  });
});
