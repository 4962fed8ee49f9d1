/**
 * scrypt for key files, with an early start: key derivation is the slowest step of opening a
 * repository (~0.5 s, as restic calibrates it), so the launcher may start it for the likely
 * password and key files before the rest of jbackup has loaded (src/cli/early.ts). A later
 * derivation with the same password, salt and parameters takes that result (once; it is not kept).
 */
import { createHash, scrypt as scryptCb } from 'node:crypto';

export interface KdfParams { N: number; r: number; p: number }

const started = new Map<string, Promise<Buffer>>();

function cacheKey(password: Buffer, salt: Buffer, k: KdfParams): string {
  return createHash('sha256').update(`${k.N},${k.r},${k.p},${salt.length},`).update(salt).update(password).digest('hex');
}

function derive(password: Buffer, salt: Buffer, k: KdfParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, 64, { N: k.N, r: k.r, p: k.p, maxmem: 256 * k.N * k.r + 64 * 1024 * 1024 }, (err, out) =>
      err ? reject(err) : resolve(out));
  });
}

/** start deriving in the background (the thread pool); errors are left to the real call */
export function scryptEarly(password: Buffer, salt: Buffer, k: KdfParams): void {
  const key = cacheKey(password, salt, k);
  if (started.has(key)) return;
  const p = derive(password, salt, k);
  p.catch(() => {});
  started.set(key, p);
}

export function scrypt(password: Buffer, salt: Buffer, k: KdfParams): Promise<Buffer> {
  if (started.size > 0) {
    const key = cacheKey(password, salt, k);
    const p = started.get(key);
    if (p) {
      started.delete(key);
      return p;
    }
  }
  return derive(password, salt, k);
}
