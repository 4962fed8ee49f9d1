/**
 * scrypt for key files, with an early start: key derivation is the slowest step of opening a
 * repository (~0.5 s, as restic calibrates it), so the launcher may start it for the likely
 * password and key files before the rest of jbackup has loaded (src/cli/early.ts). A later
 * derivation with the same password, salt and parameters takes that result (once; it is not kept).
 */
import { createHash, pbkdf2Sync, scrypt as scryptCb } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { nativeScryptMix } from '../native/native.js';

export interface KdfParams { N: number; r: number; p: number }

/** the salt (base64) and parameters of the key that opened a repository: what the CLI keeps as a KDF hint */
export interface KdfHint extends KdfParams { salt: string }

/**
 * scrypt parameters a key file may ask for: N a power of two and 128·N·r at most 256 MiB of memory
 * (restic calibrates within ~60 MiB, rustic's default takes 128 MiB), p at most 1024 and
 * 128·N·r·p (the work) at most 16 GiB, ~85× restic's default; its calibration gives p in single digits.
 * More is a memory or time bomb, not a key.
 */
export function checkKdfParams(k: { N?: unknown; r?: unknown; p?: unknown }): void {
  const { N, r, p } = k;
  const int = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);
  const ok = int(N) && int(r) && int(p) && N > 1 && N <= 2 ** 24 && (N & (N - 1)) === 0
    && r >= 1 && p >= 1 && p <= 1024 && 128 * N * r <= 2 ** 28 && 128 * N * r * p <= 2 ** 34;
  if (!ok) throw new Error(`invalid scrypt parameters N=${String(N)}, r=${String(r)}, p=${String(p)} (N must be a power of two > 1, 128·N·r at most 256 MiB, p at most 1024, 128·N·r·p at most 16 GiB)`);
}

const started = new Map<string, Promise<Buffer>>();

function cacheKey(password: Buffer, salt: Buffer, k: KdfParams): string {
  return createHash('sha256').update(`${k.N},${k.r},${k.p},${salt.length},`).update(salt).update(password).digest('hex');
}

/** lanes derived at a time: what the caller asked for (1 or 2), on as many cores as there are */
function kdfThreads(asked: number): number {
  return asked >= 2 && availableParallelism() > 1 ? 2 : 1;
}

/**
 * scrypt = PBKDF2(P, SMix(PBKDF2(P, S, 1, p·128·r)), 1, 64) over p independent lanes. With the native
 * addon SMix is SSE2 code (~0.41 s instead of OpenSSL's ~0.5 s for restic's N=2^15, r=8, p=6), one
 * lane after the other. threads = 2 (the CLI: JBACKUP_KDF_THREADS=2) runs two lanes at a time on two cores (~0.23 s, but
 * each lane needs its own 128·N·r-byte table: 32 MiB more while the key is derived, which made the
 * peak RSS of an unchanged re-run 1.75× restic's instead of 1.4×). node:crypto's scrypt otherwise.
 */
function derive(password: Buffer, salt: Buffer, k: KdfParams, threads: number): Promise<Buffer> {
  const mix = nativeScryptMix;
  if (mix && k.p >= 1 && k.r >= 1 && k.N >= 2 && (k.N & (k.N - 1)) === 0) {
    return new Promise((resolve, reject) => {
      const b = pbkdf2Sync(password, salt, 1, k.p * 128 * k.r, 'sha256');
      mix(b, k.N, k.r, (err) => (err ? reject(err) : resolve(pbkdf2Sync(password, b, 1, 64, 'sha256'))), kdfThreads(threads));
    });
  }
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, 64, { N: k.N, r: k.r, p: k.p, maxmem: 256 * k.N * k.r + 64 * 1024 * 1024 }, (err, out) =>
      err ? reject(err) : resolve(out));
  });
}

/** start deriving in the background (the thread pool); errors are left to the real call */
export function scryptEarly(password: Buffer, salt: Buffer, k: KdfParams, threads = 1): void {
  const key = cacheKey(password, salt, k);
  if (started.has(key)) return;
  const p = derive(password, salt, k, threads);
  p.catch(() => {});
  started.set(key, p);
}

/** threads: scrypt lanes derived at a time (1 or 2; the result is the same) */
export function scrypt(password: Buffer, salt: Buffer, k: KdfParams, threads = 1): Promise<Buffer> {
  if (started.size > 0) {
    const key = cacheKey(password, salt, k);
    const p = started.get(key);
    if (p) {
      started.delete(key);
      return p;
    }
  }
  return derive(password, salt, k, threads);
}

/** derivations started early and not yet taken (for tests) */
export function earlyPending(): number {
  return started.size;
}
