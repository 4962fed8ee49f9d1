/**
 * dump of a directory whose tree holds "..", "/abs" and "a/../../x" names: every tar member stays
 * relative and below the archive root (names cleaned as restic does), so extracting the archive
 * cannot write outside; restic 0.14's dump of the same snapshot keeps the same guarantee.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, findTool, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { hostileEnv, hostileSnapshot, HOSTILE_PW } from '../helpers/hostile-restore.js';

afterAll(cleanupTmpDirs);

function members(tar: Buffer): string[] {
  const r = spawnSync('tar', ['-t'], { input: tar });
  expect(r.status, r.stderr.toString()).toBe(0);
  return r.stdout.toString().split('\n').filter(Boolean);
}

describe('dump sanitises member names', () => {
  it('no member is absolute or climbs with ".." (restic 0.14 neither)', async () => {
    const dir = await tmpDir('dump-hostile');
    const repo = path.join(dir, 'repo');
    await hostileSnapshot(repo, [
      { name: '..', type: 'dir', children: [{ name: '..', type: 'dir', children: [{ name: 'x', type: 'file', content: Buffer.from('x\n') }] }] },
      { name: '/abs', type: 'file', content: Buffer.from('abs\n') },
      { name: 'a/../../../y', type: 'file', content: Buffer.from('y\n') },
      { name: 'd', type: 'dir', children: [{ name: '../../z', type: 'symlink', target: '/etc/passwd' }] },
    ]);
    const r = await runJbackup(['dump', 'latest', '/'], { env: hostileEnv(repo) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const got = members(r.stdoutBuffer);
    for (const m of got) {
      expect(m.startsWith('/')).toBe(false);
      expect(m.split('/')).not.toContain('..');
    }
    expect([...got].sort()).toEqual(['abs', 'd/', 'x', 'y', 'z'].sort());
    // extracting it writes only below the extraction directory
    const out = path.join(dir, 'x', 'y');
    await fsp.mkdir(out, { recursive: true });
    const x = spawnSync('tar', ['-x', '-C', out], { input: r.stdoutBuffer });
    expect(x.status, x.stderr.toString()).toBe(0);
    expect((await fsp.readdir(path.join(dir, 'x'))).sort()).toEqual(['y']);
    expect(await fsp.readFile(path.join(out, 'x'), 'utf8')).toBe('x\n');

    if (findTool('restic')) {
      const rr = await runRestic(['dump', 'latest', '/'], { repo, password: HOSTILE_PW });
      // restic cleans each top-level node's walk on its own ("d" + "../../z" is "d/z" there, "z"
      // here, relative to the dumped directory) and writes "./" for ".." directories: the same
      // guarantee, not the same names
      expect(rr.code).toBe(0);
      for (const m of members(rr.stdoutBuffer)) {
        expect(m.startsWith('/')).toBe(false);
        expect(m.split('/')).not.toContain('..');
      }
    }
  });
});
