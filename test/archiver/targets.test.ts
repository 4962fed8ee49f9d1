/**
 * What a snapshot does with its targets, with restic 0.14 beside it for the same inputs: missing
 * targets (all: Fatal, exit 1, nothing written; some: warned, skipped, not in `paths`), the same
 * target twice or with a trailing slash, --files-from lines taken literally (also from a pipe),
 * a missing --exclude-file, -v/-vv lines, unreadable files in the counters; `profile check` and
 * `jbackup run` with a missing source.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, promises as fsp, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, interopDescribe, JBACKUP_BIN, runJbackup, runRestic, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';
import { q, sandbox, writeProfiles } from '../schedule/util.js';

const PW = 'targets-pw';

/** run a command without blocking this worker (a blocked worker misses vitest's RPC deadlines under load) */
function exec(bin: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    c.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interopDescribe('restic', 'snapshot targets (restic 0.14 beside)', () => {
  let dir: string;
  let src: string;
  let n = 0;
  const env = (repo: string) => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1' });
  /** a fresh jbackup repository and a fresh restic repository */
  const repos = async () => {
    const jb = path.join(dir, `jb${n}`);
    const rs = path.join(dir, `rs${n++}`);
    expect((await runJbackup(['init'], { env: env(jb) })).code).toBe(0);
    expect((await runRestic(['init'], { repo: rs, password: PW })).code).toBe(0);
    return { jb, rs };
  };
  const jbSnaps = async (repo: string) => JSON.parse((await runJbackup(['--json', 'snapshots'], { env: env(repo) })).stdout) as { paths: string[] }[];
  const rsSnaps = async (repo: string) => JSON.parse((await runRestic(['snapshots', '--json'], { repo, password: PW })).stdout) as { paths: string[] }[];

  beforeAll(async () => {
    dir = await tmpDir('targets');
    src = path.join(dir, 'src');
    mkdirSync(path.join(src, 'sub'), { recursive: true });
    writeFileSync(path.join(src, 'a.txt'), 'alpha\n');
    writeFileSync(path.join(src, 'sub', 'b.bin'), prngBytes('b', 300_000));
  });
  afterAll(cleanupTmpDirs);

  it('all targets missing: Fatal, exit 1, no snapshot (as restic)', async () => {
    const { jb, rs } = await repos();
    const missing = [path.join(dir, 'nope1'), path.join(dir, 'nope2', 'x')];
    const j = await runJbackup(['snapshot', ...missing], { env: env(jb) });
    const r = await runRestic(['backup', ...missing], { repo: rs, password: PW });
    expect(r.code).toBe(1);
    expect(j.code).toBe(1);
    expect(j.stderr).toContain('Fatal: all target directories/files do not exist');
    expect(r.stderr).toContain('Fatal: all target directories/files do not exist');
    expect(j.stderr).toContain(`${missing[0]} does not exist, skipping`);
    expect(r.stderr).toContain(`${missing[0]} does not exist, skipping`);
    expect(await fsp.readdir(path.join(jb, 'snapshots'))).toEqual([]);
    expect(await fsp.readdir(path.join(jb, 'index'))).toEqual([]);
  });

  it('some targets missing, one twice and one with a trailing slash: warned, skipped, not in paths (as restic)', async () => {
    const { jb, rs } = await repos();
    const missing = path.join(dir, 'typo');
    const args = [missing, src, `${src}/`, path.join(src, 'a.txt')];
    const j = await runJbackup(['snapshot', ...args], { env: env(jb) });
    const r = await runRestic(['backup', ...args], { repo: rs, password: PW });
    expect(r.code).toBe(0);
    expect(j.code, j.stderr).toBe(0);
    expect(j.stderr).toContain(`${missing} does not exist, skipping`);
    const jp = (await jbSnaps(jb))[0]!.paths;
    // restic records the twice-given target twice; jbackup once (paths is a set: parent matching)
    expect(jp).toEqual([...new Set((await rsSnaps(rs))[0]!.paths)].sort());
    expect(jp).not.toContain(missing);
  });

  it('--files-from lines are literal paths (~ is not expanded), read from a pipe as well (as restic)', async () => {
    const { jb, rs } = await repos();
    // a directory literally named "~" beside a line "~/lit": restic takes it as that relative path
    const cwd = path.join(dir, 'cwd');
    mkdirSync(path.join(cwd, '~', 'lit'), { recursive: true });
    writeFileSync(path.join(cwd, '~', 'lit', 'f'), 'literal\n');
    const listFile = path.join(dir, 'list.txt');
    writeFileSync(listFile, `# a comment\n~/lit\n\n${path.join(src, 'a.txt')}\n`);
    // bash's process substitution hands over /dev/fd/63: a pipe
    const bash = (cmd: string, e: Record<string, string>) => exec('bash', ['-c', cmd], { cwd, env: { ...process.env, ...e } });
    const j = await bash(`${q(process.execPath)} ${q(JBACKUP_BIN)} snapshot --files-from <(cat ${q(listFile)})`, env(jb));
    expect(j.code, j.stderr).toBe(0);
    const r = await bash(`restic backup --files-from <(cat ${q(listFile)})`, { RESTIC_REPOSITORY: rs, RESTIC_PASSWORD: PW, RESTIC_CACHE_DIR: path.join(dir, 'rcache') });
    expect(r.code, r.stderr).toBe(0);
    const jp = (await jbSnaps(jb))[0]!.paths;
    expect(jp).toEqual([...(await rsSnaps(rs))[0]!.paths].sort());
    expect(jp).toContain(path.join(cwd, '~', 'lit'));
  });

  it('a missing --exclude-file or --files-from: one line naming the flag and the file, exit 1, nothing written', async () => {
    const { jb } = await repos();
    const nope = path.join(dir, 'no-such-excludes');
    const e = await runJbackup(['snapshot', '--exclude-file', nope, src], { env: env(jb) });
    expect(e.code).toBe(1);
    expect(e.stderr.trim()).toBe(`Fatal: --exclude-file ${nope}: no such file or directory (ENOENT)`);
    const f = await runJbackup(['snapshot', '--files-from', nope], { env: env(jb) });
    expect(f.code).toBe(1);
    expect(f.stderr.trim()).toBe(`Fatal: --files-from ${nope}: no such file or directory (ENOENT)`);
    expect(await fsp.readdir(path.join(jb, 'snapshots'))).toEqual([]);
  });

  it('-v and -vv print restic 0.14\'s lines (new / modified / unchanged per file and directory)', async () => {
    const { jb, rs } = await repos();
    const tree = path.join(dir, 'verbose');
    await fsp.cp(src, tree, { recursive: true });
    const lines = (out: string) => out.split('\n').filter((l) => l !== '');
    /** the -vv item lines as "status path" (restic's order is not ours) */
    const items = (out: string) => lines(out).filter((l) => /^(new|modified|unchanged) /.test(l)).map((l) => l.replace(/, saved in .*$/, '').replace(/ +/, ' ')).sort();
    /** -v lines with numbers and ids blanked */
    const vlines = (out: string) => lines(out).filter((l) => !/^(new|modified|unchanged) /.test(l)).map((l) => l.replace(/[0-9a-f]{8}/g, 'ID').replace(/[\d.]+ ?(B|KiB|MiB)/g, 'N').replace(/\d+(\.\d+)?s\b/g, 'Ts').replace(/\d+/g, 'N').replace(/ +/g, ' '));
    const j1 = await runJbackup(['-vv', 'snapshot', tree], { env: env(jb) });
    const r1 = await runRestic(['-vv', 'backup', tree], { repo: rs, password: PW });
    expect(j1.code, j1.stderr).toBe(0);
    expect(items(j1.stdout)).toEqual(items(r1.stdout));
    expect(items(j1.stdout)).toContain(`new ${path.join(tree, 'a.txt')}`);
    expect(j1.stdout).toMatch(/^new {7}\/.*a\.txt, saved in \d+\.\d{3}s \(6 B added\)$/m);
    // one file changed, one added: modified / new / unchanged, directories too
    writeFileSync(path.join(tree, 'a.txt'), 'alpha beta\n');
    writeFileSync(path.join(tree, 'sub', 'c.txt'), 'gamma\n');
    const j2 = await runJbackup(['-vv', 'snapshot', tree], { env: env(jb) });
    const r2 = await runRestic(['-vv', 'backup', tree], { repo: rs, password: PW });
    expect(j2.code, j2.stderr).toBe(0);
    expect(items(j2.stdout)).toEqual(items(r2.stdout));
    expect(items(j2.stdout)).toContain(`unchanged ${path.join(tree, 'sub', 'b.bin')}`);
    expect(items(j2.stdout)).toContain(`modified ${path.join(tree, 'a.txt')}`);
    expect(items(j2.stdout)).toContain(`modified ${tree}/`);
    // -v: the same lines as restic (the parent line's place aside), and the same summary lines
    writeFileSync(path.join(tree, 'a.txt'), 'alpha beta gamma\n');
    const j3 = await runJbackup(['-v', 'snapshot', tree], { env: env(jb) });
    const r3 = await runRestic(['-v', 'backup', tree], { repo: rs, password: PW });
    expect(j3.code, j3.stderr).toBe(0);
    expect(vlines(j3.stdout).sort()).toEqual(vlines(r3.stdout).map((l) => l.replace(/ \(N stored\)$/, '')).sort());
    expect(lines(j3.stdout).slice(0, 3)).toEqual(['open repository', 'lock repository', 'load index files']);
    // no -v: no such lines, still the summary
    const j4 = await runJbackup(['snapshot', tree], { env: env(jb) });
    expect(j4.stdout).not.toMatch(/open repository|start backup/);
    expect(j4.stdout).toMatch(/^Files: +0 new, +0 changed, +3 unmodified$/m);
  });

  it('unreadable files are neither processed nor new (summary and --json, as restic)', async () => {
    // as root every file is readable: run both tools as nobody then
    const asUser = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    chmodSync(dir, 0o755);
    const base = path.join(dir, 'unreadable');
    mkdirSync(base);
    chmodSync(base, 0o777);
    const tree = path.join(base, 'tree');
    mkdirSync(path.join(tree, 'closed'), { recursive: true });
    writeFileSync(path.join(tree, 'ok.txt'), 'fine\n');
    writeFileSync(path.join(tree, 'secret.txt'), 'hidden\n');
    writeFileSync(path.join(tree, 'closed', 'inner.txt'), 'inner\n');
    const jb = path.join(base, 'jb');
    const rs = path.join(base, 'rs');
    const run = (cmd: string[], e: Record<string, string>) => {
      const [bin, ...args] = [...asUser, ...cmd];
      return exec(bin!, args, { cwd: base, env: { ...process.env, HOME: base, XDG_CACHE_HOME: path.join(base, 'cache'), ...e } });
    };
    const je = env(jb);
    const re = { RESTIC_REPOSITORY: rs, RESTIC_PASSWORD: PW };
    if (asUser.length) expect((await exec('chown', ['-R', '65534:65534', tree], {})).code).toBe(0);
    const ji = await run([process.execPath, JBACKUP_BIN, 'init'], je);
    expect(ji.code, ji.stderr).toBe(0);
    const ri = await run(['restic', 'init'], re);
    expect(ri.code, ri.stderr).toBe(0);
    chmodSync(path.join(tree, 'secret.txt'), 0o000);
    chmodSync(path.join(tree, 'closed'), 0o000);
    const summary = (out: string) => JSON.parse(out.trim().split('\n').filter((l) => l.includes('"summary"')).pop()!) as Record<string, number>;
    const j = await run([process.execPath, JBACKUP_BIN, '--json', 'snapshot', tree], je);
    const r = await run(['restic', '--json', 'backup', tree], re);
    expect(r.code).toBe(3);
    expect(j.code, j.stderr).toBe(3);
    const js = summary(j.stdout);
    const rsum = summary(r.stdout);
    // the unreadable directory is in no dirs_* counter either
    for (const k of ['files_new', 'files_changed', 'files_unmodified', 'dirs_new', 'dirs_changed', 'dirs_unmodified', 'total_files_processed', 'total_bytes_processed']) expect(js[k], k).toBe(rsum[k]);
    expect(js['total_files_processed']).toBe(1);
    const t = await run([process.execPath, JBACKUP_BIN, 'snapshot', tree], je);
    expect(t.code).toBe(3);
    expect(t.stdout).toMatch(/^processed 1 files, 5 B in /m);
    chmodSync(path.join(tree, 'closed'), 0o755);
  });
});

it('profile check flags a missing source; jbackup run with every source missing fails and writes nothing', async () => {
  const sb = await sandbox('targets-profile');
  const repo = path.join(sb.root, 'repo');
  const good = path.join(sb.root, 'good');
  mkdirSync(good);
  writeFileSync(path.join(good, 'f'), 'x\n');
  const pwFile = path.join(sb.root, 'pw');
  writeFileSync(pwFile, `${PW}\n`);
  chmodSync(pwFile, 0o600);
  const e = { ...sb.env, JBACKUP_PASSWORD: PW };
  expect((await runJbackup(['init', '-r', repo], { env: e })).code).toBe(0);
  const gone = path.join(sb.root, 'Documnets');
  writeProfiles(sb, `
[profiles.some]
repository = ${q(repo)}
password-file = ${q(pwFile)}
sources = [${q(good)}, ${q(gone)}]

[profiles.none]
repository = ${q(repo)}
password-file = ${q(pwFile)}
sources = [${q(gone)}]
`);
  const c = await runJbackup(['profile', 'check', 'some', '--no-repository'], { env: e });
  expect(c.code).toBe(1);
  expect(c.stdout).toContain(`FAILED  sources: ${gone} does not exist`);
  const all = await runJbackup(['run', 'none'], { env: e });
  expect(all.code).not.toBe(0);
  expect(all.stdout + all.stderr).toContain('all target directories/files do not exist');
  expect(await fsp.readdir(path.join(repo, 'snapshots'))).toEqual([]);
  const some = await runJbackup(['run', 'some'], { env: e });
  expect(some.code, some.stderr).toBe(0);
  expect(some.stdout + some.stderr).toContain(`${gone} does not exist, skipping`);
  const snaps = JSON.parse((await runJbackup(['--json', '-r', repo, 'snapshots'], { env: e })).stdout) as { paths: string[] }[];
  expect(snaps.map((s) => s.paths)).toEqual([[good]]);
});

afterAll(cleanupTmpDirs);
