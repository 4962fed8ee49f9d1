/** What several pages share: breadcrumbs of a path, the order of entries, the error pages. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebContext } from '../context.js';
import type { Entry } from '../vfs.js';
import { html, page, sendPage, type Crumb } from './html.js';

/** Snapshots › snapshots › 2024-05-17T10:20:30Z_1a2b3c4d › photos › …; each a link but the last */
export function crumbsOf(ctx: WebContext, segments: readonly string[], lastIsDir = true): Crumb[] {
  const out: Crumb[] = [{ label: 'Snapshots', href: '/' }];
  segments.forEach((s, i) => out.push({ label: s, href: ctx.hrefOf(segments.slice(0, i + 1), i < segments.length - 1 || lastIsDir) }));
  return out;
}

export function notFound(ctx: WebContext, req: IncomingMessage, res: ServerResponse, segments: readonly string[]): void {
  const body = html`<h1>Not found</h1><p class="note">Nothing is at this path in the served snapshots. It may have been renamed by escaping (see the folder above), or the snapshot was forgotten.</p>`;
  sendPage(res, req.method === 'HEAD', page('Not found', crumbsOf(ctx, segments), body), 404);
}

/** an error page with one line of explanation (bad query parameters, an unknown snapshot) */
export function badRequest(req: IncomingMessage, res: ServerResponse, title: string, message: string, status = 400): void {
  sendPage(res, req.method === 'HEAD', page(title, [{ label: 'Snapshots', href: '/' }, { label: title }], html`<h1>${title}</h1><p class="note">${message}</p>`), status);
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

export type SortKey = 'name' | 'size' | 'mtime';

const byName = (a: Entry, b: Entry) => collator.compare(a.name, b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const KEYS: Record<SortKey, (a: Entry, b: Entry) => number> = {
  name: byName,
  size: (a, b) => a.size - b.size || byName(a, b),
  mtime: (a, b) => a.mtime.getTime() - b.mtime.getTime() || byName(a, b),
};

/**
 * Folders first, then by name as people sort (numbers by value, case ignored; ties by code points), or
 * by size or modification time (ties by name); `desc` reverses the order within folders and files.
 */
export function sortEntries(l: Entry[], key: SortKey = 'name', desc = false): Entry[] {
  const k = KEYS[key];
  return l.sort((a, b) => (a.kind === 'dir') !== (b.kind === 'dir') ? (a.kind === 'dir' ? -1 : 1) : desc ? k(b, a) : k(a, b));
}
