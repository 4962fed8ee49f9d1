/**
 * The web layer's entry: the server calls it, after authentication, for every request under `/_/` and
 * for GET/HEAD of a directory when the client accepts text/html; it answers and returns true, or
 * returns false to let the server answer.
 *
 * Routes (segments after `/_/` are the file system's escaped names, percent-encoded in URLs):
 *   /                        the snapshots table (filters: ?host=, ?tag=)
 *   /<dir>/                  a folder page (any directory of the served layout; ?sort=name|size|mtime,
 *                            ?order=asc|desc, ?page=N past 10,000 entries)
 *   /_/view/<file>           a file page: metadata, preview (text, images, audio/video), download
 *   /_/raw/<file>            the bytes for a preview: inline only for raster images, audio, video and
 *                            text (as text/plain); anything else (HTML, SVG, PDF, …) as an attachment;
 *                            always under `Content-Security-Policy: sandbox`
 *   /_/download/<file>       the bytes as an attachment (RFC 6266 filename*)
 *   /_/tar/<dir>, /_/zip/<dir>  the folder as a streamed archive
 *   /_/find?pattern=…        restic find's patterns over one or all snapshots
 *   /_/diff?a=…&b=…          restic diff between two snapshots
 *   /_/size/<id>             compute a snapshot's restore size, then back to the table
 *   /_/style.css, /_/icon.svg, …  the assets
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebContext } from '../context.js';
import { sendAsset } from './assets.js';
import { sendArchive } from './archive.js';
import { filePage, sendRaw } from './file.js';
import { folderPage } from './folder.js';
import { diffPage, findPage } from './search.js';
import { computeSize, snapshotsPage } from './snapshots.js';
import { notFound } from './common.js';

export async function handleWeb(ctx: WebContext, req: IncomingMessage, res: ServerResponse, segments: readonly string[]): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const url = new URL(req.url ?? '/', 'http://x');
  if (segments[0] !== '_') {
    if (segments.length === 0) { await snapshotsPage(ctx, req, res, url); return true; }
    const e = await ctx.vfs.stat(segments);
    if (!e || e.kind !== 'dir') return false;
    await folderPage(ctx, req, res, e, url);
    return true;
  }
  const [route = '', ...rest] = segments.slice(1);
  if (rest.length === 0 && sendAsset(req, res, route)) return true;
  switch (route) {
    case 'find': await findPage(ctx, req, res, url); return true;
    case 'diff': await diffPage(ctx, req, res, url); return true;
    case 'size': await computeSize(ctx, req, res, rest[0] ?? ''); return true;
    case 'view': case 'raw': case 'download': case 'tar': case 'zip': {
      const e = await ctx.vfs.stat(rest);
      if (!e) { notFound(ctx, req, res, rest); return true; }
      if (route === 'view') await filePage(ctx, req, res, e);
      else if (route === 'tar' || route === 'zip') await sendArchive(ctx, req, res, e, route);
      else await sendRaw(ctx, req, res, e, route === 'download');
      return true;
    }
    default:
      return false;
  }
}
