/**
 * Go os.FileMode: the bits, conversion from and to POSIX st_mode as restic does it, and
 * FileMode.String(). Pure: no I/O.
 */

/** Go os.FileMode bits. */
export const GoMode = {
  Dir: 0x80000000,
  Append: 0x40000000,
  Exclusive: 0x20000000,
  Temporary: 0x10000000,
  Symlink: 0x08000000,
  Device: 0x04000000,
  NamedPipe: 0x02000000,
  Socket: 0x01000000,
  Setuid: 0x00800000,
  Setgid: 0x00400000,
  CharDevice: 0x00200000,
  Sticky: 0x00100000,
  Irregular: 0x00080000,
  Perm: 0o777,
} as const;

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

/** Go os.FileMode from a POSIX st_mode, masked as restic does (perm, type, setuid, setgid, sticky). */
export function goFileModeFromPosix(stMode: number): number {
  let m = stMode & 0o777;
  switch (stMode & S_IFMT) {
    case S_IFBLK: m += GoMode.Device; break;
    case S_IFCHR: m += GoMode.Device + GoMode.CharDevice; break;
    case S_IFDIR: m += GoMode.Dir; break;
    case S_IFIFO: m += GoMode.NamedPipe; break;
    case S_IFLNK: m += GoMode.Symlink; break;
    case S_IFSOCK: m += GoMode.Socket; break;
    default: break; // S_IFREG and anything unknown: no type bits
  }
  if (stMode & 0o4000) m += GoMode.Setuid;
  if (stMode & 0o2000) m += GoMode.Setgid;
  if (stMode & 0o1000) m += GoMode.Sticky;
  return m;
}

/** restic's node type for a (masked) Go FileMode; '' when none matches (restic does the same). */
export function nodeTypeFromGoMode(mode: number): 'file' | 'dir' | 'symlink' | 'dev' | 'chardev' | 'fifo' | 'socket' | '' {
  const typeBits =
    GoMode.Dir + GoMode.Symlink + GoMode.NamedPipe + GoMode.Socket + GoMode.Device + GoMode.CharDevice + GoMode.Irregular;
  switch ((mode & typeBits) >>> 0) {
    case 0: return 'file';
    case GoMode.Dir: return 'dir';
    case GoMode.Symlink: return 'symlink';
    case GoMode.Device + GoMode.CharDevice: return 'chardev';
    case GoMode.Device: return 'dev';
    case GoMode.NamedPipe: return 'fifo';
    case GoMode.Socket: return 'socket';
    default: return '';
  }
}

/**
 * The POSIX permission bits for a node, as restic's restore applies them with chmod: the
 * permission bits plus Go's setuid/setgid/sticky bits as 04000/02000/01000 (never file type bits;
 * the node's `type` is authoritative for that, see posixTypeBits). `type` is accepted for
 * symmetry and ignored.
 */
export function posixModeFromGo(mode: number, _type?: string): number {
  const m = mode >>> 0;
  let r = m & 0o777;
  if (m & GoMode.Setuid) r |= 0o4000;
  if (m & GoMode.Setgid) r |= 0o2000;
  if (m & GoMode.Sticky) r |= 0o1000;
  return r;
}

/** POSIX S_IFMT bits for a node type (0 for unknown types). */
export function posixTypeBits(type: string): number {
  switch (type) {
    case 'file': return S_IFREG;
    case 'dir': return S_IFDIR;
    case 'symlink': return S_IFLNK;
    case 'dev': return S_IFBLK;
    case 'chardev': return S_IFCHR;
    case 'fifo': return S_IFIFO;
    case 'socket': return S_IFSOCK;
    default: return 0;
  }
}

/** Go's os.FileMode.String() for a node's Go mode bits: restic prints it as `permissions` (ls, find). */
export function goModeString(mode: number): string {
  const letters = 'dalTLDpSugct?';
  let out = '';
  for (let i = 0; i < letters.length; i++) if ((mode >>> (31 - i)) & 1) out += letters[i];
  if (!out) out = '-';
  const rwx = 'rwxrwxrwx';
  for (let i = 0; i < 9; i++) out += (mode >>> (8 - i)) & 1 ? rwx[i] : '-';
  return out;
}
