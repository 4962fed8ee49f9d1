/** Filesystem helpers shared by the local backend and its pack writer thread. */
import { promises as fsp } from 'node:fs';

/** read-back slice when verifying a written file */
export const VERIFY_READ = 2 * 1024 * 1024;

export function isENOENT(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** fsync a directory (after a link or rename in it), where the filesystem allows it */
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename itself is still atomic
  } finally {
    await fh?.close();
  }
}
