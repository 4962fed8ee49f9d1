/**
 * Restore of hostile trees never reaches outside its target: duplicate names (a symlink after a
 * file or before a directory of the same name), "..", names with "/", a subpath through "..",
 * an existing symlink where a directory goes. An outside canary file and directory keep their
 * content, mode and mtime; restic 0.14 restoring the same snapshot is held to the same check.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { promises as fsp, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { cleanupTmpDirs, findTool, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { hostileEnv, hostileSnapshot, HOSTILE_PW, type HNode } from '../helpers/hostile-restore.js';

afterAll(cleanupTmpDirs);

interface Canary { file: string; dir: string }

async function makeCanary(dir: string): Promise<Canary> {
  const outside = path.join(dir, 'outside');
  await fsp.mkdir(path.join(outside, 'cdir'), { recursive: true });
  const file = path.join(outside, 'canary');
  await fsp.writeFile(file, 'canary\n');
  await fsp.chmod(file, 0o600);
  await fsp.chmod(path.join(outside, 'cdir'), 0o700);
  const old = new Date('2020-01-01T00:00:00Z');
  await fsp.utimes(file, old, old);
  await fsp.utimes(path.join(outside, 'cdir'), old, old);
  await fsp.utimes(outside, old, old);
  return { file, dir: path.join(outside, 'cdir') };
}

function expectUntouched(c: Canary): void {
  const f = statSync(c.file);
  expect(readFileSync(c.file, 'utf8')).toBe('canary\n');
  expect(f.mode & 0o7777).toBe(0o600);
  expect(f.mtime.toISOString()).toBe('2020-01-01T00:00:00.000Z');
  const d = statSync(c.dir);
  expect(readdirSync(c.dir)).toEqual([]);
  expect(d.mode & 0o7777).toBe(0o700);
  expect(d.mtime.toISOString()).toBe('2020-01-01T00:00:00.000Z');
  const parent = statSync(path.dirname(c.file));
  expect(readdirSync(path.dirname(c.file)).sort()).toEqual(['canary', 'cdir']);
  expect(parent.mtime.toISOString()).toBe('2020-01-01T00:00:00.000Z');
}

const hasRestic = findTool('restic') !== null;

describe('restore of hostile trees stays inside the target', () => {
  let dir: string;
  let repo: string;
  let canary: Canary;
  const jb = (args: string[]) => runJbackup(args, { env: hostileEnv(repo) });

  beforeEach(async () => {
    dir = await tmpDir('hostile');
    repo = path.join(dir, 'repo');
    canary = await makeCanary(dir);
  });

  /** restore with jbackup (and restic 0.14 where installed) into fresh targets; canary checked after each */
  async function restoreBoth(ref = 'latest'): Promise<{ code: number; stderr: string; target: string }> {
    const target = path.join(dir, 'target');
    const r = await jb(['restore', ref, '--target', target]);
    expectUntouched(canary);
    if (hasRestic) {
      const rt = path.join(dir, 'restic-target');
      await runRestic(['restore', ref, '--target', rt], { repo, password: HOSTILE_PW });
      expectUntouched(canary);
    }
    return { code: r.code, stderr: r.stderr, target };
  }

  it('a setuid file followed by a symlink of the same name to an outside file: the link is refused, the outside file keeps its mode', async () => {
    await hostileSnapshot(repo, [
      { name: 'f', type: 'file', perm: 0o777, setuid: true, content: Buffer.from('first\n') },
      { name: 'f', type: 'symlink', target: canary.file },
      { name: 'ok', type: 'file', content: Buffer.from('ok\n') },
    ]);
    const r = await restoreBoth();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ignoring error for .*target\/f: .*file exists/);
    const st = lstatSync(path.join(r.target, 'f'));
    expect(st.isFile()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o4777);
    expect(readFileSync(path.join(r.target, 'f'), 'utf8')).toBe('first\n');
    expect(readFileSync(path.join(r.target, 'ok'), 'utf8')).toBe('ok\n');
  });

  it('an empty file, a FIFO and a directory followed by a symlink of the same name: nothing outside changes', async () => {
    await hostileSnapshot(repo, [
      { name: 'd', type: 'dir', perm: 0o777, children: [{ name: 'in', type: 'file', content: Buffer.from('in\n') }] },
      { name: 'd', type: 'symlink', target: canary.dir },
      { name: 'e', type: 'file', perm: 0o666 },
      { name: 'e', type: 'symlink', target: canary.file },
      { name: 'p', type: 'fifo', perm: 0o666 },
      { name: 'p', type: 'symlink', target: canary.file },
    ]);
    const r = await restoreBoth();
    expect(r.code).toBe(1);
    for (const n of ['d', 'e', 'p']) expect(r.stderr).toContain(`${path.join(r.target, n)}: `);
    expect(lstatSync(path.join(r.target, 'd')).isDirectory()).toBe(true);
    expect(readFileSync(path.join(r.target, 'd', 'in'), 'utf8')).toBe('in\n');
    expect(lstatSync(path.join(r.target, 'p')).isFIFO()).toBe(true);
    expect(lstatSync(path.join(r.target, 'e')).mode & 0o7777).toBe(0o666);
  });

  it('a symlink to an outside directory followed by a directory of the same name with children: no child is written through the link', async () => {
    await hostileSnapshot(repo, [
      { name: 'd', type: 'symlink', target: canary.dir },
      { name: 'd', type: 'dir', perm: 0o777, children: [{ name: 'x', type: 'file', perm: 0o777, setuid: true, content: Buffer.from('x\n') }] },
    ]);
    const r = await restoreBoth();
    expect(r.code).toBe(1);
    expect(lstatSync(path.join(r.target, 'd')).isSymbolicLink()).toBe(true);
  });

  it('two files of one name: the first is restored, the second refused', async () => {
    await hostileSnapshot(repo, [
      { name: 'f', type: 'file', content: Buffer.from('one\n') },
      { name: 'f', type: 'file', perm: 0o600, content: Buffer.from('two, longer\n') },
    ]);
    const r = await restoreBoth();
    expect(r.code).toBe(1);
    expect(readFileSync(path.join(r.target, 'f'), 'utf8')).toBe('one\n');
    expect(statSync(path.join(r.target, 'f')).mode & 0o777).toBe(0o644);
  });

  it('names "..", "." and with "/" are refused and named, everything else is restored', async () => {
    const rel = path.relative(path.join(dir, 'target'), canary.file);
    await hostileSnapshot(repo, [
      { name: '..', type: 'dir', perm: 0o777, children: [{ name: 'outside', type: 'dir', children: [{ name: 'canary', type: 'file', perm: 0o777, content: Buffer.from('pwned\n') }] }] },
      { name: '.', type: 'file', perm: 0o777 },
      { name: rel, type: 'file', perm: 0o777, content: Buffer.from('pwned\n') },
      { name: 'a', type: 'file', content: Buffer.from('a\n') },
    ]);
    const r = await restoreBoth();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid name "\.\."/);
    expect(r.stderr).toMatch(/invalid name "\."/);
    expect(r.stderr).toContain(`invalid name ${JSON.stringify(rel)}`);
    expect(readdirSync(r.target)).toEqual(['a']);
  });

  it('a subpath through ".." is refused before anything is written (a node named ".." exists)', async () => {
    await hostileSnapshot(repo, [
      { name: '..', type: 'file', perm: 0o777, setuid: true, content: Buffer.from('pwned\n') },
    ]);
    // restored as a single node, ".." would be the target's parent: the canary directory
    const r = await jb(['restore', 'latest:/..', '--target', path.join(canary.dir, 't')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid path.*"\.\."/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expectUntouched(canary);
  });

  it('an existing symlink in the target where the snapshot has a directory is replaced, not followed', async () => {
    await hostileSnapshot(repo, [
      { name: 'd', type: 'dir', perm: 0o777, children: [{ name: 'x', type: 'file', perm: 0o777, content: Buffer.from('x\n') }] },
      { name: 'f', type: 'file', perm: 0o777, content: Buffer.from('f\n') },
      { name: 'g', type: 'file', perm: 0o777 },
    ]);
    const target = path.join(dir, 'target');
    await fsp.mkdir(target);
    await fsp.symlink(canary.dir, path.join(target, 'd'));
    await fsp.symlink(canary.file, path.join(target, 'f'));
    await fsp.symlink(canary.file, path.join(target, 'g'));
    const r = await jb(['restore', 'latest', '--target', target]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectUntouched(canary);
    expect(lstatSync(path.join(target, 'd')).isDirectory()).toBe(true);
    expect(readFileSync(path.join(target, 'd', 'x'), 'utf8')).toBe('x\n');
    expect(lstatSync(path.join(target, 'f')).mode & 0o7777).toBe(0o777);
    expect(lstatSync(path.join(target, 'g')).isFile()).toBe(true);
  });

  it('a symlink that cannot be removed where a directory goes: nothing is created below it', async (ctx) => {
    // an immutable target directory (chattr +i, root on ext4) keeps the planted link in place
    if (process.getuid?.() !== 0) ctx.skip();
    await hostileSnapshot(repo, [
      { name: 'd', type: 'dir', perm: 0o777, children: [{ name: 'x', type: 'file', perm: 0o777, setuid: true, content: Buffer.from('x\n') }, { name: 'e', type: 'dir' }] },
    ]);
    const target = path.join(dir, 'target');
    await fsp.mkdir(target);
    await fsp.symlink(canary.dir, path.join(target, 'd'));
    if (spawnSync('chattr', ['+i', target]).status !== 0) ctx.skip();
    try {
      const r = await jb(['restore', 'latest', '--target', target]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`ignoring error for ${path.join(target, 'd')}: `);
      expect(r.stderr).not.toContain(path.join(target, 'd', 'x'));
    } finally {
      spawnSync('chattr', ['-i', target]);
    }
    expectUntouched(canary);
  });

  it('hard links point at the first path inside the target', async () => {
    await hostileSnapshot(repo, [
      { name: 'a', type: 'file', perm: 0o640, content: Buffer.from('shared\n'), inode: 7, links: 2 },
      { name: 'b', type: 'file', perm: 0o640, content: Buffer.from('shared\n'), inode: 7, links: 2 },
    ]);
    const r = await restoreBoth();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const a = statSync(path.join(r.target, 'a'));
    const b = statSync(path.join(r.target, 'b'));
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
    expect(a.mode & 0o777).toBe(0o640);
  });
});
