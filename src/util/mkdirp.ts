/**
 * Create a directory and its missing parents, failing at once with the real reason. Node's
 * `mkdir(…, { recursive: true })` loops forever where mkdir keeps answering ENOENT although the parent
 * exists (/proc/nope: 95% CPU, never returns), and on a read-only filesystem reports ENOENT for the
 * leaf instead of the EROFS of the first directory it could not create. Here each level is tried once:
 * the error thrown is the one of the directory that could not be made, and carries its path.
 */
import { mkdirSync, statSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

function notADirectory(dir: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`ENOTDIR: not a directory, mkdir '${dir}'`);
  e.code = 'ENOTDIR';
  e.syscall = 'mkdir';
  e.path = dir;
  return e;
}

export async function mkdirp(dir: string, mode = 0o777): Promise<void> {
  try {
    await fsp.mkdir(dir, { mode });
    return;
  } catch (e) {
    if (code(e) === 'EEXIST') {
      if ((await fsp.stat(dir)).isDirectory()) return;
      throw notADirectory(dir);
    }
    const parent = path.dirname(dir);
    if (code(e) !== 'ENOENT' || parent === dir) throw e;
  }
  await mkdirp(path.dirname(dir), mode);
  // once more only: an ENOENT now (the parent exists) is the answer
  try {
    await fsp.mkdir(dir, { mode });
  } catch (e) {
    if (code(e) !== 'EEXIST') throw e;
    if (!(await fsp.stat(dir)).isDirectory()) throw notADirectory(dir);
  }
}

export function mkdirpSync(dir: string, mode = 0o777): void {
  try {
    mkdirSync(dir, { mode });
    return;
  } catch (e) {
    if (code(e) === 'EEXIST') {
      if (statSync(dir).isDirectory()) return;
      throw notADirectory(dir);
    }
    const parent = path.dirname(dir);
    if (code(e) !== 'ENOENT' || parent === dir) throw e;
  }
  mkdirpSync(path.dirname(dir), mode);
  try {
    mkdirSync(dir, { mode });
  } catch (e) {
    if (code(e) !== 'EEXIST') throw e;
    if (!statSync(dir).isDirectory()) throw notADirectory(dir);
  }
}
