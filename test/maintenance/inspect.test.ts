/** find, diff, dump, stats, tag, repair index against real data (and restic where it can judge). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, findTool, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { compareTrees, prngBytes } from '../helpers/fstree.js';

const PW = 'inspect-pw';
let dir: string;
let repo: string;
let src: string;
let first: string;
let second: string;
const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });
const jb = async (args: string[]) => {
  const r = await runJbackup(args, { env: env() });
  if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')}: ${r.stderr}`);
  return r;
};

beforeAll(async () => {
  dir = await tmpDir('inspect');
  repo = path.join(dir, 'repo');
  src = path.join(dir, 'src');
  await fsp.mkdir(path.join(src, 'docs', 'deep'), { recursive: true });
  await fsp.writeFile(path.join(src, 'docs', 'report.txt'), 'quarterly report\n'.repeat(100));
  await fsp.writeFile(path.join(src, 'docs', 'deep', 'photo.jpg'), prngBytes('photo', 2_500_000));
  await fsp.writeFile(path.join(src, 'gone.txt'), 'soon removed');
  await fsp.symlink('docs/report.txt', path.join(src, 'link'));
  await jb(['init']);
  first = JSON.parse((await jb(['--json', 'snapshot', src])).stdout.trim().split('\n').pop()!).snapshot_id;
  await fsp.rm(path.join(src, 'gone.txt'));
  await fsp.writeFile(path.join(src, 'docs', 'report.txt'), 'revised report\n'.repeat(100));
  await fsp.writeFile(path.join(src, 'new.txt'), 'new');
  second = JSON.parse((await jb(['--json', 'snapshot', src])).stdout.trim().split('\n').pop()!).snapshot_id;
});
afterAll(cleanupTmpDirs);

describe('inspection commands', () => {
  it('find by base name and by path', async () => {
    type Group = { matches: { path: string }[]; hits: number; snapshot: string };
    const r = JSON.parse((await jb(['--json', 'find', '*.jpg'])).stdout) as Group[];
    expect(r.flatMap((s) => s.matches.map((m) => m.path))).toEqual([`${src}/docs/deep/photo.jpg`, `${src}/docs/deep/photo.jpg`]);
    const g = JSON.parse((await jb(['--json', 'find', 'gone.txt'])).stdout) as Group[];
    expect(g.map((m) => [m.snapshot, m.hits])).toEqual([[first, 1]]);
    const p = JSON.parse((await jb(['--json', 'find', '-i', `${src}/DOCS/*.TXT`])).stdout) as Group[];
    expect(p.flatMap((s) => s.matches)).toHaveLength(2);
  });

  it('diff lists added, removed and modified entries', async () => {
    const r = await jb(['diff', first, second]);
    expect(r.stdout).toContain(`+    ${src}/new.txt`);
    expect(r.stdout).toContain(`-    ${src}/gone.txt`);
    expect(r.stdout).toContain(`M    ${src}/docs/report.txt`);
    expect(r.stdout).not.toContain('photo.jpg');
  });

  it('dump of a file equals the source (and restic dump); a directory as tar extracts identically', async () => {
    const f = await runJbackup(['dump', second, `${src}/docs/deep/photo.jpg`], { env: env() });
    expect(f.stdoutBuffer.equals(await fsp.readFile(path.join(src, 'docs', 'deep', 'photo.jpg')))).toBe(true);
    if (findTool('restic')) {
      const rd = await runRestic(['dump', second, `${src}/docs/deep/photo.jpg`], { repo, password: PW });
      expect(rd.stdoutBuffer.equals(f.stdoutBuffer)).toBe(true);
    }
    const tarFile = path.join(dir, 'docs.tar');
    await fsp.writeFile(tarFile, (await runJbackup(['dump', second, `${src}/docs`], { env: env() })).stdoutBuffer);
    const out = path.join(dir, 'untar');
    await fsp.mkdir(out);
    const t = spawnSync('tar', ['-xf', tarFile, '-C', out]);
    expect(t.status, t.stderr.toString()).toBe(0);
    expect(await compareTrees(path.join(src, 'docs'), out, { ignore: ['atime', 'root', 'dirMtime'] })).toEqual([]);
  });

  it('stats in both modes', async () => {
    const rs = JSON.parse((await jb(['--json', 'stats', second])).stdout) as Record<string, number>;
    // restic counts every node of the snapshot (directories and the link too) in restore-size mode
    expect(rs['total_file_count']).toBe(3 + 1 + 2 + src.split('/').length - 1); // files, link, docs/deep, the dirs of src
    expect(rs['total_size']).toBe(2_500_000 + 1500 + 3);
    const raw = JSON.parse((await jb(['--json', 'stats', '--mode', 'raw-data'])).stdout) as Record<string, number>;
    expect(raw['total_size']).toBeGreaterThan(2_500_000);
    expect(raw['snapshots_count']).toBe(2);
  });

  it('tag rewrites the snapshot with `original`; restic sees the tags', async () => {
    await jb(['tag', '--add', 'keep,monthly', second]);
    const l = JSON.parse((await jb(['--json', 'snapshots'])).stdout) as { id: string; tags?: string[]; original?: string }[];
    const t = l.find((s) => s.original === second)!;
    expect(t.tags).toEqual(['keep', 'monthly']);
    if (findTool('restic')) {
      const r = JSON.parse((await runRestic(['snapshots', '--json'], { repo, password: PW })).stdout) as { id: string; tags?: string[] }[];
      expect(r.find((s) => s.id === t.id)!.tags).toEqual(['keep', 'monthly']);
    }
    second = t.id;
  });

  it('repair index rebuilds an index restic accepts, after the index was lost', async () => {
    for (const f of await fsp.readdir(path.join(repo, 'index'))) await fsp.rm(path.join(repo, 'index', f));
    expect((await runJbackup(['check'], { env: env() })).code).toBe(1);
    await jb(['repair', 'index']);
    expect((await jb(['check', '--read-data'])).stdout).toMatch(/no errors were found/);
    if (findTool('restic')) {
      const c = await runRestic(['check', '--read-data'], { repo, password: PW });
      expect(c.code).toBe(0);
    }
  });
});

describe('copy', () => {
  it('copies snapshots between repositories, skips ones already there, and restic checks the result', async () => {
    const dst = path.join(dir, 'dst');
    const denv = { JBACKUP_REPOSITORY: dst, JBACKUP_PASSWORD: 'other-pw', JBACKUP_KDF_PARAMS: '1024,8,1', JBACKUP_FROM_PASSWORD: PW };
    expect((await runJbackup(['init'], { env: denv })).code).toBe(0);
    const c = await runJbackup(['--json', 'copy', '--from-repo', repo], { env: denv });
    expect(c.code, c.stderr).toBe(0);
    const r = JSON.parse(c.stdout) as { copied: unknown[]; skipped: unknown[] };
    expect(r.copied).toHaveLength(2);
    const again = JSON.parse((await runJbackup(['--json', 'copy', '--from-repo', repo], { env: denv })).stdout) as { copied: unknown[]; skipped: unknown[] };
    expect(again.copied).toHaveLength(0);
    expect(again.skipped).toHaveLength(2);
    const out = path.join(dir, 'copied-restore');
    expect((await runJbackup(['restore', 'latest', out], { env: denv })).code).toBe(0);
    expect(await compareTrees(src, path.join(out, src), { ignore: ['atime', 'root'] })).toEqual([]);
    if (findTool('restic')) expect((await runRestic(['check', '--read-data'], { repo: dst, password: 'other-pw' })).code).toBe(0);
  });
});
