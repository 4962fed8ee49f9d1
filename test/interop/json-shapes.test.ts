/**
 * Every `--json` output of jbackup against restic 0.14's on the same repository (restic writes the
 * first snapshot, jbackup the second; both tools read both): keys, types, and values where they
 * must be equal. Where restic 0.14 has no JSON for a command (check, restore, version) the test says
 * so and checks jbackup's own shape. Known, deliberate differences:
 * - jbackup's snapshots carry `program_version` (restic ≥ 0.16's field; 0.14 drops fields it does
 *   not know when it prints a snapshot), so it is removed before comparing snapshot objects;
 * - backup's summary names the snapshot by its full id (restic 0.14: the short one).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, interopDescribe, runJbackup, runRestic, tmpDir, type RunResult } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'json-shapes-pw';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** the shape of a JSON value: objects by their keys (sorted), arrays by their elements' shapes */
function shape(v: Json): unknown {
  if (v === null) return 'null';
  if (Array.isArray(v)) return [...new Set(v.map((x) => JSON.stringify(shape(x))))].sort().map((s) => JSON.parse(s) as unknown);
  if (typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, shape(v[k]!)]));
  return typeof v;
}

/** drop jbackup's program_version wherever a snapshot object appears */
function noProgramVersion(v: Json): Json {
  if (Array.isArray(v)) return v.map(noProgramVersion);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'program_version').map(([k, x]) => [k, noProgramVersion(x)]));
  return v;
}

const lines = (r: RunResult): Json[] => r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json);
const isJson = (s: string) => { try { JSON.parse(s); return true; } catch { return false; } };

interopDescribe('restic', 'JSON outputs equal restic 0.14 on the same repository', () => {
  let dir: string;
  let repo: string;
  let src: string;
  let s1: string; // restic's
  let s2: string; // jbackup's
  const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });
  const jb = async (args: string[], code = 0) => {
    const r = await runJbackup(args, { env: env(), cwd: dir });
    expect(r.code, `jbackup ${args.join(' ')}: ${r.stderr}`).toBe(code);
    return r;
  };
  const rs = async (args: string[], code = 0) => {
    const r = await runRestic(args, { repo, password: PW, cwd: dir });
    expect(r.code, `restic ${args.join(' ')}: ${r.stderr}`).toBe(code);
    return r;
  };
  /** the same command in both tools, each output parsed as one JSON document */
  const both = async (args: string[]) => {
    const [r, j] = [await rs(args), await jb(args)];
    return { r: JSON.parse(r.stdout) as Json, j: JSON.parse(j.stdout) as Json };
  };

  beforeAll(async () => {
    dir = await tmpDir('json-shapes');
    repo = path.join(dir, 'repo');
    src = path.join(dir, 'src');
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    await fsp.mkdir(path.join(src, 'gone'));
    await fsp.writeFile(path.join(src, 'a.txt'), 'first\n');
    await fsp.writeFile(path.join(src, 'sub', 'b.txt'), 'bbb\n');
    await fsp.writeFile(path.join(src, 'big.bin'), prngBytes('big', 1_500_000));
    await fsp.writeFile(path.join(src, 'gone', 'x.txt'), 'x');
    await fsp.symlink('a.txt', path.join(src, 'link'));
    await rs(['init']);
    // relative path: both tools store "src" at the root
    s1 = JSON.parse(lines(await rs(['backup', '--json', 'src'])).map((l) => JSON.stringify(l)).find((l) => l.includes('"summary"'))!).snapshot_id as string;
    await fsp.writeFile(path.join(src, 'a.txt'), 'second\n');
    await fsp.rm(path.join(src, 'gone'), { recursive: true });
    await fsp.mkdir(path.join(src, 'new'));
    await fsp.writeFile(path.join(src, 'new', 'n.txt'), 'n');
    await fsp.chmod(path.join(src, 'sub', 'b.txt'), 0o600);
    await fsp.rm(path.join(src, 'link'));
    await fsp.mkdir(path.join(src, 'link')); // symlink → dir: a type change
    const snap = lines(await jb(['--json', 'snapshot', 'src']));
    s2 = (snap.at(-1) as { snapshot_id: string }).snapshot_id;
    // restic 0.14 names the snapshot by its short id; find it in the listing
    s1 = ((JSON.parse((await rs(['snapshots', '--json'])).stdout) as { id: string }[]).find((s) => s.id.startsWith(s1)))!.id;
  }, 120_000);
  afterAll(cleanupTmpDirs);

  it('snapshots, also grouped (-g) and with --latest', async () => {
    // a snapshot of another host with two paths and two tags, stored unsorted: restic prints paths
    // sorted, and tags sorted when grouping by tags
    await rs(['backup', '--host', 'other', '--tag', 'b,a', 'src/sub', 'src/new']);
    const { r, j } = await both(['snapshots', '--json']);
    expect(noProgramVersion(j)).toEqual(r);
    expect((j as { program_version?: string }[]).find((s) => s.program_version)).toBeTruthy();
    const byKey = (v: Json) => [...(v as { group_key: Json }[])].sort((a, b) => JSON.stringify(a.group_key).localeCompare(JSON.stringify(b.group_key)));
    for (const g of ['host', 'paths', 'tags', 'host,tags,paths']) {
      for (const latest of [[], ['--latest', '1']]) {
        const x = await both(['snapshots', '--json', '-g', g, ...latest]);
        expect(byKey(noProgramVersion(x.j)), g).toEqual(byKey(x.r));
      }
    }
  });

  it('ls', async () => {
    for (const id of [s1, s2]) {
      const r = lines(await rs(['ls', '--json', id]));
      const j = lines(await jb(['ls', '--json', id]));
      expect(j.map(noProgramVersion)).toEqual(r);
    }
  });

  it('find: grouped per snapshot with matches and hits', async () => {
    // restic's filter.Match: a pattern matches a run of path components anywhere ("sub" also finds
    // what is below src/sub), an absolute one from the root, "**" any number of components
    const pats = [['*.txt'], ['nothing-matches'], ['-i', '*/SUB/*'], ['sub'], ['/src'], ['/src/**/n.txt'], ['**'], ['-i', 'A.T?T']];
    for (const args of pats.map((p) => ['find', '--json', ...p])) {
      const { r, j } = await both(args);
      const bySnap = (v: Json) => [...(v as { snapshot: string }[])].sort((a, b) => a.snapshot.localeCompare(b.snapshot));
      expect(bySnap(j)).toEqual(bySnap(r));
    }
  });

  it('diff: change lines and the statistics object, with and without --metadata', async () => {
    for (const args of [['diff', '--json', s1, s2], ['diff', '--json', s1.slice(0, 8), s2.slice(0, 8)], ['diff', '--json', '--metadata', s1, s2], ['diff', '--json', s2, s1]]) {
      const r = lines(await rs(args));
      const j = lines(await jb(args));
      expect(j).toEqual(r);
    }
    // and the text
    const rt = (await rs(['diff', s1, s2])).stdout;
    expect((await jb(['diff', s1, s2])).stdout).toBe(rt);
  });

  it('stats in every mode', async () => {
    for (const mode of ['restore-size', 'files-by-contents', 'blobs-per-file', 'raw-data']) {
      for (const sel of [[], [s1]]) {
        const { r, j } = await both(['stats', '--json', '--mode', mode, ...sel]);
        expect(j, mode).toEqual(r);
      }
    }
  });

  it('forget --dry-run', async () => {
    const { r, j } = await both(['forget', '--json', '--dry-run', '--keep-last', '1']);
    // restic 0.14 prints the groups in Go map order (random)
    const byGroup = (v: Json) => [...(v as { host: string; paths: Json; tags: Json }[])].sort((a, b) => JSON.stringify([a.host, a.paths, a.tags]).localeCompare(JSON.stringify([b.host, b.paths, b.tags])));
    expect(byGroup(noProgramVersion(j))).toEqual(byGroup(r));
  });

  it('cat config, key list', async () => {
    for (const args of [['cat', 'config', '--json'], ['key', 'list', '--json']]) {
      const { r, j } = await both(args);
      expect(j, args.join(' ')).toEqual(r);
    }
  });

  it('backup: status and summary messages have restic\'s keys and types, and its counts', async () => {
    await fsp.writeFile(path.join(src, 'c.txt'), 'third');
    const r = lines(await rs(['backup', '--json', 'src']));
    // the same unchanged tree again, by each tool on top of restic's snapshot: the same counts
    const r2 = lines(await rs(['backup', '--json', 'src']));
    const j = lines(await jb(['snapshot', '--json', '--parent', (r.at(-1) as { snapshot_id: string }).snapshot_id, 'src']));
    const summary = (l: Json[]) => l.find((x) => (x as { message_type: string }).message_type === 'summary') as Record<string, Json>;
    expect(shape(summary(j))).toEqual(shape(summary(r)));
    const counts = (x: Record<string, Json>) => Object.fromEntries(['files_new', 'files_changed', 'files_unmodified', 'dirs_new', 'dirs_changed', 'dirs_unmodified', 'total_files_processed', 'total_bytes_processed'].map((k) => [k, x[k]]));
    expect(counts(summary(j))).toEqual(counts(summary(r2)));
    expect(summary(j)['dirs_unmodified']).toBeGreaterThan(0);
    // status keys: restic 0.14's statusUpdate (all but message_type and percent_done are omitempty)
    const restic = new Set(['message_type', 'seconds_elapsed', 'seconds_remaining', 'percent_done', 'total_files', 'files_done', 'total_bytes', 'bytes_done', 'error_count', 'current_files']);
    for (const s of j.filter((x) => (x as { message_type: string }).message_type === 'status')) {
      for (const k of Object.keys(s as object)) expect(restic.has(k), k).toBe(true);
    }
  });

  it('check, restore, version: restic 0.14 prints no JSON; jbackup prints its own messages', async () => {
    expect(isJson((await rs(['check', '--json'])).stdout.trim())).toBe(false);
    const c = lines(await jb(['--json', 'check']));
    expect(c.at(-1)).toMatchObject({ message_type: 'summary', ok: true });
    const out = path.join(dir, 'restore-r');
    expect((await rs(['restore', '--json', s2, '--target', out])).stdout.trim().split('\n').some(isJson)).toBe(false);
    const rj = lines(await jb(['restore', '--json', s2, '--target', path.join(dir, 'restore-j')]));
    expect(rj.at(-1)).toMatchObject({ message_type: 'summary', snapshot_id: s2 });
    expect(isJson((await rs(['version', '--json'])).stdout)).toBe(false);
    expect(JSON.parse((await jb(['version', '--json'])).stdout)).toMatchObject({ message_type: 'version' });
  });
});
