/**
 * A folder as a streamed archive: `/_/tar/<dir>` (ustar + PAX, the writer `jbackup dump` uses) and
 * `/_/zip/<dir>` (format/zip.ts). Both go through `walkArchive`, so member names are cleaned the same
 * way (never absolute, never climbing with ".."), a damaged file keeps its member (zeros where bytes
 * could not be read; named in the server's log) and nothing is held in memory but the blobs in flight
 * (and zip's central directory). Every member sits below one directory named after the folder (a
 * snapshot's root: `snapshot-<shortid>`), as browsers' users expect of a downloaded folder.
 *
 * Names: tar keeps the exact bytes of each name; zip stores UTF-8 names (flag bit 11), each component
 * escaped as the served file system escapes it (names.ts: invalid UTF-8 bytes as "％XX"), so a name
 * reads the same in the archive as in the folder listing. Symlinks: tar symlink members; zip Info-ZIP
 * link entries. Devices and FIFOs: tar only (zip cannot hold them). Hard links: tar links; zip repeats
 * the content.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ClosedError, tarFormat, walkArchive, zipFormat } from '../../maintenance/dump.js';
import type { Node } from '../../repo/tree.js';
import type { WebContext } from '../context.js';
import { escapeName } from '../names.js';
import type { Entry } from '../vfs.js';
import { badRequest } from './common.js';
import { contentDisposition } from './file.js';
import { safetyHeaders } from './html.js';

const GO_MODE_DIR = 2 ** 31;

/** a zip member name: each component escaped as the file system shows it */
export function zipName(member: Buffer): string {
  const parts: string[] = [];
  let s = 0;
  for (let i = 0; i <= member.length; i++) {
    if (i < member.length && member[i] !== 0x2f) continue;
    parts.push(escapeName(member.subarray(s, i)));
    s = i + 1;
  }
  return parts.join('/');
}

/** the directory node to archive and the top-level name: the folder's own node, or a snapshot's root tree */
function rootOf(e: Entry): { node: Node; top: Buffer } | null {
  if (e.kind !== 'dir' || e.virtual || !e.tree || !e.snapshot) return null;
  if (e.node) return { node: e.node, top: e.node.name };
  const s = e.snapshot;
  const node: Node = { name: Buffer.from(''), type: 'dir', mode: GO_MODE_DIR | 0o755, mtime: s.time, atime: s.time, ctime: s.time, uid: s.uid ?? 0, gid: s.gid ?? 0, subtree: e.tree };
  return { node, top: Buffer.from(`snapshot-${s.id.slice(0, 8)}`) };
}

export async function sendArchive(ctx: WebContext, req: IncomingMessage, res: ServerResponse, e: Entry, kind: 'tar' | 'zip'): Promise<void> {
  const r = rootOf(e);
  if (!r) { badRequest(req, res, 'Not a folder in a snapshot', 'Only a folder inside a snapshot can be downloaded as an archive.'); return; }
  const file = `${escapeName(r.top)}.${kind}`;
  safetyHeaders(res);
  res.writeHead(200, {
    'Content-Type': kind === 'tar' ? 'application/x-tar' : 'application/zip',
    'Content-Disposition': contentDisposition('attachment', file),
    'Cache-Control': 'no-store',
  });
  if (req.method === 'HEAD') { res.end(); return; }
  const fmt = kind === 'tar' ? tarFormat(res) : zipFormat(res, zipName);
  try {
    const errors = await walkArchive(ctx.repo, r.node, fmt, {
      top: r.top,
      onError: (p, err) => ctx.log(`${kind} ${file}: ${p}: ${err.message}`),
      // the server's reader: blobs by the index's sizes, read ahead, through the bounded blob cache
      content: (n) => ctx.vfs.reader.open(n.content ?? [], Number(n.size ?? 0n)).read(0, Number(n.size ?? 0n)),
    });
    if (errors) ctx.log(`${kind} ${file}: ${errors} damaged entr${errors === 1 ? 'y' : 'ies'} (written with zeros or left out)`);
    res.end();
  } catch (err) {
    if (!(err instanceof ClosedError)) ctx.log(`${kind} ${file}: ${(err as Error).message}`);
    // a cut-off archive must not look complete: the client sees the connection fail
    res.destroy();
  }
}
