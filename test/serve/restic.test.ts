/** `jbackup serve` over a repository restic 0.14 wrote: layout names as restic's mount, files byte for byte. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as path from 'node:path';
import { snapshotTimeName } from '../../src/serve/vfs.js';
import { cleanupTmpDirs, interopDescribe, runRestic, tmpDir } from '../helpers/tools.js';
import { makeSource, PW, servedPath, startServe, type TestServer } from './helpers.js';

interopDescribe('restic', 'serve over a restic-written repository', () => {
  let s: TestServer;
  let files: Record<string, Buffer>;
  let src: string;
  let snap: { id: string; time: string; hostname: string };

  beforeAll(async () => {
    const dir = await tmpDir('serve-restic');
    const repo = path.join(dir, 'repo');
    src = path.join(dir, 'src');
    files = await makeSource(src);
    const o = { repo, password: PW };
    expect((await runRestic(['init'], o)).code).toBe(0);
    const b = await runRestic(['backup', '--tag', 'from-restic', src], o);
    expect(b.code, b.stderr).toBe(0);
    snap = (JSON.parse((await runRestic(['snapshots', '--json'], o)).stdout) as typeof snap[])[0]!;
    s = await startServe(repo);
  });
  afterAll(async () => { await s?.close(); await cleanupTmpDirs(); });

  const go = (rel: string, init: RequestInit = {}) => fetch(s.url(rel), { ...init, headers: { Authorization: s.auth, ...(init.headers as Record<string, string> ?? {}) } });

  it('names the snapshot as restic mount does, by time, host, tag and id', async () => {
    const name = `${snapshotTimeName(snap.time)}_${snap.id.slice(0, 8)}`;
    for (const dir of ['snapshots/', `hosts/${snap.hostname}/`, 'tags/from-restic/', 'ids/']) {
      const xml = await (await go(dir, { method: 'PROPFIND', headers: { Depth: '1' } })).text();
      expect(xml, dir).toContain(dir === 'ids/' ? `<D:displayname>${snap.id.slice(0, 8)}</D:displayname>` : `<D:displayname>${name}</D:displayname>`);
    }
  });

  it('serves every file byte for byte, and ranges of the large one', async () => {
    const base = `snapshots/latest/${servedPath(src)}`;
    for (const [rel, content] of Object.entries(files)) {
      const r = await go(`${base}/${rel}`);
      expect(r.status, rel).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(content), rel).toBe(true);
    }
    const big = files['photos/big.bin']!;
    const r = await go(`${base}/photos/big.bin`, { headers: { Range: 'bytes=3333333-4444444' } });
    expect(Buffer.from(await r.arrayBuffer()).equals(big.subarray(3_333_333, 4_444_445))).toBe(true);
  });
});
