/**
 * One damaged blob fails only its file: restore (and dump of a directory) go on, every other file
 * gets its content, mode and mtime, the damaged file is named, the exit code is 1 and the damaged
 * file is not counted as restored. restic 0.14 restoring the same repository is run beside.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, findTool, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { decodeTree, type Node } from '../../src/repo/tree.js';

const PW = 'damaged-pw';
afterAll(cleanupTmpDirs);

const FILES: { rel: string; mode: number; size: number }[] = [
  { rel: 'a.txt', mode: 0o640, size: 1000 },
  { rel: 'b.bin', mode: 0o755, size: 200_000 },
  { rel: 'c.txt', mode: 0o604, size: 3000 },
  { rel: 'sub/d.bin', mode: 0o600, size: 50_000 },
  { rel: 'sub/e.txt', mode: 0o444, size: 10 },
];
const DAMAGED = 'b.bin';
const MTIME = new Date('2022-02-03T04:05:06.789Z');

describe('a damaged blob fails only its file', () => {
  let dir: string;
  let repo: string;
  let src: string;
  const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });
  const jb = (args: string[]) => runJbackup(args, { env: env() });

  beforeAll(async () => {
    dir = await tmpDir('damaged');
    repo = path.join(dir, 'repo');
    src = path.join(dir, 'src');
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    for (const f of FILES) {
      const p = path.join(src, f.rel);
      await fsp.writeFile(p, prngBytes(f.rel, f.size));
      await fsp.chmod(p, f.mode);
      await fsp.utimes(p, MTIME, MTIME);
    }
    await fsp.chmod(path.join(src, 'sub'), 0o750);
    await fsp.utimes(path.join(src, 'sub'), MTIME, MTIME);
    expect((await jb(['init'])).code).toBe(0);
    expect((await jb(['snapshot', src])).code).toBe(0);

    // find the damaged file's blob through the index and flip bytes inside it in its pack
    const r = await Repository.open(new LocalBackend(repo), Buffer.from(PW));
    await r.loadIndex();
    const snap = await r.findSnapshot('latest');
    let tree = snap.tree;
    let node: Node | undefined;
    for (const c of [...src.split('/').filter(Boolean), DAMAGED]) {
      node = decodeTree(await r.loadBlob('tree', tree)).find((n) => n.name.toString() === c);
      if (node?.subtree) tree = node.subtree;
    }
    const loc = r.index.get('data', node!.content![0]!)!;
    const pack = path.join(repo, 'data', loc.packId.slice(0, 2), loc.packId);
    await fsp.chmod(pack, 0o600);
    const fh = await fsp.open(pack, 'r+');
    const b = Buffer.alloc(8);
    await fh.read(b, 0, 8, loc.offset + 40);
    for (let i = 0; i < 8; i++) b[i] ^= 0xff;
    await fh.write(b, 0, 8, loc.offset + 40);
    await fh.close();
    await fsp.chmod(pack, 0o400);
  });

  function expectRestored(root: string): void {
    for (const f of FILES) {
      if (f.rel === DAMAGED) continue;
      const p = path.join(root, f.rel);
      expect(readFileSync(p).equals(prngBytes(f.rel, f.size))).toBe(true);
      const st = statSync(p);
      expect(st.mode & 0o7777).toBe(f.mode);
      expect(st.mtime.toISOString()).toBe(MTIME.toISOString());
    }
    const sub = statSync(path.join(root, 'sub'));
    expect(sub.mode & 0o7777).toBe(0o750);
    expect(sub.mtime.toISOString()).toBe(MTIME.toISOString());
  }

  it('restore goes on: the others get content, mode and mtime; the damaged file is named and not counted; exit 1', async () => {
    const target = path.join(dir, 'target');
    const r = await jb(['restore', 'latest', '--target', target]);
    expect(r.code).toBe(1);
    const damaged = path.join(target, src, DAMAGED);
    expect(r.stderr).toContain(`ignoring error for ${damaged}: `);
    expect(r.stderr).toMatch(/There were 1 errors/);
    expect(r.stdout).toMatch(/restored 4 files \(1 failed\)/);
    expectRestored(path.join(target, src));
    // its only blob is damaged: nothing of it is written (as restic 0.14), nothing takes it for the original
    expect(existsSync(damaged)).toBe(false);

    const j = await jb(['restore', 'latest', '--target', path.join(dir, 'target-json'), '--json']);
    expect(j.code).toBe(1);
    const lines = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const errs = lines.filter((l) => l['message_type'] === 'error');
    expect(errs).toHaveLength(1);
    expect(errs[0]!['item']).toBe(path.join(dir, 'target-json', src, DAMAGED));
    const summary = lines.find((l) => l['message_type'] === 'summary')!;
    expect(summary).toMatchObject({ total_files: 5, files_restored: 4, total_bytes: FILES.reduce((s, f) => s + f.size, 0) });
    expect(summary['bytes_restored']).toBe(FILES.reduce((s, f) => s + (f.rel === DAMAGED ? 0 : f.size), 0));
  });

  it('restic 0.14 on the same repository also names the damaged file (and restores the rest)', async (ctx) => {
    if (!findTool('restic')) ctx.skip();
    const target = path.join(dir, 'restic-target');
    const r = await runRestic(['restore', 'latest', '--target', target], { repo, password: PW });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(DAMAGED);
    for (const f of FILES) {
      if (f.rel === DAMAGED) continue;
      expect(readFileSync(path.join(target, src, f.rel)).equals(prngBytes(f.rel, f.size))).toBe(true);
    }
  });

  it('dump of the directory writes a tar of the rest, names the damaged file, exit 1', async () => {
    const r = await jb(['dump', 'latest', src]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ignoring error for ${DAMAGED}: `);
    const tarFile = path.join(dir, 'dump.tar');
    await fsp.writeFile(tarFile, r.stdoutBuffer);
    const out = path.join(dir, 'dump-x');
    await fsp.mkdir(out);
    const x = spawnSync('tar', ['-xf', tarFile, '-C', out]);
    expect(x.status, x.stderr.toString()).toBe(0);
    expectRestored(out);
    // the damaged member keeps its place and size (zeros after what could be read)
    expect(statSync(path.join(out, DAMAGED)).size).toBe(200_000);
  });
});

describe('a damaged tree fails only what is below it', () => {
  it('restore and dump go on: the rest has content, mode and mtime; the directory is named; exit 1', async () => {
    const dir = await tmpDir('damaged-tree');
    const repo = path.join(dir, 'repo');
    const src = path.join(dir, 'src');
    const env = { JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' };
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    for (const f of FILES) {
      const p = path.join(src, f.rel);
      await fsp.writeFile(p, prngBytes(f.rel, f.size));
      await fsp.chmod(p, f.mode);
      await fsp.utimes(p, MTIME, MTIME);
    }
    expect((await runJbackup(['init'], { env })).code).toBe(0);
    expect((await runJbackup(['snapshot', src], { env })).code).toBe(0);
    const r = await Repository.open(new LocalBackend(repo), Buffer.from(PW));
    await r.loadIndex();
    let tree = (await r.findSnapshot('latest')).tree;
    for (const c of [...src.split('/').filter(Boolean), 'sub']) {
      tree = decodeTree(await r.loadBlob('tree', tree)).find((n) => n.name.toString() === c)!.subtree!;
    }
    const loc = r.index.get('tree', tree)!;
    const pack = path.join(repo, 'data', loc.packId.slice(0, 2), loc.packId);
    await fsp.chmod(pack, 0o600);
    const fh = await fsp.open(pack, 'r+');
    await fh.write(Buffer.alloc(8, 0x55), 0, 8, loc.offset + 20);
    await fh.close();

    const target = path.join(dir, 'target');
    const res = await runJbackup(['restore', 'latest', '--target', target], { env });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`ignoring error for ${path.join(target, src, 'sub')}: `);
    for (const f of FILES.filter((x) => !x.rel.startsWith('sub/'))) {
      const p = path.join(target, src, f.rel);
      expect(readFileSync(p).equals(prngBytes(f.rel, f.size))).toBe(true);
      expect(statSync(p).mode & 0o7777).toBe(f.mode);
      expect(statSync(p).mtime.toISOString()).toBe(MTIME.toISOString());
    }

    const d = await runJbackup(['dump', 'latest', src], { env });
    expect(d.code).toBe(1);
    expect(d.stderr).toContain('ignoring error for sub: ');
    const x = spawnSync('tar', ['-t'], { input: d.stdoutBuffer });
    expect(x.status).toBe(0);
    expect(x.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(['a.txt', 'b.bin', 'c.txt', 'sub/']);
  });
});

describe('a missing pack fails only the files it feeds', () => {
  it('every file is named, directories still get their metadata, exit 1', async () => {
    const dir = await tmpDir('missing-pack');
    const repo = path.join(dir, 'repo');
    const src = path.join(dir, 'src');
    const env = { JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' };
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(src, 'sub', 'f'), prngBytes('f', 5000));
    await fsp.writeFile(path.join(src, 'empty'), '');
    await fsp.chmod(path.join(src, 'sub'), 0o750);
    await fsp.utimes(path.join(src, 'sub'), MTIME, MTIME);
    expect((await runJbackup(['init'], { env })).code).toBe(0);
    expect((await runJbackup(['snapshot', src], { env })).code).toBe(0);
    const r = await Repository.open(new LocalBackend(repo), Buffer.from(PW));
    await r.loadIndex();
    let node: Node | undefined;
    let tree = (await r.findSnapshot('latest')).tree;
    for (const c of [...src.split('/').filter(Boolean), 'sub', 'f']) {
      node = decodeTree(await r.loadBlob('tree', tree)).find((n) => n.name.toString() === c);
      if (node?.subtree) tree = node.subtree;
    }
    const packId = r.index.get('data', node!.content![0]!)!.packId;
    await fsp.rm(path.join(repo, 'data', packId.slice(0, 2), packId));

    const target = path.join(dir, 'target');
    const res = await runJbackup(['restore', 'latest', '--target', target], { env });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`ignoring error for ${path.join(target, src, 'sub', 'f')}: pack ${packId}`);
    expect(res.stdout).toMatch(/restored 1 files \(1 failed\)/);
    const sub = statSync(path.join(target, src, 'sub'));
    expect(sub.mode & 0o7777).toBe(0o750);
    expect(sub.mtime.toISOString()).toBe(MTIME.toISOString());
    expect(existsSync(path.join(target, src, 'empty'))).toBe(true);
  });
});
