/**
 * `jbackup mount MOUNTPOINT`: serve, then mount the server with the OS's WebDAV client. With
 * `--foreground` it stays until Ctrl-C (or SIGTERM), which unmounts and stops, as `restic mount`
 * does. Without it, it runs itself again in the background (`--foreground`, detached; the password
 * handed over on a pipe) and returns once mounted; that server stops when the mount goes away
 * (`umount MOUNTPOINT`). Where the machine cannot mount (no davfs2, not root), it says why and keeps
 * serving in the foreground, printing the dav:// URL for a file manager.
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { CannotMount, davUrl, mountWebdav, type Mounted } from '../ops/mount.js';
import { serve } from '../ops/serve.js';
import { UserError } from '../repo/errors.js';
import { addServeFlags, describeServer, serveOptions, untilSignal, type ServeFlags } from './cmd_serve.js';
import { getPassword, openRepo, type GlobalOpts } from './global.js';

type MountFlags = ServeFlags & { allowOther?: boolean; foreground?: boolean };

/** resolves when `dir` is no longer a mount point (its device is its parent's again), checked every 2 s */
function untilUnmounted(dir: string): { done: Promise<void>; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    timer = setInterval(() => {
      try {
        if (statSync(dir).dev === statSync(path.dirname(dir)).dev) resolve();
      } catch {
        // a hung or vanished mount: keep serving until told otherwise
      }
    }, 2000);
  });
  return { done, stop: () => clearInterval(timer) };
}

/** run `mount … --foreground` detached and return once it has mounted (or failed) */
async function background(opts: GlobalOpts, mnt: string): Promise<void> {
  const pw = await getPassword(opts);
  const args = [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), '--foreground', '--json'];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
  child.stdin!.end(Buffer.concat([pw, Buffer.from('\n')]));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const line = await new Promise<string | null>((resolve) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('close', () => resolve(null));
  });
  if (line === null) throw new UserError(err.trim().replace(/^Fatal: /, '') || 'the background server ended before it mounted');
  const j = JSON.parse(line) as { url: string; username: string; password: string; browserUrl: string; mountpoint?: string };
  if (!j.mountpoint) {
    child.kill('SIGTERM');
    throw new UserError(err.trim().replace(/^cannot mount: /, '') || 'could not mount');
  }
  child.unref();
  child.stdout!.destroy();
  child.stderr!.destroy();
  process.stdout.write(opts.json
    ? `${line}\n`
    : `mounted at ${mnt} (server pid ${child.pid}, ${j.url}, user ${j.username}, password ${j.password})\nunmount with: umount ${mnt}\n`);
}

export function register(program: Command, g: () => GlobalOpts): void {
  addServeFlags(program.command('mount').description('mount the repository\'s snapshots read-only with the OS\'s WebDAV client (davfs2, mount_webdav)')
    .argument('<mountpoint>'))
    .option('--foreground', 'stay in the foreground until Ctrl-C, then unmount (default: return once mounted; umount stops the server)')
    .option('--allow-other', 'let other users read the mounted files')
    .action(async (mountpoint: string, f: MountFlags) => {
      const opts = g();
      const mnt = path.resolve(mountpoint);
      const o = serveOptions(f, opts);
      if (!f.foreground) return background(opts, mnt);
      const repo = await openRepo(opts);
      const h = await serve(repo, o);
      const signal = untilSignal();
      let m: Mounted | null = null;
      let watch: ReturnType<typeof untilUnmounted> | null = null;
      try {
        m = await mountWebdav({
          url: h.url, username: h.username, password: h.password, mountpoint: mnt,
          ...(f.allowOther ? { allowOther: true } : {}), ...(h.certFile ? { certFile: h.certFile } : {}),
        });
        watch = untilUnmounted(mnt);
        process.stdout.write(opts.json
          ? `${JSON.stringify({ url: h.url, username: h.username, password: h.password, browserUrl: h.browserUrl, mountpoint: mnt })}\n`
          : `mounted at ${mnt} with ${m.how}\n${describeServer(h, opts.repo ?? '')}press Ctrl-C to unmount\n`);
      } catch (e) {
        if (!(e instanceof CannotMount)) { await h.close(); throw e; }
        process.stderr.write(`cannot mount: ${e.message}\n`);
        process.stdout.write(opts.json
          ? `${JSON.stringify({ url: h.url, username: h.username, password: h.password, browserUrl: h.browserUrl, davUrl: davUrl(h.url) })}\n`
          : `${describeServer(h, opts.repo ?? '')}  file manager: ${davUrl(h.url)}\npress Ctrl-C to stop\n`);
      }
      const how = await Promise.race([signal.then(() => 'signal' as const), ...(watch ? [watch.done.then(() => 'unmounted' as const)] : [])]);
      watch?.stop();
      try {
        if (how === 'signal') await m?.unmount();
      } finally {
        await h.close();
        await repo.backend.close();
      }
    });
}
