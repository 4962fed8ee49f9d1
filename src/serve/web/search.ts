/**
 * `find` and `diff` as pages, by the same code as the CLI verbs (maintenance/inspect.ts): restic's
 * find patterns (a glob per path component, "**", absolute patterns from the root, -i) over one or all
 * snapshots; restic's diff (+ - M T, U with metadata) between two snapshots with its statistics.
 * A page shows at most FIND_LIMIT matches / DIFF_LIMIT changes (the walk stops at the find limit;
 * diff runs to the end for its statistics) and says so.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { diff, find, type DiffStatistics, type FindMatch } from '../../maintenance/inspect.js';
import type { SnapshotWithId } from '../../repo/snapshot.js';
import type { WebContext } from '../context.js';
import { escapeName } from '../names.js';
import { snapshotDirName } from '../vfs.js';
import { badRequest } from './common.js';
import { formatSize, formatSnapshotTime, html, Html, page, sendPage, timeCell, webHref } from './html.js';
import { snapshotHref } from './snapshots.js';

export const FIND_LIMIT = 1000;
export const DIFF_LIMIT = 5000;
const SELECTED = new Html(' selected');
const CHECKED = new Html(' checked');

class Enough extends Error {}

/** the snapshot an id prefix names among `all`, or an error line */
function pick(all: readonly SnapshotWithId[], id: string): SnapshotWithId | string {
  if (id === 'latest') return all.at(-1) ?? 'the repository has no snapshots';
  const m = /^[0-9a-f]{1,64}$/.test(id) ? all.filter((s) => s.id.startsWith(id)) : [];
  return m.length === 1 ? m[0]! : m.length ? `"${id}" names more than one snapshot` : `no snapshot "${id}"`;
}

function snapshotOptions(all: readonly SnapshotWithId[], selected: string | undefined, none?: string): Html {
  return html`${none !== undefined ? html`<option value="">${none}</option>` : ''}${[...all].reverse().map((s) => html`<option value="${s.id.slice(0, 8)}"${selected && s.id.startsWith(selected) ? SELECTED : ''}>${formatSnapshotTime(s.time)} · ${s.hostname ?? ''} · ${s.id.slice(0, 8)}</option>`)}`;
}

/** the served path of a node inside a snapshot, by its raw names */
function segmentsIn(s: SnapshotWithId, names: readonly (Buffer | string)[]): string[] {
  return ['snapshots', snapshotDirName(s), ...names.map((n) => escapeName(n))];
}

export async function findPage(ctx: WebContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const all = await ctx.vfs.snapshots();
  const pattern = url.searchParams.get('pattern') ?? '';
  const snap = url.searchParams.get('snapshot') ?? '';
  const ignoreCase = url.searchParams.get('i') === '1';
  const form = html`<form class="inline" method="get" action="${webHref('find')}">
<input name="pattern" value="${pattern}" placeholder="*.jpg, /home/*/notes, **/2023/**" size="34" autofocus>
<select name="snapshot">${snapshotOptions(all, snap, 'all snapshots')}</select>
<label><input type="checkbox" name="i" value="1"${ignoreCase ? CHECKED : ''}> ignore case</label>
<button type="submit">Find</button></form>`;
  let results: Html | string = html`<p class="muted">Patterns as restic find's: a glob per path component (<code>*</code>, <code>?</code>, <code>[…]</code>), <code>**</code> for any number of folders, a leading <code>/</code> anchors at the root; a name matches wherever it is.</p>`;
  if (pattern) {
    let snaps = all;
    if (snap) {
      const s = pick(all, snap);
      if (typeof s === 'string') { badRequest(req, res, 'Unknown snapshot', s, 404); return; }
      snaps = [s];
    }
    const found: FindMatch[] = [];
    try {
      await find(ctx.repo, snaps, [pattern], ignoreCase, (m) => {
        if (found.length >= FIND_LIMIT) throw new Enough();
        found.push(m);
      });
    } catch (e) {
      if (!(e instanceof Enough)) throw e;
    }
    const rows = found.map((m) => {
      const segs = segmentsIn(m.snapshot, m.names);
      const dir = m.node.type === 'dir';
      return html`<tr><td class="time"><a href="${snapshotHref(m.snapshot)}">${formatSnapshotTime(m.snapshot.time)}</a> <span class="muted mono">${m.snapshot.id.slice(0, 8)}</span></td>
<td class="name"><a href="${dir ? ctx.hrefOf(segs, true) : webHref('view', segs)}">${m.path}${dir ? '/' : ''}</a></td>
<td class="num">${m.node.type === 'file' ? formatSize(m.node.size ?? 0n) : ''}</td>${new Html(timeCell(new Date(Date.parse(m.node.mtime))))}</tr>`;
    });
    results = found.length
      ? html`<p class="muted">${found.length >= FIND_LIMIT ? `The first ${FIND_LIMIT} matches` : `${found.length} match${found.length === 1 ? '' : 'es'}`} in ${snaps.length} snapshot${snaps.length === 1 ? '' : 's'}.</p>
<div class="box"><table><thead><tr><th>Snapshot</th><th>Path</th><th class="num">Size</th><th>Modified</th></tr></thead><tbody>${rows}</tbody></table></div>`
      : html`<div class="box empty">Nothing matches <code>${pattern}</code>.</div>`;
  }
  const body = html`<h1>Find</h1>${form}<div class="spacer"></div>${results}`;
  sendPage(res, req.method === 'HEAD', page(pattern ? `Find ${pattern}` : 'Find', [{ label: 'Snapshots', href: '/' }, { label: 'Find' }], body));
}

function statLine(label: string, s: DiffStatistics['added']): Html {
  return html`<dt>${label}</dt><dd>${s.files} files, ${s.dirs} folders, ${s.others} others; ${s.data_blobs} data blobs, ${s.tree_blobs} tree blobs, ${formatSize(s.bytes)}</dd>`;
}

export async function diffPage(ctx: WebContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const all = await ctx.vfs.snapshots();
  const a = url.searchParams.get('a') ?? all.at(-2)?.id.slice(0, 8) ?? '';
  const b = url.searchParams.get('b') ?? all.at(-1)?.id.slice(0, 8) ?? '';
  const metadata = url.searchParams.get('metadata') === '1';
  const form = html`<form class="inline" method="get" action="${webHref('diff')}">
<select name="a" aria-label="from">${snapshotOptions(all, a)}</select><span class="muted">→</span><select name="b" aria-label="to">${snapshotOptions(all, b)}</select>
<label><input type="checkbox" name="metadata" value="1"${metadata ? CHECKED : ''}> metadata changes</label><button type="submit">Compare</button></form>`;
  let results: Html | string = '';
  if (url.searchParams.has('a') && url.searchParams.has('b')) {
    const sa = pick(all, a);
    const sb = pick(all, b);
    if (typeof sa === 'string' || typeof sb === 'string') { badRequest(req, res, 'Unknown snapshot', typeof sa === 'string' ? sa : sb as string, 404); return; }
    const changes: [string, string, readonly Buffer[]][] = [];
    let total = 0;
    const warnings: string[] = [];
    const st = await diff(ctx.repo, sa.tree, sb.tree, { metadata, warn: (m) => warnings.push(m) }, (mod, p, names) => {
      total++;
      if (changes.length < DIFF_LIMIT) changes.push([mod, p, names]);
    });
    const rows = changes.map(([mod, p, names]) => {
      const s = mod === '-' ? sa : sb;
      const dir = p.endsWith('/');
      const segs = segmentsIn(s, names);
      const cls = mod === '+' ? 'mod-plus' : mod === '-' ? 'mod-minus' : 'mod-change';
      return html`<tr><td class="mono ${cls}">${mod}</td><td class="name"><a href="${dir ? ctx.hrefOf(segs, true) : webHref('view', segs)}">${p}</a></td></tr>`;
    });
    results = html`<dl class="meta"><dt>Files changed</dt><dd>${st.changed_files}</dd>${statLine('Added', st.added)}${statLine('Removed', st.removed)}</dl>
${warnings.map((w) => html`<p class="note">${w}</p>`)}
${total > changes.length ? html`<p class="muted">The first ${changes.length} of ${total} changes.</p>` : ''}
${changes.length ? html`<div class="box"><table><thead><tr><th></th><th>Path</th></tr></thead><tbody>${rows}</tbody></table></div>` : html`<div class="box empty">No differences.</div>`}`;
  }
  const body = html`<h1>Compare snapshots</h1>${form}<div class="spacer"></div>${results}`;
  sendPage(res, req.method === 'HEAD', page('Compare', [{ label: 'Snapshots', href: '/' }, { label: 'Compare' }], body));
}
