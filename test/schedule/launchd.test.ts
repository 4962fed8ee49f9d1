/**
 * Generated launchd plists parse with a plist parser (plist.js, and Python's plistlib when present),
 * round-trip, and their StartCalendarInterval entries fire exactly when the profile's schedule does.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { build, parse } from 'plist';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextElapses, parseCalendar, type LaunchdInterval } from '../../src/schedule/calendar.js';
import { launchdNext } from '../../src/schedule/install.js';
import { NODE_FLAGS } from '../../src/util/nodeflags.js';
import { cleanupTmpDirs, runJbackup } from '../helpers/tools.js';
import { python3, q, sandbox, writeProfiles, type Sandbox } from './util.js';

/** schedule → the StartCalendarInterval entries launchd needs */
const CASES: [string, string | string[], LaunchdInterval[]][] = [
  ['at-0330', '03:30', [{ Hour: 3, Minute: 30 }]],
  ['hourly', 'hourly', [{ Minute: 0 }]],
  ['daily', 'daily', [{ Hour: 0, Minute: 0 }]],
  ['weekly', 'weekly', [{ Weekday: 1, Hour: 0, Minute: 0 }]],
  ['monthly', 'monthly', [{ Day: 1, Hour: 0, Minute: 0 }]],
  ['workdays', 'Mon..Fri 19:00', [1, 2, 3, 4, 5].map((d) => ({ Weekday: d, Hour: 19, Minute: 0 }))],
  ['weekend', 'Sat,Sun 10:15', [{ Weekday: 0, Hour: 10, Minute: 15 }, { Weekday: 6, Hour: 10, Minute: 15 }]],
  ['quarter-hours', '*:0/15', [0, 15, 30, 45].map((m) => ({ Minute: m }))],
  ['first', '*-*-01 04:00', [{ Day: 1, Hour: 4, Minute: 0 }]],
  ['quarterly', 'quarterly', [1, 4, 7, 10].map((m) => ({ Month: m, Day: 1, Hour: 0, Minute: 0 }))],
  ['full', 'Mon *-*-* 02:00:00', [{ Weekday: 1, Hour: 2, Minute: 0 }]],
  ['two', ['Mon..Fri 19:00', 'Sat 10:00'], [...[1, 2, 3, 4, 5].map((d) => ({ Weekday: d, Hour: 19, Minute: 0 })), { Weekday: 6, Hour: 10, Minute: 0 }]],
];

function toml(sb: Sandbox, name: string, sched: string | string[]): string {
  const cal = Array.isArray(sched) ? `[${sched.map(q).join(', ')}]` : q(sched);
  return `[profiles.${q(name)}]
repository = ${q(path.join(sb.root, 'repo'))}
password-file = ${q(path.join(sb.root, 'pw'))}
sources = ["~/Documents"]

[profiles.${q(name)}.schedule]
on-calendar = ${cal}
label-prefix = "org.example"
`;
}

describe('launchd plists', () => {
  let sb: Sandbox;
  let agents: string;
  const plists = new Map<string, string>();
  beforeAll(async () => {
    sb = await sandbox('sched-launchd');
    writeFileSync(path.join(sb.root, 'pw'), 'pw\n');
    chmodSync(path.join(sb.root, 'pw'), 0o600);
    writeProfiles(sb, CASES.map(([n, s]) => toml(sb, n, s)).join('\n'));
    agents = path.join(sb.home, 'Library', 'LaunchAgents');
    for (let i = 0; i < CASES.length; i += 2) {
      const rs = await Promise.all(CASES.slice(i, i + 2).map(([n]) => runJbackup(['schedule', 'install', n, '--platform', 'launchd'], { env: sb.env })));
      for (const r of rs) expect(r.code, r.stderr + r.stdout).toBe(0);
    }
    for (const [n] of CASES) plists.set(n, readFileSync(path.join(agents, `org.example.jbackup.${n}.plist`), 'utf8'));
  });
  afterAll(cleanupTmpDirs);

  it('writes ~/Library/LaunchAgents/<prefix>.jbackup.<profile>.plist and prints the launchctl command', async () => {
    const r = await runJbackup(['schedule', 'install', 'at-0330', '--platform', 'launchd'], { env: sb.env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`launchctl bootstrap gui/${process.getuid!()} ${path.join(agents, 'org.example.jbackup.at-0330.plist')}`);
    expect(existsSync(path.join(sb.home, 'Library', 'Logs', 'jbackup'))).toBe(true);
  });

  it('parses with plist.js and round-trips', () => {
    for (const [n] of CASES) {
      const doc = parse(plists.get(n)!) as Record<string, unknown>;
      expect(parse(build(doc as never))).toEqual(doc);
      expect(doc['Label']).toBe(`org.example.jbackup.${n}`);
      expect(doc['ProgramArguments']).toEqual([process.execPath, ...NODE_FLAGS, expect.stringMatching(/\/bin\/jbackup$/), 'run', n]);
      expect(existsSync((doc['ProgramArguments'] as string[])[1 + NODE_FLAGS.length]!)).toBe(true);
      expect(doc['ProcessType']).toBe('Background');
      expect(doc['LowPriorityIO']).toBe(true);
      expect(doc['StandardOutPath']).toBe(path.join(sb.home, 'Library', 'Logs', 'jbackup', `${n}.log`));
      expect(doc['StandardErrorPath']).toBe(doc['StandardOutPath']);
      expect(doc['RunAtLoad']).toBe(false);
    }
  });

  it('parses with Python\'s plistlib (an independent parser) to the same document', () => {
    const py = python3();
    if (!py) {
      console.warn('[launchd] python3 with plistlib not found: skipping the second parser');
      return;
    }
    const files = CASES.map(([n]) => path.join(agents, `org.example.jbackup.${n}.plist`));
    const r = spawnSync(py, ['-c', 'import plistlib,json,sys; print(json.dumps([plistlib.load(open(f,"rb")) for f in sys.argv[1:]]))', ...files], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(CASES.map(([n]) => parse(plists.get(n)!)));
  });

  it('StartCalendarInterval is the profile\'s schedule', () => {
    for (const [n, , want] of CASES) {
      const doc = parse(plists.get(n)!) as { StartCalendarInterval: LaunchdInterval | LaunchdInterval[] };
      const got = Array.isArray(doc.StartCalendarInterval) ? doc.StartCalendarInterval : [doc.StartCalendarInterval];
      const key = (i: LaunchdInterval) => JSON.stringify([i.Month, i.Day, i.Weekday, i.Hour, i.Minute]);
      expect(got.map(key).sort(), n).toEqual(want.map(key).sort());
    }
  });

  it('launchd fires at the same times as the profile\'s calendar (next 8 elapses from several starts)', () => {
    const bases = [new Date(2024, 0, 1, 0, 0, 0), new Date(2024, 1, 28, 23, 59, 30), new Date(2025, 11, 31, 12, 34, 56)];
    for (const [n, sched] of CASES) {
      const doc = parse(plists.get(n)!) as { StartCalendarInterval: LaunchdInterval | LaunchdInterval[] };
      const intervals = Array.isArray(doc.StartCalendarInterval) ? doc.StartCalendarInterval : [doc.StartCalendarInterval];
      const specs = (Array.isArray(sched) ? sched : [sched]).map(parseCalendar);
      for (const base of bases) {
        const want: number[] = [];
        let t = base;
        for (let k = 0; k < 8; k++) {
          const next = Math.min(...specs.map((s) => nextElapses(s, t, 1)[0]!.getTime()));
          want.push(next);
          t = new Date(next);
        }
        const got: number[] = [];
        t = base;
        for (let k = 0; k < 8; k++) {
          const next = launchdNext(intervals, t)!;
          got.push(next.getTime());
          t = next;
        }
        expect(got.map((x) => new Date(x).toISOString()), `${n} after ${base.toISOString()}`).toEqual(want.map((x) => new Date(x).toISOString()));
      }
    }
  });

  it('schedule list shows the agents; schedule remove deletes one and prints the bootout command', async () => {
    const l = await runJbackup(['--json', 'schedule', 'list'], { env: sb.env });
    expect(l.code, l.stderr).toBe(0);
    const rows = JSON.parse(l.stdout) as { profile: string; platform: string; label: string; next: string | null }[];
    expect(rows.map((r) => r.profile).sort()).toEqual(CASES.map(([n]) => n).sort());
    expect(rows.every((r) => r.platform === 'launchd' && r.next !== null)).toBe(true);
    const r = await runJbackup(['schedule', 'remove', 'weekend', '--platform', 'launchd'], { env: sb.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`launchctl bootout gui/${process.getuid!()}/org.example.jbackup.weekend`);
    expect(existsSync(path.join(agents, 'org.example.jbackup.weekend.plist'))).toBe(false);
    expect(existsSync(path.join(agents, 'org.example.jbackup.workdays.plist'))).toBe(true);
  });

  it('refuses schedules launchd cannot express, saying why', async () => {
    const bad: [string, RegExp][] = [
      ['*-02~03', /end of the month/], ['2030-*-* 12:00', /years/], ['Fri *-*-13', /either the weekday or the day/],
      ['03:30:15', /whole minutes/], ['12:00 UTC', /local time/],
    ];
    writeProfiles(sb, bad.map(([s], i) => toml(sb, `bad${i}`, s)).join('\n'));
    const rs = await Promise.all(bad.map((_b, i) => runJbackup(['schedule', 'install', `bad${i}`, '--platform', 'launchd', '--dry-run'], { env: sb.env })));
    for (const [i, [, why]] of bad.entries()) {
      const r = rs[i]!;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/launchd cannot express/);
      expect(r.stderr).toMatch(why);
    }
  });
});
