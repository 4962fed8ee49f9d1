/**
 * A snapshot killed with SIGKILL at spread-out moments (start-up, lock, walk, pack writes, index and
 * snapshot writes; JBACKUP_STRESS_KILLS sets how many: npm run stress 50, npm test 4), with restic
 * 0.14 as the judge after each kill:
 * - `restic check --read-data` passes, and no earlier snapshot is lost;
 * - the next snapshot succeeds and uploads exactly the data blobs the killed run had not got into the
 *   index (blobs of packs written but not yet indexed are uploaded again, as restic does: those packs
 *   are orphans, at most one index-flush interval of them);
 * - the killed run's temp files are gone after the next snapshot (its pid is dead);
 * - the new snapshot restores identically with restic (checked on some kills).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, promises as fsp, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, interopDescribe, JBACKUP_BIN, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { compareTrees, prngBytes } from '../helpers/fstree.js';

const PW = 'snapkill-pw';
const KILLS = Number(process.env['JBACKUP_STRESS_KILLS'] ?? 4);
/** index files are written every this many packs during a snapshot (SPEC "index files") */
const INDEX_FLUSH_PACKS = 64;

interopDescribe('restic', 'snapshot killed with SIGKILL, restic as judge', () => {
  let dir: string;
  let template: string;
  let src: string;
  const env = (repo: string) => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1', JBACKUP_PACK_SIZE: '4' });
  const summaryOf = (out: string) => JSON.parse(out.trim().split('\n').filter((l) => l.includes('"summary"')).pop()!) as Record<string, number> & { snapshot_id: string };
  const dataBlobs = async (repo: string) => {
    const r = await runRestic(['list', 'blobs'], { repo, password: PW, env: { RESTIC_CACHE_DIR: '', RESTIC_NO_CACHE: '1' } });
    expect(r.code, r.stderr).toBe(0);
    return new Set(r.stdout.split('\n').filter((l) => l.startsWith('data ')));
  };
  const snapshotIds = async (repo: string) => (await fsp.readdir(path.join(repo, 'snapshots'))).sort();
  const tempFiles = async (repo: string) => (await fsp.readdir(repo, { recursive: true })).map(String).filter((f) => f.includes('-tmp-'));

  beforeAll(async () => {
    dir = await tmpDir('snapkill');
    template = path.join(dir, 'template');
    src = path.join(dir, 'src');
    // generation 0: in the template repository's snapshot
    mkdirSync(path.join(src, 'old'), { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(path.join(src, 'old', `o${i}.bin`), prngBytes(`old${i}`, 3 * 1024 * 1024));
    for (let d = 0; d < 5; d++) {
      mkdirSync(path.join(src, 'old', `d${d}`));
      for (let i = 0; i < 40; i++) writeFileSync(path.join(src, 'old', `d${d}`, `f${i}.txt`), `old ${d}/${i}\n`.repeat(50));
    }
    expect((await runJbackup(['init'], { env: env(template) })).code).toBe(0);
    const first = await runJbackup(['snapshot', src], { env: env(template) });
    expect(first.code, first.stderr).toBe(0);
    // generation 1: what every killed run (and the run after it) adds
    mkdirSync(path.join(src, 'new'));
    for (let i = 0; i < 8; i++) writeFileSync(path.join(src, 'new', `n${i}.bin`), prngBytes(`new${i}`, (2 + i) * 1024 * 1024));
    for (let d = 0; d < 5; d++) {
      mkdirSync(path.join(src, 'new', `d${d}`));
      for (let i = 0; i < 60; i++) writeFileSync(path.join(src, 'new', `d${d}`, `f${i}.txt`), prngBytes(`s${d}.${i}`, 1000 + i * 700));
    }
    writeFileSync(path.join(src, 'old', 'o0.bin'), prngBytes('changed', 3 * 1024 * 1024));
  }, 300_000);
  afterAll(cleanupTmpDirs);

  const copyRepo = async (name: string) => {
    const r = path.join(dir, name);
    await fsp.cp(template, r, { recursive: true });
    return r;
  };

  it(`a snapshot killed at ${KILLS} moments loses nothing, and the next one uploads only what is missing`, async () => {
    // an unkilled run: how long it takes on this machine now, how many -vv lines (files and
    // directories) it prints, and how many data blobs it adds
    const calib = await copyRepo('calibrate');
    const t0 = Date.now();
    const full = await runJbackup(['-vv', 'snapshot', src], { env: env(calib) });
    const duration = Date.now() - t0;
    expect(full.code, full.stderr).toBe(0);
    const isItem = (l: string) => /^(new|modified|unchanged) /.test(l);
    const totalItems = full.stdout.split('\n').filter(isItem).length;
    const fullBlobs = Number(/^Data Blobs: +(\d+) new$/m.exec(full.stdout)![1]);
    expect(fullBlobs).toBeGreaterThan(20);
    await fsp.rm(calib, { recursive: true, force: true });
    const before = await snapshotIds(template);
    const templateBlobs = await dataBlobs(template);

    const hits: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      const repo = await copyRepo(`kill-${k}`);
      // Half the kills by time, spread from start-up to past the calibrated end (a loaded machine is
      // slower); the other half by progress: once a given share of the files and directories is done
      // (start-up takes most of the time of a run this size, so timed kills seldom land in the walk),
      // up to all of them (then the index and snapshot writes are under way).
      const byItems = k % 2 === 1;
      const target = Math.max(1, Math.round(((k + Math.random()) / KILLS) * totalItems));
      const at = ((k + Math.random()) / KILLS) * duration * 1.1;
      const child = spawn(process.execPath, [JBACKUP_BIN, '-vv', 'snapshot', src], { env: { ...process.env, ...env(repo) }, stdio: ['ignore', 'pipe', 'ignore'] });
      const kill = () => { if (child.exitCode === null) child.kill('SIGKILL'); };
      let items = 0;
      let armed = false;
      let killedAt = -1;
      child.stdout!.on('data', (b: Buffer) => {
        items += b.toString().split('\n').filter(isItem).length;
        if (byItems && !armed && items >= target) {
          armed = true;
          setTimeout(() => { killedAt = items; kill(); }, Math.random() * 40);
        }
      });
      const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      const timer = byItems ? null : setTimeout(() => { killedAt = items; kill(); }, at);
      const code = await exited;
      if (timer) clearTimeout(timer);
      const what = code === 0 ? 'finished' : `killed ${byItems ? `at item ${target}` : `at ${Math.round(at)} ms`} after ${killedAt} of ${totalItems} items`;
      hits.push(what);

      expect((await runRestic(['unlock'], { repo, password: PW })).code).toBe(0);
      const c = await runRestic(['check', '--read-data'], { repo, password: PW });
      expect(c.stdout + c.stderr, `kill ${k} (${what})`).toMatch(/no errors were found/);
      // packs of the killed run that no index names: at most one flush interval (plus those in flight)
      const orphans = (c.stdout + c.stderr).split('\n').filter((l) => /not referenced in any index/.test(l)).length;
      expect(orphans, what).toBeLessThanOrEqual(INDEX_FLUSH_PACKS + 8);
      const after = await snapshotIds(repo);
      for (const id of before) expect(after, `kill ${k}: snapshot ${id} lost`).toContain(id);
      const indexed = [...(await dataBlobs(repo))].filter((b) => !templateBlobs.has(b)).length;

      const next = await runJbackup(['--json', 'snapshot', src], { env: env(repo) });
      expect(next.code, next.stderr).toBe(0);
      // exactly the blobs the index did not have (orphaned packs' blobs included) are uploaded
      expect(summaryOf(next.stdout)['data_blobs'], what).toBe(fullBlobs - indexed);
      expect(await tempFiles(repo), what).toEqual([]);
      const c2 = await runRestic(['check'], { repo, password: PW });
      expect(c2.stdout + c2.stderr, `after the next snapshot (kill ${k}: ${what})`).toMatch(/no errors were found/);
      if (k === KILLS - 1 || k % 10 === 5) {
        const out = path.join(dir, `restore-${k}`);
        const r = await runRestic(['restore', summaryOf(next.stdout).snapshot_id, '--target', out], { repo, password: PW });
        expect(r.code, r.stderr).toBe(0);
        expect(await compareTrees(src, path.join(out, src), { ignore: ['atime', 'root', 'dirMtime'] })).toEqual([]);
        await fsp.rm(out, { recursive: true, force: true });
      }
      await fsp.rm(repo, { recursive: true, force: true });
    }
    console.log(`snapshot kills: ${hits.join('; ')}`);
    // the kills must interrupt runs (not all land after the end)
    expect(hits.filter((h) => h.startsWith('killed')).length).toBeGreaterThanOrEqual(Math.ceil(KILLS / 2));
    if (KILLS >= 20) {
      // and cover them: before any file was done, in the middle of the walk, after its end
      expect(hits.some((h) => / after 0 of/.test(h))).toBe(true);
      expect(hits.some((h) => { const m = / after (\d+) of (\d+)/.exec(h); return !!m && Number(m[1]) > 0 && Number(m[1]) < Number(m[2]) / 2; })).toBe(true);
      expect(hits.some((h) => { const m = / after (\d+) of (\d+)/.exec(h); return !!m && Number(m[1]) >= Number(m[2]); })).toBe(true);
    }
  }, 1_800_000);
});
