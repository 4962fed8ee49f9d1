import { afterAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Repository } from '../../src/repo/repository.js';
import { Archiver } from '../../src/archiver/archiver.js';
import { Prescan } from '../../src/archiver/prescan.js';
import { makeMatcher } from '../../src/archiver/exclude.js';
import { decodeTree } from '../../src/repo/tree.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

const KDF = { N: 1024, r: 8, p: 1 };
afterAll(cleanupTmpDirs);

async function makeTree(): Promise<string> {
  const src = path.join(await tmpDir('prescan'), 'src');
  for (let d = 0; d < 12; d++) {
    const dir = path.join(src, `d${d}`, d % 3 === 0 ? 'deeper' : '');
    await fsp.mkdir(dir, { recursive: true });
    for (let f = 0; f < 15; f++) await fsp.writeFile(path.join(dir, `f${f}.txt`), `dir ${d} file ${f}\n`.repeat(f + 1));
  }
  await fsp.mkdir(path.join(src, 'skipme', 'inner'), { recursive: true });
  await fsp.writeFile(path.join(src, 'skipme', 'inner', 'x'), 'x');
  return src;
}

async function snapshot(src: string, prescan?: Prescan) {
  const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
  const cwd = process.cwd();
  process.chdir(src);
  try {
    const s = await new Archiver(repo, { targets: ['.'], excludes: makeMatcher(['skipme'], []), time: 1_700_000_000_000_000_000n, ...(prescan ? { prescan } : {}) }).run();
    return { s, repo };
  } finally {
    process.chdir(cwd);
  }
}

describe('prescan', () => {
  it('gives the same snapshot as reading the directories live, whether it finished or stopped part way', async () => {
    const src = await makeTree();
    const live = await snapshot(src);
    const full = new Prescan([src], makeMatcher(['skipme'], []), false);
    await full.finished;
    const partial = new Prescan([src], makeMatcher(['skipme'], []), false, 60);
    await partial.finished;
    for (const p of [full, partial]) {
      const r = await snapshot(src, p);
      expect(r.s.files_new).toBe(live.s.files_new);
      const [a, b] = await Promise.all([live.repo.loadSnapshot(live.s.snapshot_id), r.repo.loadSnapshot(r.s.snapshot_id)]);
      expect(b.tree).toBe(a.tree);
    }
  });

  it('walks in the archiver\'s order, does not descend into excluded directories, and hands each listing out once', async () => {
    const src = await makeTree();
    const p = new Prescan([src], makeMatcher(['skipme'], []), false, 40);
    await p.finished;
    // the first directories in depth-first order were read before the bound stopped it
    const root = p.takeDir(Buffer.from(src));
    expect(root?.names.map(String)).toEqual(['d0', 'd1', 'd10', 'd11', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9', 'skipme']);
    expect(p.takeDir(Buffer.from(src))).toBeUndefined();
    expect(p.takeDir(Buffer.from(path.join(src, 'd0')))).toBeDefined();
    expect(p.takeDir(Buffer.from(path.join(src, 'd0', 'deeper')))).toBeDefined();
    expect(p.takeDir(Buffer.from(path.join(src, 'd9')))).toBeUndefined();
    const all = new Prescan([src], makeMatcher(['skipme'], []), false);
    await all.finished;
    expect(all.takeDir(Buffer.from(path.join(src, 'd9')))).toBeDefined();
    expect(all.takeDir(Buffer.from(path.join(src, 'skipme')))).toBeUndefined();
  });

  it('metadata read ahead is what the snapshot records; a file changed after it is seen as changed next time', async () => {
    const src = await makeTree();
    const p = new Prescan([src], null, false);
    await p.finished;
    const f = path.join(src, 'd1', 'f3.txt');
    await fsp.writeFile(f, 'changed after the prescan, longer than before....................................\n');
    const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
    const first = await new Archiver(repo, { targets: [src], prescan: p }).run();
    const second = await new Archiver(repo, { targets: [src] }).run();
    expect(first.files_new).toBeGreaterThan(0);
    // the node recorded in the first snapshot carries the prescan's (old) size; the second run
    // therefore reads the file again and records the real size
    expect(second.files_changed).toBe(1);
    const snap = await repo.loadSnapshot(second.snapshot_id);
    let tree = decodeTree(await repo.loadBlob('tree', snap.tree));
    for (const c of [...src.split('/').filter(Boolean), 'd1']) tree = decodeTree(await repo.loadBlob('tree', tree.find((n) => n.name.toString() === c)!.subtree!));
    expect(Number(tree.find((n) => n.name.toString() === 'f3.txt')!.size)).toBe((await fsp.stat(f)).size);
  });
});
