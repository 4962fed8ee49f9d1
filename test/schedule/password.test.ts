/**
 * Password sources for unattended runs: a group/world-readable password file is refused (by run and
 * by schedule install); nothing schedule install writes or prints contains the password; the command
 * source works; an unreachable OS keyring gives a clear message.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup } from '../helpers/tools.js';
import { q, sandbox, writeProfiles, type Sandbox } from './util.js';

const PW = 'Sup3r-Secret-Passw0rd';

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...allFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('password sources', () => {
  let sb: Sandbox;
  let pwFile: string;
  let repo: string;
  beforeAll(async () => {
    sb = await sandbox('sched-password');
    repo = path.join(sb.root, 'repo');
    const src = path.join(sb.root, 'src');
    mkdirSync(src);
    writeFileSync(path.join(src, 'f'), 'data');
    // the password file lives outside HOME so that HOME holds only what jbackup wrote
    pwFile = path.join(sb.root, 'secret', 'pw');
    mkdirSync(path.dirname(pwFile));
    writeFileSync(pwFile, `${PW}\n`);
    chmodSync(pwFile, 0o644);
    expect((await runJbackup(['init', '-r', repo], { env: { ...sb.env, JBACKUP_PASSWORD: PW } })).code).toBe(0);
    const common = `repository = ${q(repo)}\nsources = [${q(src)}]\nschedule = "03:30"\n`;
    writeProfiles(sb, `
[profiles.filepw]
${common}password-file = ${q(pwFile)}

[profiles.cmdpw]
${common}password-command = ${q(`cat ${pwFile}`)}

[profiles.keyring]
${common}password-keyring = true

[profiles.nopw]
${common}
`);
  });
  afterAll(cleanupTmpDirs);

  it('run refuses a password file with mode 0644, with a clear message', async () => {
    expect(statSync(pwFile).mode & 0o777).toBe(0o644);
    const r = await runJbackup(['run', 'filepw'], { env: sb.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`password file ${pwFile} has mode 0644: other users can read it`);
    expect(r.stderr).toContain(`chmod 600 ${pwFile}`);
    const s = JSON.parse(readFileSync(path.join(sb.state, 'status', 'filepw.json'), 'utf8')) as { result: string; errors: string[] };
    expect(s.result).toBe('failed');
    expect(s.errors[0]).toMatch(/has mode 0644/);
  });

  it('schedule install refuses it too, and writes nothing', async () => {
    for (const platform of ['systemd', 'launchd']) {
      const r = await runJbackup(['schedule', 'install', 'filepw', '--platform', platform], { env: sb.env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/has mode 0644.*chmod 600/);
    }
    expect(allFiles(sb.home).filter((f) => /systemd|LaunchAgents/.test(f))).toEqual([]);
  });

  it('schedule install refuses a profile without a password source', async () => {
    const r = await runJbackup(['schedule', 'install', 'nopw', '--dry-run'], { env: sb.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/names no password source/);
  });

  it('with mode 0600: run works, and nothing schedule install writes or prints contains the password', async () => {
    chmodSync(pwFile, 0o600);
    const run = await runJbackup(['run', 'filepw'], { env: sb.env });
    expect(run.code, run.stderr).toBe(0);
    const outputs: string[] = [run.stdout, run.stderr];
    for (const args of [
      ['schedule', 'install', 'filepw', '--platform', 'systemd'],
      ['schedule', 'install', 'cmdpw', '--platform', 'systemd'],
      ['schedule', 'install', 'filepw', '--platform', 'launchd'],
      ['schedule', 'install', 'cmdpw', '--platform', 'launchd'],
      ['schedule', 'install', 'keyring', '--platform', 'launchd', '--dry-run'],
      ['schedule', 'install', 'filepw', '--dry-run'],
    ]) {
      const r = await runJbackup(args, { env: sb.env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      outputs.push(r.stdout, r.stderr);
    }
    const written = allFiles(sb.home).filter((f) => /systemd\/user|LaunchAgents/.test(f));
    expect(written.map((f) => path.basename(f)).sort()).toEqual([
      'jbackup-cmdpw.service', 'jbackup-cmdpw.timer', 'jbackup-filepw.service', 'jbackup-filepw.timer', 'local.jbackup.cmdpw.plist', 'local.jbackup.filepw.plist',
    ]);
    for (const f of allFiles(sb.home)) {
      expect(readFileSync(f, 'utf8'), f).not.toContain(PW);
    }
    for (const o of outputs) expect(o).not.toContain(PW);
    // units name only the profile; not even the password file or command
    for (const f of written) {
      const text = readFileSync(f, 'utf8');
      expect(text).not.toContain(pwFile);
      expect(text).not.toMatch(/JBACKUP_PASSWORD/);
    }
  });

  it('password-command is a working source', async () => {
    const r = await runJbackup(['run', 'cmdpw'], { env: sb.env });
    expect(r.code, r.stderr).toBe(0);
  });

  it.runIf(process.platform === 'linux')('an unreachable OS keyring gives a clear message, not a crash', async () => {
    for (const dbus of ['', 'unix:path=/nonexistent/jbackup-test-bus']) {
      const r = await runJbackup(['run', 'keyring'], { env: { ...sb.env, DBUS_SESSION_BUS_ADDRESS: dbus } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/OS keyring/);
      expect(r.stderr).toMatch(/password-file or password-command/);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  const onPath = (b: string) => (process.env['PATH'] ?? '').split(':').some((d) => d && existsSync(path.join(d, b)));
  const secretService = process.platform === 'linux' && onPath('gnome-keyring-daemon') && onPath('dbus-run-session');
  if (!secretService) console.warn('[keyring] gnome-keyring-daemon or dbus-run-session not found: skipping the real Secret Service test');
  it.runIf(secretService)('with a real Secret Service (gnome-keyring): set-password stores it, run reads it', async () => {
    const script = `printf unlock | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; sleep 0.3
printf '%s\n' "$TEST_PW" | ${q(process.execPath)} ${q(JBACKUP_BIN)} profile set-password keyring || exit 20
${q(process.execPath)} ${q(JBACKUP_BIN)} run keyring`;
    const r = spawnSync('dbus-run-session', ['--', 'sh', '-c', script], { env: { ...process.env, ...sb.env, TEST_PW: PW }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('stored the password in the OS keyring (service "jbackup", account "keyring")');
    expect(r.stdout).toMatch(/snapshot [0-9a-f]{8} saved/);
  });
});
