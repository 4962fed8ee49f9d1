/**
 * WebDAV clients nobody here wrote against `jbackup serve`: rclone's webdav backend (copy, cat with
 * offset/count, lsjson), curl (PROPFIND, GET, Range, refused writes, 401) and cadaver.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { snapshotTree } from '../helpers/fstree.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { makeSource, repoWithSnapshot, runTool, servedPath, startServe, withTools, type TestServer } from './helpers.js';

let s: TestServer;
let files: Record<string, Buffer>;
let dir: string;
let src: string;
let base: string;

beforeAll(async () => {
  dir = await tmpDir('serve-clients');
  src = path.join(dir, 'src');
  files = await makeSource(src);
  await repoWithSnapshot(path.join(dir, 'repo'), src);
  s = await startServe(path.join(dir, 'repo'));
  base = `snapshots/latest/${servedPath(src)}`;
});
afterAll(async () => { await s?.close(); await cleanupTmpDirs(); });

withTools(['rclone'], 'rclone webdav backend', () => {
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    const ob = await runTool('rclone', ['obscure', s.h.password]);
    env = {
      ...process.env, RCLONE_CONFIG: '/dev/null',
      RCLONE_CONFIG_JB_TYPE: 'webdav', RCLONE_CONFIG_JB_URL: s.h.url, RCLONE_CONFIG_JB_VENDOR: 'other',
      RCLONE_CONFIG_JB_USER: s.h.username, RCLONE_CONFIG_JB_PASS: ob.stdout.trim(),
    };
  });

  it('rclone copy of a snapshot folder equals the source (names, bytes, mtimes to the second)', async () => {
    const out = path.join(dir, 'rclone-copy');
    const r = await runTool('rclone', ['copy', `jb:${base}`, out], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const want = await snapshotTree(src);
    const got = await snapshotTree(out);
    // the symlink to a file arrives as that file
    const shape = (m: Awaited<ReturnType<typeof snapshotTree>>) => [...m].filter(([k]) => k !== '.')
      .map(([k, e]) => (e.type === 'dir' ? `${k}/` : `${k} ${e.type === 'symlink' ? files[k]!.length : e.size}`)).sort();
    expect(shape(got)).toEqual(shape(want));
    for (const [rel, content] of Object.entries(files)) expect((await fsp.readFile(path.join(out, rel))).equals(content), rel).toBe(true);
    for (const [k, e] of got) if (e.type === 'file' && k !== 'docs/link-to-a') expect(e.mtimeNs / 1_000_000_000n, k).toBe(want.get(k)!.mtimeNs / 1_000_000_000n);
  });

  it('rclone cat --offset/--count equals the bytes', async () => {
    const big = files['photos/big.bin']!;
    for (const [off, n] of [[0, 10], [1_234_567, 100_000], [big.length - 7, 7], [9_000_000, 2_500_000]] as const) {
      const r = await runTool('rclone', ['cat', '--offset', String(off), '--count', String(n), `jb:${base}/photos/big.bin`], { env });
      expect(r.code).toBe(0);
      expect(r.stdoutBuffer.equals(big.subarray(off, off + n)), `${off}+${n}`).toBe(true);
    }
  });

  it('rclone lsjson sizes and mtimes equal the tree\'s', async () => {
    const r = await runTool('rclone', ['lsjson', '-R', `jb:${base}`], { env });
    expect(r.code).toBe(0);
    const items = JSON.parse(r.stdout) as { Path: string; Size: number; ModTime: string; IsDir: boolean }[];
    const got = new Map(items.filter((i) => !i.IsDir).map((i) => [i.Path, i]));
    expect([...got.keys()].sort()).toEqual(Object.keys(files).sort());
    for (const [rel, content] of Object.entries(files)) {
      expect(got.get(rel)!.Size, rel).toBe(content.length);
      if (rel !== 'docs/link-to-a') expect(Date.parse(got.get(rel)!.ModTime), rel).toBe(Date.parse('2024-05-06T07:08:09Z'));
    }
    const dirs = items.filter((i) => i.IsDir).map((i) => i.Path).sort();
    expect(dirs).toEqual(['deep', 'deep/a', 'deep/a/b', 'deep/a/b/c', 'docs', 'photos']);
  });
});

withTools(['curl'], 'curl', () => {
  const curl = (args: string[]) => runTool('curl', ['-sS', '-u', `${s.h.username}:${s.h.password}`, ...args]);

  it('PROPFIND, GET, Range, 403/405 on writes, 401 without the password', async () => {
    const pf = await curl(['-X', 'PROPFIND', '-H', 'Depth: 1', '-w', '%{http_code}', s.url(`${base}/docs`)]);
    expect(pf.stdout).toMatch(/207$/);
    expect(pf.stdout).toContain('<D:displayname>readme.md</D:displayname>');
    const get = await curl([s.url(`${base}/docs/readme.md`)]);
    expect(get.stdout).toBe('# read me\n');
    const range = await curl(['-r', '1000-1999', s.url(`${base}/photos/big.bin`)]);
    expect(range.stdoutBuffer.equals(files['photos/big.bin']!.subarray(1000, 2000))).toBe(true);
    for (const m of ['PUT', 'DELETE', 'MKCOL', 'MOVE', 'COPY', 'LOCK', 'PROPPATCH']) {
      const w = await curl(['-X', m, '-o', '/dev/null', '-w', '%{http_code}', ...(m === 'PUT' ? ['--data-binary', 'x'] : []), s.url(`${base}/a.txt`)]);
      expect(w.stdout, m).toBe('405');
    }
    const anon = await runTool('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', s.url(`${base}/a.txt`)]);
    expect(anon.stdout).toBe('401');
    const traversal = await curl(['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${s.h.url}${base}/../../../../../etc/passwd`]);
    expect(traversal.stdout).toBe('400');
  });
});

withTools(['cadaver'], 'cadaver', () => {
  it('lists, reads, and is refused a write (credentials from ~/.netrc)', async () => {
    const home = path.join(dir, 'cadaver-home');
    await fsp.mkdir(home, { recursive: true });
    await fsp.writeFile(path.join(home, '.netrc'), `machine 127.0.0.1\nlogin ${s.h.username}\npassword ${s.h.password}\n`, { mode: 0o600 });
    const script = [`ls ${base}/docs`, `cat ${base}/a.txt`, `put ${path.join(src, 'a.txt')} uploaded.txt`, 'quit', ''].join('\n');
    const r = await runTool('cadaver', [s.h.url], { env: { ...process.env, HOME: home }, input: script });
    expect(r.stdout).toMatch(/Listing collection `\/[^']*\/docs\/': succeeded\./);
    expect(r.stdout).toMatch(/readme\.md\s+10 /);
    expect(r.stdout).toContain('alpha');
    expect(r.stdout).toMatch(/failed:\s*\n?405 Method Not Allowed/);
  });
});
