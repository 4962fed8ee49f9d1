/** XML documents of the JFS host (see reference §3). */
import { STATUS_CODES } from 'node:http';
import { XML_DECL, attrs, el, jottaTime, xmlEscape } from './xml.js';
import { Store, type Device, type FileNode, type FolderNode, type MountPoint, type Revision } from './store.js';

export const HOSTNAME = 'dn-emu';

function stamp(): Record<string, string> {
  return { time: jottaTime(Date.now()), host: HOSTNAME };
}

let xid = 100000000000;
export function nextXid(): string {
  return String(++xid);
}

export function revisionXml(tag: string, r: Revision): string {
  return (
    `<${tag}>` +
    el('number', r.number) +
    el('state', r.state) +
    el('created', jottaTime(r.created)) +
    el('modified', jottaTime(r.modified)) +
    el('mime', r.mime) +
    el('mstyle', r.mime) +
    el('size', r.size) +
    el('md5', r.md5) +
    el('updated', jottaTime(r.updated)) +
    `</${tag}>`
  );
}

/** `<file>` as an entry of a folder listing. `containerPath` = abspath of the listed folder. */
export function fileEntryXml(f: FileNode, containerPath: string): string {
  let out = `<file${attrs({ name: f.name, uuid: f.uuid, deleted: f.deleted !== undefined ? jottaTime(f.deleted) : undefined })}>`;
  if (f.deleted !== undefined) out += el('abspath', containerPath, true);
  if (f.current) out += revisionXml('currentRevision', f.current);
  if (f.latest) out += revisionXml('latestRevision', f.latest);
  return `${out}</file>`;
}

/** Standalone `<file>` document (GET on a file path). */
export function fileXml(f: FileNode, parentPath: string): string {
  let out = `${XML_DECL}<file${attrs({ name: f.name, uuid: f.uuid, deleted: f.deleted !== undefined ? jottaTime(f.deleted) : undefined, ...stamp() })}>`;
  out += el('path', parentPath, true) + el('abspath', parentPath, true);
  if (f.publicURI) out += el('publicURI', f.publicURI);
  if (f.current) out += revisionXml('currentRevision', f.current);
  if (f.latest) out += revisionXml('latestRevision', f.latest);
  if (f.history.length > 0) out += `<revisions>${f.history.map((r) => revisionXml('revision', r)).join('')}</revisions>`;
  return `${out}</file>\n`;
}

function sortedChildren(f: FolderNode): { folders: FolderNode[]; files: FileNode[] } {
  const folders: FolderNode[] = [];
  const files: FileNode[] = [];
  for (const c of f.children.values()) (c.kind === 'folder' ? folders : files).push(c as never);
  const cmp = (a: { name: string }, b: { name: string }): number => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : a.name.toLowerCase() > b.name.toLowerCase() ? 1 : 0);
  folders.sort(cmp);
  files.sort(cmp);
  return { folders, files };
}

/** `<folders>…</folders><files>…</files><metadata/>` for a folder whose own abspath is `selfPath`. */
export function listingBody(f: FolderNode, selfPath: string): string {
  const { folders, files } = sortedChildren(f);
  let out = '<folders>';
  for (const d of folders) {
    if (d.deleted !== undefined) out += `<folder${attrs({ name: d.name, deleted: jottaTime(d.deleted) })}>${el('abspath', selfPath, true)}</folder>`;
    else out += `<folder${attrs({ name: d.name })}/>`;
  }
  out += '</folders><files>';
  for (const file of files) out += fileEntryXml(file, selfPath);
  out += '</files>';
  out += `<metadata first="" max="" total="${folders.length + files.length}" num_folders="${folders.length}" num_files="${files.length}"/>`;
  return out;
}

export function folderXml(f: FolderNode, parentPath: string): string {
  const selfPath = `${parentPath}/${f.name}`;
  return (
    `${XML_DECL}<folder${attrs({ name: f.name, deleted: f.deleted !== undefined ? jottaTime(f.deleted) : undefined, ...stamp() })}>` +
    el('path', parentPath, true) +
    el('abspath', parentPath, true) +
    listingBody(f, selfPath) +
    '</folder>\n'
  );
}

export function mountPointXml(user: string, dev: Device, mp: MountPoint, body?: string): string {
  const devPath = `/${user}/${dev.name}`;
  return (
    `${XML_DECL}<mountPoint${attrs(stamp())}>` +
    el('name', mp.name, true) +
    el('path', devPath, true) +
    el('abspath', devPath, true) +
    el('size', Store.treeSize(mp.root)) +
    el('modified', jottaTime(mp.root.modified)) +
    el('device', dev.name) +
    el('user', user) +
    (body ?? listingBody(mp.root, `${devPath}/${mp.name}`)) +
    '</mountPoint>\n'
  );
}

export function deviceXml(user: string, store: Store, dev: Device): string {
  const mps = [...dev.mountpoints.values()];
  let out =
    `${XML_DECL}<device${attrs(stamp())}>` +
    el('name', dev.name, true) +
    el('display_name', dev.name, true) +
    el('type', dev.type) +
    el('sid', dev.sid) +
    el('size', store.deviceSize(dev)) +
    el('modified', jottaTime(dev.created)) +
    el('user', user) +
    '<mountPoints>';
  for (const mp of mps) out += `<mountPoint>${el('name', mp.name, true)}${el('size', Store.treeSize(mp.root))}${el('modified', jottaTime(mp.root.modified))}</mountPoint>`;
  out += `</mountPoints><metadata first="" max="" total="${mps.length}" num_mountpoints="${mps.length}"/></device>\n`;
  return out;
}

export function userXml(user: string, store: Store, quota: number): string {
  let out =
    `${XML_DECL}<user${attrs(stamp())}>` +
    el('username', user) +
    el('account-type', quota < 0 ? 'unlimited' : 'Personal') +
    el('locked', false) +
    el('capacity', quota < 0 ? -1 : quota) +
    el('max-devices', -1) +
    el('max-mobile-devices', -1) +
    el('usage', store.usage()) +
    el('read-locked', false) +
    el('write-locked', false) +
    el('quota-write-locked', false) +
    el('enable-sync', true) +
    el('enable-foldershare', true) +
    '<devices>';
  for (const d of store.devices.values()) {
    out += `<device>${el('name', d.name, true)}${el('display_name', d.name, true)}${el('type', d.type)}${el('sid', d.sid)}${el('size', store.deviceSize(d))}${el('modified', jottaTime(d.created))}</device>`;
  }
  return `${out}</devices></user>\n`;
}

export function errorXml(status: number, exception: string, message: string): string {
  return (
    `${XML_DECL}<error>` +
    el('code', status) +
    el('message', `${exception}: ${message}`) +
    el('reason', STATUS_CODES[status] ?? 'Error') +
    '<cause></cause>' +
    el('hostname', HOSTNAME) +
    el('x-id', nextXid()) +
    '</error>\n'
  );
}

/** Trash view: top-level trashed items of every regular mountpoint. */
export function trashXml(user: string, store: Store, dev: Device, mp: MountPoint): string {
  const folders: string[] = [];
  const files: string[] = [];
  const walk = (f: FolderNode, selfPath: string): void => {
    for (const c of f.children.values()) {
      if (c.deleted !== undefined) {
        if (c.kind === 'folder') {
          folders.push(`<folder${attrs({ name: c.name, deleted: jottaTime(c.deleted), contextType: 'TRASH' })}>${el('abspath', selfPath, true)}</folder>`);
        } else {
          let x = `<file${attrs({ name: c.name, uuid: c.uuid, deleted: jottaTime(c.deleted), contextType: 'TRASH' })}>${el('abspath', selfPath, true)}`;
          if (c.current) x += revisionXml('currentRevision', c.current);
          files.push(`${x}</file>`);
        }
      } else if (c.kind === 'folder') {
        walk(c, `${selfPath}/${c.name}`);
      }
    }
  };
  for (const d of store.devices.values()) {
    for (const m of d.mountpoints.values()) if (!m.special) walk(m.root, `/${user}/${d.name}/${m.name}`);
  }
  const body =
    `<folders>${folders.join('')}</folders><files>${files.join('')}</files>` +
    `<metadata first="" max="" total="${folders.length + files.length}" num_folders="${folders.length}" num_files="${files.length}"/>`;
  return mountPointXml(user, dev, mp, body);
}

export { xmlEscape };
