/**
 * Hostile snapshots for restore and dump tests: trees written with the project's own low-level
 * writers (tree node encoder, Repository blobs, a snapshot) but in an order and with names the
 * archiver never produces: duplicate names, "..", names with "/", a symlink before a directory of
 * the same name. The tree bytes are assembled here because encodeTree sorts and refuses duplicates.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { GoMode } from '../../src/format/gomode.js';
import { encodeNode, type Node } from '../../src/repo/tree.js';

export const HOSTILE_PW = 'hostile-pw';
/** the CLI's environment for a repository made here */
export const hostileEnv = (repo: string) => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: HOSTILE_PW, JBACKUP_KDF_PARAMS: '1024,8,1' });

export interface HNode {
  name: string | Buffer;
  type: 'file' | 'dir' | 'symlink' | 'fifo';
  /** permission bits (default 0644 files, 0755 dirs) */
  perm?: number;
  setuid?: boolean;
  content?: Buffer;
  target?: string;
  children?: HNode[];
  /** hard links: same inode and links > 1 */
  inode?: number;
  links?: number;
  mtime?: string;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const HOSTILE_MTIME = '2021-03-04T05:06:07.123456789Z';

async function saveTree(repo: Repository, nodes: HNode[]): Promise<string> {
  const out: Node[] = [];
  for (const h of nodes) {
    const mtime = h.mtime ?? HOSTILE_MTIME;
    const n: Node = {
      name: Buffer.isBuffer(h.name) ? h.name : Buffer.from(h.name), type: h.type, mode: 0, mtime, atime: mtime, ctime: mtime,
      uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0,
    };
    switch (h.type) {
      case 'file': {
        n.mode = (h.perm ?? 0o644) | (h.setuid ? GoMode.Setuid : 0);
        const c = h.content ?? Buffer.alloc(0);
        n.size = BigInt(c.length);
        if (h.inode !== undefined) { n.inode = BigInt(h.inode); n.links = BigInt(h.links ?? 2); n.deviceId = 1n; }
        n.content = [];
        if (c.length) {
          const id = sha(c);
          await repo.saveBlob('data', id, c);
          n.content = [id];
        }
        break;
      }
      case 'dir':
        n.mode = (GoMode.Dir | (h.perm ?? 0o755)) >>> 0;
        n.subtree = await saveTree(repo, h.children ?? []);
        break;
      case 'symlink':
        n.mode = GoMode.Symlink | 0o777;
        n.linktarget = Buffer.from(h.target ?? '');
        break;
      case 'fifo':
        n.mode = GoMode.NamedPipe | (h.perm ?? 0o644);
        break;
    }
    out.push(n);
  }
  // in the order given: duplicates and unsorted names are the point
  const bytes = Buffer.from(`{"nodes":[${out.map(encodeNode).join(',')}]}\n`, 'utf8');
  const id = sha(bytes);
  await repo.saveBlob('tree', id, bytes);
  return id;
}

/** Create a repository at `repoDir` (if `create`) and add a snapshot of `root`; returns its id. */
export async function hostileSnapshot(repoDir: string, root: HNode[], create = true): Promise<string> {
  const be = new LocalBackend(path.resolve(repoDir));
  const repo = create
    ? await Repository.init(be, Buffer.from(HOSTILE_PW), { kdf: { N: 1024, r: 8, p: 1 } })
    : await Repository.open(be, Buffer.from(HOSTILE_PW));
  if (!create) await repo.loadIndex();
  const tree = await saveTree(repo, root);
  await repo.flush();
  return repo.saveSnapshot({ time: new Date().toISOString(), tree, paths: ['/hostile'], hostname: 'hostile', username: 'root' });
}
