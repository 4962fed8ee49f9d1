/**
 * A snapshot walks its sources while its lock settles; nothing it produces may be published unless
 * the lock holds. Here an exclusive lock appears during that wait (another process won the race):
 * the snapshot must stop with exit 11 and leave the repository as it was (no pack, index, snapshot,
 * or temp file).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { encodeUnpacked } from '../../src/repo/unpacked.js';
import { sha256hex } from '../../src/repo/ids.js';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'gate-pw';
let dir: string;
let repoPath: string;
let src: string;
const env = () => ({ JBACKUP_REPOSITORY: repoPath, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });

beforeAll(async () => {
  dir = await tmpDir('lockwait');
  src = path.join(dir, 'src');
  await fsp.mkdir(src);
  // enough to fill packs of 4 MiB during the 200 ms wait, and many small files for the walk
  for (let i = 0; i < 8; i++) await fsp.writeFile(path.join(src, `big${i}`), prngBytes(`gate${i}`, 6 * 1024 * 1024));
  for (let d = 0; d < 20; d++) {
    await fsp.mkdir(path.join(src, `d${d}`));
    for (let i = 0; i < 100; i++) await fsp.writeFile(path.join(src, `d${d}`, `f${i}`), `file ${d}/${i}\n`);
  }
  repoPath = path.join(dir, 'repo');
  expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
});
afterAll(cleanupTmpDirs);

async function repoFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const t of ['data', 'index', 'snapshots']) {
    const all = await fsp.readdir(path.join(repoPath, t), { recursive: true }).catch(() => [] as string[]);
    for (const f of all) if (!(await fsp.stat(path.join(repoPath, t, String(f)))).isDirectory()) out.push(`${t}/${String(f)}`);
  }
  return out.sort();
}

it('an exclusive lock that appears while the lock settles stops the snapshot before it publishes anything', async () => {
  const repo = await Repository.open(new LocalBackend(repoPath), Buffer.from(PW));
  expect(await repoFiles()).toEqual([]);
  // a settle wait of 3 s (restic's is 200 ms) so that the competing lock lands inside it however loaded the machine is
  const child = spawn(process.execPath, [JBACKUP_BIN, '--pack-size', '4', 'snapshot', src], { env: { ...process.env, ...env(), JBACKUP_LOCK_SETTLE_MS: '3000' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // as soon as jbackup's own lock file exists, another process takes an exclusive lock
  const locks = path.join(repoPath, 'locks');
  let seen = false;
  for (let i = 0; i < 5000 && !seen; i++) {
    seen = (await fsp.readdir(locks)).some((f) => /^[0-9a-f]{64}$/.test(f));
    if (!seen) await new Promise((r) => setTimeout(r, 1));
  }
  expect(seen).toBe(true);
  const other = { time: new Date().toISOString(), exclusive: true, hostname: os.hostname(), username: 'other', pid: process.pid };
  const stored = encodeUnpacked(repo.key, Buffer.from(JSON.stringify(other)), 2);
  const otherId = sha256hex(stored);
  await repo.backend.save({ type: 'locks', name: otherId }, stored);

  expect(await exited).toBe(11);
  expect(stderr).toMatch(/locked exclusively/);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  // nothing published, no temp file left, and only the other process's lock remains
  expect(await repoFiles()).toEqual([]);
  expect(await fsp.readdir(locks)).toEqual([otherId]);

  // once the other lock is gone the snapshot runs
  await repo.backend.remove({ type: 'locks', name: otherId });
  const ok = await runJbackup(['snapshot', src], { env: env() });
  expect(ok.code, ok.stderr).toBe(0);
  expect((await repoFiles()).some((f) => f.startsWith('snapshots/'))).toBe(true);
}, 60_000);
