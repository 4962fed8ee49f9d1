/**
 * `jbackup run PROFILE` end to end on a local repository: two runs in a row (two snapshots, the
 * retention policy applied, prune and check, correct status records), a concurrent second run that
 * exits at once, and failures (hook, unreachable repository) with non-zero exits, status records
 * carrying the error and the on-failure hook run.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusRecord } from '../../src/schedule/status.js';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, type RunResult } from '../helpers/tools.js';
import { q, sandbox, writeProfiles, type Sandbox } from './util.js';

const PW = 'run-test-password';

describe('jbackup run', () => {
  let sb: Sandbox;
  let repo: string;
  let src: string;
  let pwFile: string;
  const status = (p: string) => JSON.parse(readFileSync(path.join(sb.state, 'status', `${p}.json`), 'utf8')) as StatusRecord;
  const history = (p: string) => readFileSync(path.join(sb.state, 'history', `${p}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StatusRecord);
  const snapshots = async () => {
    const r = await runJbackup(['--json', '-r', repo, 'snapshots'], { env: { ...sb.env, JBACKUP_PASSWORD: PW } });
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as { id: string; tags?: string[]; paths: string[] }[]);
  };
  const file = (n: string) => path.join(sb.root, n);

  beforeAll(async () => {
    sb = await sandbox('sched-run');
    repo = file('repo');
    src = file('src');
    mkdirSync(src);
    writeFileSync(path.join(src, 'a.txt'), 'first file\n'.repeat(1000));
    pwFile = file('pw');
    writeFileSync(pwFile, `${PW}\n`);
    chmodSync(pwFile, 0o600);
    const init = await runJbackup(['init', '-r', repo], { env: { ...sb.env, JBACKUP_PASSWORD: PW } });
    expect(init.code, init.stderr).toBe(0);
    const common = `repository = ${q(repo)}\npassword-file = ${q(pwFile)}\nsources = [${q(src)}]\n`;
    writeProfiles(sb, `
[profiles.nightly]
${common}tags = ["scheduled", "nightly"]
excludes = ["*.skip"]

[profiles.nightly.retention]
keep-last = 1

[profiles.nightly.prune]
every = "always"

[profiles.nightly.check]
every = "always"
read-data-subset = "100%"

[profiles.nightly.hooks]
before = ${q(`echo "$JBACKUP_PROFILE" >> ${file('before.log')}`)}
after = ${q(`echo "$JBACKUP_SNAPSHOT_ID" >> ${file('after.log')}`)}
on-failure = ${q(`echo failed >> ${file('nightly-failure.log')}`)}

[profiles.slow]
${common}tags = ["slow"]
[profiles.slow.hooks]
before = ${q(`touch ${file('slow.started')}; i=0; while [ ! -f ${file('slow.go')} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done`)}

[profiles.badhook]
${common}
[profiles.badhook.hooks]
before = "echo about to fail >&2; exit 7"
on-failure = ${q(`printf '%s|%s|' "$JBACKUP_ERROR" "$JBACKUP_EXIT_CODE" > ${file('badhook.failure')}; cat >> ${file('badhook.failure')}`)}

[profiles.badafter]
${common}
[profiles.badafter.hooks]
after = "exit 2"
on-failure = ${q(`printf '%s' "$JBACKUP_ERROR" > ${file('badafter.failure')}`)}

[profiles.killed]
${common}
[profiles.killed.hooks]
before = ${q(`touch ${file('killed.started')}; sleep 30; touch ${file('killed.hook-survived')}`)}
on-failure = ${q(`printf '%s|%s' "$JBACKUP_ERROR" "$JBACKUP_EXIT_CODE" > ${file('killed.failure')}`)}

[profiles.unreachable]
repository = ${q(file('no-such-repo'))}
password-file = ${q(pwFile)}
sources = [${q(src)}]
[profiles.unreachable.hooks]
on-failure = ${q(`printf '%s|%s' "$JBACKUP_ERROR" "$JBACKUP_EXIT_CODE" > ${file('unreachable.failure')}`)}
`);
  });
  afterAll(cleanupTmpDirs);

  let first: StatusRecord;

  it('first run: snapshot, retention, prune, check; status record', async () => {
    const r = await runJbackup(['run', 'nightly'], { env: sb.env });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    first = status('nightly');
    expect(first.result).toBe('success');
    expect(first.exitCode).toBe(0);
    expect(first.errors).toEqual([]);
    expect(first.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(first.bytesAdded).toBeGreaterThan(0);
    expect(first.filesNew).toBe(1);
    expect(Date.parse(first.end!)).toBeGreaterThanOrEqual(Date.parse(first.start));
    expect(first.pruned).toBe(true);
    expect(first.checked).toBe(true);
    expect(first.lastPrune).toBeDefined();
    expect(first.lastCheck).toBeDefined();
    expect(first.snapshotsRemoved).toBe(0);
    expect(first.steps.map((s) => [s.step, s.result])).toEqual([['before', 'ok'], ['snapshot', 'ok'], ['forget', 'ok'], ['prune', 'ok'], ['check', 'ok'], ['after', 'ok']]);
    const snaps = await snapshots();
    expect(snaps.map((s) => s.id)).toEqual([first.snapshotId]);
    expect(snaps[0]!.tags).toEqual(['scheduled', 'nightly']);
    expect(readFileSync(file('after.log'), 'utf8').trim()).toBe(first.snapshotId);
  });

  it('second run: a second snapshot, the first one forgotten (keep-last 1), status record and history', async () => {
    writeFileSync(path.join(src, 'b.txt'), 'second file\n'.repeat(500));
    writeFileSync(path.join(src, 'c.skip'), 'excluded\n');
    const r = await runJbackup(['run', 'nightly'], { env: sb.env });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const second = status('nightly');
    expect(second.result).toBe('success');
    expect(second.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(second.snapshotId).not.toBe(first.snapshotId);
    expect(second.bytesAdded).toBeGreaterThan(0);
    expect(second.filesNew).toBe(1);
    expect(second.filesUnmodified).toBe(1);
    expect(second.snapshotsRemoved).toBe(1);
    expect(Date.parse(second.start)).toBeGreaterThanOrEqual(Date.parse(first.end!));
    expect((await snapshots()).map((s) => s.id)).toEqual([second.snapshotId]);
    const h = history('nightly');
    expect(h.map((x) => x.snapshotId)).toEqual([first.snapshotId, second.snapshotId]);
    expect(h.map((x) => x.result)).toEqual(['success', 'success']);
    expect(readFileSync(file('before.log'), 'utf8').trim().split('\n')).toEqual(['nightly', 'nightly']);
    expect(existsSync(file('nightly-failure.log'))).toBe(false);
    // the excluded file is not in the snapshot
    const ls = await runJbackup(['-r', repo, 'ls', second.snapshotId, '--recursive'], { env: { ...sb.env, JBACKUP_PASSWORD: PW } });
    expect(ls.stdout).toContain('b.txt');
    expect(ls.stdout).not.toContain('c.skip');
    // the repository is consistent after prune
    const chk = await runJbackup(['-r', repo, 'check', '--read-data'], { env: { ...sb.env, JBACKUP_PASSWORD: PW } });
    expect(chk.code, chk.stderr).toBe(0);
  });

  it('schedule status shows the record', async () => {
    const j = await runJbackup(['--json', 'schedule', 'status', 'nightly'], { env: sb.env });
    expect(j.code, j.stderr).toBe(0);
    const row = JSON.parse(j.stdout) as { profile: string; status: StatusRecord; running: unknown };
    expect(row.profile).toBe('nightly');
    expect(row.running).toBeNull();
    expect(row.status).toEqual(status('nightly'));
    const t = await runJbackup(['schedule', 'status'], { env: sb.env });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('nightly: success (exit 0)');
    expect(t.stdout).toContain(`snapshot:   ${status('nightly').snapshotId!.slice(0, 8)}`);
    expect(t.stdout).toMatch(/badhook: never run/);
  });

  it('a second concurrent run of the same profile exits at once with a clear message', async () => {
    const a = new Promise<RunResult>((resolve) => {
      const c = spawn(process.execPath, [JBACKUP_BIN, 'run', 'slow'], { env: { ...process.env, ...sb.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d: Buffer) => { out += d; });
      c.stderr.on('data', (d: Buffer) => { err += d; });
      c.on('close', (code) => resolve({ code: code ?? 1, stdout: out, stderr: err, stdoutBuffer: Buffer.from(out) }));
    });
    for (let i = 0; i < 300 && !existsSync(file('slow.started')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(file('slow.started'))).toBe(true);
    expect(status('slow').result).toBe('running');

    const t0 = Date.now();
    const b = await runJbackup(['run', 'slow'], { env: sb.env });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(b.code).toBe(11);
    expect(b.stderr).toMatch(/another "jbackup run slow" is already running \(PID \d+/);
    expect(status('slow').result).toBe('running'); // the running one's record is untouched
    const st = await runJbackup(['schedule', 'status', 'slow'], { env: sb.env });
    expect(st.stdout).toMatch(/running: +PID \d+/);

    writeFileSync(file('slow.go'), '');
    const ra = await a;
    expect(ra.code, ra.stderr + ra.stdout).toBe(0);
    expect(status('slow').result).toBe('success');
    // the lock is gone: a new run starts
    const again = await runJbackup(['run', 'slow'], { env: sb.env });
    expect(again.code, again.stderr).toBe(0);
  });

  it('a failing before hook: non-zero exit, error in the status record, on-failure hook gets the error', async () => {
    const before = (await snapshots()).length;
    const r = await runJbackup(['run', 'badhook'], { env: sb.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('before hook failed: exit code 7');
    const s = status('badhook');
    expect(s.result).toBe('failed');
    expect(s.exitCode).toBe(1);
    expect(s.errors[0]).toBe('before hook failed: exit code 7');
    expect(s.snapshotId).toBeUndefined();
    expect(s.steps.map((x) => [x.step, x.result])).toEqual([['before', 'failed'], ['on-failure', 'ok']]);
    expect(readFileSync(file('badhook.failure'), 'utf8')).toBe('before hook failed: exit code 7|1|before hook failed: exit code 7\n');
    expect((await snapshots()).length).toBe(before);
  });

  it('a failing after hook fails the run too', async () => {
    const r = await runJbackup(['run', 'badafter'], { env: sb.env });
    expect(r.code).toBe(1);
    const s = status('badafter');
    expect(s.result).toBe('failed');
    expect(s.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(s.errors[0]).toBe('after hook failed: exit code 2');
    expect(readFileSync(file('badafter.failure'), 'utf8')).toBe('after hook failed: exit code 2');
  });

  it('an unreachable repository: exit 10, error in the status record, on-failure hook run', async () => {
    const r = await runJbackup(['run', 'unreachable'], { env: sb.env });
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/does not exist/);
    const s = status('unreachable');
    expect(s.result).toBe('failed');
    expect(s.exitCode).toBe(10);
    expect(s.errors[0]).toMatch(/no-such-repo does not exist/);
    const hook = readFileSync(file('unreachable.failure'), 'utf8');
    expect(hook).toMatch(/no-such-repo does not exist.*\|10$/);
  });

  it('SIGTERM (systemctl stop) ends the run: exit 130, status interrupted, on-failure hook, hook killed, lock freed', async () => {
    const c = spawn(process.execPath, [JBACKUP_BIN, 'run', 'killed'], { env: { ...process.env, ...sb.env }, stdio: 'ignore' });
    const done = new Promise<number | null>((resolve) => c.on('close', (code) => resolve(code)));
    for (let i = 0; i < 300 && !existsSync(file('killed.started')); i++) await new Promise((r) => setTimeout(r, 50));
    c.kill('SIGTERM');
    expect(await done).toBe(130);
    const s = status('killed');
    expect(s.result).toBe('interrupted');
    expect(s.exitCode).toBe(130);
    expect(s.errors[0]).toBe('interrupted by a signal');
    expect(readFileSync(file('killed.failure'), 'utf8')).toBe('interrupted by a signal|130');
    expect(existsSync(path.join(sb.state, 'run', 'killed.lock'))).toBe(false);
    expect(history('killed').map((h) => h.result)).toEqual(['interrupted']);
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(file('killed.hook-survived'))).toBe(false);
  });

  it('an unknown profile: exit 1 with the known profiles listed', async () => {
    const r = await runJbackup(['run', 'nope'], { env: sb.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no profile "nope" in .*profiles\.toml \(profiles: nightly, slow, badhook, badafter, killed, unreachable\)/);
    expect(status('nope').result).toBe('failed');
  });
});
