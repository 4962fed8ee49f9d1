/**
 * Mounting a running `serve` with the operating system's own WebDAV client, no kernel extension:
 * macOS `mount_webdav` (Finder shows a volume), Linux davfs2 (`mount.davfs`, FUSE or Coda, as root).
 * The credentials never appear on a command line: mount_webdav reads them from a descriptor of a
 * 0600 file (`-a <fd>`: native-endian int length, user name, int length, password; it zeroes the
 * file), mount.davfs from a `secrets` file (0600) named by a private configuration file (`-o conf=`).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsc, mkdtempSync, openSync, closeSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../repo/errors.js';

export interface MountOptions {
  url: string;
  username: string;
  password: string;
  mountpoint: string;
  /** let other users read the mount (davfs2: file/dir modes 0444/0555 instead of 0400/0500 for the owner) */
  allowOther?: boolean;
  /** the server's self-signed certificate (davfs2 trusts it explicitly) */
  certFile?: string;
}

export interface Mounted {
  /** how it was mounted, for the message */
  how: string;
  unmount(): Promise<void>;
}

/** why this machine cannot mount (with what to do instead), or null */
export class CannotMount extends UserError {}

function findProgram(name: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/sbin', '/usr/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try {
      accessSync(p, fsc.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function run(cmd: string, args: string[], o: { stdio?: ('ignore' | 'pipe' | number)[] } = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: o.stdio ?? ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 1, stderr: err.trim() }));
  });
}

/** davfs2's configuration syntax: blanks, "#", quotes and backslashes escaped with a backslash */
const davfsEscape = (s: string) => s.replace(/[\\\s#"]/g, (c) => `\\${c}`);

/** the URL a file manager opens instead (GNOME Files, KDE Dolphin: dav:// / davs://) */
export function davUrl(url: string): string {
  return url.replace(/^http(s?):\/\//, (_m, s: string) => `dav${s}://`);
}

async function mountDavfs(o: MountOptions): Promise<Mounted> {
  const prog = findProgram('mount.davfs');
  if (!prog) throw new CannotMount(`davfs2 is not installed (apt install davfs2); open ${davUrl(o.url)} in your file manager instead`);
  if (process.getuid?.() !== 0) throw new CannotMount(`mount.davfs needs root here (sudo jbackup mount …, or an fstab entry for the user); open ${davUrl(o.url)} in your file manager instead`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jbackup-davfs-'));
  const secrets = path.join(dir, 'secrets');
  const conf = path.join(dir, 'davfs2.conf');
  const uid = Number(process.env['SUDO_UID'] ?? 0);
  const gid = Number(process.env['SUDO_GID'] ?? 0);
  try {
    writeFileSync(secrets, `${davfsEscape(o.url)} ${davfsEscape(o.username)} ${davfsEscape(o.password)}\n`, { mode: 0o600 });
    writeFileSync(conf, [
      `secrets ${davfsEscape(secrets)}`,
      'use_locks 0',
      // Linux 6.16+ FUSE refuses davfs2's default 16 KiB readdir buffer ("reading directory: Invalid
      // argument", alisarctl/davfs2#22); 64 KiB works on old and new kernels
      'buf_size 64',
      // the server is on this machine and read-only: no need to check back for changes often
      'gui_optimize 1',
      ...(o.certFile ? [`trust_server_cert ${davfsEscape(o.certFile)}`] : []),
      '',
    ].join('\n'), { mode: 0o600 });
    const modes = o.allowOther ? 'file_mode=0444,dir_mode=0555' : 'file_mode=0400,dir_mode=0500';
    const r = await run(prog, [o.url, o.mountpoint, '-o', `ro,conf=${conf},uid=${uid},gid=${gid},${modes}`]);
    if (r.code !== 0) throw new UserError(`mount.davfs failed (exit ${r.code}): ${r.stderr.split('\n').pop() ?? ''}`);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    how: `davfs2 (${prog})`,
    unmount: async () => {
      try {
        const r = await run(findProgram('umount') ?? 'umount', [o.mountpoint]);
        if (r.code !== 0) throw new UserError(`umount ${o.mountpoint} failed: ${r.stderr}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

async function mountMac(o: MountOptions): Promise<Mounted> {
  const prog = findProgram('mount_webdav');
  if (!prog) throw new CannotMount(`mount_webdav was not found; in Finder use Go → Connect to Server… with ${o.url}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jbackup-webdav-'));
  const file = path.join(dir, 'auth');
  const u = Buffer.from(o.username);
  const p = Buffer.from(o.password);
  const b = Buffer.alloc(8 + u.length + p.length);
  b.writeInt32LE(u.length, 0);
  u.copy(b, 4);
  b.writeInt32LE(p.length, 4 + u.length);
  p.copy(b, 8 + u.length);
  writeFileSync(file, b, { mode: 0o600 });
  const fd = openSync(file, 'r+');
  try {
    const r = await run(prog, ['-S', '-a', '3', '-o', 'rdonly', o.url, o.mountpoint], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    if (r.code !== 0) throw new UserError(`mount_webdav failed (exit ${r.code}): ${r.stderr}`);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    how: `mount_webdav (${prog})`,
    unmount: async () => {
      const r = await run('/sbin/umount', [o.mountpoint]);
      if (r.code !== 0) throw new UserError(`umount ${o.mountpoint} failed: ${r.stderr}`);
    },
  };
}

export async function mountWebdav(o: MountOptions): Promise<Mounted> {
  if (!existsSync(o.mountpoint) || !statSync(o.mountpoint).isDirectory()) throw new UserError(`mount point ${o.mountpoint} is not a directory`);
  if (process.platform === 'darwin') return mountMac(o);
  if (process.platform === 'linux') return mountDavfs(o);
  throw new CannotMount(`no WebDAV mount on ${process.platform}: open ${o.url} in the file manager (Windows: Map network drive) instead`);
}
