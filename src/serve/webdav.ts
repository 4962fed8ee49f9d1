/**
 * WebDAV (RFC 4918) class 1, read-only: OPTIONS and PROPFIND (Depth 0 and 1; infinity refused with
 * the propfind-finite-depth precondition, as §9.1 allows). Properties: displayname, resourcetype,
 * getcontentlength, getlastmodified (RFC 1123), getetag, getcontenttype, creationdate (RFC 3339; the
 * snapshot keeps no birth time: the modification time), supportedlock and lockdiscovery (empty: no locks).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Entry, SnapshotFs } from './vfs.js';
import { contentType } from './mime.js';
import { encodeSegment, escapeMarkup, hrefOf } from './names.js';
import { sendError } from './http.js';

/** the methods a read-only server answers */
export const ALLOW = 'OPTIONS, GET, HEAD, PROPFIND';
/** methods that would write: 405 with Allow (RFC 9110 §15.5.6), the same on every resource */
export const WRITE_METHODS = new Set(['PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPPATCH', 'LOCK', 'UNLOCK', 'POST', 'PATCH']);

const LIVE = ['displayname', 'resourcetype', 'getcontentlength', 'getlastmodified', 'getetag', 'getcontenttype', 'creationdate', 'supportedlock', 'lockdiscovery'] as const;
const MAX_BODY = 1 << 20;

export function sendOptions(res: ServerResponse): void {
  res.writeHead(200, { DAV: '1', Allow: ALLOW, 'MS-Author-Via': 'DAV', 'Content-Length': '0' });
  res.end();
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) return null;
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

type Want = { kind: 'all' } | { kind: 'names' } | { kind: 'props'; props: { ns: string; local: string }[] };

/** the elements of an XML text in order, each with its namespace resolved (scoped xmlns declarations) */
function elements(xml: string): { ns: string; local: string; depth: number }[] {
  const out: { ns: string; local: string; depth: number }[] = [];
  const scopes: Map<string, string>[] = [new Map([['xml', 'http://www.w3.org/XML/1998/namespace']])];
  const text = xml.replace(/<\?[\s\S]*?\?>|<!--[\s\S]*?-->/g, '');
  for (const m of text.matchAll(/<(\/?)([\w.-]+(?::[\w.-]+)?)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g)) {
    if (m[1]) { if (scopes.length > 1) scopes.pop(); continue; }
    const scope = new Map(scopes.at(-1)!);
    for (const a of m[3]!.matchAll(/([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
      const v = a[2] ?? a[3] ?? '';
      if (a[1] === 'xmlns') scope.set('', v);
      else if (a[1]!.startsWith('xmlns:')) scope.set(a[1]!.slice(6), v);
    }
    const q = m[2]!;
    const colon = q.indexOf(':');
    const prefix = colon < 0 ? '' : q.slice(0, colon);
    out.push({ ns: scope.get(prefix) ?? '', local: colon < 0 ? q : q.slice(colon + 1), depth: scopes.length - 1 });
    if (!m[4]) scopes.push(scope);
  }
  return out;
}

/** what a PROPFIND body asks for (no body: allprop, §9.1) */
export function parsePropfind(body: string): Want | null {
  if (!body.trim()) return { kind: 'all' };
  const els = elements(body);
  const root = els[0];
  if (!root || root.local !== 'propfind' || root.ns !== 'DAV:') return null;
  const top = els.filter((e) => e.depth === 1);
  if (top.some((e) => e.local === 'propname' && e.ns === 'DAV:')) return { kind: 'names' };
  if (top.some((e) => e.local === 'allprop' && e.ns === 'DAV:')) return { kind: 'all' };
  if (!top.some((e) => e.local === 'prop' && e.ns === 'DAV:')) return null;
  return { kind: 'props', props: els.filter((e) => e.depth === 2).map((e) => ({ ns: e.ns, local: e.local })) };
}

function propValue(e: Entry, name: (typeof LIVE)[number]): string | null {
  const dir = e.kind === 'dir';
  switch (name) {
    case 'displayname': return escapeMarkup(e.name);
    case 'resourcetype': return dir ? '<D:collection/>' : '';
    case 'getcontentlength': return dir ? null : String(e.size);
    case 'getlastmodified': return e.mtime.toUTCString();
    case 'getetag': return escapeMarkup(e.etag);
    case 'getcontenttype': return dir ? 'httpd/unix-directory' : escapeMarkup(e.kind === 'file' ? contentType(e.name) : 'application/octet-stream');
    case 'creationdate': return e.mtime.toISOString();
    case 'supportedlock': return '';
    case 'lockdiscovery': return '';
  }
}

const OK = '<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>';

/** allprop, written out: the common request (rclone, davfs2 ask for a subset; cadaver, Finder for all) */
function allprop(e: Entry, href: string): string {
  const mod = e.mtime.toUTCString();
  const created = e.mtime.toISOString();
  if (e.kind === 'dir') {
    return `<D:response>${href}<D:propstat><D:prop><D:displayname>${escapeMarkup(e.name)}</D:displayname><D:resourcetype><D:collection/></D:resourcetype><D:getlastmodified>${mod}</D:getlastmodified><D:getetag>${escapeMarkup(e.etag)}</D:getetag><D:getcontenttype>httpd/unix-directory</D:getcontenttype><D:creationdate>${created}</D:creationdate></D:prop>${OK}`;
  }
  const type = e.kind === 'file' ? contentType(e.name) : 'application/octet-stream';
  return `<D:response>${href}<D:propstat><D:prop><D:displayname>${escapeMarkup(e.name)}</D:displayname><D:resourcetype/><D:getcontentlength>${e.size}</D:getcontentlength><D:getlastmodified>${mod}</D:getlastmodified><D:getetag>${escapeMarkup(e.etag)}</D:getetag><D:getcontenttype>${escapeMarkup(type)}</D:getcontenttype><D:creationdate>${created}</D:creationdate></D:prop>${OK}`;
}

/** `parent`: the escaped href of the entry's directory (ends in "/"), computed once per listing */
function response(e: Entry, want: Want, parent?: string): string {
  const own = parent !== undefined ? `${parent}${escapeMarkup(encodeSegment(e.name))}${e.kind === 'dir' ? '/' : ''}` : escapeMarkup(hrefOf(e.path, e.kind === 'dir'));
  const href = `<D:href>${own}</D:href>`;
  if (want.kind === 'all') return allprop(e, href);
  if (want.kind === 'names') {
    const names = LIVE.filter((p) => propValue(e, p) !== null).map((p) => `<D:${p}/>`).join('');
    return `<D:response>${href}<D:propstat><D:prop>${names}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`;
  }
  const found: string[] = [];
  const missing: string[] = [];
  const asked = want.props;
  asked.forEach((p, i) => {
    const v = p.ns === 'DAV:' && (LIVE as readonly string[]).includes(p.local) ? propValue(e, p.local as (typeof LIVE)[number]) : null;
    if (v !== null) found.push(v === '' ? `<D:${p.local}/>` : `<D:${p.local}>${v}</D:${p.local}>`);
    else missing.push(p.ns === 'DAV:' ? `<D:${p.local}/>` : `<X${i}:${p.local} xmlns:X${i}="${escapeMarkup(p.ns)}"/>`);
  });
  let out = `<D:response>${href}`;
  if (found.length || !missing.length) out += `<D:propstat><D:prop>${found.join('')}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>`;
  if (missing.length) out += `<D:propstat><D:prop>${missing.join('')}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>`;
  return `${out}</D:response>`;
}

export async function propfind(vfs: SnapshotFs, req: IncomingMessage, res: ServerResponse, e: Entry): Promise<void> {
  const depth = String(req.headers.depth ?? 'infinity').trim().toLowerCase();
  if (depth !== '0' && depth !== '1') {
    const body = Buffer.from('<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n');
    res.writeHead(403, { 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': String(body.length) });
    res.end(body);
    return;
  }
  const body = await readBody(req);
  const want = body === null ? null : parsePropfind(body);
  if (!want) { sendError(req, res, 400, 'PROPFIND body is not a DAV:propfind'); return; }
  const key = depth === '1' && e.kind === 'dir' ? `${hrefOf(e.path, true)}\0${e.etag}\0${e.snapshot?.tree ?? ''}\0${body}` : null;
  const hit = key !== null ? vfs.listings.get(key) : undefined;
  if (hit) {
    res.writeHead(207, { 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': String(hit.length) });
    res.end(hit);
    return;
  }
  const parts = [`<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">`, response(e, want)];
  if (depth === '1' && e.kind === 'dir') {
    const parent = escapeMarkup(hrefOf(e.path, true));
    for (const x of await vfs.list(e)) parts.push(response(x, want, parent));
  }
  parts.push('</D:multistatus>\n');
  const xml = Buffer.from(parts.join('\n'));
  if (key !== null) vfs.listings.set(key, xml, xml.length + key.length);
  res.writeHead(207, { 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': String(xml.length) });
  res.end(xml);
}
