/**
 * The HTTP(S) server of `jbackup serve`: authentication first (auth.ts), then the path (names.ts:
 * percent-decoded once, dot segments and encoded slashes refused), then the method: WebDAV
 * (webdav.ts), files (http.ts), the web layer (web/index.ts) for browsers and `/_/`.
 */
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Repository } from '../repo/repository.js';
import { UserError } from '../repo/errors.js';
import { Access, USERNAME } from './auth.js';
import { RESERVED_SEGMENT, type WebContext } from './context.js';
import { sendError, sendFile } from './http.js';
import { contentType } from './mime.js';
import { escapeMarkup, hrefOf, splitUrlPath } from './names.js';
import type { Entry, SnapshotFs } from './vfs.js';
import { ALLOW, propfind, sendOptions, WRITE_METHODS } from './webdav.js';
import { handleWeb } from './web/index.js';

export interface ServerOptions {
  /** the address to listen on (default 127.0.0.1) and port (0: one the OS picks) */
  host?: string;
  port?: number;
  /** the secret (Basic-auth password, ?token=) */
  token: string;
  /** serve HTTPS with this PEM certificate and key */
  tls?: { cert: string; key: string };
  /** each request, answered (with -v) */
  log?: (message: string) => void;
}

export interface RunningServer {
  /** the root URL: `http://127.0.0.1:PORT/` */
  url: string;
  port: number;
  username: string;
  password: string;
  /** the URL that logs a browser in */
  browserUrl: string;
  server: Server;
  close(): Promise<void>;
}

/**
 * Headers on every answer: files from a backup are shown on the server's own origin, so a backed-up
 * HTML or SVG file must not run scripts there (it could read every snapshot with the session cookie):
 * files are served sandboxed (CSP sandbox: an opaque origin, no scripts) and never sniffed.
 */
const COMMON = { 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' } as const;
const FILE_CSP = 'sandbox; default-src \'none\'; img-src \'self\' data:; media-src \'self\'; style-src \'unsafe-inline\'';

/** content types a browser executes or renders with script */
const ACTIVE = /^(text\/html|application\/xhtml\+xml|image\/svg\+xml|text\/xml|application\/xml|text\/javascript|application\/javascript)\b/i;

const wantsHtml = (req: IncomingMessage) => /\btext\/html\b/.test(String(req.headers.accept ?? ''));

/** the listing a directory gets when the web layer does not answer (non-browsers, or no web layer) */
function plainListing(req: IncomingMessage, res: ServerResponse, dir: Entry, entries: Entry[]): void {
  const rows = entries.map((e) => `<li><a href="${escapeMarkup(hrefOf(e.path, e.kind === 'dir'))}">${escapeMarkup(e.name)}${e.kind === 'dir' ? '/' : ''}</a></li>`);
  const title = escapeMarkup(hrefOf(dir.path, true));
  const body = Buffer.from(`<!doctype html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><ul>\n${rows.join('\n')}\n</ul></body></html>\n`);
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(body.length), ETag: dir.etag, 'Last-Modified': dir.mtime.toUTCString(), 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export async function startServer(repo: Repository, vfs: SnapshotFs, o: ServerOptions): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const access = new Access(o.token, !!o.tls);
  const log = o.log ?? (() => {});
  let baseUrl = '';
  const ctx: WebContext = {
    vfs, repo,
    get baseUrl() { return baseUrl; },
    sendFile: (req, res, e, so) => {
      // the web layer may have set its own policy (and disposition): kept
      if (!res.hasHeader('Content-Security-Policy')) res.setHeader('Content-Security-Policy', FILE_CSP);
      // types a browser would run (HTML, SVG, XML, script) are never shown inline from a raw path
      const type = so?.contentType ?? (e.kind === 'file' ? contentType(e.name) : '');
      if (ACTIVE.test(type) && !res.hasHeader('Content-Disposition')) res.setHeader('Content-Disposition', 'attachment');
      return sendFile(vfs, req, res, e, so);
    },
    sendError: (req, res, status, message) => sendError(req, res, status, message),
    hrefOf, contentType, log,
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for (const [k, v] of Object.entries(COMMON)) res.setHeader(k, v);
    const rawUrl = req.url ?? '/';
    const method = req.method ?? 'GET';
    const url = new URL(rawUrl.startsWith('/') ? rawUrl : '/', baseUrl);
    const auth = access.check(req, url);
    if (auth.ok === false) {
      // the body is not read: the connection is closed after a refused upload
      sendError(req, res, 401, 'unauthorized: use the user name and password jbackup serve printed, or its browser URL', { 'WWW-Authenticate': 'Basic realm="jbackup", charset="UTF-8"' });
      return;
    }
    if (auth.ok === 'login') {
      res.writeHead(303, { Location: auth.location, 'Set-Cookie': auth.cookie, 'Content-Length': '0', 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    if (method === 'OPTIONS' && rawUrl === '*') { sendOptions(res); return; }
    const rawPath = rawUrl.split('?')[0]!;
    const segments = splitUrlPath(rawPath);
    if (!segments) { sendError(req, res, 400, 'bad path: "." and ".." segments, encoded "/" and NUL, and invalid UTF-8 are refused'); return; }
    if (segments[0] === RESERVED_SEGMENT) {
      if (!(await handleWeb(ctx, req, res, segments))) sendError(req, res, 404, 'not found');
      return;
    }
    if (method === 'OPTIONS') { sendOptions(res); return; }
    if (WRITE_METHODS.has(method)) { sendError(req, res, 405, 'read-only: jbackup serve never changes the repository', { Allow: ALLOW }); return; }
    if (method !== 'GET' && method !== 'HEAD' && method !== 'PROPFIND') { sendError(req, res, 501, `method ${method} is not implemented`, { Allow: ALLOW }); return; }
    const e = await vfs.stat(segments);
    if (!e) { sendError(req, res, 404, 'not found'); return; }
    if (method === 'PROPFIND') { await propfind(vfs, req, res, e); return; }
    if (e.kind !== 'dir') { await ctx.sendFile(req, res, e); return; }
    if (!rawPath.endsWith('/') && wantsHtml(req)) {
      res.writeHead(301, { Location: hrefOf(e.path, true) + (url.search || ''), 'Content-Length': '0' });
      res.end();
      return;
    }
    if (wantsHtml(req) && (await handleWeb(ctx, req, res, segments))) return;
    plainListing(req, res, e, await vfs.list(e));
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    res.once('finish', () => log(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started} ms`));
    handle(req, res).catch((err: Error) => {
      log(`${req.method} ${req.url}: ${err.message}`);
      if (!res.headersSent) sendError(req, res, 500, `error: ${err.message.split('\n')[0]}`);
      else res.destroy();
    });
  };
  let server: Server;
  try {
    server = o.tls ? createHttps({ cert: o.tls.cert, key: o.tls.key }, onRequest) : createHttp(onRequest);
  } catch (e) {
    throw new UserError(`the TLS certificate and key cannot be used: ${(e as Error).message}`);
  }
  // a client that keeps a connection open must not keep the process from ending
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  baseUrl = `${o.tls ? 'https' : 'http'}://${shownHost}:${port}/`;
  return {
    url: baseUrl, port, username: USERNAME, password: o.token, browserUrl: `${baseUrl}?token=${encodeURIComponent(o.token)}`, server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
