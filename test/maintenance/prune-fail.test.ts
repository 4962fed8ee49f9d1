/**
 * A prune that fails part way through repacking (a kept blob that no longer decrypts) deletes
 * nothing, writes no index, and leaves no temp file or open pack stream behind.
 */
import { afterAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { prune } from '../../src/maintenance/prune.js';
import { Repository } from '../../src/repo/repository.js';
import { cleanupTmpDirs, runJbackup, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'prune-fail-pw';
afterAll(cleanupTmpDirs);

async function files(root: string, pattern?: RegExp): Promise<string[]> {
  const out: string[] = [];
  for (const t of ['data', 'index', 'snapshots']) {
    // (entry types from readdir: no stat that a temp file could vanish before, during the prune)
    for (const e of await fsp.readdir(path.join(root, t), { recursive: true, withFileTypes: true })) {
      const rel = path.relative(root, path.join(e.parentPath, e.name));
      if (e.isFile() && (!pattern || pattern.test(e.name))) out.push(rel);
    }
  }
  return out.sort();
}

it('a prune that fails while repacking deletes nothing, writes no index, and leaves no temp files', async () => {
  const dir = await tmpDir('prune-fail');
  const repoPath = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  await fsp.mkdir(src);
  const env = { JBACKUP_REPOSITORY: repoPath, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1', JBACKUP_PACK_SIZE: '4' };
  expect((await runJbackup(['init'], { env })).code).toBe(0);
  // ~8 packs of 4 MiB, each with blobs of several files: which files share a pack depends on the
  // workers' timing, and with half the files deleted a pack of only kept or only deleted files is not
  // repacked; with 4 packs, fewer than the 3 repacks this test needs happened now and then
  for (let i = 0; i < 24; i++) await fsp.writeFile(path.join(src, `f${i}`), prngBytes(`pf${i}`, 1_200_000));
  const first = await runJbackup(['--json', 'snapshot', src], { env });
  expect(first.code).toBe(0);
  for (let i = 0; i < 24; i += 2) await fsp.rm(path.join(src, `f${i}`));
  expect((await runJbackup(['snapshot', src], { env })).code).toBe(0);
  const firstId = JSON.parse(first.stdout.trim().split('\n').pop()!).snapshot_id as string;
  expect((await runJbackup(['forget', firstId], { env })).code).toBe(0);
  const before = await files(repoPath);

  const be = new LocalBackend(repoPath);
  try {
    const repo = await Repository.open(be, Buffer.from(PW), { packSize: 4 * 1024 * 1024 });
    let started = 0;
    const run = prune(repo, {
      maxUnused: { kind: 'percent', p: 0 },
      beforeMutation: async (phase) => {
        // by the third pack (two at a time) the first one's blobs are in a new pack: damage every
        // pack every 64 KiB (only kept blobs are verified, so one spot could fall on a blob of a
        // deleted file), short of the header, so the next one read fails
        if (phase !== 'repack' || ++started !== 3) return;
        for (const f of await files(repoPath)) {
          if (!f.startsWith('data/') || f.includes('-tmp-')) continue; // (the new pack being written)
          const p = path.join(repoPath, f);
          await fsp.chmod(p, 0o600);
          const fh = await fsp.open(p, 'r+');
          const size = (await fh.stat()).size;
          for (let at = 2000; at + 6 < size - 4096; at += 64 * 1024) await fh.write(Buffer.from('damage'), 0, 6, at);
          await fh.close();
        }
      },
    });
    await expect(run).rejects.toThrow(/pack [0-9a-f]{64}: blob [0-9a-f]{64}/);
    expect(started).toBeGreaterThanOrEqual(3);
    expect(await files(repoPath, /-tmp-/)).toEqual([]);
    // nothing deleted; the index and snapshots unchanged; at most whole new packs stored (no index
    // refers to them: the next prune removes them)
    const after = await files(repoPath);
    expect(before.filter((f) => !after.includes(f))).toEqual([]);
    const added = after.filter((f) => !before.includes(f));
    for (const f of added) expect(f).toMatch(/^data\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
  } finally {
    await be.close();
  }
}, 120_000);
