/**
 * Build a tree node from an lstat result exactly as restic 0.14's archiver does
 * (restic.NodeFromFileInfo + archiver.nodeFromFileInfo), so that the encoded trees are
 * byte-identical to restic's.
 */
import { readFileSync } from 'node:fs';
import { TIME_A, TIME_C, TIME_M, type EntryStat } from './dirscan.js';
import { goFileModeFromPosix, nodeTypeFromGoMode } from '../format/gomode.js';
import { formatTimeFromNs, formatTimeSec } from '../format/gotime.js';
import type { ExtendedAttribute, Node } from '../repo/tree.js';

export interface NodeFromStatOptions {
  /** restic --with-atime: keep the real atime (default: atime = mtime, as restic 0.14 does). */
  withAtime?: boolean;
  /** Fixed zone for the timestamps, in minutes east of UTC (default: the process's local zone). */
  tzOffsetMinutes?: number;
  /** Extended attributes in listxattr order (restic stores them for everything but symlinks). */
  extendedAttributes?: ExtendedAttribute[];
  /** Look up user/group names (default true). */
  lookupOwners?: boolean;
  /**
   * Also write `linktarget_raw` (restic 0.16+ behaviour) for link targets that are not valid
   * UTF-8. Default false: restic 0.14 does not write it, and trees stay byte-identical to 0.14's.
   */
  linktargetRaw?: boolean;
}

// ---------------------------------------------------------------------------------------------
// user/group names, like Go's os/user on Linux: first matching line of /etc/passwd or /etc/group;
// restic caches the result per id and uses "" when the id is unknown.

let userCache: Map<string, string> | undefined;
let groupCache: Map<string, string> | undefined;
const passwdPath = '/etc/passwd';
const groupPath = '/etc/group';

function readColonFile(path: string, idField: number, minFields: number): Map<string, string> {
  const map = new Map<string, string>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return map;
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    if (parts.length < minFields) continue;
    const name = parts[0]!;
    if (name === '' || name.startsWith('+') || name.startsWith('-')) continue;
    const id = parts[idField]!;
    if (!map.has(id)) map.set(id, name);
  }
  return map;
}

/** a name by id from /etc/passwd or /etc/group, memoised by number ("" when unknown) */
function nameOf(byId: Map<number, string>, id: number, load: () => Map<string, string>): string {
  let n = byId.get(id);
  if (n === undefined) {
    n = load().get(String(id)) ?? '';
    byId.set(id, n);
  }
  return n;
}
/** by number: the walk asks for every entry, and String(uid) was a string per call */
const userById = new Map<number, string>();
const groupById = new Map<number, string>();
const loadUsers = () => (userCache ??= readColonFile(passwdPath, 2, 6));
const loadGroups = () => (groupCache ??= readColonFile(groupPath, 2, 3));

/** User name for a uid ("" when unknown), cached for the life of the process. */
export function lookupUserName(uid: number): string {
  return nameOf(userById, uid, loadUsers);
}

/** Group name for a gid ("" when unknown), cached for the life of the process. */
export function lookupGroupName(gid: number): string {
  return nameOf(groupById, gid, loadGroups);
}

// ---------------------------------------------------------------------------------------------

/**
 * The node restic 0.14 would write for `fs.lstat(path, { bigint: true })`.
 *
 * Fields per type (checked against restic 0.14.0 output):
 *  - all: name, type, mode (Go FileMode), mtime, atime (= mtime), ctime, uid, gid, user, group,
 *    inode, device_id (= st_dev)
 *  - file: size (omitted when 0), links, content (`[]` here; the caller fills in the blob ids)
 *  - symlink: links, linktarget (pass the raw readlink bytes)
 *  - dev / chardev: links, device (= st_rdev)
 *  - dir, fifo, socket: no size, no links (the caller sets `subtree` for dirs)
 * restic 0.14's archiver does not save sockets at all; that decision is the caller's.
 */
export function nodeFromStat(name: Buffer, st: EntryStat, linktarget?: Buffer, opts: NodeFromStatOptions = {}): Node {
  const mode = goFileModeFromPosix(Number(st.mode));
  const type = nodeTypeFromGoMode(mode);
  const tz = opts.tzOffsetMinutes;
  // a scan's stat has the times as numbers: no BigInts on the way to the text
  const mtime = st.seconds ? formatTimeSec(st.seconds(TIME_M), st.nanoseconds!(TIME_M), tz) : formatTimeFromNs(st.mtimeNs, tz);
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const node: Node = {
    name,
    type,
    mode,
    mtime,
    atime: !opts.withAtime ? mtime : st.seconds ? formatTimeSec(st.seconds(TIME_A), st.nanoseconds!(TIME_A), tz) : formatTimeFromNs(st.atimeNs, tz),
    ctime: st.seconds ? formatTimeSec(st.seconds(TIME_C), st.nanoseconds!(TIME_C), tz) : formatTimeFromNs(st.ctimeNs, tz),
    uid,
    gid,
  };
  if (opts.lookupOwners !== false) {
    const user = lookupUserName(uid);
    if (user) node.user = user;
    const group = lookupGroupName(gid);
    if (group) node.group = group;
  }
  if (st.ino) node.inode = st.ino;
  if (st.dev) node.deviceId = st.dev;
  switch (type) {
    case 'file':
      if (st.size) node.size = st.size;
      if (st.nlink) node.links = st.nlink;
      break;
    case 'symlink':
      if (st.nlink) node.links = st.nlink;
      if (linktarget && linktarget.length > 0) {
        node.linktarget = linktarget;
        // Opt-in, as restic 0.16+ does: keep the exact bytes of a target that is not valid UTF-8.
        // Off by default: restic 0.14 never writes linktarget_raw, so the tree would no longer be
        // byte-identical to restic 0.14's (0.14 ignores the field and restores the lossy target).
        if (opts.linktargetRaw && !Buffer.from(linktarget.toString('utf8'), 'utf8').equals(linktarget)) {
          node.linktargetRaw = linktarget;
        }
      }
      break;
    case 'dev':
    case 'chardev':
      if (st.nlink) node.links = st.nlink;
      if (st.rdev) node.device = st.rdev;
      break;
    default:
      break;
  }
  if (type !== 'symlink' && opts.extendedAttributes && opts.extendedAttributes.length > 0) {
    node.extendedAttributes = opts.extendedAttributes;
  }
  node.content = type === 'file' ? [] : null;
  return node;
}
