/**
 * Reading a file's extended attributes for its node, as restic 0.14 does (restic.Node
 * fillExtendedAttributes with pkg/xattr): every name listxattr gives, in the kernel's order, each
 * value read with getxattr. restic reads them on every backup for every node but symlinks, also for
 * files unchanged since the parent (the node is always built afresh), so a restic backup on top of
 * our snapshot finds the same tree blobs.
 */
import type { ExtendedAttribute } from '../repo/tree.js';
import { lgetxattrSync, llistxattrSync } from '../native/native.js';

export interface XattrResult {
  /** the attributes in listxattr order; undefined when there are none */
  attrs?: ExtendedAttribute[];
  /** what could not be read: the listing, or the named attributes (the others are kept) */
  error?: Error;
}

/**
 * restic's pkg/xattr wrapper turns these into "no error": ENOTSUP is a file system without
 * extended attributes, ENODATA (ENOATTR) an attribute removed between list and get, which restic
 * then stores with a null value.
 */
function ignored(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENODATA';
}

/** Extended attributes of `path` itself (not a symlink's target: restic 0.14 stores none for symlinks). */
export function readXattrs(path: Buffer): XattrResult {
  let names: Buffer[];
  try {
    names = llistxattrSync(path);
  } catch (e) {
    if (ignored(e)) return {};
    return { error: new Error(`cannot list extended attributes: ${(e as Error).message}`) };
  }
  if (names.length === 0) return {};
  const attrs: ExtendedAttribute[] = [];
  const failed: string[] = [];
  let why = '';
  for (const nb of names) {
    // Go's string(bytes): the JSON encoder later writes invalid UTF-8 as U+FFFD, as toString does
    const name = nb.toString('utf8');
    let value: Buffer | null;
    try {
      value = lgetxattrSync(path, nb);
    } catch (e) {
      if (!ignored(e)) {
        failed.push(name);
        why ||= (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        continue;
      }
      value = null;
    }
    attrs.push({ name, value });
  }
  const r: XattrResult = {};
  if (attrs.length > 0) r.attrs = attrs;
  if (failed.length > 0) r.error = new Error(`cannot read extended attribute${failed.length > 1 ? 's' : ''} ${failed.join(', ')}: ${why}`);
  return r;
}
