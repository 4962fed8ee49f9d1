/**
 * Setting a restored entry's extended attributes (the node's `extended_attributes`).
 *
 * restic 0.14 sets them with setxattr on the path after mode and times, stops at the first failure
 * and, through a slip in its error handling (fixed in 0.17.1), never reports one; it also ignores
 * ENOTSUP. Here every attribute is tried, and whatever could not be set is one error of the entry
 * naming the attributes (the restore then exits 1, as restic 0.17.1+ does for its first failure):
 * an attribute that is not restored is data the user does not get back, also when the target file
 * system cannot hold it. They are set before the mode (user.* needs write permission on the file,
 * which a read-only mode would take away) and after the owner (chown clears security.capability).
 */
import type { ExtendedAttribute } from '../repo/tree.js';
import { fsetxattrSync, hasXattr, lsetxattrSync, xattrUnavailableReason } from '../native/native.js';

const EMPTY = Buffer.alloc(0);

/**
 * Sets `attrs` on the open file `fd` when given (a file or directory the restorer opened), else on
 * `path` itself (lsetxattr: a final symlink is not followed). Returns the error to report for the
 * entry, or null when all were set (or there were none).
 */
export function restoreXattrs(where: { fd?: number; path: Buffer | string }, attrs: readonly ExtendedAttribute[] | undefined): Error | null {
  if (!attrs || attrs.length === 0) return null;
  if (!hasXattr) {
    return new Error(`extended attributes ${attrs.map((a) => a.name).join(', ')} not restored: ${xattrUnavailableReason()}`);
  }
  const failed: string[] = [];
  let why = '';
  for (const a of attrs) {
    // restic restores a null value (an attribute that vanished while it was read) as an empty one
    const value = a.value ?? EMPTY;
    try {
      if (where.fd !== undefined) fsetxattrSync(where.fd, a.name, value);
      else lsetxattrSync(where.path, a.name, value);
    } catch (e) {
      failed.push(a.name);
      if (!why) {
        const code = (e as NodeJS.ErrnoException).code;
        const msg = (e as Error).message.replace(/^.*: /, '');
        why = code ? `${code} (${msg})` : msg;
      }
    }
  }
  if (failed.length === 0) return null;
  return new Error(`cannot restore extended attribute${failed.length > 1 ? 's' : ''} ${failed.join(', ')}: ${why}`);
}
