import { Option, type Command } from 'commander';
import { UserError } from '../repo/errors.js';
import { defaultPlatform, installSchedule, listLaunchdAgents, listSystemdUnits, removeSchedule, type InstalledSchedule, type Platform } from '../schedule/install.js';
import { loadProfile, readProfilesFile, PROFILE_NAME_RE } from '../schedule/profile.js';
import { listStatusProfiles, readStatus, runningHolder, statusFile } from '../schedule/status.js';
import type { GlobalOpts } from './global.js';
import { formatBytes } from './progress.js';
import { userErrors } from './cmd_profile.js';
import { goLocalTime } from '../format/gotime.js';

interface PlatformOpts { platform?: Platform; dryRun?: boolean; enable: boolean }

const platformOption = () => new Option('--platform <platform>', 'service manager to generate for (default: this OS\'s)').choices(['systemd', 'launchd']);

function localTime(iso: string | undefined | null): string {
  return iso ? goLocalTime(iso) : '-';
}

function installed(): InstalledSchedule[] {
  return [...listSystemdUnits(), ...listLaunchdAgents()];
}

export function register(program: Command, g: () => GlobalOpts): void {
  const sched = program.command('schedule').description('let the OS run profiles: systemd user timers (Linux), launchd agents (macOS)');

  sched.command('install').description('write (and enable) the timer or agent that runs "jbackup run PROFILE" on the profile\'s schedule')
    .argument('<profile>')
    .option('-n, --dry-run', 'print what would be written, write nothing')
    .addOption(platformOption())
    .option('--no-enable', 'write the files but do not enable/load them')
    .action(userErrors(async (name: string, o: PlatformOpts) => {
      const p = loadProfile(name);
      const platform = o.platform ?? defaultPlatform();
      if (platform !== defaultPlatform() && !o.dryRun) process.stdout.write(`note: generating ${platform} files on ${process.platform}; they are written but not activated\n`);
      installSchedule(p, { platform, dryRun: !!o.dryRun, enable: o.enable, out: (s) => process.stdout.write(`${s}\n`) });
    }));

  sched.command('remove').description('disable and delete the timer or agent of a profile')
    .argument('<profile>')
    .option('-n, --dry-run', 'print what would be removed')
    .addOption(platformOption())
    .option('--no-enable', 'only delete the files, do not talk to the service manager')
    .action(userErrors(async (name: string, o: PlatformOpts) => {
      if (!PROFILE_NAME_RE.test(name)) throw new UserError(`invalid profile name "${name}"`);
      removeSchedule(name, { platform: o.platform ?? defaultPlatform(), dryRun: !!o.dryRun, enable: o.enable, out: (s) => process.stdout.write(`${s}\n`) });
    }));

  sched.command('list').description('list installed jbackup timers and agents').action(userErrors(async () => {
    const all = installed();
    if (g().json) {
      process.stdout.write(`${JSON.stringify(all.map((s) => ({ ...s, next: s.next?.toISOString() ?? null })))}\n`);
      return;
    }
    if (all.length === 0) { process.stdout.write('no jbackup schedules installed (jbackup schedule install PROFILE)\n'); return; }
    for (const s of all) {
      const state = s.enabled === null ? '' : s.enabled ? ' enabled' : ' not enabled';
      const when = s.platform === 'systemd' ? s.calendars.join('; ') : `${s.calendars.length} calendar interval(s)`;
      process.stdout.write(`${s.profile}  ${s.platform}${state}  ${when}  next: ${s.next ? localTime(s.next.toISOString()) : '-'}  ${s.path}\n`);
    }
  }));

  sched.command('status').description('show the last run of each profile (or one): result, snapshot, bytes added, errors')
    .argument('[profile]')
    .action(userErrors(async (name: string | undefined) => {
      let names: string[];
      if (name) {
        if (!PROFILE_NAME_RE.test(name)) throw new UserError(`invalid profile name "${name}"`);
        names = [name];
      } else {
        let fromFile: string[] = [];
        try { fromFile = [...readProfilesFile().raw.keys()]; } catch { /* a broken file still shows records */ }
        names = [...new Set([...fromFile, ...listStatusProfiles()])].sort();
      }
      const inst = installed();
      const rows = names.map((n) => {
        const holder = runningHolder(n);
        return {
          profile: n,
          running: holder ? { pid: holder.pid, since: holder.started } : null,
          status: readStatus(n),
          statusFile: statusFile(n),
          schedules: inst.filter((s) => s.profile === n).map((s) => ({ platform: s.platform, path: s.path, enabled: s.enabled, next: s.next?.toISOString() ?? null })),
        };
      });
      if (g().json) { process.stdout.write(`${JSON.stringify(name ? rows[0] : rows)}\n`); return; }
      if (rows.length === 0) { process.stdout.write('no profiles and no runs yet\n'); return; }
      const w = (s: string) => process.stdout.write(`${s}\n`);
      for (const r of rows) {
        const st = r.status;
        if (!st) w(`${r.profile}: never run`);
        else {
          const result = st.result === 'running' && !r.running ? 'running (no live process: it was killed)' : st.result;
          w(`${r.profile}: ${result}${st.exitCode !== undefined ? ` (exit ${st.exitCode})` : ''}`);
          w(`  last run:   ${localTime(st.start)} → ${localTime(st.end)}${st.durationSeconds !== undefined ? ` (${st.durationSeconds.toFixed(1)} s)` : ''}`);
          if (st.snapshotId) w(`  snapshot:   ${st.snapshotId.slice(0, 8)}, ${formatBytes(st.bytesAdded ?? 0)} added (${st.filesNew ?? 0} new, ${st.filesChanged ?? 0} changed, ${st.filesUnmodified ?? 0} unmodified files)`);
          if (st.snapshotsRemoved !== undefined) w(`  retention:  ${st.snapshotsRemoved} snapshot(s) removed`);
          w(`  prune:      ${st.pruned ? 'ran this time' : 'not this time'}, last ${localTime(st.lastPrune)}`);
          w(`  check:      ${st.checked ? 'ran this time' : 'not this time'}, last ok ${localTime(st.lastCheck)}`);
          for (const [i, e] of st.errors.entries()) w(`  ${i === 0 ? 'errors:    ' : '           '} ${e}`);
        }
        if (r.running) w(`  running:    PID ${r.running.pid} since ${localTime(r.running.since)}`);
        for (const s of r.schedules) w(`  schedule:   ${s.platform}${s.enabled === null ? '' : s.enabled ? ' (enabled)' : ' (not enabled)'}, next ${localTime(s.next)}  ${s.path}`);
        if (r.schedules.length === 0) w('  schedule:   none installed');
      }
    }));
}
