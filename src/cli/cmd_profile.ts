import type { Command } from 'commander';
import { UserError } from '../repo/errors.js';
import { Repository } from '../repo/repository.js';
import { openBackend, redactLocation } from '../backend/location.js';
import { describeSource, readPassword, storeInKeyring } from '../schedule/password.js';
import { describeProfile, initProfile, KEYRING_SERVICE, loadProfile, parseProfile, readProfilesFile, REMOTE_LOCATION_RE, type Profile } from '../schedule/profile.js';
import { profilesFile } from '../schedule/paths.js';
import { validateCalendars } from '../schedule/systemd.js';
import { launchdIntervals } from '../schedule/launchd.js';
import { defaultPlatform } from '../schedule/install.js';
import { stricterLimits } from '../backend/decorators/limits.js';
import { backendOptions, getPassword, type GlobalOpts } from './global.js';
import { setExitCode } from './exit.js';
import { existingTargets } from '../archiver/archiver.js';
import * as path from 'node:path';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** profile errors are the user's to fix: no stack, exit 1 */
export function userErrors<A extends unknown[]>(f: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
  return async (...a: A) => {
    try {
      await f(...a);
    } catch (e) {
      const n = (e as Error).name;
      if (['ProfileError', 'PasswordSourceError', 'CalendarError', 'ScheduleError'].includes(n)) throw new UserError((e as Error).message);
      throw e;
    }
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function register(program: Command, g: () => GlobalOpts): void {
  const prof = program.command('profile').description(`manage backup profiles (${profilesFile()})`);

  prof.command('init').description('add a commented example profile to the profiles file')
    .argument('<name>', 'profile name (letters, digits, "_", "-", ".")')
    .option('--repository <location>', 'repository of the new profile (or the global -r/--repo)')
    .option('--source <path>', 'path to back up (can be given several times)', collect, [])
    .addHelpText('after', '\nThe global --password-file, if given, becomes the profile\'s password-file.')
    .action(userErrors(async (name: string, o: { repository?: string; source: string[] }) => {
      const abs = (p: string) => (p.startsWith('~') ? p : path.resolve(p));
      const repository = o.repository ?? g().repo;
      const passwordFile = g().passwordFile;
      const file = initProfile(name, {
        repository: repository ? (REMOTE_LOCATION_RE.test(repository) && !repository.startsWith('local:') ? repository : abs(repository.replace(/^local:/, ''))) : undefined,
        sources: o.source.map(abs),
        passwordFile: passwordFile ? abs(passwordFile) : undefined,
      });
      process.stdout.write(`added profile "${name}" to ${file}\n\nnext:\n` +
        `  1. edit ${file} (repository, password source, sources, schedule, retention)\n` +
        `  2. jbackup profile check ${name}\n` +
        `  3. jbackup run ${name}              # a first run by hand\n` +
        `  4. jbackup schedule install ${name} # let the OS run it\n`);
    }));

  prof.command('list').description('list the profiles').action(userErrors(async () => {
    const f = readProfilesFile();
    if (!f.exists) { process.stdout.write(`no profiles file at ${f.path} (create one with "jbackup profile init NAME")\n`); return; }
    const rows: Record<string, unknown>[] = [];
    for (const [name, t] of f.raw) {
      try {
        const p = parseProfile(name, t, path.dirname(f.path));
        rows.push({ name, repository: redactLocation(p.repository), sources: p.sources, schedule: p.schedule?.calendars ?? null });
      } catch (e) {
        rows.push({ name, error: (e as Error).message });
      }
    }
    if (g().json) { process.stdout.write(`${JSON.stringify(rows)}\n`); return; }
    for (const r of rows) {
      if (r['error']) process.stdout.write(`${r['name']}  INVALID: ${r['error']}\n`);
      else process.stdout.write(`${r['name']}  ${r['repository']}  ${(r['sources'] as string[]).join(', ')}  schedule: ${(r['schedule'] as string[] | null)?.join('; ') ?? '-'}\n`);
    }
  }));

  prof.command('show').description('print a profile as jbackup understands it (validated)')
    .argument('<name>')
    .action(userErrors(async (name: string) => {
      const p = loadProfile(name);
      process.stdout.write(`${JSON.stringify(describeProfile(p), null, 2)}\n`);
    }));

  prof.command('path').description('print the path of the profiles file').action(() => {
    process.stdout.write(`${profilesFile()}\n`);
  });

  prof.command('check').description('validate a profile: schema, password source, schedule, and that the repository opens')
    .argument('<name>')
    .option('--no-repository', 'do not open the repository')
    .action(userErrors(async (name: string, o: { repository: boolean }) => {
      const p: Profile = loadProfile(name);
      const say = (s: string) => process.stdout.write(`${s}\n`);
      let failed = false;
      const item = async (what: string, f: () => Promise<string> | string) => {
        try {
          say(`ok      ${what}: ${await f()}`);
        } catch (e) {
          failed = true;
          say(`FAILED  ${what}: ${(e as Error).message}`);
        }
      };
      say(`profile "${name}" parses`);
      // a source that does not exist is skipped by every run (all of them: the run fails)
      await item('sources', () => {
        const missing: string[] = [];
        try { existingTargets(p.sources, (t) => missing.push(t)); } catch { /* all missing: reported below */ }
        if (missing.length > 0) {
          const all = missing.length === p.sources.length;
          throw new Error(`${missing.join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist (${all ? 'a run would fail' : 'a run skips it'})`);
        }
        return `${p.sources.length} exist`;
      });
      if (p.schedule) {
        await item('schedule', () => {
          if (defaultPlatform() === 'launchd') return `${launchdIntervals(p).length} launchd calendar interval(s)`;
          const v = validateCalendars(p.schedule!.calendars);
          return `${v.normalized.join('; ')} (checked by ${v.checkedBy})`;
        });
      } else say('-       schedule: none (jbackup schedule install needs one)');
      let password: Buffer | null = null;
      if (p.password) {
        await item('password', async () => { password = await readPassword(p.password!); return describeSource(p.password!); });
      } else say('-       password: no source in the profile (runs use JBACKUP_PASSWORD etc.; schedule install needs one)');
      if (o.repository && password) {
        await item('repository', async () => {
          const bo = backendOptions(g());
          const repo = await Repository.open(openBackend(p.repository, { ...bo, limits: stricterLimits(bo.limits, p.limits) }), password!, {});
          const n = (await repo.backend.list('snapshots')).length;
          return `${redactLocation(p.repository)} opens (${n} snapshot(s))`;
        });
      }
      if (failed) setExitCode(1);
    }));

  prof.command('set-password').description('store the repository password of a profile in the OS keyring (macOS Keychain, Linux Secret Service)')
    .argument('<name>')
    .action(userErrors(async (name: string) => {
      const p = loadProfile(name);
      const account = p.password?.kind === 'keyring' ? p.password.account : name;
      const service = p.password?.kind === 'keyring' ? p.password.service : KEYRING_SERVICE;
      let pw: string;
      if (!process.stdin.isTTY && process.env['JBACKUP_PASSWORD'] === undefined) pw = await readStdin();
      else pw = (await getPassword({ ...g(), passwordFile: undefined, passwordCommand: undefined }, { confirm: true, what: `profile ${name}` })).toString('utf8');
      if (pw === '') throw new UserError('an empty password is not allowed');
      await storeInKeyring(service, account, pw);
      process.stdout.write(`stored the password in the OS keyring (service "${service}", account "${account}")\n`);
      if (p.password?.kind !== 'keyring') process.stdout.write(`to use it, set password-keyring = true in profile "${name}" (and remove its other password source)\n`);
    }));
}
