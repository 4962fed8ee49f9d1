/**
 * prune with restic as the judge: churn + prune keeps every kept snapshot restorable and check-clean;
 * a prune killed with SIGKILL at random moments (every phase, via the test delay hook) leaves a
 * repository restic check accepts, and the next prune completes. JBACKUP_STRESS_KILLS sets the number
 * of kills (npm run stress: 50; npm test: 8).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, interopDescribe, JBACKUP_BIN, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { compareTrees, prngBytes } from '../helpers/fstree.js';

const PW = 'prune-pw';
const KILLS = Number(process.env['JBACKUP_STRESS_KILLS'] ?? 8);

interopDescribe('restic', 'prune with restic as judge', () => {
  let dir: string;
  let template: string;
  /** snapshot id → copy of the source as it was */
  const states = new Map<string, string>();
  const env = (repo: string) => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1', JBACKUP_PACK_SIZE: '4' });

  beforeAll(async () => {
    dir = await tmpDir('prune');
    template = path.join(dir, 'template');
    const src = path.join(dir, 'src');
    await fsp.mkdir(src);
    expect((await runJbackup(['init'], { env: env(template) })).code).toBe(0);
    // churn: 6 generations of edits, each snapshotted
    for (let gen = 0; gen < 6; gen++) {
      for (let i = 0; i < 4; i++) await fsp.writeFile(path.join(src, `gen${gen}-${i}.bin`), prngBytes(`g${gen}f${i}`, 700_000 + i * 300_000));
      if (gen >= 2) await fsp.rm(path.join(src, `gen${gen - 2}-1.bin`), { force: true });
      await fsp.writeFile(path.join(src, 'edited.txt'), `generation ${gen}\n`.repeat(5000));
      const r = await runJbackup(['--json', 'snapshot', src], { env: env(template) });
      expect(r.code).toBe(0);
      const id = JSON.parse(r.stdout.trim().split('\n').pop()!).snapshot_id as string;
      const copy = path.join(dir, `state-${gen}`);
      // cp -a keeps nanosecond mtimes (fs.cp rounds them to microseconds)
      await new Promise<void>((res, rej) => spawn('cp', ['-a', src, copy]).on('exit', (c) => (c === 0 ? res() : rej(new Error('cp failed')))));
      states.set(id, copy);
    }
    // forget every other snapshot (by removing its file, as forget does)
    let k = 0;
    for (const id of [...states.keys()]) {
      if (k++ % 2 === 0) { await fsp.rm(path.join(template, 'snapshots', id)); states.delete(id); }
    }
  }, 300_000);
  afterAll(cleanupTmpDirs);

  const copyRepo = async (name: string) => {
    const r = path.join(dir, name);
    await fsp.cp(template, r, { recursive: true });
    return r;
  };

  const judge = async (repo: string) => {
    const c = await runRestic(['check', '--read-data'], { repo, password: PW });
    expect(c.stdout + c.stderr).toMatch(/no errors were found/);
    expect(c.code).toBe(0);
    for (const [id, state] of states) {
      const out = path.join(dir, `restore-${path.basename(repo)}-${id.slice(0, 8)}`);
      const r = await runRestic(['restore', id, '--target', out], { repo, password: PW });
      expect(r.code).toBe(0);
      const inner = path.join(out, path.join(dir, 'src'));
      expect(await compareTrees(state, inner, { ignore: ['atime', 'root', 'dirMtime'] })).toEqual([]);
      await fsp.rm(out, { recursive: true, force: true });
    }
  };

  it('prune frees the forgotten data, keeps what kept snapshots need, and stays under --max-unused', async () => {
    const repo = await copyRepo('pruned');
    const dry = await runJbackup(['--json', 'prune', '--dry-run'], { env: env(repo) });
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout.trim().split('\n').pop()!) as Record<string, number>;
    expect(plan['sizeUnused']).toBeGreaterThan(0);
    const before = (await runJbackup(['--json', 'prune', '--max-unused', '5%'], { env: env(repo) }));
    expect(before.code).toBe(0);
    const after = JSON.parse((await runJbackup(['--json', 'prune', '--dry-run'], { env: env(repo) })).stdout.trim().split('\n').pop()!) as Record<string, number>;
    expect(after['sizeUnused']).toBeLessThanOrEqual(0.05 / 0.95 * after['sizeUsed']! + 1);
    await judge(repo);
  });

  it('restic prunes a jbackup-made repository and jbackup prunes a restic-pruned one without loss', async () => {
    const repo = await copyRepo('restic-pruned');
    const r = await runRestic(['prune', '--max-unused', '0'], { repo, password: PW });
    expect(r.code).toBe(0);
    await judge(repo);
    expect((await runJbackup(['prune', '--repack-small'], { env: env(repo) })).code).toBe(0);
    await judge(repo);
  });

  it('--repack-uncompressed compresses data blobs written with --compression off; restic agrees', async () => {
    const repo = path.join(dir, 'uncompressed');
    const src = path.join(dir, 'text-src');
    await fsp.mkdir(src, { recursive: true });
    await fsp.writeFile(path.join(src, 'prose.txt'), 'all work and no play makes a dull backup\n'.repeat(60_000));
    expect((await runJbackup(['init'], { env: env(repo) })).code).toBe(0);
    expect((await runJbackup(['snapshot', '--compression', 'off', src], { env: env(repo) })).code).toBe(0);
    const stats = async () => JSON.parse((await runRestic(['stats', '--mode', 'raw-data', '--json'], { repo, password: PW })).stdout) as { total_size: number; total_uncompressed_size?: number };
    const before = await stats();
    const r = await runJbackup(['prune', '--repack-uncompressed'], { env: env(repo) });
    expect(r.code, r.stderr).toBe(0);
    const after = await stats();
    expect(after.total_size).toBeLessThan(before.total_size / 10);
    const c = await runRestic(['check', '--read-data'], { repo, password: PW });
    expect(c.stdout + c.stderr).toMatch(/no errors were found/);
    const out = path.join(dir, 'uncompressed-restore');
    expect((await runRestic(['restore', 'latest', '--target', out], { repo, password: PW })).code).toBe(0);
    expect(await fsp.readFile(path.join(out, src, 'prose.txt'), 'utf8')).toBe(await fsp.readFile(path.join(src, 'prose.txt'), 'utf8'));
  });

  it('a corrupt blob in a pack to repack stops prune (exit 1, pack and blob named) and nothing is deleted', async () => {
    const repo = await copyRepo('corrupt');
    const plan = JSON.parse((await runJbackup(['--json', 'prune', '--dry-run', '--max-unused', '0%'], { env: env(repo) })).stdout.trim().split('\n').pop()!) as Record<string, number>;
    expect(plan['packsRepack']).toBeGreaterThan(0);
    // flip a byte inside the first blob of every pack: whichever packs are repacked, one is corrupt
    const packs: string[] = [];
    for (const sub of await fsp.readdir(path.join(repo, 'data'))) {
      for (const f of await fsp.readdir(path.join(repo, 'data', sub))) packs.push(path.join(repo, 'data', sub, f));
    }
    for (const f of packs) {
      await fsp.chmod(f, 0o600);
      const b = await fsp.readFile(f);
      b[40] ^= 0x01;
      await fsp.writeFile(f, b);
    }
    const r = await runJbackup(['prune', '--max-unused', '0%'], { env: env(repo) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pack [0-9a-f]{64}: blob [0-9a-f]{64}: .*(MAC|authentication|verification)/i);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    let left = 0;
    for (const sub of await fsp.readdir(path.join(repo, 'data'))) left += (await fsp.readdir(path.join(repo, 'data', sub))).length;
    expect(left).toBeGreaterThanOrEqual(packs.length);
  });

  it(`a prune killed with SIGKILL at ${KILLS} random moments never loses data`, async () => {
    const hit: number[] = [];
    // how long an unkilled prune takes on this machine right now (load varies): the kills spread over it
    // (from start-up to the first mutation, and from there to the last one)
    const calib = await copyRepo('kill-calibrate');
    const t0 = Date.now();
    const marks: number[] = [];
    const cal = spawn(process.execPath, [JBACKUP_BIN, 'prune', '--max-unused', '0%'], {
      env: { ...process.env, ...env(calib), JBACKUP_TEST_PRUNE_DELAY_MS: '40', JBACKUP_TEST_PRUNE_TRACE: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    cal.stderr!.on('data', (b: Buffer) => { for (const l of b.toString().split('\n')) if (l.startsWith('phase')) marks.push(Date.now() - t0); });
    expect(await new Promise<number | null>((r) => cal.on('exit', (c) => r(c)))).toBe(0);
    await fsp.rm(calib, { recursive: true, force: true });
    expect(marks.length).toBeGreaterThanOrEqual(5);
    const first = marks[0]!;
    const total = marks.length;
    for (let k = 0; k < KILLS; k++) {
      const repo = await copyRepo(`kill-${k}`);
      const child = spawn(process.execPath, [JBACKUP_BIN, 'prune', '--max-unused', '0%'], {
        env: { ...process.env, ...env(repo), JBACKUP_TEST_PRUNE_DELAY_MS: '40', JBACKUP_TEST_PRUNE_TRACE: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      // spread the kills over the whole run, counted in mutations (timing varies with the machine's
      // load): the first kill lands before any mutation, the others right after mutation
      // `target`, somewhere inside the 40 ms that follow it, the last after the final deletes began
      const target = Math.round((k / (KILLS - 1)) * (total - 1));
      let trace = '';
      let seen = 0;
      const kill = () => { if (child.exitCode === null) child.kill('SIGKILL'); };
      child.stderr!.on('data', (b: Buffer) => {
        trace += b.toString();
        const now = trace.split('\n').filter((l) => l.startsWith('phase')).length;
        if (target > 0 && seen < target && now >= target) setTimeout(kill, Math.random() * 30);
        seen = now;
      });
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      if (target === 0) setTimeout(kill, Math.random() * first * 0.8);
      await exited;
      const phases = trace.split('\n').filter((l) => l.startsWith('phase')).length;
      hit.push(phases);
      expect((await runRestic(['unlock'], { repo, password: PW })).code).toBe(0);
      const c = await runRestic(['check', '--read-data'], { repo, password: PW });
      expect(c.stdout + c.stderr, `kill ${k} after ${phases} mutations`).toMatch(/no errors were found/);
      const p = await runJbackup(['prune', '--max-unused', '0%'], { env: env(repo) });
      expect(p.code, p.stderr).toBe(0);
      if (k === KILLS - 1) await judge(repo);
      await fsp.rm(repo, { recursive: true, force: true });
    }
    console.log(`prune kills landed after these numbers of mutations: ${hit.join(' ')}`);
    // the kills must cover the run: some before any mutation or early, some late
    expect(Math.min(...hit)).toBeLessThanOrEqual(2);
    expect(Math.max(...hit)).toBeGreaterThanOrEqual(5);
  }, 900_000);
});
