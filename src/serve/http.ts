/**
 * Sending a file of the snapshot file system over HTTP: validators (strong ETag, Last-Modified),
 * conditional requests (RFC 9110 §13: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
 * If-Range) and one byte range (206, 416). A request for several ranges gets the whole file (200),
 * which RFC 9110 §14.2 allows; no client tested asks for several.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Entry, SnapshotFs } from './vfs.js';
import { contentType } from './mime.js';
import type { SendFileOptions } from './context.js';

/** a one-line text/plain answer (HEAD: headers only) */
export function sendError(req: IncomingMessage, res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = Buffer.from(`${message}\n`);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length), ...headers });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** the etags of an If-Match / If-None-Match list ("*" as itself) */
function etagList(h: string): string[] {
  return [...h.matchAll(/\*|(?:W\/)?"[^"]*"/g)].map((m) => m[0]);
}

const weakMatch = (list: string[], etag: string) => list.some((t) => t === '*' || t.replace(/^W\//, '') === etag);
const strongMatch = (list: string[], etag: string) => list.some((t) => t === '*' || t === etag);

/** seconds of an HTTP date, or NaN */
const httpSeconds = (s: string) => Math.floor(Date.parse(s) / 1000);

/** 304/412 when the request's conditions say so, else null (RFC 9110 §13.2.2's order) */
export function preconditionStatus(req: IncomingMessage, etag: string, mtime: Date): 304 | 412 | null {
  const mt = Math.floor(mtime.getTime() / 1000);
  const im = req.headers['if-match'];
  if (im !== undefined) {
    if (!strongMatch(etagList(im), etag)) return 412;
  } else {
    const ius = req.headers['if-unmodified-since'];
    if (ius !== undefined && !Number.isNaN(httpSeconds(ius)) && mt > httpSeconds(ius)) return 412;
  }
  const inm = req.headers['if-none-match'];
  const read = req.method === 'GET' || req.method === 'HEAD';
  if (inm !== undefined) {
    if (weakMatch(etagList(inm), etag)) return read ? 304 : 412;
  } else if (read) {
    const ims = req.headers['if-modified-since'];
    if (ims !== undefined && !Number.isNaN(httpSeconds(ims)) && mt <= httpSeconds(ims)) return 304;
  }
  return null;
}

/** the range a "bytes=" header asks for in a file of `size` bytes: [start, end), 'unsatisfiable', or null (whole file) */
export function parseRange(h: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (!h) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(h);
  // other units, several ranges, garbage: ignored (RFC 9110 §14.2 lets a server ignore Range)
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size) return 'unsatisfiable';
  if (last < start) return null;
  return { start, end: last + 1 };
}

export function fileHeaders(e: Entry, o: SendFileOptions = {}): Record<string, string> {
  return {
    ETag: e.etag,
    'Last-Modified': e.mtime.toUTCString(),
    'Accept-Ranges': 'bytes',
    'Content-Type': o.contentType ?? (e.kind === 'file' ? contentType(e.name) : 'application/octet-stream'),
  };
}

/** GET/HEAD of a file entry */
export async function sendFile(vfs: SnapshotFs, req: IncomingMessage, res: ServerResponse, e: Entry, o: SendFileOptions = {}): Promise<void> {
  const headers = fileHeaders(e, o);
  const pre = preconditionStatus(req, e.etag, e.mtime);
  if (pre === 304) { res.writeHead(304, { ETag: headers.ETag!, 'Last-Modified': headers['Last-Modified']! }); res.end(); return; }
  if (pre === 412) { sendError(req, res, 412, 'precondition failed'); return; }
  const src = vfs.open(e);
  const size = src.size;
  let range = req.method === 'GET' || req.method === 'HEAD' ? parseRange(req.headers.range, size) : null;
  // If-Range: the range only while the representation is the one the client has (strong ETag or exact date)
  const ifRange = req.headers['if-range'] as string | undefined;
  if (range && ifRange !== undefined) {
    const same = ifRange.startsWith('"') ? ifRange === e.etag : httpSeconds(ifRange) === Math.floor(e.mtime.getTime() / 1000);
    if (!same) range = null;
  }
  if (range === 'unsatisfiable') { sendError(req, res, 416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` }); return; }
  const start = range ? range.start : 0;
  const end = range ? range.end : size;
  res.writeHead(range ? 206 : 200, {
    ...headers,
    'Content-Length': String(end - start),
    ...(range ? { 'Content-Range': `bytes ${start}-${end - 1}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || start === end) { res.end(); return; }
  await streamTo(res, src.read(start, end));
}

/** write the pieces with backpressure; stops reading when the client goes away; a read error cuts the response */
export async function streamTo(res: ServerResponse, pieces: AsyncGenerator<Buffer>): Promise<void> {
  let closed = false;
  const onClose = () => { closed = true; };
  res.once('close', onClose);
  try {
    for await (const b of pieces) {
      if (closed || res.destroyed) break;
      if (!res.write(b)) {
        await new Promise<void>((r) => {
          const done = () => { res.off('drain', done); res.off('close', done); r(); };
          res.once('drain', done);
          res.once('close', done);
        });
      }
    }
    if (!closed && !res.destroyed) res.end();
  } catch (err) {
    // the status line is sent: all a client can be told is a response cut short
    res.destroy(err as Error);
    throw err;
  } finally {
    res.off('close', onClose);
  }
}
