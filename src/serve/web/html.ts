/**
 * HTML building blocks of the browser pages: escaping, the page frame, response headers, formatting.
 *
 * Safety rules every page follows: all text that comes from a repository (names, paths, hosts, tags,
 * link targets, file contents) goes through `esc` (text and attribute values alike: & < > " ' are
 * replaced); every href is built from percent-encoded segments (`hrefOf`, `q`); pages carry no script at
 * all and a Content-Security-Policy that allows none (`script-src 'none'`), loads styles and images from
 * this server only, and may not be framed.
 */
import type { ServerResponse } from 'node:http';
import { goModeString } from '../../format/gomode.js';
import { resticTimeFormat } from '../../format/gotime.js';
import { encodeSegment, escapeMarkup } from '../names.js';
import { RESERVED_SEGMENT } from '../context.js';

/** text safe in element content and in quoted attribute values */
export function esc(s: string | number | bigint | undefined | null): string {
  return escapeMarkup(String(s ?? ''));
}

/** raw HTML (already escaped), as opposed to text that `html` escapes */
export class Html {
  constructor(readonly s: string) {}
  toString(): string { return this.s; }
}

/** a tagged template: interpolated values are escaped unless they are Html (or arrays of them) */
export function html(strings: TemplateStringsArray, ...vals: unknown[]): Html {
  let out = strings[0]!;
  vals.forEach((v, i) => { out += part(v) + strings[i + 1]!; });
  return new Html(out);
}

function part(v: unknown): string {
  if (v instanceof Html) return v.s;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v === undefined || v === null || v === false) return '';
  return esc(String(v));
}

/** the reserved prefix's href for a web-layer route, e.g. web('view', ...segments) */
export function webHref(route: string, segments: readonly string[] = [], dir = false): string {
  const tail = segments.map(encodeSegment).join('/');
  return `/${RESERVED_SEGMENT}/${route}${tail ? `/${tail}` : ''}${dir && tail ? '/' : ''}`;
}

/** a query string from pairs (empty values left out) */
export function q(params: Record<string, string | undefined>): string {
  const p = Object.entries(params).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v!)}`);
  return p.length ? `?${p.join('&')}` : '';
}

export const CSP = "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** headers every web-layer response carries */
export function safetyHeaders(res: ServerResponse, csp = CSP): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  // the login token can be in the URL that led here: never tell other sites
  res.setHeader('Referrer-Policy', 'no-referrer');
}

export interface Crumb { label: string; href?: string }

/** the page frame: header with the home link, breadcrumb, title, body */
export function page(title: string, crumbs: readonly Crumb[], body: Html): string {
  const trail = crumbs.map((c, i) => (c.href && i < crumbs.length - 1 ? html`<a href="${c.href}">${c.label}</a>` : html`<span aria-current="page">${c.label}</span>`));
  const sep = new Html('<span class="sep" aria-hidden="true">/</span>');
  const nav = trail.flatMap((t, i) => (i ? [sep, t] : [t]));
  return `<!doctype html>\n${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="color-scheme" content="light dark">
<title>${title} · jbackup</title><link rel="stylesheet" href="${webHref('style.css')}"><link rel="icon" href="${webHref('icon.svg')}"></head>
<body><header class="top"><a class="brand" href="/"><img src="${webHref('icon.svg')}" alt="" width="20" height="20">jbackup</a>
<nav class="links"><a href="/">Snapshots</a><a href="${webHref('find')}">Find</a><a href="${webHref('diff')}">Compare</a></nav></header>
<main>${crumbs.length > 1 ? html`<nav class="crumbs" aria-label="Location">${nav}</nav>` : ''}${body}</main></body></html>`.s}\n`;
}

/** send a page (HEAD: headers only) */
export function sendPage(res: ServerResponse, head: boolean, body: string, status = 200): void {
  safetyHeaders(res);
  const b = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': b.length, 'Cache-Control': 'no-cache' });
  res.end(head ? undefined : b);
}

/** 1,234,567 → "1.2 MiB"; bytes below 1 KiB as they are */
export function formatSize(n: number | bigint): string {
  let v = Number(n);
  if (v < 1024) return `${v} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let u = -1;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** 1234567 → "1,234,567" */
export function groupDigits(n: number | bigint): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const p2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/**
 * A time as the viewer reads it, in the server's time zone (serve runs on the user's own machine; the
 * pages have no script to ask the browser): "2024-05-17 12:20:30". `timeCell` adds the exact UTC
 * instant as a tooltip, `zoneLabel` names the zone in column headers.
 */
export function formatTime(d: Date): string {
  const t = d.getTime();
  if (Number.isNaN(t) || t === 0) return '—';
  const y = d.getFullYear();
  if (y < 1000 || y > 9999) return `${d.toISOString().slice(0, -5).replace('T', ' ')} UTC`;
  return resticTimeFormat(d);
}

/** a table cell with the local time, the UTC instant in its tooltip */
export function timeCell(d: Date): string {
  const t = d.getTime();
  return Number.isNaN(t) || t === 0 ? '<td class="time">—</td>' : `<td class="time" title="${d.toISOString()}">${formatTime(d)}</td>`;
}

/** "UTC+01:00" for the server's zone now (the rows' offsets may differ by daylight saving time) */
export function zoneLabel(d = new Date()): string {
  const off = -d.getTimezoneOffset();
  return off === 0 ? 'UTC' : `UTC${off > 0 ? '+' : '-'}${p2(Math.floor(Math.abs(off) / 60))}:${p2(Math.abs(off) % 60)}`;
}

/** a snapshot time as recorded (its own offset), without fractions: "2024-05-17 12:20:30 +02:00" */
export function formatSnapshotTime(t: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(t);
  return m ? `${m[1]} ${m[2]}${m[3] === 'Z' ? ' UTC' : ` ${m[3]}`}` : t;
}

export function formatMode(goMode: number | undefined): string {
  return goMode === undefined ? '' : goModeString(goMode);
}
