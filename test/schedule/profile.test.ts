/** Profiles file: `profile init` example, strict validation, cadences, limits, and the README section. */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDue, loadProfile, parseCadence, parseProfile } from '../../src/schedule/profile.js';
import { cleanupTmpDirs, runJbackup } from '../helpers/tools.js';
import { sandbox, writeProfiles, type Sandbox } from './util.js';

describe('profiles', () => {
  let sb: Sandbox;
  beforeAll(async () => { sb = await sandbox('sched-profile'); });
  afterAll(cleanupTmpDirs);
  const profilesPath = () => path.join(sb.config, 'profiles.toml');

  it('profile init writes a commented, valid example (0600) and refuses an existing name', async () => {
    const r = await runJbackup(['profile', 'init', 'home', '--repository', '/mnt/backup/repo', '--source', '/home/me/Documents'], { env: sb.env });
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(profilesPath(), 'utf8');
    expect(statSync(profilesPath()).mode & 0o777).toBe(0o600);
    expect(text.split('\n').filter((l) => l.trimStart().startsWith('#')).length).toBeGreaterThan(30);
    for (const k of ['password-file', 'password-command', 'password-keyring', 'excludes', 'exclude-files', 'tags', 'compression', 'on-calendar',
      'randomized-delay', 'keep-daily', 'max-unused', 'read-data-subset', 'upload', 'connections', 'before', 'after', 'on-failure']) {
      expect(text, k).toContain(k);
    }
    const doc = parseToml(text) as { profiles: Record<string, Record<string, unknown>> };
    expect(doc.profiles['home']!['repository']).toBe('/mnt/backup/repo');
    expect(doc.profiles['home']!['sources']).toEqual(['/home/me/Documents']);

    const show = await runJbackup(['profile', 'show', 'home'], { env: sb.env });
    expect(show.code, show.stderr).toBe(0);
    const p = JSON.parse(show.stdout) as { schedule: { calendars: string[] }; password: { kind: string; path: string }; retention: unknown };
    expect(p.schedule.calendars).toEqual(['03:30']);
    expect(p.password).toEqual({ kind: 'file', path: path.join(sb.config, 'home.password') });
    expect(p.retention).not.toBeNull();

    const again = await runJbackup(['profile', 'init', 'home'], { env: sb.env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/profile "home" already exists/);
    const second = await runJbackup(['profile', 'init', 'work'], { env: sb.env });
    expect(second.code, second.stderr).toBe(0);
    const list = await runJbackup(['--json', 'profile', 'list'], { env: sb.env });
    expect((JSON.parse(list.stdout) as { name: string }[]).map((x) => x.name)).toEqual(['home', 'work']);
  });

  it('rejects typos and unsafe values with messages naming the profile and key', async () => {
    const cases: [string, RegExp][] = [
      ['repository = "/r"\nsources = ["/s"]\nexclude = ["x"]', /profile "p": unknown key "exclude"/],
      ['repository = "/r"\nsources = ["relative/dir"]', /source "relative\/dir" must be an absolute path/],
      ['repository = "/r"\nsources = ["/s"]\npassword-file = "/a"\npassword-command = "b"', /only one of password-file, password-command, password-keyring/],
      ['repository = "/r"\nsources = ["/s"]\n[profiles.p.retention]\nkeep-dialy = 3', /profile "p"\.retention: unknown key "keep-dialy"/],
      ['repository = "/r"\nsources = ["/s"]\n[profiles.p.check]\nread-data-subset = "150%"', /read-data-subset" is invalid/],
      ['repository = "/r"\nsources = ["/s"]\n[profiles.p.prune]\nevery = "sometimes"', /"every" is invalid/],
      ['sources = ["/s"]', /"repository" is required/],
      ['repository = "/r"', /"sources" is required/],
    ];
    for (const [i, [body, re]] of cases.entries()) {
      const f = path.join(sb.root, `case${i}.toml`);
      writeFileSync(f, `[profiles.p]\n${body}\n`);
      expect(() => loadProfile('p', f), body).toThrow(re);
    }
    // and through the CLI: exit 1, the message, no stack trace
    writeProfiles(sb, `[profiles.p]\n${cases[0]![0]}\n`);
    const cli = await runJbackup(['profile', 'show', 'p'], { env: sb.env });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(cases[0]![1]);
    expect(cli.stderr).not.toMatch(/\n\s+at /);
    writeProfiles(sb, '[profiles.p\nrepository = 1');
    const r = await runJbackup(['profile', 'show', 'p'], { env: sb.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/profiles\.toml/);
  });

  it('parses every documented key', () => {
    const p = parseProfile('all', parseToml(`
repository = "~/repo"
password-command = "pass show x"
sources = ["~/a", "/b"]
excludes = ["*.o"]
iexcludes = ["*.JPG"]
exclude-files = ["ex.txt"]
iexclude-files = ["/abs/iex.txt"]
exclude-larger-than = "2G"
one-file-system = true
tags = ["a,b", "c"]
host = "h"
compression = "max"
pack-size = 32
retry-lock = "5m"
[retention]
keep-last = 1
keep-hourly = 2
keep-daily = 3
keep-weekly = 4
keep-monthly = 5
keep-yearly = 6
keep-within = "1y2m"
keep-within-daily = "7d"
keep-tag = ["keep", "a,b"]
group-by = "host"
[prune]
every = "3d"
max-unused = "10%"
max-repack-size = "1G"
repack-uncompressed = true
repack-small = true
[check]
every = "weekly"
read-data = true
[schedule]
on-calendar = ["Mon 01:00", "Thu 01:00"]
randomized-delay = 600
persistent = false
label-prefix = "com.example"
[limits]
upload = 1024
download = "4M"
connections = 3
[hooks]
before = "b"
after = "a"
on-failure = "f"
timeout = "2m"
`) as Record<string, unknown>, '/cfg');
    expect(p.repository).toBe(path.join(process.env['HOME'] ?? '', 'repo'));
    expect(p.sources[1]).toBe('/b');
    expect(p.excludeFiles).toEqual(['/cfg/ex.txt']);
    expect(p.iexcludeFiles).toEqual(['/abs/iex.txt']);
    expect(p.excludeLargerThan).toBe(2 * 1024 ** 3);
    expect(p.tags).toEqual(['a', 'b', 'c']);
    expect(p.compression).toBe('max');
    expect(p.packSize).toBe(32 * 1024 * 1024);
    expect(p.retryLockMs).toBe(300_000);
    expect(p.retention!.policy).toMatchObject({ last: 1, hourly: 2, daily: 3, weekly: 4, monthly: 5, yearly: 6, tags: [['keep'], ['a', 'b']] });
    expect(p.retention!.groupBy).toEqual({ host: true, paths: false, tags: false });
    expect(p.prune).toMatchObject({ every: { kind: 'every', ms: 3 * 86400_000 }, maxUnused: { kind: 'percent', p: 10 }, maxRepackSize: 1024 ** 3, repackUncompressed: true, repackSmall: true });
    expect(p.check).toMatchObject({ every: { kind: 'every', ms: 7 * 86400_000 }, readData: { kind: 'all' } });
    expect(p.schedule).toEqual({ calendars: ['Mon 01:00', 'Thu 01:00'], randomizedDelay: '600s', persistent: false, labelPrefix: 'com.example' });
    expect(p.limits).toEqual({ upload: 1024 * 1024, download: 4 * 1024 * 1024, connections: 3 });
    expect(p.hooks).toEqual({ before: 'b', after: 'a', onFailure: 'f', timeoutMs: 120_000 });
    expect(p.password).toEqual({ kind: 'command', command: 'pass show x' });
  });

  it('cadences: always, never, and intervals that tolerate timer drift', () => {
    const now = new Date('2024-06-10T03:35:00Z');
    const weekly = parseCadence('weekly');
    expect(isDue(weekly, undefined, now)).toBe(true);
    expect(isDue(weekly, '2024-06-03T03:40:00Z', now)).toBe(true); // 5 minutes short of 7 days
    expect(isDue(weekly, '2024-06-05T03:40:00Z', now)).toBe(false);
    expect(isDue(parseCadence('always'), '2024-06-10T03:34:00Z', now)).toBe(true);
    expect(isDue(parseCadence('never'), undefined, now)).toBe(false);
    expect(isDue(parseCadence('12h'), '2024-06-09T16:00:00Z', now)).toBe(true);
    expect(isDue(parseCadence('12h'), '2024-06-09T20:00:00Z', now)).toBe(false);
  });

  it('README documents scheduled backups for Linux and macOS', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    const i = readme.indexOf('## Scheduled backups');
    expect(i).toBeGreaterThan(-1);
    const section = readme.slice(i, readme.indexOf('\n## ', i + 5) === -1 ? undefined : readme.indexOf('\n## ', i + 5));
    for (const s of ['jbackup profile init', 'chmod 600', 'jbackup run', 'jbackup schedule install', 'systemctl --user', 'loginctl enable-linger',
      'launchctl bootstrap', 'jbackup schedule status', 'systemd-analyze calendar', 'password-keyring', 'on-failure']) {
      expect(section, s).toContain(s);
    }
    expect(existsSync(fileURLToPath(new URL('../../bin/jbackup', import.meta.url)))).toBe(true);
  });
});
