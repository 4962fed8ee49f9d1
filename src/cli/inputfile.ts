/** Reading a file named by a flag (--files-from, --exclude-file), which may be a pipe. */
import { promises as fsp, openSync, fstatSync, closeSync, constants as fsc } from 'node:fs';
import * as net from 'node:net';
import { UserError } from '../repo/errors.js';
import { describeSystemError } from '../util/syserr.js';

/**
 * The whole content of `file`, named by `flag` in errors. A FIFO (`--files-from <(find …)` gives
 * bash's /dev/fd/63, a pipe) is opened non-blocking and read through the event loop: a blocking
 * open or read would hold a thread-pool thread that process.exit waits for, so Ctrl-C would hang.
 * Opened non-blocking, a named FIFO without a writer yet is read once one appears (as restic waits).
 */
export async function readInputFile(file: string, flag: string): Promise<string> {
  const fail = (e: unknown): never => {
    throw new UserError(`${flag} ${file}: ${describeSystemError(e)}`);
  };
  let fd: number;
  try {
    fd = openSync(file, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (e) {
    return fail(e);
  }
  let pipe = false;
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) { closeSync(fd); return fail(Object.assign(new Error('is a directory'), { code: 'EISDIR' })); }
    pipe = st.isFIFO() || st.isSocket();
  } catch (e) {
    closeSync(fd);
    return fail(e);
  }
  if (!pipe) {
    closeSync(fd);
    // a regular file (or a device): read in the thread pool; O_NONBLOCK means nothing for these
    try {
      return await fsp.readFile(file, 'utf8');
    } catch (e) {
      return fail(e);
    }
  }
  const sock = new net.Socket({ fd, readable: true, writable: false });
  const parts: Buffer[] = [];
  sock.on('data', (d: Buffer) => parts.push(d));
  try {
    await new Promise<void>((resolve, reject) => { sock.on('end', resolve); sock.on('error', reject); });
  } catch (e) {
    return fail(e);
  } finally {
    sock.destroy();
  }
  return Buffer.concat(parts).toString('utf8');
}
