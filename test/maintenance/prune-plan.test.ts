/**
 * prune prints restic 0.14's plan (to repack / this removes / to delete / total prune / remaining /
 * unused size after prune) once it is made and before it changes anything; with the same repository
 * and a plan that leaves no choice (--max-unused unlimited: delete what is unused, repack nothing)
 * the lines equal restic's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, interopDescribe, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'plan-pw';
const LABELS = ['to repack:', 'this removes:', 'to delete:', 'total prune:', 'remaining:', 'unused size after prune:'];

interopDescribe('restic', 'prune plan', () => {
  let dir: string;
  let repo: string;
  const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1', JBACKUP_PACK_SIZE: '4' });
  const planLines = (out: string) => out.split('\n').filter((l) => LABELS.some((x) => l.startsWith(x)));

  beforeAll(async () => {
    dir = await tmpDir('prune-plan');
    repo = path.join(dir, 'repo');
    const src = path.join(dir, 'src');
    await fsp.mkdir(src);
    expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
    await fsp.writeFile(path.join(src, 'kept.bin'), prngBytes('kept', 3_000_000));
    await fsp.writeFile(path.join(src, 'gone.bin'), prngBytes('gone', 5_000_000));
    const first = JSON.parse((await runJbackup(['--json', 'snapshot', src], { env: env() })).stdout.trim().split('\n').pop()!).snapshot_id as string;
    await fsp.rm(path.join(src, 'gone.bin'));
    expect((await runJbackup(['snapshot', src], { env: env() })).code).toBe(0);
    expect((await runJbackup(['forget', first], { env: env() })).code).toBe(0);
  }, 120_000);
  afterAll(cleanupTmpDirs);

  it('the plan lines equal restic 0.14 prune --dry-run on the same repository', async () => {
    const r = await runRestic(['prune', '--dry-run', '--max-unused', 'unlimited'], { repo, password: PW });
    expect(r.code, r.stderr).toBe(0);
    const j = await runJbackup(['prune', '--dry-run', '--max-unused', 'unlimited'], { env: env() });
    expect(j.code, j.stderr).toBe(0);
    expect(planLines(r.stdout)).toHaveLength(LABELS.length);
    expect(planLines(j.stdout)).toEqual(planLines(r.stdout));
    expect(planLines(j.stdout)[2]).not.toMatch(/^to delete:\s+0 blobs/); // the forgotten file's blobs
  }, 120_000);

  it('a real prune prints the plan before it acts, then acts as planned', async () => {
    const packs = async () => (await fsp.readdir(path.join(repo, 'data'), { recursive: true })).filter((f) => /[0-9a-f]{64}$/.test(f)).length;
    const before = await packs();
    const j = await runJbackup(['prune', '--max-unused', 'unlimited'], { env: env() });
    expect(j.code, j.stderr).toBe(0);
    const lines = j.stdout.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const plan = LABELS.map((x) => at(new RegExp(`^${x}`)));
    expect(plan.every((i) => i >= 0)).toBe(true);
    expect([...plan].sort((a, b) => a - b)).toEqual(plan); // restic's order
    // every step that changes the repository is announced after the plan
    for (const step of [/^rebuilding index/, /^deleting obsolete index files/, /^removing unused packs/, /^done$/]) expect(at(step)).toBeGreaterThan(plan[plan.length - 1]!);
    expect(await packs()).toBeLessThan(before);
    expect((await runRestic(['check'], { repo, password: PW })).code).toBe(0);
  }, 120_000);
});
