/** schedule install / remove / list / status, for systemd user units and launchd agents. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdirpSync } from '../util/mkdirp.js';
import { userInfo } from 'node:os';
import * as path from 'node:path';
import { parse as parsePlist } from 'plist';
import { nextElapse, parseCalendar, type LaunchdInterval } from './calendar.js';
import { generatePlist, launchdIntervals, loadCommands, unloadCommands } from './launchd.js';
import { checkPasswordFile, shellQuote } from './password.js';
import type { Profile } from './profile.js';
import { writeFileAtomicSync } from '../util/atomic.js';
import { cliCommand, launchdDir, launchdLogDir, scheduledEnvironment, systemdUserDir } from './paths.js';
import {
  disableCommands, enableCommands, generateUnits, lingerEnabled, systemctlBinary, unitBase, userManagerReachable, validateCalendars,
} from './systemd.js';

export type Platform = 'systemd' | 'launchd';

export function defaultPlatform(): Platform {
  return process.platform === 'darwin' ? 'launchd' : 'systemd';
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

export interface ScheduleOptions {
  platform: Platform;
  dryRun: boolean;
  /** enable/load with the service manager when it is reachable (default true) */
  enable: boolean;
  out: (line: string) => void;
}

export interface WrittenFile {
  path: string;
  content: string;
}

export interface InstallResult {
  files: WrittenFile[];
  /** true when the service manager enabled/loaded the job */
  activated: boolean;
  /** what a person has to run (when not activated) */
  manualCommands: string[];
}

/** everything that must hold before a schedule is written */
export function preflight(p: Profile, platform: Platform): void {
  if (!p.schedule) throw new ScheduleError(`profile "${p.name}" has no schedule: add schedule = "03:30" (or a [profiles.${p.name}.schedule] table)`);
  if (!p.password) {
    throw new ScheduleError(`profile "${p.name}" names no password source; a scheduled run needs password-file, password-command or password-keyring (the password is never put into a unit or plist)`);
  }
  if (p.password.kind === 'file') checkPasswordFile(p.password.path);
  if (platform === 'systemd') validateCalendars(p.schedule.calendars);
  else launchdIntervals(p);
}

function writeAtomic(file: string, content: string): void {
  mkdirpSync(path.dirname(file));
  writeFileAtomicSync(file, content, 0o644);
}

function run(bin: string, args: string[]): { ok: boolean; detail: string } {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { ok: false, detail: r.error.message };
  return { ok: r.status === 0, detail: (r.stderr || r.stdout || '').trim() };
}

function currentUser(): string {
  try { return userInfo().username; } catch { return process.env['USER'] ?? 'USER'; }
}

const cmdText = (bin: string, args: string[]) => [bin, ...args].map(shellQuote).join(' ');

export function installSchedule(p: Profile, o: ScheduleOptions): InstallResult {
  preflight(p, o.platform);
  const cli = cliCommand();
  const env = scheduledEnvironment();
  const res: InstallResult = { files: [], activated: false, manualCommands: [] };
  const show = (f: WrittenFile) => {
    o.out(`${o.dryRun ? 'would write' : 'wrote'} ${f.path}${o.dryRun ? ':' : ''}`);
    if (o.dryRun) o.out(f.content.replace(/\n$/, '').split('\n').map((l) => `    ${l}`).join('\n'));
  };

  if (o.platform === 'systemd') {
    const u = generateUnits(p, cli, env);
    const dir = systemdUserDir();
    res.files.push({ path: path.join(dir, u.serviceName), content: u.service }, { path: path.join(dir, u.timerName), content: u.timer });
    if (!o.dryRun) for (const f of res.files) writeAtomic(f.path, f.content);
    res.files.forEach(show);
    const cmds = enableCommands(p.name);
    const systemctl = systemctlBinary();
    if (!o.dryRun && o.enable && process.platform !== 'darwin' && userManagerReachable(systemctl)) {
      let ok = true;
      for (const c of cmds) {
        const r = run(systemctl!, c);
        if (!r.ok) { o.out(`systemctl ${c.join(' ')} failed: ${r.detail}`); ok = false; break; }
      }
      res.activated = ok;
      if (ok) o.out(`enabled ${u.timerName} (systemctl --user list-timers ${u.timerName} shows the next run)`);
    }
    if (!res.activated) {
      res.manualCommands = cmds.map((c) => cmdText('systemctl', c));
      o.out(o.dryRun ? '\nto enable it after installing, run:' : o.enable ? '\nno systemd user manager is reachable from here; to enable the timer, run (as this user, in a login session):' : '\nto enable the timer, run:');
      for (const c of res.manualCommands) o.out(`    ${c}`);
    }
    if (lingerEnabled() !== true) {
      o.out(`\non a headless machine (no one logged in), let your user manager run without a login session:\n    sudo loginctl enable-linger ${shellQuote(currentUser())}`);
    }
    return res;
  }

  const logDir = launchdLogDir();
  const a = generatePlist(p, cli, env, logDir);
  const file = path.join(launchdDir(), a.fileName);
  res.files.push({ path: file, content: a.plist });
  if (!o.dryRun) {
    writeAtomic(file, a.plist);
    mkdirpSync(logDir);
  }
  res.files.forEach(show);
  const cmds = loadCommands(file, a.label);
  if (!o.dryRun && o.enable && process.platform === 'darwin') {
    run('launchctl', cmds[0]!); // not loaded yet is fine
    const r = run('launchctl', cmds[1]!);
    if (r.ok) { res.activated = true; o.out(`loaded ${a.label} (launchctl print ${cmds[1]![1]}/${a.label} shows it); log: ${a.logPath}`); }
    else o.out(`launchctl ${cmds[1]!.join(' ')} failed: ${r.detail}`);
  }
  if (!res.activated) {
    res.manualCommands = cmds.map((c, i) => `${cmdText('launchctl', c)}${i === 0 ? ' 2>/dev/null || true' : ''}`);
    o.out(process.platform === 'darwin' && !o.dryRun && o.enable ? '\nto load it, run:' : '\nto load it on the Mac, run:');
    for (const c of res.manualCommands) o.out(`    ${c}`);
  }
  return res;
}

export interface RemoveResult {
  removed: string[];
  manualCommands: string[];
}

export function removeSchedule(name: string, o: ScheduleOptions): RemoveResult {
  const res: RemoveResult = { removed: [], manualCommands: [] };
  if (o.platform === 'systemd') {
    const dir = systemdUserDir();
    const base = unitBase(name);
    const files = [path.join(dir, `${base}.timer`), path.join(dir, `${base}.service`), path.join(dir, 'timers.target.wants', `${base}.timer`)];
    const present = files.filter((f) => existsSync(f) || existsOrDangling(f));
    if (present.length === 0) throw new ScheduleError(`no systemd units for profile "${name}" in ${dir}`);
    const systemctl = systemctlBinary();
    let disabled = false;
    if (!o.dryRun && o.enable && process.platform !== 'darwin' && userManagerReachable(systemctl)) {
      disabled = run(systemctl!, disableCommands(name)[0]!).ok;
    }
    for (const f of present) {
      o.out(`${o.dryRun ? 'would remove' : 'removed'} ${f}`);
      if (!o.dryRun) rmSync(f, { force: true });
      res.removed.push(f);
    }
    if (disabled) run(systemctl!, ['--user', 'daemon-reload']);
    else if (!o.dryRun) {
      res.manualCommands = [...disableCommands(name), ['--user', 'daemon-reload']].map((c) => cmdText('systemctl', c));
      o.out('\nif the timer is active in a running user manager, stop it with:');
      for (const c of res.manualCommands) o.out(`    ${c}`);
    }
    return res;
  }
  const dir = launchdDir();
  const found = listLaunchdAgents().filter((a) => a.profile === name);
  if (found.length === 0) throw new ScheduleError(`no launchd agent for profile "${name}" in ${dir}`);
  for (const a of found) {
    if (!o.dryRun && o.enable && process.platform === 'darwin') run('launchctl', unloadCommands(a.label)[0]!);
    else res.manualCommands.push(cmdText('launchctl', unloadCommands(a.label)[0]!));
    o.out(`${o.dryRun ? 'would remove' : 'removed'} ${a.path}`);
    if (!o.dryRun) rmSync(a.path, { force: true });
    res.removed.push(a.path);
  }
  if (res.manualCommands.length) {
    o.out('\nif the agent is loaded on the Mac, unload it with:');
    for (const c of res.manualCommands) o.out(`    ${c}`);
  }
  return res;
}

function existsOrDangling(f: string): boolean {
  try { return readdirSync(path.dirname(f)).includes(path.basename(f)); } catch { return false; }
}

export interface InstalledSchedule {
  platform: Platform;
  profile: string;
  path: string;
  /** systemd: OnCalendar values; launchd: the intervals as JSON */
  calendars: string[];
  enabled: boolean | null;
  next: Date | null;
  label?: string;
}

export function listSystemdUnits(): InstalledSchedule[] {
  const dir = systemdUserDir();
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const out: InstalledSchedule[] = [];
  for (const n of names.sort()) {
    const m = /^jbackup-(.+)\.timer$/.exec(n);
    if (!m) continue;
    const file = path.join(dir, n);
    const text = readFileSync(file, 'utf8');
    const calendars = [...text.matchAll(/^OnCalendar=(.*)$/gm)].map((x) => x[1]!.trim());
    let next: Date | null = null;
    for (const c of calendars) {
      try {
        const t = nextElapse(parseCalendar(c), new Date());
        if (t && (!next || t < next)) next = t;
      } catch { /* systemd syntax this parser does not know */ }
    }
    out.push({ platform: 'systemd', profile: m[1]!, path: file, calendars, enabled: existsSync(path.join(dir, 'timers.target.wants', n)), next });
  }
  return out;
}

/** next start under launchd's rules (cron-like, local time, minute resolution) */
export function launchdNext(intervals: LaunchdInterval[], after: Date, horizonDays = 800): Date | null {
  const t = new Date(after.getTime());
  t.setSeconds(0, 0);
  t.setMinutes(t.getMinutes() + 1);
  const end = after.getTime() + horizonDays * 86400_000;
  const dayMatch = (d: Date) => intervals.some((i) => (i.Month === undefined || i.Month === d.getMonth() + 1) && (i.Day === undefined || i.Day === d.getDate()) && (i.Weekday === undefined || i.Weekday % 7 === d.getDay()));
  while (t.getTime() <= end) {
    if (!dayMatch(t)) {
      t.setHours(0, 0, 0, 0);
      t.setDate(t.getDate() + 1);
      continue;
    }
    if (intervals.some((i) => (i.Month === undefined || i.Month === t.getMonth() + 1) && (i.Day === undefined || i.Day === t.getDate())
      && (i.Weekday === undefined || i.Weekday % 7 === t.getDay()) && (i.Hour === undefined || i.Hour === t.getHours()) && (i.Minute === undefined || i.Minute === t.getMinutes()))) {
      return new Date(t.getTime());
    }
    t.setMinutes(t.getMinutes() + 1);
  }
  return null;
}

export function listLaunchdAgents(): (InstalledSchedule & { label: string })[] {
  const dir = launchdDir();
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const out: (InstalledSchedule & { label: string })[] = [];
  for (const n of names.sort()) {
    const m = /^(.+\.jbackup\.(.+))\.plist$/.exec(n);
    if (!m) continue;
    const file = path.join(dir, n);
    let intervals: LaunchdInterval[] = [];
    try {
      const doc = parsePlist(readFileSync(file, 'utf8')) as { StartCalendarInterval?: LaunchdInterval | LaunchdInterval[] };
      const s = doc.StartCalendarInterval;
      intervals = s === undefined ? [] : Array.isArray(s) ? s : [s];
    } catch { /* unreadable: listed without a schedule */ }
    out.push({
      platform: 'launchd', profile: m[2]!, label: m[1]!, path: file, calendars: intervals.map((i) => JSON.stringify(i)), enabled: null,
      next: intervals.length ? launchdNext(intervals, new Date()) : null,
    });
  }
  return out;
}
