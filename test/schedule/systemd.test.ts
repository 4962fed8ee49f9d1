/**
 * Generated systemd user units pass `systemd-analyze verify`, and the timer's elapses (as
 * `systemd-analyze calendar` computes them) are the profile's schedule.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextElapses, parseCalendar } from '../../src/schedule/calendar.js';
import { NODE_FLAGS } from '../../src/util/nodeflags.js';
import { cleanupTmpDirs, runJbackup } from '../helpers/tools.js';
import { q, sandbox, SYSTEMD_ANALYZE, systemdDescribe, writeProfiles, type Sandbox } from './util.js';

/** profile name → its schedule (one expression or several) */
const SCHEDULES: Record<string, string | string[]> = {
  hourly: 'hourly',
  daily: 'daily',
  weekly: 'weekly',
  monthly: 'monthly',
  quarterly: 'quarterly',
  'at-0330': '03:30',
  workdays: 'Mon..Fri 19:00',
  weekend: 'Sat,Sun 10:15',
  'first-of-month': '*-*-01 04:00',
  quarter: '*:0/15',
  full: 'Mon *-*-* 02:00:00',
  'third-last-feb': '*-02~03',
  'last-monday-may': 'Mon *-05~07/1',
  'year-2030': '2030-*-* 12:00',
  friday13: 'Fri *-*-13 13:13',
  quarters: '*-1,4,7,10-1 0:0',
  every3h: '1..20/3:00',
  oslo: '12:00 Europe/Oslo',
  'two-times': ['Mon..Fri 19:00', 'Sat 10:00'],
};

/** more expressions, compared with systemd-analyze without installing units */
const MORE = ['*-*~07/2', '*-*~01..05', '*-*~1,3', 'Mon-Fri', 'monday,wed..FRI 4:5', '*:*:0/20', '03:30:15', '*-*-31 08:00', '24-03-01',
  '*-1-1..10/3 0:0', 'semiannually', 'minutely', 'Sun', '12:00 UTC', '*-*-1/10', '2023-02-29', '*-02-29 06:00'];

const BASES = ['2024-01-01 00:00:00 UTC', '2024-02-28 23:59:30 UTC', '2025-12-31 12:34:56 UTC'];

function profileToml(sb: Sandbox, name: string, sched: string | string[], extra = ''): string {
  const cal = Array.isArray(sched) ? `[${sched.map(q).join(', ')}]` : q(sched);
  return `[profiles.${q(name)}]
repository = ${q(path.join(sb.root, 'repo'))}
password-file = ${q(path.join(sb.root, 'pw'))}
sources = [${q(path.join(sb.root, 'src'))}]
${extra}
[profiles.${q(name)}.schedule]
on-calendar = ${cal}
randomized-delay = "10m"
`;
}

/** systemd-analyze calendar's elapses: "Next elapse: Mon 2024-01-01 03:30:00 UTC", "Iter. #2: …" */
function systemdElapses(expr: string, base: string, n: number): number[] {
  const r = spawnSync(SYSTEMD_ANALYZE!, ['calendar', `--iterations=${n}`, `--base-time=${base}`, expr], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  expect(r.status, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g)].map((m) => Date.parse(`${m[1]}T${m[2]}Z`));
}

systemdDescribe('systemd units (systemd-analyze)', () => {
  let sb: Sandbox;
  let unitDir: string;
  beforeAll(async () => {
    sb = await sandbox('sched-systemd');
    writeFileSync(path.join(sb.root, 'pw'), 'not-the-point\n');
    chmodSync(path.join(sb.root, 'pw'), 0o600);
    mkdirSync(path.join(sb.root, 'src'));
    writeProfiles(sb, Object.entries(SCHEDULES).map(([n, s]) => profileToml(sb, n, s)).join('\n'));
    unitDir = path.join(sb.home, '.config', 'systemd', 'user');
    // install every profile through the CLI (two at a time)
    const names = Object.keys(SCHEDULES);
    for (let i = 0; i < names.length; i += 2) {
      const rs = await Promise.all(names.slice(i, i + 2).map((n) => runJbackup(['schedule', 'install', n, '--platform', 'systemd'], { env: sb.env })));
      for (const r of rs) expect(r.code, r.stderr + r.stdout).toBe(0);
    }
  });
  afterAll(cleanupTmpDirs);

  it('writes a oneshot low-priority service and a persistent randomized timer per profile', () => {
    for (const n of Object.keys(SCHEDULES)) {
      const svc = readFileSync(path.join(unitDir, `jbackup-${n}.service`), 'utf8');
      const tmr = readFileSync(path.join(unitDir, `jbackup-${n}.timer`), 'utf8');
      expect(svc).toMatch(/^Type=oneshot$/m);
      expect(svc).toMatch(/^Nice=19$/m);
      expect(svc).toMatch(/^IOSchedulingClass=idle$/m);
      const exec = /^ExecStart=(.*)$/m.exec(svc)![1]!.split(' ');
      expect(exec[0]).toBe(process.execPath);
      expect(exec.slice(1, 1 + NODE_FLAGS.length)).toEqual(NODE_FLAGS);
      const bin = exec[1 + NODE_FLAGS.length]!;
      expect(path.isAbsolute(bin)).toBe(true);
      expect(existsSync(bin)).toBe(true);
      expect(exec.slice(2 + NODE_FLAGS.length)).toEqual(['run', n]);
      expect(tmr).toMatch(/^Persistent=true$/m);
      expect(tmr).toMatch(/^RandomizedDelaySec=10m$/m);
      expect(tmr).toMatch(new RegExp(`^Unit=jbackup-${n.replace(/[.]/g, '\\.')}\\.service$`, 'm'));
      expect(tmr).toMatch(/^WantedBy=timers\.target$/m);
      const onCal = [...tmr.matchAll(/^OnCalendar=(.*)$/gm)].map((m) => m[1]);
      const want = SCHEDULES[n]!;
      expect(onCal).toEqual(Array.isArray(want) ? want : [want]);
    }
  });

  it('passes systemd-analyze verify (system and --user mode, no warnings)', () => {
    const files = Object.keys(SCHEDULES).flatMap((n) => [path.join(unitDir, `jbackup-${n}.service`), path.join(unitDir, `jbackup-${n}.timer`)]);
    const sys = spawnSync(SYSTEMD_ANALYZE!, ['verify', ...files], { encoding: 'utf8' });
    expect(sys.status, sys.stderr).toBe(0);
    expect(sys.stderr.trim()).toBe('');
    const rt = path.join(sb.root, 'runtime');
    mkdirSync(rt, { mode: 0o700 });
    const user = spawnSync(SYSTEMD_ANALYZE!, ['--user', 'verify', ...files], { encoding: 'utf8', env: { ...process.env, HOME: sb.home, XDG_RUNTIME_DIR: rt } });
    expect(user.status, user.stderr).toBe(0);
    expect(user.stderr.trim()).toBe('');
  });

  it('systemd-analyze verify catches a broken unit (the check has teeth)', () => {
    const bad = path.join(sb.root, 'jbackup-bad.timer');
    writeFileSync(bad, readFileSync(path.join(unitDir, 'jbackup-daily.timer'), 'utf8').replace('OnCalendar=daily', 'OnCalendar=bogus').replace('jbackup-daily.service', 'jbackup-bad.service'));
    writeFileSync(path.join(sb.root, 'jbackup-bad.service'), readFileSync(path.join(unitDir, 'jbackup-daily.service'), 'utf8'));
    const r = spawnSync(SYSTEMD_ANALYZE!, ['verify', bad, path.join(sb.root, 'jbackup-bad.service')], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/calendar/i);
  });

  it('the timer elapses when the profile says (systemd-analyze calendar = jbackup\'s calendar engine)', () => {
    for (const n of Object.keys(SCHEDULES)) {
      const tmr = readFileSync(path.join(unitDir, `jbackup-${n}.timer`), 'utf8');
      for (const expr of [...tmr.matchAll(/^OnCalendar=(.*)$/gm)].map((m) => m[1]!)) {
        const spec = parseCalendar(expr);
        for (const base of BASES) {
          const want = systemdElapses(expr, base, 6);
          const baseDate = new Date(Date.parse(base.replace(' UTC', 'Z').replace(' ', 'T')));
          const got = nextElapses(spec, baseDate, want.length || 1, { utc: true }).map((d) => d.getTime());
          expect(got.map((t) => new Date(t).toISOString()), `${n}: ${expr} after ${base}`).toEqual(want.map((t) => new Date(t).toISOString()));
        }
      }
    }
  });

  it('jbackup\'s calendar engine agrees with systemd-analyze on more expressions', () => {
    for (const expr of MORE) {
      for (const base of BASES) {
        const want = systemdElapses(expr, base, 5);
        const baseDate = new Date(Date.parse(base.replace(' UTC', 'Z').replace(' ', 'T')));
        const got = nextElapses(parseCalendar(expr), baseDate, Math.max(want.length, 1), { utc: true });
        expect(got.map((d) => d.toISOString()), `${expr} after ${base}`).toEqual(want.map((t) => new Date(t).toISOString()));
      }
    }
  });

  it('the profile\'s daily 03:30 is the timer\'s next elapse after now', () => {
    const now = new Date();
    const want = systemdElapses('03:30', `${now.toISOString().slice(0, 19).replace('T', ' ')} UTC`, 1)[0]!;
    const got = nextElapses(parseCalendar('03:30'), new Date(Math.floor(now.getTime() / 1000) * 1000), 1, { utc: true })[0]!;
    expect(got.getTime()).toBe(want);
  });

  it('refuses calendar expressions systemd refuses (at install and in the parser)', async () => {
    const bad = ['bogus', 'Sat..Mon 10:00', '*/2:00', '25:00', '*-*-0', 'daily 03:30', '4:0/0'];
    for (const b of bad) {
      expect(spawnSync(SYSTEMD_ANALYZE!, ['calendar', b]).status, b).not.toBe(0);
      expect(() => parseCalendar(b), b).toThrow();
    }
    writeProfiles(sb, profileToml(sb, 'broken', 'Sat..Mon 10:00'));
    const r = await runJbackup(['schedule', 'install', 'broken', '--platform', 'systemd'], { env: sb.env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/invalid calendar expression "Sat\.\.Mon 10:00"/);
    expect(existsSync(path.join(unitDir, 'jbackup-broken.timer'))).toBe(false);
  });
});

describe('systemd install without a reachable user manager, and with one', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await sandbox('sched-systemctl');
    writeFileSync(path.join(sb.root, 'pw'), 'x\n');
    chmodSync(path.join(sb.root, 'pw'), 0o600);
    writeProfiles(sb, profileToml(sb, 'home', '03:30'));
  });
  afterAll(cleanupTmpDirs);

  it('writes the units and prints the exact commands (and linger advice) when no user manager is reachable', async () => {
    const r = await runJbackup(['schedule', 'install', 'home'], { env: { ...sb.env, JBACKUP_SYSTEMCTL: path.join(sb.root, 'no-such-systemctl') } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(sb.home, '.config/systemd/user/jbackup-home.timer'))).toBe(true);
    expect(r.stdout).toContain('systemctl --user daemon-reload');
    expect(r.stdout).toContain('systemctl --user enable --now jbackup-home.timer');
    expect(r.stdout).toMatch(/loginctl enable-linger/);
  });

  it('enables the timer with systemctl --user when the user manager answers', async () => {
    const log = path.join(sb.root, 'systemctl.log');
    const fake = path.join(sb.root, 'fake-systemctl');
    writeFileSync(fake, `#!/bin/sh\necho "$*" >> ${q(log)}\n[ "$2" = is-system-running ] && echo running\nexit 0\n`);
    chmodSync(fake, 0o755);
    const r = await runJbackup(['schedule', 'install', 'home'], { env: { ...sb.env, JBACKUP_SYSTEMCTL: fake } });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['--user is-system-running', '--user daemon-reload', '--user enable --now jbackup-home.timer']);
    expect(r.stdout).toMatch(/enabled jbackup-home\.timer/);

    const list = await runJbackup(['--json', 'schedule', 'list'], { env: sb.env });
    const rows = JSON.parse(list.stdout) as { profile: string; platform: string; calendars: string[]; next: string }[];
    expect(rows.map((x) => [x.profile, x.platform, x.calendars])).toEqual([['home', 'systemd', ['03:30']]]);
    expect(new Date(rows[0]!.next).getUTCHours() * 60 + new Date(rows[0]!.next).getUTCMinutes()).toBe(3 * 60 + 30);

    const rm = await runJbackup(['schedule', 'remove', 'home'], { env: { ...sb.env, JBACKUP_SYSTEMCTL: fake } });
    expect(rm.code, rm.stderr).toBe(0);
    expect(readFileSync(log, 'utf8')).toContain('--user disable --now jbackup-home.timer');
    expect(existsSync(path.join(sb.home, '.config/systemd/user/jbackup-home.timer'))).toBe(false);
    expect(existsSync(path.join(sb.home, '.config/systemd/user/jbackup-home.service'))).toBe(false);
  });

  it('--dry-run writes nothing', async () => {
    const r = await runJbackup(['schedule', 'install', 'home', '--dry-run'], { env: sb.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('would write');
    expect(r.stdout).toContain('OnCalendar=03:30');
    expect(existsSync(path.join(sb.home, '.config/systemd/user/jbackup-home.timer'))).toBe(false);
  });
});
