/**
 * The pages' only assets, served under the reserved prefix (`/_/style.css`, `/_/icon.svg`) so no page
 * needs inline styles or anything from elsewhere: it works offline and under a CSP of 'self'.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { safetyHeaders } from './html.js';

const CSS = `
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --soft: #f6f8fa;
  --link: #0b62d6; --accent: #1a7f37; --warn: #9a6700; --del: #cf222e; --chip: #eef1f4; --hover: #f3f6fa; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1419; --fg: #e6edf3; --muted: #8d96a0; --line: #2d343c; --soft: #161b22; --link: #58a6ff;
    --accent: #3fb950; --warn: #d29922; --del: #f85149; --chip: #21262d; --hover: #171d25; }
}
* { box-sizing: border-box; }
html { background: var(--bg); color: var(--fg); }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Ubuntu, Cantarell, sans-serif; }
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 24px; border-bottom: 1px solid var(--line); background: var(--soft); }
.brand { display: flex; align-items: center; gap: 8px; font-weight: 600; color: var(--fg); font-size: 15px; }
.brand:hover { text-decoration: none; }
nav.links { display: flex; gap: 16px; }
nav.links a { color: var(--muted); }
nav.links a:hover { color: var(--fg); }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; }
.crumbs { display: flex; flex-wrap: wrap; gap: 6px; align-items: baseline; font-size: 15px; margin: 4px 0 14px; word-break: break-all; }
.crumbs .sep { color: var(--muted); }
.crumbs [aria-current] { font-weight: 600; }
h1 { font-size: 20px; margin: 8px 0 12px; font-weight: 600; }
h2 { font-size: 16px; margin: 24px 0 8px; font-weight: 600; }
.bar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 0 0 12px; }
.bar .grow { flex: 1; }
.muted { color: var(--muted); }
.btn, button { display: inline-flex; align-items: center; gap: 6px; padding: 5px 12px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--soft); color: var(--fg); font: inherit; cursor: pointer; }
.btn:hover, button:hover { background: var(--hover); text-decoration: none; border-color: var(--muted); }
.btn.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
input, select { font: inherit; color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; }
form.inline { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th a { color: inherit; }
.pager { margin: 10px 0; justify-content: flex-end; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; background: var(--soft); }
tbody tr:hover { background: var(--hover); }
tbody tr:last-child td { border-bottom: 0; }
h1 .count { font-size: 14px; font-weight: 400; margin-left: 6px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.name { word-break: break-all; }
.box { border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
img.icon { vertical-align: -3px; margin-right: 8px; }
.chip { display: inline-block; padding: 0 8px; border-radius: 10px; background: var(--chip); font-size: 12px; margin: 1px 2px 1px 0; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 16px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; word-break: break-all; }
pre.preview { margin: 0; padding: 12px 14px; overflow: auto; max-height: 70vh; background: var(--soft); white-space: pre-wrap; word-break: break-all; }
.preview-img { display: block; max-width: 100%; max-height: 75vh; margin: 12px auto; background: repeating-conic-gradient(var(--soft) 0 25%, var(--bg) 0 50%) 0 0 / 16px 16px; }
video, audio { display: block; max-width: 100%; margin: 12px auto; }
.note { padding: 8px 12px; border-radius: 6px; background: var(--soft); border: 1px solid var(--line); margin: 0 0 12px; }
.mod-plus { color: var(--accent); } .mod-minus { color: var(--del); } .mod-change { color: var(--warn); }
th:first-child:empty { width: 2em; }
.spacer { height: 14px; }
.empty { padding: 24px; text-align: center; color: var(--muted); }
@media (max-width: 720px) { .hide-sm { display: none; } main { padding: 12px; } }
`;

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="3" y="6" width="26" height="21" rx="4" fill="#1a7f37"/><rect x="3" y="6" width="26" height="7" rx="3" fill="#2da44e"/><rect x="12" y="17" width="8" height="3" rx="1.5" fill="#fff"/></svg>`;

const svg = (body: string) => `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">${body}</svg>`;
const FOLDER = svg('<path d="M1.5 3.5a1 1 0 0 1 1-1h3.6l1.5 1.6h5.9a1 1 0 0 1 1 1v7.4a1 1 0 0 1-1 1h-11a1 1 0 0 1-1-1z" fill="#e3b341" stroke="#b08800" stroke-width=".8"/>');
const FILE = svg('<path d="M3.5 1.5h6l3 3v10h-9z" fill="#f6f8fa" stroke="#8c959f" stroke-width="1"/><path d="M9.5 1.5v3h3" fill="none" stroke="#8c959f"/>');
const LINK = svg('<path d="M3.5 1.5h6l3 3v10h-9z" fill="#f6f8fa" stroke="#8c959f" stroke-width="1"/><path d="M5.5 11.5l4-4M6.8 7.5h2.7v2.7" fill="none" stroke="#0b62d6" stroke-width="1.3"/>');

const ASSETS: Record<string, { type: string; body: Buffer }> = {
  'style.css': { type: 'text/css; charset=utf-8', body: Buffer.from(CSS) },
  'icon.svg': { type: 'image/svg+xml', body: Buffer.from(ICON) },
  'folder.svg': { type: 'image/svg+xml', body: Buffer.from(FOLDER) },
  'file.svg': { type: 'image/svg+xml', body: Buffer.from(FILE) },
  'link.svg': { type: 'image/svg+xml', body: Buffer.from(LINK) },
};
const ETAGS = Object.fromEntries(Object.entries(ASSETS).map(([k, v]) => [k, `"${createHash('sha256').update(v.body).digest('hex').slice(0, 16)}"`]));

/** answer `/_/<name>` when it is an asset; false otherwise */
export function sendAsset(req: IncomingMessage, res: ServerResponse, name: string): boolean {
  const a = ASSETS[name];
  if (!a) return false;
  safetyHeaders(res);
  const etag = ETAGS[name]!;
  if (req.headers['if-none-match'] === etag) { res.writeHead(304, { ETag: etag }); res.end(); return true; }
  res.writeHead(200, { 'Content-Type': a.type, 'Content-Length': a.body.length, ETag: etag, 'Cache-Control': 'private, max-age=3600' });
  res.end(req.method === 'HEAD' ? undefined : a.body);
  return true;
}
