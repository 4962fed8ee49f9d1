/** The bench's scale and real datasets: the same tree on every run, the shape the README states. */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { realDirectories, scaleDataset, touchOnePercent } from '../../bench/datasets.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

/** path → sha256 of every file under root, and the deepest directory level */
function digest(root: string): { files: Map<string, string>; depth: number } {
  const files = new Map<string, string>();
  let depth = 0;
  for (const e of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.relative(root, path.join(e.parentPath, e.name));
    files.set(p, createHash('sha256').update(readFileSync(path.join(root, p))).digest('hex'));
    depth = Math.max(depth, p.split(path.sep).length - 1);
  }
  return { files, depth };
}

describe('bench datasets', () => {
  it('scale: seeded (two generations are byte-identical), 6 levels deep, 0–24 KiB, distinct files, 1 % touched', async () => {
    const a = await tmpDir('scale-a');
    const b = await tmpDir('scale-b');
    const sa = scaleDataset(a, 1000);
    scaleDataset(b, 1000);
    const da = digest(a);
    const db = digest(b);
    expect(da.files.size).toBe(1000);
    expect(da.depth).toBe(6);
    expect([...da.files.entries()].sort()).toEqual([...db.files.entries()].sort());
    // no two equal files of 64 bytes or more (tiny ones repeat, as in real trees): each is a blob of its own
    const sized = [...da.files.keys()].filter((p) => statSync(path.join(a, p)).size >= 64).map((p) => da.files.get(p));
    expect(sized.length).toBeGreaterThan(900);
    expect(new Set(sized).size).toBe(sized.length);
    let bytes = 0;
    for (const p of da.files.keys()) {
      const size = statSync(path.join(a, p)).size;
      expect(size).toBeLessThanOrEqual(24 * 1024);
      bytes += size;
    }
    expect(bytes).toBe(sa.bytes);
    expect(sa.touchable).toHaveLength(10);
    const before = statSync(sa.touchable[3]!).size;
    touchOnePercent(sa);
    expect(statSync(sa.touchable[3]!).size).toBe(before + 1);
    expect(sa.bytes).toBe(bytes + 10);
  });

  it('real: a fixed, sorted list of system directories plus the project node_modules', () => {
    const dirs = realDirectories('/project');
    expect(dirs[0]).toBe('/usr/include');
    expect(dirs.at(-1)).toBe('/project/node_modules');
    const py = dirs.filter((d) => d.startsWith('/usr/lib/python3'));
    expect(py).toEqual([...py].sort());
    expect(realDirectories('/project')).toEqual(dirs);
  });
});
