/**
 * A file page (metadata, a preview, the download) and the raw bytes behind previews and downloads.
 *
 * Preview: raster images, audio and video by an element pointing at `/_/raw/…`; anything else by its
 * first 64 KiB, shown as text when they are UTF-8 (or, with no NUL and nearly all printable, as
 * Latin-1, said so), else as a hex dump of the first 512 bytes. Text is escaped into the page; nothing
 * from a file is ever rendered as markup.
 *
 * Raw bytes (`/_/raw/…`) are served inline only as a raster image, audio, video or text/plain; HTML,
 * SVG, XML, PDF and anything unknown go out as attachments (an `<img>` still shows an SVG: image
 * documents run no script), and every raw response carries `Content-Security-Policy: sandbox`, so even
 * a file opened directly runs in an opaque origin without script: a hostile repository cannot reach
 * the pages, their cookie or the token.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebContext } from '../context.js';
import type { Entry } from '../vfs.js';
import { crumbsOf } from './common.js';
import { snapshotLine } from './folder.js';
import { formatMode, formatSize, formatTime, groupDigits, html, page, safetyHeaders, sendPage, webHref, zoneLabel, type Html } from './html.js';

const PREVIEW_BYTES = 64 << 10;
const HEX_BYTES = 512;
const RAW_CSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'";

const INLINE_IMAGE = /^image\/(png|jpeg|gif|webp|bmp|x-icon|avif)$/;
const MEDIA = /^(audio\/(mpeg|mp4|wav|flac|ogg)|video\/(mp4|webm))$/;

/** RFC 6266 Content-Disposition with an ASCII fallback and the exact UTF-8 name in filename* (RFC 8187) */
export function contentDisposition(kind: 'attachment' | 'inline', name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_') || 'download';
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${fallback}"; filename*=UTF-8''${exact}`;
}

/** how `/_/raw/` serves a type: inline as itself, inline as text/plain, or as an attachment */
function rawDisposition(type: string): { inline: boolean; type: string } {
  const base = type.split(';')[0]!.trim();
  if (INLINE_IMAGE.test(base) || MEDIA.test(base)) return { inline: true, type };
  if (base === 'text/plain' || base === 'text/markdown' || base === 'text/csv' || base === 'application/json') return { inline: true, type: 'text/plain; charset=utf-8' };
  return { inline: false, type };
}

export async function sendRaw(ctx: WebContext, req: IncomingMessage, res: ServerResponse, e: Entry, download: boolean): Promise<void> {
  if (e.kind === 'dir') { ctx.sendError(req, res, 404, 'a folder has no bytes: download it as .tar or .zip'); return; }
  safetyHeaders(res, RAW_CSP);
  const d = rawDisposition(ctx.contentType(e.name));
  const inline = d.inline && !download;
  res.setHeader('Content-Disposition', contentDisposition(inline ? 'inline' : 'attachment', e.name));
  await ctx.sendFile(req, res, e, { contentType: inline ? d.type : ctx.contentType(e.name) });
}

async function head(ctx: WebContext, e: Entry, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of ctx.vfs.open(e).read(0, Math.min(n, e.size))) parts.push(b);
  return Buffer.concat(parts);
}

/** UTF-8 text, allowing a character cut at the end of the sample */
function asUtf8(b: Buffer, cut: boolean): string | null {
  if (b.includes(0)) return null;
  for (let k = 0; k <= (cut ? 3 : 0) && k < b.length; k++) if (isUtf8(b.subarray(0, b.length - k))) return b.subarray(0, b.length - k).toString('utf8');
  return null;
}

function asLatin1(b: Buffer): string | null {
  if (b.includes(0)) return null;
  let odd = 0;
  for (const c of b) if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13 && c !== 12) || (c >= 0x7f && c < 0xa0)) odd++;
  return odd <= b.length / 100 ? b.toString('latin1') : null;
}

function hexDump(b: Buffer): string {
  const lines: string[] = [];
  for (let o = 0; o < b.length; o += 16) {
    const row = b.subarray(o, o + 16);
    const hex = [...row].map((c) => c.toString(16).padStart(2, '0')).join(' ');
    lines.push(`${o.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${[...row].map((c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.')).join('')}`);
  }
  return lines.join('\n');
}

async function preview(ctx: WebContext, e: Entry, raw: string): Promise<Html> {
  const type = ctx.contentType(e.name).split(';')[0]!;
  if (e.kind === 'file' && e.size > 0 && (INLINE_IMAGE.test(type) || type === 'image/svg+xml')) return html`<img class="preview-img" src="${raw}" alt="${e.name}">`;
  if (e.kind === 'file' && e.size > 0 && MEDIA.test(type)) {
    return type.startsWith('audio/') ? html`<audio controls preload="metadata" src="${raw}"></audio>` : html`<video controls preload="metadata" src="${raw}"></video>`;
  }
  if (e.kind === 'other') return html`<div class="box empty">A ${e.node?.type ?? 'special file'}: no content to show.</div>`;
  if (e.size === 0) return html`<div class="box empty">This file is empty.</div>`;
  let b: Buffer;
  try {
    b = await head(ctx, e, PREVIEW_BYTES);
  } catch (err) {
    return html`<p class="note">No preview: ${(err as Error).message}</p>`;
  }
  const cut = e.size > b.length;
  const more = cut ? html`<p class="muted">The first ${formatSize(b.length)} of ${formatSize(e.size)}.</p>` : '';
  const text = asUtf8(b, cut);
  if (text !== null) return html`${more}<div class="box"><pre class="preview">${text}</pre></div>`;
  const latin = asLatin1(b);
  if (latin !== null) return html`<p class="muted">Not UTF-8: shown as Latin-1.</p>${more}<div class="box"><pre class="preview">${latin}</pre></div>`;
  return html`<p class="muted">Binary: the first ${Math.min(HEX_BYTES, b.length)} bytes.</p><div class="box"><pre class="preview">${hexDump(b.subarray(0, HEX_BYTES))}</pre></div>`;
}

export async function filePage(ctx: WebContext, req: IncomingMessage, res: ServerResponse, e: Entry): Promise<void> {
  if (e.kind === 'dir') {
    res.writeHead(301, { Location: ctx.hrefOf(e.path, true) });
    res.end();
    return;
  }
  const n = e.node;
  const raw = webHref('raw', e.path);
  const owner = n ? `${n.user || n.uid}${n.user ? ` (${n.uid})` : ''} / ${n.group || n.gid}${n.group ? ` (${n.gid})` : ''}` : '';
  const target = n?.type === 'symlink' ? n.linktarget?.toString() : undefined;
  const meta = html`<dl class="meta">
<dt>Size</dt><dd>${formatSize(e.size)} <span class="muted">(${groupDigits(e.size)} bytes)</span></dd>
<dt>Modified</dt><dd>${formatTime(e.mtime)} <span class="muted">${zoneLabel(e.mtime)} · ${Number.isNaN(e.mtime.getTime()) ? '' : e.mtime.toISOString()}</span></dd>
${n ? html`<dt>Type</dt><dd>${n.type}${target !== undefined ? html` → <span class="mono">${target}</span>${e.kind === 'file' ? ' (shown as the file it points to)' : ' (shown as its target text)'}` : ''}</dd>
<dt>Mode</dt><dd class="mono">${formatMode(n.mode)}</dd><dt>Owner</dt><dd>${owner}</dd>
${n.links !== undefined && n.links > 1n ? html`<dt>Links</dt><dd>${n.links}</dd>` : ''}` : ''}
${e.content ? html`<dt>Blobs</dt><dd>${(e.content.content ?? []).length}</dd>` : ''}
</dl>`;
  const body = html`<div class="bar"><h1 class="grow">${e.name}</h1>
<a class="btn primary" href="${webHref('download', e.path)}" download>Download</a>${rawDisposition(ctx.contentType(e.name)).inline ? html`<a class="btn" href="${raw}">Open raw</a>` : ''}</div>
${snapshotLine(e)}${meta}${await preview(ctx, e, raw)}`;
  sendPage(res, req.method === 'HEAD', page(e.name, crumbsOf(ctx, e.path, false), body));
}
