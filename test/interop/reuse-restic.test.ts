/**
 * The re-run shortcut (an entry equal to its parent node is that node; a directory whose entries
 * all are is the parent's tree, its id reused without encoding) must never keep a tree that restic
 * 0.14 would write differently. restic builds every node afresh from the file system, and its
 * trees are byte-identical to ours: so after each change below, jbackup's snapshot (parent: the
 * previous snapshot, restic's or ours) and restic's backup of the same source in the same
 * repository must have the same root tree id.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { hasXattr, lsetxattrSync } from '../../src/native/native.js';
import { execFileSync } from 'node:child_process';
import { cleanupTmpDirs, interopDescribe, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';

const PASSWORD = 'interop-reuse';

interopDescribe('restic', 'an unchanged subtree is reused only when restic would write the same tree', () => {
  let base: string;
  let src: string;
  let repo: string;
  const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PASSWORD, JBACKUP_KDF_PARAMS: '16384,8,1' });
  const summary = (out: string) => JSON.parse(out.trim().split('\n').filter((l) => l.includes('"summary"')).pop()!) as Record<string, number | string>;
  const jb = async (args: string[]) => {
    const r = await runJbackup(args, { env: env(), cwd: src });
    if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };
  const rs = async (args: string[]) => {
    const r = await runRestic(args, { repo, password: PASSWORD, cwd: src });
    if (r.code !== 0) throw new Error(`restic ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };
  const treeOf = async (id: string) => {
    const all = JSON.parse((await rs(['snapshots', '--json'])).stdout) as { id: string; tree: string }[];
    return all.find((s) => s.id.startsWith(id))!.tree; // restic 0.14's summary gives the short id
  };
  /** jbackup then restic on the current source: the same root tree */
  const both = async () => {
    const j = summary((await jb(['--json', 'snapshot', '.'])).stdout);
    const r = summary((await rs(['backup', '--json', '.'])).stdout);
    const [jt, rt] = [await treeOf(String(j['snapshot_id'])), await treeOf(String(r['snapshot_id']))];
    expect(jt).toBe(rt);
    return { j, tree: jt };
  };
  const P = (...p: string[]) => path.join(src, ...p);

  beforeAll(async () => {
    base = await tmpDir('reuse-interop');
    src = path.join(base, 'src');
    repo = path.join(base, 'repo');
    // a varied tree restic 0.14 and jbackup save byte-identically (the interop tree has a
    // non-UTF-8 symlink target, which jbackup keeps in linktarget_raw and restic 0.14 does not)
    for (let d = 0; d < 6; d++) {
      const dir = P('tree', `d${d}`, 'sub dir', 'ünï', `deep${d}`);
      await fsp.mkdir(dir, { recursive: true });
      for (let f = 0; f < 5; f++) await fsp.writeFile(path.join(dir, `f${f}.txt`), `file ${d}/${f}\n`.repeat(f * 300));
      await fsp.writeFile(path.join(P('tree', `d${d}`), 'empty'), '');
      await fsp.symlink(`sub dir/ünï/deep${d}/f1.txt`, path.join(P('tree', `d${d}`), 'to-f1'));
    }
    execFileSync('mkfifo', [P('tree', 'fifo')]);
    await fsp.mkdir(P('work', 'a', 'b'), { recursive: true });
    for (const n of ['one', 'two', 'three']) await fsp.writeFile(P('work', 'a', 'b', `${n}.txt`), `${n}\n`.repeat(50));
    await fsp.writeFile(P('work', 'same-size.txt'), 'AAAA\n');
    await fsp.symlink('a/b/one.txt', P('work', 'link'));
    await jb(['init']);
  }, 300_000);
  afterAll(cleanupTmpDirs);

  it('after each kind of change, jbackup writes the tree restic writes; with no change it reuses every tree', async () => {
    const first = await both();
    // nothing changed: every directory is reused, no tree written
    const again = await both();
    expect(again.tree).toBe(first.tree);
    expect(again.j['tree_blobs']).toBe(0);
    expect(again.j['dirs_changed']).toBe(0);
    expect(again.j['files_changed']).toBe(0);

    const steps: [string, () => Promise<void>][] = [
      ['mode of a file deep down', () => fsp.chmod(P('work', 'a', 'b', 'two.txt'), 0o600)],
      ['owner of a file', () => fsp.lchown(P('work', 'a', 'b', 'three.txt'), 4242, 4343)],
      ['same size and mtime, new content (ctime differs)', async () => {
        const f = P('work', 'same-size.txt');
        execFileSync('cp', ['--preserve=timestamps', f, P('..', 'ref')]);
        await fsp.writeFile(f, 'BBBB\n');
        execFileSync('touch', ['-m', '-r', P('..', 'ref'), f]); // the mtime to the nanosecond
        expect((await fsp.stat(f, { bigint: true })).mtimeNs).toBe((await fsp.stat(P('..', 'ref'), { bigint: true })).mtimeNs);
      }],
      ['a hard link (links of the file change, a new entry)', () => fsp.link(P('work', 'a', 'b', 'one.txt'), P('work', 'hard.txt'))],
      ['a symlink replaced by one with another target', async () => {
        await fsp.unlink(P('work', 'link'));
        await fsp.symlink('a/b/two.txt', P('work', 'link'));
      }],
      ['a file removed', () => fsp.unlink(P('work', 'a', 'b', 'three.txt'))],
      ['a directory renamed', () => fsp.rename(P('work', 'a'), P('work', 'z'))],
      ['a directory\'s mode', () => fsp.chmod(P('work', 'z', 'b'), 0o700)],
    ];
    if (hasXattr) steps.push(['an extended attribute on an unchanged file', async () => {
      try { lsetxattrSync(P('work', 'z', 'b', 'one.txt'), 'user.note', Buffer.from('set later')); } catch { /* no user xattrs here: the step is a no-op */ }
    }]);
    let prev = again.tree;
    for (const [what, change] of steps) {
      await change();
      const r = await both().catch((e: Error) => { throw new Error(`${what}: ${e.message}`); });
      expect(r.tree, what).not.toBe(prev);
      prev = r.tree;
    }
  }, 300_000);
});
