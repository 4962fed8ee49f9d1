/**
 * The backend conformance suite over restic's REST protocol against a real server (Debian's
 * `rclone serve restic`): rest: over HTTP, over HTTPS with a test CA (--cacert and
 * NODE_EXTRA_CA_CERTS), with Basic auth from the URL; rclone: over a child's stdio (HTTP/2).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { backendConformance } from '../backend/conformance.js';

/** the REST backends read a stored file back in one streamed GET (verifySaved) */
const REST_CAPS = { verifySaved: true };
import { openBackend } from '../../src/backend/location.js';
import { openRestBackend } from '../../src/backend/rest/http.js';
import { openRcloneBackend } from '../../src/backend/rest/rclone.js';
import { cleanupTmpDirs, interopDescribe, tmpDir } from '../helpers/tools.js';
import { makeTestCa, startRestServer, type RestServer } from '../helpers/restserver.js';
import { LimitedBackend, makeLimiters } from '../../src/backend/decorators/limits.js';
import { NotFoundError } from '../../src/backend/backend.js';

interopDescribe('rclone', 'rest: and rclone: backends against rclone serve restic', () => {
  let plain: RestServer;
  let secure: RestServer;
  let authed: RestServer;
  let ca: Awaited<ReturnType<typeof makeTestCa>>;
  let root: string;
  let n = 0;
  const fresh = () => `repo${++n}/`;

  beforeAll(async () => {
    root = await tmpDir('rest-conf');
    ca = await makeTestCa();
    plain = await startRestServer(path.join(root, 'plain'));
    secure = await startRestServer(path.join(root, 'tls'), { tls: { cert: ca.cert, key: ca.key } });
    authed = await startRestServer(path.join(root, 'auth'), { user: 'laptop', pass: 'p@ss:w/rd' });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([plain?.stop(), secure?.stop(), authed?.stop()]);
    await cleanupTmpDirs();
  });

  backendConformance('rest: over HTTP', async () => openBackend(`rest:${plain.url}${fresh()}`), REST_CAPS);
  backendConformance('rest: over HTTPS (--cacert)', async () => openBackend(`rest:${secure.url}${fresh()}`, { rest: { ca: [readFileSync(ca.ca, 'utf8')] } }), REST_CAPS);
  backendConformance('rest: with Basic auth from the URL', async () => {
    const u = new URL(authed.url);
    return openBackend(`rest:http://laptop:${encodeURIComponent('p@ss:w/rd')}@${u.host}/${fresh()}`);
  }, REST_CAPS);
  backendConformance('rest: with limits and retries', async () => openBackend(`rest:${plain.url}${fresh()}`, { limits: { upload: 512 << 20, download: 512 << 20, connections: 2 } }), REST_CAPS);
  backendConformance('rclone: (stdio, HTTP/2)', async () => openBackend(`rclone::local:${path.join(root, 'rclone', fresh())}`), REST_CAPS);

  it('HTTPS with NODE_EXTRA_CA_CERTS, and without any trust a one-line TLS error', async () => {
    const loc = `rest:${secure.url}${fresh()}`;
    const untrusted = openBackend(loc, { retry: { maxAttempts: 1 } });
    await expect(untrusted.create()).rejects.toThrow(/TLS certificate of the REST server 127\.0\.0\.1:\d+ is not trusted/);
    await untrusted.close();
    const old = process.env['NODE_EXTRA_CA_CERTS'];
    process.env['NODE_EXTRA_CA_CERTS'] = ca.ca;
    try {
      const be = openBackend(loc);
      await be.create();
      expect(await be.list('keys')).toEqual([]);
      await be.close();
    } finally {
      if (old === undefined) delete process.env['NODE_EXTRA_CA_CERTS'];
      else process.env['NODE_EXTRA_CA_CERTS'] = old;
    }
  });

  it('credentials never appear in the location; a wrong password is one line naming HTTP 401', async () => {
    const u = new URL(authed.url);
    const be = openBackend(`rest:http://laptop:wrong-secret@${u.host}/x/`, { retry: { maxAttempts: 1 } });
    expect(be.location).toBe(`rest:http://laptop:***@${u.host}/x/`);
    const err = await be.list('snapshots').catch((e: Error) => e);
    expect(String(err)).toMatch(/HTTP 401/);
    expect(String(err)).not.toMatch(/wrong-secret/);
    await be.close();
  });

  it('the server maps data/<id> to data/<id[0:2]>/<id> (restic\'s layout on disk)', async () => {
    const name = fresh();
    const be = openBackend(`rest:${plain.url}${name}`);
    await be.create();
    const id = 'ab'.repeat(32);
    await be.save({ type: 'data', name: id }, Buffer.from('x'));
    expect(readFileSync(path.join(root, 'plain', name, 'data', 'ab', id), 'utf8')).toBe('x');
    await expect(be.load({ type: 'data', name: 'cd'.repeat(32) })).rejects.toBeInstanceOf(NotFoundError);
    await be.close();
  });

  it('small reads of a pack (tree blobs) are served from one 1 MiB window read once; remove drops it', async () => {
    const be = openRestBackend(`rest:${plain.url}${fresh()}`);
    await be.create();
    const { randomBytes, createHash } = await import('node:crypto');
    const pack = randomBytes(1_500_000);
    const h = { type: 'data' as const, name: createHash('sha256').update(pack).digest('hex') };
    await be.save(h, pack);
    const before = be.stats.requests;
    for (let off = 0; off < 1_000_000; off += 10_000) expect((await be.load(h, off, 1300)).equals(pack.subarray(off, off + 1300))).toBe(true);
    expect(be.stats.requests - before).toBe(1);
    // the second window (read once, then short at the end of the file), and a read across the boundary (read directly)
    expect((await be.load(h, 1_400_000, 1000)).equals(pack.subarray(1_400_000, 1_401_000))).toBe(true);
    expect((await be.load(h, 1_048_000, 1000)).equals(pack.subarray(1_048_000, 1_049_000))).toBe(true);
    await expect(be.load(h, 1_499_990, 100)).rejects.toThrow(/short read/);
    expect(be.stats.requests - before).toBe(3);
    await be.remove(h);
    await expect(be.load(h, 0, 100)).rejects.toBeInstanceOf(NotFoundError);
    await be.close();
  });

  it('rclone: the child starts on the first request and is gone once the backend is closed', async () => {
    const be = openRcloneBackend(`rclone:${path.join(root, 'rclone-close')}`);
    expect(be.rclone.pid).toBeUndefined();
    await be.create();
    const pid = be.rclone.pid!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 0); // running
    await be.close();
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    await expect(be.list('keys')).rejects.toThrow(/closed/);
  });

  it('a connection limit below the backend\'s is what the repository sees', async () => {
    const be = openBackend(`rest:${plain.url}${fresh()}`, { rest: { connections: 3 }, limits: { connections: 2 } });
    expect(be.properties.connections).toBe(2);
    expect(new LimitedBackend(openBackend(`rest:${plain.url}${fresh()}`, { rest: { connections: 3 } }), makeLimiters({ connections: 8 })).properties.connections).toBe(3);
    await be.close();
  });
});
