/**
 * The one snapshot orchestration (src/ops/backup.ts) as profile runs use it: a lock another process
 * holds is waited for (retry-lock) and every lock taken is registered with the caller and released.
 */
import { afterAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MemoryBackend } from '../../src/backend/memory.js';
import { backup } from '../../src/ops/backup.js';
import { forget } from '../../src/ops/forget.js';
import { lockRepository, unlockRepository } from '../../src/ops/lock.js';
import { initRepository } from '../../src/ops/repository.js';
import { EXIT, exitCodeOf } from '../../src/ops/exit.js';
import type { Lock } from '../../src/repo/lock.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

const KDF = { N: 1024, r: 8, p: 1 };
afterAll(cleanupTmpDirs);

async function source(): Promise<string> {
  const d = await tmpDir('ops-backup');
  await fsp.writeFile(path.join(d, 'a.txt'), 'alpha\n');
  await fsp.mkdir(path.join(d, 'sub'));
  await fsp.writeFile(path.join(d, 'sub', 'b.txt'), 'beta\n');
  return d;
}

it('waits for an exclusive lock held by another when retryLockMs is set, and registers its own lock', async () => {
  const src = await source();
  const repo = await initRepository(new MemoryBackend(), 'pw', { kdf: KDF });
  const other = await lockRepository(repo, true);
  // without a retry: the lock error, restic's exit code 11, nothing saved
  const e = await backup(repo, { targets: [src] }).catch((x: unknown) => x);
  expect(exitCodeOf(e)).toBe(EXIT.lock);
  expect(await repo.listSnapshots()).toHaveLength(0);

  const retries: string[] = [];
  const held = new Set<Lock>();
  const added: Lock[] = [];
  const s = await backup(repo, {
    targets: [src],
    retryLockMs: 600_000,
    // the other process lets go after the first refusal
    onRetry: (m) => { retries.push(m); void unlockRepository(other); },
    held: { add: (l) => { held.add(l); added.push(l); }, delete: (l) => { held.delete(l); } },
  });
  expect(retries.length).toBeGreaterThanOrEqual(1);
  expect(retries[0]).toMatch(/^repository is locked, retrying: repository is already locked exclusively/);
  expect(s.files_new).toBe(2);
  expect(added).toHaveLength(1);
  expect(held.size).toBe(0);
  expect((await repo.backend.list('locks')).length).toBe(0);
  expect(await repo.listSnapshots()).toHaveLength(1);
});

it('skips missing targets through the progress callback; none left is an error before anything is written', async () => {
  const src = await source();
  const repo = await initRepository(new MemoryBackend(), 'pw', { kdf: KDF });
  const missing: string[] = [];
  const gone = path.join(os.tmpdir(), 'jbackup-no-such-target-ops');
  const s = await backup(repo, { targets: [gone, src], progress: { missing: (t) => missing.push(t) } });
  expect(missing).toEqual([gone]);
  const [snap] = await repo.listSnapshots();
  expect(snap!.id).toBe(s.snapshot_id);
  expect(snap!.paths).toEqual([src]);
  let opened = false;
  await expect(backup(async () => { opened = true; return repo; }, { targets: [gone] })).rejects.toThrow(/all target directories\/files do not exist/);
  expect(opened).toBe(false);
});

it('forget: the one removal refuses to empty a group unless allowed, and a dry run removes nothing', async () => {
  const src = await source();
  const repo = await initRepository(new MemoryBackend(), 'pw', { kdf: KDF });
  await backup(repo, { targets: [src] });
  await backup(repo, { targets: [src] });
  const dry = await forget(repo, { policy: { last: 1 }, dryRun: true });
  expect(dry.removed).toHaveLength(1);
  expect(await repo.listSnapshots()).toHaveLength(2);
  await expect(forget(repo, { policy: { tags: [['none']] } })).rejects.toThrow(/refusing to delete all 2 snapshots/);
  const r = await forget(repo, { policy: { last: 1 } });
  expect(r.removed).toHaveLength(1);
  expect(await repo.listSnapshots()).toHaveLength(1);
});
