/**
 * Storage model of the Jottacloud emulator: devices → mountpoints → folder/file trees with
 * revisions and trash tombstones, an md5-keyed content store, and pending (resumable) uploads.
 *
 * Layout of the state directory:
 *   meta.json           tree + pending uploads, rewritten atomically after every mutation
 *   content/<ab>/<md5>  file contents, one per distinct md5 (dedup)
 *   partial/<uploadId>  received prefix of unfinished uploads
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, promises as fsp, readdirSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { readJsonIfExists, writeJsonAtomic } from './persist.js';

export const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
export const MAX_NAME_LENGTH = 255;
/** Mountpoints of the built-in Jotta device; the last four are read-only views. */
export const JOTTA_MOUNTPOINTS = ['Archive', 'Sync', 'Shared', 'Links', 'Latest', 'Trash'];
const SPECIAL_MOUNTPOINTS = new Set(['shared', 'links', 'latest', 'trash']);

export type RevisionState = 'COMPLETED' | 'INCOMPLETE' | 'CORRUPT';

export interface Revision {
  number: number;
  state: RevisionState;
  created: number;
  modified: number;
  updated: number;
  size: number;
  md5: string;
  mime: string;
}

export interface FileNode {
  kind: 'file';
  name: string;
  uuid: string;
  created: number;
  deleted?: number;
  /** Last COMPLETED revision. */
  current?: Revision;
  /** Newer INCOMPLETE/CORRUPT revision, if any. */
  latest?: Revision;
  /** Older completed revisions, newest first. */
  history: Revision[];
  publicURI?: string;
  nextNumber: number;
}

export interface FolderNode {
  kind: 'folder';
  name: string;
  uuid: string;
  created: number;
  modified: number;
  deleted?: number;
  children: Map<string, Node>;
}

export type Node = FileNode | FolderNode;

export interface MountPoint {
  name: string;
  created: number;
  special: boolean;
  root: FolderNode;
}

export interface Device {
  name: string;
  type: string;
  sid: string;
  created: number;
  mountpoints: Map<string, MountPoint>;
}

export interface PendingUpload {
  id: string;
  device: string;
  mountpoint: string;
  names: string[];
  md5: string;
  bytes: number;
  created: number;
  modified: number;
  started: number;
}

/** An error with an HTTP status and a Java-style exception name, rendered per host. */
export class EmuError extends Error {
  constructor(
    readonly status: number,
    readonly exception: string,
    message: string,
  ) {
    super(message);
  }
}

export function nameKey(name: string): string {
  return name.toLowerCase();
}

const MIME: Record<string, string> = {
  txt: 'text/plain', md: 'text/markdown', html: 'text/html', htm: 'text/html', css: 'text/css', csv: 'text/csv',
  xml: 'application/xml', json: 'application/json', js: 'application/javascript', pdf: 'application/pdf',
  zip: 'application/zip', gz: 'application/gzip', tar: 'application/x-tar', jpg: 'image/jpeg', jpeg: 'image/jpeg',
  png: 'image/png', gif: 'image/gif', svg: 'image/svg+xml', mp3: 'audio/mpeg', mp4: 'video/mp4', doc: 'application/msword',
};

export function guessMime(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return 'application/octet-stream';
  return MIME[name.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

/** Validate one path element as the service would on creation. */
export function validateName(name: string): void {
  if (name === '' || name === '.' || name === '..') throw new EmuError(400, 'java.lang.IllegalArgumentException', `Unable to validate decoded path: invalid name "${name}"`);
  if ([...name].length > MAX_NAME_LENGTH) {
    throw new EmuError(400, 'no.jotta.backup.errors.InvalidArgumentException', `Name too long (${[...name].length} > ${MAX_NAME_LENGTH} characters)`);
  }
  // eslint-disable-next-line no-control-regex
  if (/["*:<>?|\\\u0000-\u001f\u007f]/.test(name) || name.includes('\uFFFD')) {
    throw new EmuError(400, 'java.lang.IllegalArgumentException', `Unable to validate decoded path: illegal character in "${name}"`);
  }
}

// ---------------------------------------------------------------------------
// serialization

interface RevJson extends Revision {}
type NodeJson =
  | { k: 'd'; n: string; u: string; c: number; m: number; d?: number; ch: NodeJson[] }
  | { k: 'f'; n: string; u: string; c: number; d?: number; cur?: RevJson; lat?: RevJson; h: RevJson[]; p?: string; nx: number };
interface MetaJson {
  version: 1;
  username: string;
  created: number;
  devices: Array<{ name: string; type: string; sid: string; created: number; mps: Array<{ name: string; created: number; special: boolean; root: NodeJson }> }>;
  uploads: PendingUpload[];
}

function nodeToJson(n: Node): NodeJson {
  if (n.kind === 'folder') {
    return { k: 'd', n: n.name, u: n.uuid, c: n.created, m: n.modified, d: n.deleted, ch: [...n.children.values()].map(nodeToJson) };
  }
  return { k: 'f', n: n.name, u: n.uuid, c: n.created, d: n.deleted, cur: n.current, lat: n.latest, h: n.history, p: n.publicURI, nx: n.nextNumber };
}

function nodeFromJson(j: NodeJson): Node {
  if (j.k === 'd') {
    const children = new Map<string, Node>();
    for (const c of j.ch) {
      const n = nodeFromJson(c);
      children.set(nameKey(n.name), n);
    }
    const f: FolderNode = { kind: 'folder', name: j.n, uuid: j.u, created: j.c, modified: j.m, children };
    if (j.d !== undefined && j.d !== null) f.deleted = j.d;
    return f;
  }
  const f: FileNode = { kind: 'file', name: j.n, uuid: j.u, created: j.c, history: j.h, nextNumber: j.nx };
  if (j.d !== undefined && j.d !== null) f.deleted = j.d;
  if (j.cur) f.current = j.cur;
  if (j.lat) f.latest = j.lat;
  if (j.p) f.publicURI = j.p;
  return f;
}

export function newFolder(name: string, now: number): FolderNode {
  return { kind: 'folder', name, uuid: randomUUID(), created: now, modified: now, children: new Map() };
}

function newFile(name: string, now: number): FileNode {
  return { kind: 'file', name, uuid: randomUUID(), created: now, history: [], nextNumber: 1 };
}

// ---------------------------------------------------------------------------

export interface Lookup {
  /** Folders from the mountpoint root down to the parent of `node` (root first). */
  chain: FolderNode[];
  node: Node | null;
}

export class Store {
  readonly dir: string;
  readonly username: string;
  created: number;
  devices = new Map<string, Device>();
  uploads = new Map<string, PendingUpload>();
  /** md5 → size for every stored content file. */
  private content = new Map<string, number>();

  constructor(dir: string, username: string) {
    this.dir = dir;
    mkdirSync(path.join(dir, 'content'), { recursive: true });
    mkdirSync(path.join(dir, 'partial'), { recursive: true });
    const meta = readJsonIfExists<MetaJson>(path.join(dir, 'meta.json'));
    if (meta) {
      this.username = meta.username;
      this.created = meta.created;
      for (const d of meta.devices) {
        const mps = new Map<string, MountPoint>();
        for (const m of d.mps) mps.set(nameKey(m.name), { name: m.name, created: m.created, special: m.special, root: nodeFromJson(m.root) as FolderNode });
        this.devices.set(nameKey(d.name), { name: d.name, type: d.type, sid: d.sid, created: d.created, mountpoints: mps });
      }
      for (const u of meta.uploads) this.uploads.set(u.id, u);
    } else {
      this.username = username;
      this.created = Date.now();
      const dev = this.createDevice('Jotta', 'JOTTA');
      for (const mp of JOTTA_MOUNTPOINTS) this.createMountpoint(dev, mp);
      this.save();
    }
    this.scanContent();
  }

  save(): void {
    const meta: MetaJson = {
      version: 1,
      username: this.username,
      created: this.created,
      devices: [...this.devices.values()].map((d) => ({
        name: d.name,
        type: d.type,
        sid: d.sid,
        created: d.created,
        mps: [...d.mountpoints.values()].map((m) => ({ name: m.name, created: m.created, special: m.special, root: nodeToJson(m.root) })),
      })),
      uploads: [...this.uploads.values()],
    };
    writeJsonAtomic(path.join(this.dir, 'meta.json'), meta);
  }

  // ----- devices & mountpoints

  createDevice(name: string, type: string): Device {
    validateName(name);
    const dev: Device = { name, type, sid: randomUUID(), created: Date.now(), mountpoints: new Map() };
    this.devices.set(nameKey(name), dev);
    return dev;
  }

  createMountpoint(dev: Device, name: string): MountPoint {
    validateName(name);
    const now = Date.now();
    const mp: MountPoint = { name, created: now, special: dev.type === 'JOTTA' && SPECIAL_MOUNTPOINTS.has(nameKey(name)), root: newFolder(name, now) };
    dev.mountpoints.set(nameKey(name), mp);
    return mp;
  }

  device(name: string): Device | undefined {
    return this.devices.get(nameKey(name));
  }

  // ----- tree navigation

  lookup(mp: MountPoint, names: string[]): Lookup {
    const chain: FolderNode[] = [];
    let cur: FolderNode = mp.root;
    for (let i = 0; i < names.length; i++) {
      chain.push(cur);
      const child = cur.children.get(nameKey(names[i]!));
      if (!child) return { chain, node: null };
      if (i === names.length - 1) return { chain, node: child };
      if (child.kind !== 'folder') return { chain, node: null };
      cur = child;
    }
    return { chain: [], node: mp.root };
  }

  /** Stored (case-preserved) names of the path to `node` given a lookup chain. */
  static storedNames(l: Lookup): string[] {
    const out = l.chain.slice(1).map((f) => f.name);
    if (l.node && l.chain.length > 0) out.push(l.node.name);
    return out;
  }

  /**
   * mkdir -p below `mp`: creates missing folders, revives trashed ones on the way (their
   * other children stay trashed). A trashed file in the way is replaced; a live one is a conflict.
   */
  ensureFolders(mp: MountPoint, names: string[], now = Date.now()): FolderNode {
    let cur = mp.root;
    for (const name of names) {
      const key = nameKey(name);
      let child = cur.children.get(key);
      if (child && child.kind === 'file') {
        if (child.deleted === undefined) throw new EmuError(409, 'no.jotta.backup.errors.UniqueFileException', `A file exists at ${name}`);
        child = undefined;
      }
      if (!child) {
        validateName(name);
        child = newFolder(name, now);
        cur.children.set(key, child);
        cur.modified = now;
      } else if (child.deleted !== undefined) {
        delete child.deleted;
        child.modified = now;
      }
      cur = child;
    }
    return cur;
  }

  /** Mark a node (and, for folders, every live descendant) as trashed at `ts`. */
  trash(node: Node, ts: number): void {
    if (node.deleted !== undefined) return;
    node.deleted = ts;
    if (node.kind === 'folder') for (const c of node.children.values()) this.trash(c, ts);
  }

  /** Remove every trashed item everywhere; returns what was removed. */
  purgeTrash(): { folders: number; files: number } {
    const counts = { folders: 0, files: 0 };
    const countAll = (n: Node): void => {
      if (n.kind === 'file') {
        if (n.current) counts.files++;
      } else {
        counts.folders++;
        for (const c of n.children.values()) countAll(c);
      }
    };
    const walk = (f: FolderNode): void => {
      for (const [k, c] of [...f.children]) {
        if (c.deleted !== undefined) {
          countAll(c);
          f.children.delete(k);
        } else if (c.kind === 'folder') {
          walk(c);
        }
      }
    };
    for (const d of this.devices.values()) for (const m of d.mountpoints.values()) walk(m.root);
    this.gcContent();
    return counts;
  }

  /** Byte count of files below a folder (live and trashed, current revisions). */
  static treeSize(f: FolderNode): number {
    let n = 0;
    for (const c of f.children.values()) {
      if (c.kind === 'folder') n += Store.treeSize(c);
      else if (c.current) n += c.current.size;
    }
    return n;
  }

  deviceSize(d: Device): number {
    let n = 0;
    for (const m of d.mountpoints.values()) n += Store.treeSize(m.root);
    return n;
  }

  /** Account usage: sum of current sizes of live and trashed files. */
  usage(): number {
    let n = 0;
    for (const d of this.devices.values()) n += this.deviceSize(d);
    return n;
  }

  // ----- revisions

  /** Add a COMPLETED revision on `file`, reviving it; previous current goes to history. */
  commitRevision(file: FileNode, r: { md5: string; size: number; created: number; modified: number }): Revision {
    const now = Date.now();
    const rev: Revision = {
      number: file.nextNumber++,
      state: 'COMPLETED',
      created: r.created,
      modified: r.modified,
      updated: now,
      size: r.size,
      md5: r.md5,
      mime: guessMime(file.name),
    };
    if (file.current) file.history.unshift(file.current);
    file.current = rev;
    delete file.latest;
    delete file.deleted;
    return rev;
  }

  /**
   * The file node at `names` (creating parents and the node as needed). A folder in the way
   * is a conflict unless trashed (then it is replaced).
   */
  ensureFile(mp: MountPoint, names: string[], now = Date.now()): FileNode {
    const parent = this.ensureFolders(mp, names.slice(0, -1), now);
    const name = names[names.length - 1]!;
    const key = nameKey(name);
    const existing = parent.children.get(key);
    if (existing?.kind === 'file') return existing;
    if (existing && existing.deleted === undefined) {
      throw new EmuError(409, 'no.jotta.backup.errors.UniqueFileException', `A folder exists at ${name}`);
    }
    validateName(name);
    const f = newFile(name, now);
    parent.children.set(key, f);
    parent.modified = now;
    return f;
  }

  // ----- content store

  private contentFile(md5: string): string {
    return path.join(this.dir, 'content', md5.slice(0, 2), md5);
  }

  private scanContent(): void {
    const root = path.join(this.dir, 'content');
    for (const shard of readdirSync(root)) {
      const sdir = path.join(root, shard);
      for (const f of readdirSync(sdir)) {
        if (/^[0-9a-f]{32}$/.test(f)) this.content.set(f, statSync(path.join(sdir, f)).size);
      }
    }
  }

  hasContent(md5: string, size: number): boolean {
    return this.content.get(md5) === size;
  }

  contentPath(md5: string): string {
    return this.contentFile(md5);
  }

  /** Move a completed partial file into the content store under its md5. */
  adoptContent(partial: string, md5: string, size: number): void {
    const dest = this.contentFile(md5);
    if (this.content.has(md5) && existsSync(dest)) {
      unlinkSync(partial);
      return;
    }
    mkdirSync(path.dirname(dest), { recursive: true });
    renameSync(partial, dest);
    this.content.set(md5, size);
  }

  /** Store bytes directly (old-style upload). */
  async putContent(data: Buffer): Promise<string> {
    const md5 = createHash('md5').update(data).digest('hex');
    if (!this.content.has(md5)) {
      const dest = this.contentFile(md5);
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
      await fsp.writeFile(tmp, data);
      renameSync(tmp, dest);
      this.content.set(md5, data.length);
    }
    return md5;
  }

  /** Delete content files no revision refers to any more. */
  gcContent(): void {
    const used = new Set<string>();
    const walk = (n: Node): void => {
      if (n.kind === 'folder') {
        for (const c of n.children.values()) walk(c);
      } else {
        if (n.current) used.add(n.current.md5);
        for (const h of n.history) used.add(h.md5);
      }
    };
    for (const d of this.devices.values()) for (const m of d.mountpoints.values()) walk(m.root);
    for (const md5 of [...this.content.keys()]) {
      if (!used.has(md5)) {
        rmSync(this.contentFile(md5), { force: true });
        this.content.delete(md5);
      }
    }
  }

  // ----- pending uploads

  partialPath(id: string): string {
    return path.join(this.dir, 'partial', id);
  }

  partialSize(id: string): number {
    try {
      return statSync(this.partialPath(id)).size;
    } catch {
      return 0;
    }
  }

  findUpload(device: string, mountpoint: string, names: string[]): PendingUpload | undefined {
    const key = nameKey([device, mountpoint, ...names].join('/'));
    for (const u of this.uploads.values()) {
      if (nameKey([u.device, u.mountpoint, ...u.names].join('/')) === key) return u;
    }
    return undefined;
  }

  dropUpload(id: string): void {
    this.uploads.delete(id);
    rmSync(this.partialPath(id), { force: true });
  }
}

/** md5 of a file on disk, lower-case hex. */
export function md5File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('md5');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
