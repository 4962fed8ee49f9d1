/** `jbackup serve`: the repository's snapshots over HTTP (WebDAV and a web page), until Ctrl-C. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { serve, type ServeHandle, type ServeOptions } from '../ops/serve.js';
import { UserError } from '../repo/errors.js';
import { stateDir } from '../util/paths.js';
import { formatSystemError, isSystemError } from '../util/syserr.js';
import { lockOptions, openRepo, passwordFile, type GlobalOpts } from './global.js';

export interface ServeFlags {
  listen: string;
  tokenFile?: string;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

export function addServeFlags(c: Command): Command {
  return c
    .option('--listen <host:port>', 'address to listen on (port 0: a free one); other than loopback needs --tls', '127.0.0.1:0')
    .option('--token-file <file>', 'read the access password (Basic auth, ?token=) from this file instead of a random one per run (--password-file is the repository\'s)')
    .option('--tls', 'serve HTTPS with a self-signed certificate kept in the state directory (or --tls-cert/--tls-key)')
    .option('--tls-cert <file>', 'HTTPS with this PEM certificate (with --tls-key)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert');
}

function readPem(flag: string, f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch (e) {
    throw new UserError(`${flag}: ${isSystemError(e) ? formatSystemError(e) : (e as Error).message}`);
  }
}

/** the operation's options from the flags */
export function serveOptions(f: ServeFlags, g: GlobalOpts): ServeOptions {
  if (!!f.tlsCert !== !!f.tlsKey) throw new UserError('--tls-cert and --tls-key go together');
  const tls: ServeOptions['tls'] = f.tlsCert
    ? { cert: readPem('--tls-cert', f.tlsCert), key: readPem('--tls-key', f.tlsKey!) }
    : f.tls ? { selfSignedDir: path.join(stateDir(), 'serve-tls') } : undefined;
  return {
    ...lockOptions(g),
    listen: f.listen,
    ...(f.tokenFile ? { token: passwordFile(f.tokenFile).toString('utf8') } : {}),
    ...(tls ? { tls } : {}),
    ...((g.verbose ?? 0) >= 1 ? { log: (m: string) => { process.stderr.write(`${m}\n`); } } : {}),
  };
}

/**
 * Wait for SIGINT/SIGTERM; the CLI's own handlers (release locks, exit 130) are replaced, since
 * stopping is how serve ends normally (exit 0). A second signal ends the process at once.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(s);
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
}

export function describeServer(h: ServeHandle, repo: string): string {
  return [
    `serving ${repo} read-only at ${h.url}`,
    `  WebDAV: user ${h.username}, password ${h.password}`,
    `  browser: ${h.browserUrl}`,
    ...(h.certFile ? [`  TLS certificate (self-signed${h.certCreated ? ', new' : ''}): ${h.certFile}`] : []),
    '',
  ].join('\n');
}

export function register(program: Command, g: () => GlobalOpts): void {
  addServeFlags(program.command('serve').description('browse the snapshots over WebDAV and in a browser (read-only), until Ctrl-C'))
    .action(async (f: ServeFlags) => {
      const opts = g();
      const o = serveOptions(f, opts);
      const repo = await openRepo(opts);
      const h = await serve(repo, o);
      const stop = untilSignal();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ url: h.url, username: h.username, password: h.password, browserUrl: h.browserUrl })}\n`);
        if (h.certFile) process.stderr.write(`TLS certificate (self-signed): ${h.certFile}\n`);
      } else {
        process.stdout.write(`${describeServer(h, opts.repo ?? process.env['JBACKUP_REPOSITORY'] ?? '')}press Ctrl-C to stop\n`);
      }
      const sig = await stop;
      if (!opts.json && !opts.quiet) process.stderr.write(`\n${sig} received, stopping\n`);
      await h.close();
      await repo.backend.close();
    });
}
