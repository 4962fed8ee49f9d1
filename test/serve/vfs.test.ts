/**
 * The served file system (src/serve/vfs.ts) over a repository with hostile names and symlinks:
 * restic's mount layout, reversible escaping, symlinks resolved only inside the snapshot, ranged
 * reads that load only the blobs covering the range.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { SnapshotFs, type Entry } from '../../src/serve/vfs.js';
import { escapeName, splitUrlPath, unescapeName } from '../../src/serve/names.js';
import { hostileSnapshot, HOSTILE_PW } from '../helpers/hostile-restore.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

async function readAll(fs: SnapshotFs, e: Entry, start = 0, end = e.size): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of fs.open(e).read(start, end)) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

describe('names', () => {
  it('escapes what clients cannot take, reversibly and canonically', () => {
    const cases: [Buffer, string][] = [
      [Buffer.from('plain name.txt'), 'plain name.txt'],
      [Buffer.from('a/b'), 'a％2Fb'],
      [Buffer.from('..'), '％2E％2E'],
      [Buffer.from('.'), '％2E'],
      [Buffer.alloc(0), '％'],
      [Buffer.from([0x66, 0xff, 0x6f]), 'f％FFo'],
      [Buffer.from('tab\there'), 'tab％09here'],
      [Buffer.from('100％'), '100％EF％BC％85'],
      [Buffer.from('ünïcödé ✓'), 'ünïcödé ✓'],
    ];
    for (const [raw, shown] of cases) {
      expect(escapeName(raw)).toBe(shown);
      expect(unescapeName(shown)).toEqual(raw);
    }
    expect(unescapeName('％61')).toBeNull(); // not canonical: "a" is its only name
    expect(unescapeName('a/b')).toBeNull();
    expect(unescapeName('％zz')).toBeNull();
  });

  it('splits URL paths, refusing dot segments and encoded slashes', () => {
    expect(splitUrlPath('/snapshots/x%20y/')).toEqual(['snapshots', 'x y']);
    expect(splitUrlPath('/a/../b')).toBeNull();
    expect(splitUrlPath('/a/%2e%2e/b')).toBeNull();
    expect(splitUrlPath('/a/%2E/b')).toBeNull();
    expect(splitUrlPath('/a%2fb')).toBeNull();
    expect(splitUrlPath('/a%00b')).toBeNull();
    expect(splitUrlPath('/%ff')).toBeNull();
  });
});

describe('SnapshotFs', () => {
  it('lays out snapshots as restic mount, escapes hostile names, keeps symlinks inside the snapshot', async () => {
    const dir = await tmpDir('serve-vfs');
    const repoDir = path.join(dir, 'repo');
    const big = Buffer.alloc(10_000, 7);
    const id = await hostileSnapshot(repoDir, [
      { name: 'a/b', type: 'file', content: Buffer.from('slash') },
      { name: '..', type: 'file', content: Buffer.from('dotdot') },
      { name: Buffer.from([0x62, 0xff]), type: 'file', content: Buffer.from('latin') },
      { name: 'dir', type: 'dir', children: [
        { name: 'f.txt', type: 'file', content: Buffer.from('hello world') },
        { name: 'up', type: 'symlink', target: '../top.txt' },
        { name: 'up2', type: 'symlink', target: '../../../../top.txt' },
        { name: 'abs', type: 'symlink', target: '/etc/passwd' },
        { name: 'absin', type: 'symlink', target: '/dir/f.txt' },
        { name: 'loop1', type: 'symlink', target: 'loop2' },
        { name: 'loop2', type: 'symlink', target: 'loop1' },
        { name: 'self', type: 'symlink', target: '.' },
        { name: 'fifo', type: 'fifo' },
      ] },
      { name: 'top.txt', type: 'file', content: Buffer.from('top') },
      { name: 'big', type: 'file', content: big },
    ]);
    const repo = await Repository.open(new LocalBackend(repoDir), Buffer.from(HOSTILE_PW));
    await repo.loadIndex();
    const fs = new SnapshotFs(repo);

    expect((await fs.list(await fs.root())).map((e) => e.name)).toEqual(['snapshots', 'hosts', 'tags', 'ids']);
    const snaps = await fs.list((await fs.stat(['snapshots']))!);
    expect(snaps.map((e) => e.name)).toEqual([expect.stringMatching(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(Z|[+-]\\d\\d:\\d\\d)_${id.slice(0, 8)}$`)), 'latest']);
    expect((await fs.list((await fs.stat(['hosts']))!)).map((e) => e.name)).toEqual(['hostile']);
    expect((await fs.stat(['ids', id.slice(0, 8)]))?.tree).toBe((await fs.stat(['snapshots', 'latest']))?.tree);

    const root = (await fs.stat(['snapshots', 'latest']))!;
    const names = (await fs.list(root)).map((e) => e.name);
    expect(names).toEqual(['a％2Fb', '％2E％2E', 'b％FF', 'dir', 'top.txt', 'big']);
    expect((await readAll(fs, (await fs.stat(['snapshots', 'latest', 'a％2Fb']))!)).toString()).toBe('slash');
    expect((await readAll(fs, (await fs.stat(['snapshots', 'latest', '％2E％2E']))!)).toString()).toBe('dotdot');
    expect((await readAll(fs, (await fs.stat(['snapshots', 'latest', 'b％FF']))!)).toString()).toBe('latin');
    expect(await fs.stat(['snapshots', 'latest', '..'])).toBeNull();

    const d = new Map((await fs.list((await fs.stat(['snapshots', 'latest', 'dir']))!)).map((e) => [e.name, e]));
    const text = async (n: string) => (await readAll(fs, d.get(n)!)).toString();
    expect(d.get('up')!.kind).toBe('file');
    expect(await text('up')).toBe('top');
    expect(await text('up2')).toBe('top'); // ".." stops at the snapshot's root
    expect(d.get('abs')!.kind).toBe('symlink'); // dangling inside the snapshot: its text, never the host's file
    expect(await text('abs')).toBe('/etc/passwd');
    expect(await text('absin')).toBe('hello world');
    expect(d.get('loop1')!.kind).toBe('symlink');
    expect(await text('loop1')).toBe('loop2');
    expect(d.get('self')!.kind).toBe('symlink');
    expect(d.get('fifo')!.kind).toBe('other');
    expect(d.get('fifo')!.size).toBe(0);

    const b = (await fs.stat(['snapshots', 'latest', 'big']))!;
    expect(b.size).toBe(big.length);
    expect(await readAll(fs, b, 9_990, 10_000)).toEqual(big.subarray(9_990));
    expect(await readAll(fs, b, 5, 5)).toEqual(Buffer.alloc(0));
    await repo.backend.close();
  });

  it('shows snapshots written while it serves, with their new blobs (the index is refreshed)', async () => {
    const repoDir = path.join(await tmpDir('serve-vfs-new'), 'repo');
    await hostileSnapshot(repoDir, [{ name: 'one', type: 'file', content: Buffer.from('first') }]);
    const repo = await Repository.open(new LocalBackend(repoDir), Buffer.from(HOSTILE_PW));
    await repo.loadIndex();
    const fs = new SnapshotFs(repo, { snapshotTtlMs: 0 });
    expect(await fs.list((await fs.stat(['ids']))!)).toHaveLength(1);
    const id2 = await hostileSnapshot(repoDir, [{ name: 'two', type: 'file', content: Buffer.from('second, new blob') }], false);
    expect((await fs.list((await fs.stat(['ids']))!)).map((e) => e.name)).toContain(id2.slice(0, 8));
    expect((await readAll(fs, (await fs.stat(['ids', id2.slice(0, 8), 'two']))!)).toString()).toBe('second, new blob');
    await repo.backend.close();
  });
});
