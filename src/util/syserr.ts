/**
 * Node's system errors as one line a user can act on. Node's own message repeats the code
 * ("ENOENT: no such file or directory, open '/x'", and some wrappers add the code again in front) and
 * some name no path at all (ENOSPC on a write); here: what failed, on which path, why, and what to do.
 */
const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
  ENOTEMPTY: 'directory not empty',
  EBUSY: 'resource busy',
  EXDEV: 'cross-device link',
  EINVAL: 'invalid argument',
};

const ADVICE: Record<string, string> = {
  ENOSPC: 'free some space or use another location',
  EDQUOT: 'free some space or raise the quota',
  EROFS: 'use a writable location',
  EACCES: 'check the permissions',
  ENOTDIR: 'a file is in the way: move it or choose another path',
  EEXIST: 'move it or choose another path',
  EMFILE: 'raise the limit of open files (ulimit -n)',
};

export function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  const c = (e as NodeJS.ErrnoException | null)?.code;
  return typeof c === 'string' && /^E[A-Z0-9]+$/.test(c) && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

/** "no space left on device (ENOSPC)"; for errors that are not system errors, their message */
export function describeSystemError(e: unknown): string {
  if (!isSystemError(e)) return (e as Error | null)?.message ?? String(e);
  const err = e;
  const reason = REASONS[err.code!] ?? err.message.replace(/^[A-Z0-9]+: /, '').replace(/, \w+ .*$/, '');
  return `${reason} (${err.code})`;
}

/**
 * one line for a system error: "<path>: <reason> (<CODE>) during <syscall>[; advice]". `where` names
 * the path when the error carries none (a write on an open file: ENOSPC).
 */
export function formatSystemError(e: NodeJS.ErrnoException, where?: string): string {
  const p = e.path ?? where;
  const d = (e as { dest?: string }).dest;
  const dest = d ? ` -> ${d}` : '';
  const head = p ? `${p}${dest}: ` : '';
  const advice = ADVICE[e.code!];
  return `${head}${describeSystemError(e)} during ${e.syscall}${advice ? `; ${advice}` : ''}`;
}
