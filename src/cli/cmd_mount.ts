/**
 * `jbackup mount MOUNTPOINT`: serve, then mount the server with the OS's WebDAV client; Ctrl-C (or
 * SIGTERM) unmounts and stops. Stays in the foreground, as `restic mount` does (`--foreground` is
 * accepted for scripts written for davfs-style tools). Where the machine cannot mount (no davfs2, not
 * root), it says why and keeps serving, printing the dav:// URL for a file manager.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { CannotMount, davUrl, mountWebdav, type Mounted } from '../ops/mount.js';
import { serve } from '../ops/serve.js';
import { addServeFlags, describeServer, serveOptions, untilSignal, type ServeFlags } from './cmd_serve.js';
import { openRepo, type GlobalOpts } from './global.js';

export function register(program: Command, g: () => GlobalOpts): void {
  addServeFlags(program.command('mount').description('mount the repository\'s snapshots read-only with the OS\'s WebDAV client (davfs2, mount_webdav), until Ctrl-C')
    .argument('<mountpoint>'))
    .option('--foreground', 'stay in the foreground until Ctrl-C (the default, as restic mount)')
    .option('--allow-other', 'let other users read the mounted files')
    .action(async (mountpoint: string, f: ServeFlags & { allowOther?: boolean; foreground?: boolean }) => {
      const opts = g();
      const o = serveOptions(f, opts);
      const repo = await openRepo(opts);
      const h = await serve(repo, o);
      const stop = untilSignal();
      let m: Mounted | null = null;
      try {
        m = await mountWebdav({
          url: h.url, username: h.username, password: h.password, mountpoint: path.resolve(mountpoint),
          ...(f.allowOther ? { allowOther: true } : {}), ...(h.certFile ? { certFile: h.certFile } : {}),
        });
        process.stdout.write(opts.json
          ? `${JSON.stringify({ url: h.url, username: h.username, password: h.password, browserUrl: h.browserUrl, mountpoint: path.resolve(mountpoint) })}\n`
          : `mounted at ${path.resolve(mountpoint)} with ${m.how}\n${describeServer(h, opts.repo ?? '')}press Ctrl-C to unmount\n`);
      } catch (e) {
        if (!(e instanceof CannotMount)) { await h.close(); throw e; }
        process.stderr.write(`cannot mount: ${e.message}\n`);
        process.stdout.write(opts.json
          ? `${JSON.stringify({ url: h.url, username: h.username, password: h.password, browserUrl: h.browserUrl, davUrl: davUrl(h.url) })}\n`
          : `${describeServer(h, opts.repo ?? '')}  file manager: ${davUrl(h.url)}\npress Ctrl-C to stop\n`);
      }
      await stop;
      try {
        await m?.unmount();
      } finally {
        await h.close();
        await repo.backend.close();
      }
    });
}
