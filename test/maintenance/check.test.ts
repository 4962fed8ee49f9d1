/** check finds each kind of damage, names the object, and exits 1; restic agrees where it can judge. */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, findTool, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'check-pw';
afterAll(cleanupTmpDirs);

describe('jbackup check', () => {
  let dir: string;
  let repo: string;
  const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });
  const jb = (args: string[]) => runJbackup(args, { env: env() });

  beforeEach(async () => {
    dir = await tmpDir('check');
    repo = path.join(dir, 'repo');
    const src = path.join(dir, 'src');
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(src, 'a.bin'), prngBytes('a', 3 * 1024 * 1024));
    await fsp.writeFile(path.join(src, 'sub', 'b.txt'), 'bbb\n'.repeat(1000));
    expect((await jb(['init'])).code).toBe(0);
    expect((await jb(['snapshot', src])).code).toBe(0);
    const ok = await jb(['check', '--read-data']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/no errors were found/);
  });

  const packs = async () => {
    const out: { id: string; file: string; size: number }[] = [];
    for (const d of await fsp.readdir(path.join(repo, 'data'))) {
      for (const f of await fsp.readdir(path.join(repo, 'data', d))) {
        const file = path.join(repo, 'data', d, f);
        out.push({ id: f, file, size: (await fsp.stat(file)).size });
      }
    }
    return out.sort((a, b) => b.size - a.size);
  };
  const treePack = async () => (await packs()).at(-1)!; // the small one holds the trees

  it('a flipped byte in a pack (found by --read-data, not by the structure check)', async () => {
    const p = (await packs())[0]!;
    await fsp.chmod(p.file, 0o600);
    const fh = await fsp.open(p.file, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 1000);
    b[0]! ^= 0x01;
    await fh.write(b, 0, 1, 1000);
    await fh.close();
    expect((await jb(['check'])).code).toBe(0);
    const r = await jb(['check', '--read-data']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`data/${p.id}`);
    expect(r.stderr).toMatch(/Pack ID does not match/);
    expect(r.stderr).toMatch(/verification failed/);
  });

  it('a missing pack', async () => {
    const p = (await packs())[0]!;
    await fsp.rm(p.file);
    const r = await jb(['check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`data/${p.id}: pack is referenced in the index but does not exist`);
  });

  it('a truncated pack', async () => {
    const p = (await packs())[0]!;
    await fsp.chmod(p.file, 0o600);
    await fsp.truncate(p.file, p.size - 100);
    const r = await jb(['check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`data/${p.id}: unexpected file size: got ${p.size - 100}, expected ${p.size}`);
  });

  it('a missing index entry (pack file present, index rewritten without it)', async () => {
    // drop the index: every pack becomes an orphan and every blob is missing from the index
    for (const f of await fsp.readdir(path.join(repo, 'index'))) await fsp.rm(path.join(repo, 'index', f));
    const r = await jb(['check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/snapshot tree not found in index|tree cannot be loaded/);
    const v = await jb(['-v', 'check']);
    expect(v.stdout).toMatch(/not referenced in any index/);
  });

  it('a missing tree', async () => {
    // a tree pack removed: the snapshot's trees cannot be loaded
    const p = await treePack();
    await fsp.rm(p.file);
    const r = await jb(['check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tree\/[0-9a-f]{64}: tree cannot be loaded/);
    expect(r.stderr).toContain(`data/${p.id}`);
  });

  it.runIf(findTool('restic'))('restic check agrees on a damaged repository', async () => {
    const p = (await packs())[0]!;
    await fsp.rm(p.file);
    const r = await runRestic(['check'], { repo, password: PW });
    expect(r.code).not.toBe(0);
  });
});
