import type { Command } from 'commander';
import { runProfile } from '../schedule/run.js';
import { backendOptions, getPassword, lockOptions, type GlobalOpts } from './global.js';
import { setExitCode } from './exit.js';
import { userErrors } from './cmd_profile.js';
import { resticTimeFormat } from '../format/gotime.js';
import { kdfThreadsFromEnv } from './envopts.js';

function stamp(): string {
  return resticTimeFormat(new Date());
}

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('run').description('run a profile: snapshot, forget per its retention policy, prune and check when due, hooks')
    .argument('<profile>', 'profile name (see "jbackup profile list")')
    .addHelpText('after', '\nExit codes: 0 ok, 1 failed, 3 snapshot saved but some files were unreadable, 10 no repository,\n' +
      '11 the repository is locked or the profile is already running, 12 wrong password, 130 interrupted.\n' +
      'The status record of the run is shown by "jbackup schedule status".')
    .action(userErrors(async (name: string) => {
      const opts = g();
      const quiet = !!opts.quiet || !!opts.json;
      const out = await runProfile(name, {
        log: (s) => { if (!quiet) process.stdout.write(`${stamp()} ${name}: ${s}\n`); },
        fallbackPassword: () => getPassword(opts),
        held: lockOptions(opts).held,
        keyHint: opts.keyHint ?? process.env['JBACKUP_KEY_HINT'],
        backend: backendOptions(opts),
        kdfThreads: kdfThreadsFromEnv(),
      });
      if (!out.status) {
        process.stderr.write(`Fatal: ${out.message}\n`);
      } else {
        if (opts.json) process.stdout.write(`${JSON.stringify(out.status)}\n`);
        if (out.status.result === 'failed') process.stderr.write(`Fatal: ${out.status.errors[0] ?? 'run failed'}\n`);
        else if (out.status.result === 'partial') process.stderr.write('Warning: at least one source file could not be read\n');
      }
      setExitCode(out.exitCode);
    }));
}
