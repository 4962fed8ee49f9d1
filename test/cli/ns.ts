/**
 * Running a command where a directory is mounted read-only or on a small tmpfs: a private mount
 * namespace (unshare -m, needs root). chmod does not stop root from writing, so this is how the
 * tests make a repository really read-only or a disk really full.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JBACKUP_BIN } from '../helpers/tools.js';

export interface NsResult { code: number; stdout: string; stderr: string }

function run(setup: string, dir: string, cmd: string[], env: Record<string, string>): NsResult {
  const script = `${setup} || exit 97; shift; exec "$@"`;
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', dir, ...cmd],
    { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

const RO = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1"';

/** `cmd` with `dir` read-only (bind-mounted on itself, remounted ro) */
export function readOnly(dir: string, cmd: string[], env: Record<string, string> = {}): NsResult {
  return run(RO, dir, cmd, env);
}
export function jbackupReadOnly(dir: string, args: string[], env: Record<string, string> = {}): NsResult {
  return readOnly(dir, [process.execPath, JBACKUP_BIN, ...args], env);
}
/** `cmd` with a tmpfs of `size` (mount's syntax: 2m) mounted on `dir` */
export function onTmpfs(dir: string, size: string, cmd: string[], env: Record<string, string> = {}): NsResult {
  return run(`mount -t tmpfs -o size=${size} tmpfs "$1"`, dir, cmd, env);
}

/** whether this machine lets us make mount namespaces (root, unshare present) */
export const namespacesWork: boolean = (() => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'jbackup-ns-'));
  try {
    return readOnly(d, ['sh', '-c', `! touch ${JSON.stringify(path.join(d, 'x'))} 2>/dev/null`]).code === 0;
  } catch {
    return false;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
})();
