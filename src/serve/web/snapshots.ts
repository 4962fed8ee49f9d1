/**
 * The root page: every snapshot, newest first (time, host, paths, tags, short id, size), filtered by
 * host or tag, each linking to its folder in the served layout.
 *
 * Size: a snapshot written by restic ≥ 0.17 carries `summary.total_bytes_processed`, which is shown.
 * Others (restic ≤ 0.16, jbackup) have no size in the snapshot file, and computing one means walking
 * every tree of the snapshot (`stats --mode restore-size`), which on a large repository on Jottacloud
 * takes minutes: the table shows "—" with a link that computes that one snapshot's restore size on
 * request; the result is kept for the life of the server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Repository } from '../../repo/repository.js';
import type { SnapshotWithId } from '../../repo/snapshot.js';
import { stats } from '../../maintenance/inspect.js';
import type { WebContext } from '../context.js';
import { snapshotDirName } from '../vfs.js';
import { badRequest } from './common.js';
import { formatSize, formatSnapshotTime, html, Html, page, q, sendPage, webHref } from './html.js';

const SELECTED = new Html(' selected');

const computed = new WeakMap<Repository, Map<string, Promise<number>>>();
const done = new WeakMap<Repository, Map<string, number>>();

/** restic ≥ 0.17's summary, else a size computed here earlier */
function knownSize(repo: Repository, s: SnapshotWithId): number | undefined {
  const sum = s.summary as { total_bytes_processed?: unknown } | undefined;
  if (sum && typeof sum.total_bytes_processed === 'number') return sum.total_bytes_processed;
  return done.get(repo)?.get(s.id);
}

export function snapshotHref(s: SnapshotWithId): string {
  return `/snapshots/${encodeURIComponent(snapshotDirName(s))}/`;
}

function options(values: readonly string[], selected: string | null, all: string): Html {
  return html`<option value="">${all}</option>${values.map((v) => html`<option value="${v}"${v === selected ? SELECTED : ''}>${v || '(none)'}</option>`)}`;
}

export async function snapshotsPage(ctx: WebContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const all = await ctx.vfs.snapshots();
  const host = url.searchParams.get('host');
  const tag = url.searchParams.get('tag');
  const hosts = [...new Set(all.map((s) => s.hostname ?? ''))].sort();
  const tags = [...new Set(all.flatMap((s) => s.tags ?? []))].sort();
  const shown = all.filter((s) => (!host || (s.hostname ?? '') === host) && (!tag || (s.tags ?? []).includes(tag))).reverse();
  const rows = shown.map((s) => {
    const size = knownSize(ctx.repo, s);
    return html`<tr>
<td class="time"><a href="${snapshotHref(s)}">${formatSnapshotTime(s.time)}</a></td>
<td><a class="chip" href="/${q({ host: s.hostname ?? '' })}">${s.hostname ?? ''}</a></td>
<td class="name">${s.paths.map((p, i) => html`${i ? html`<br>` : ''}<span class="mono">${p}</span>`)}</td>
<td>${(s.tags ?? []).map((t) => html`<a class="chip" href="/${q({ tag: t })}">${t}</a>`)}</td>
<td><a class="mono" href="/ids/${s.id.slice(0, 8)}/" title="${s.id}">${s.id.slice(0, 8)}</a></td>
<td class="num">${size !== undefined ? formatSize(size) : html`<a class="muted" href="${webHref('size', [s.id.slice(0, 8)])}" title="compute the restore size (walks the snapshot's trees)">—</a>`}</td>
</tr>`;
  });
  const filtered = host !== null && host !== '' || !!tag;
  const body = html`<div class="bar"><h1 class="grow">Snapshots <span class="muted">${shown.length}${filtered ? ` of ${all.length}` : ''}</span></h1>
<form class="inline" method="get" action="/">
<label>Host <select name="host">${options(hosts, host, 'all hosts')}</select></label>
<label>Tag <select name="tag">${options(tags, tag, 'all tags')}</select></label>
<button type="submit">Filter</button>${filtered ? html`<a class="btn" href="/">Clear</a>` : ''}
</form></div>
${shown.length ? html`<div class="box"><table><thead><tr><th>Time</th><th>Host</th><th>Paths</th><th>Tags</th><th>ID</th><th class="num">Size</th></tr></thead>
<tbody>${rows}</tbody></table></div>` : html`<div class="box empty">${all.length ? 'No snapshot matches the filter.' : 'This repository has no snapshots yet.'}</div>`}
<p class="muted">Also as folders: <a href="/snapshots/">snapshots</a> · <a href="/hosts/">hosts</a> · <a href="/tags/">tags</a> · <a href="/ids/">ids</a>. Sizes marked — are computed on a click (restic ≥ 0.17 records them).</p>`;
  sendPage(res, req.method === 'HEAD', page('Snapshots', [{ label: 'Snapshots' }], body));
}

/** compute one snapshot's restore size (restic's `stats --mode restore-size` of that snapshot), then back to the table */
export async function computeSize(ctx: WebContext, req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
  const all = await ctx.vfs.snapshots();
  const matches = /^[0-9a-f]{1,64}$/.test(id) ? all.filter((s) => s.id.startsWith(id)) : [];
  if (matches.length !== 1) { badRequest(req, res, 'Unknown snapshot', matches.length ? `"${id}" names more than one snapshot` : `no snapshot "${id}"`, 404); return; }
  const s = matches[0]!;
  let m = computed.get(ctx.repo);
  if (!m) { m = new Map(); computed.set(ctx.repo, m); }
  let p = m.get(s.id);
  if (!p) {
    p = stats(ctx.repo, [s], 'restore-size').then((r) => {
      let d = done.get(ctx.repo);
      if (!d) { d = new Map(); done.set(ctx.repo, d); }
      d.set(s.id, r.total_size);
      return r.total_size;
    });
    p.catch(() => m!.delete(s.id));
    m.set(s.id, p);
  }
  try {
    await p;
  } catch (e) {
    badRequest(req, res, 'Size not computed', (e as Error).message, 500);
    return;
  }
  res.writeHead(303, { Location: '/', 'Cache-Control': 'no-store' });
  res.end();
}
