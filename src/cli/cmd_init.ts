import type { Command } from 'commander';
import { openBackend, redactLocation } from '../backend/location.js';
import { initRepository } from '../ops/repository.js';
import { backendOptions, getPassword, rememberKdf, repoLocation, repoOptions, type GlobalOpts } from './global.js';

export function register(program: Command, g: () => GlobalOpts): void {
  program.command('init').description('initialize a new repository').action(async () => {
    const opts = g();
    const spec = repoLocation(opts);
    const loc = redactLocation(spec);
    const backend = openBackend(spec, backendOptions(opts));
    const password = await getPassword(opts, { confirm: true, what: 'new repository' });
    const repo = await initRepository(backend, password, { ...repoOptions(opts), name: loc });
    rememberKdf(spec, repo);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ message_type: 'initialized', id: repo.config.id, repository: loc })}\n`);
    } else if (!opts.quiet) {
      process.stdout.write(`created jbackup repository ${repo.config.id.slice(0, 10)} at ${loc}\n\nPlease note that knowledge of your password is required to access\nthe repository. Losing your password means that your data is\nirrecoverably lost.\n`);
    }
  });
}
