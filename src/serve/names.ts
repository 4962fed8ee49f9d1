/**
 * Names as clients see them. A tree node's name is bytes; a WebDAV client (rclone, davfs2, Finder) and
 * the XML of a multistatus need text that is a valid UTF-8 path segment. A name is shown as it is when
 * it is valid UTF-8, not empty, not "." or "..", and holds no "/", no control character (C0, DEL: XML 1.0
 * cannot carry most of them, nor U+FFFE/U+FFFF) and no "％" (U+FF05 FULLWIDTH PERCENT SIGN, the escape introducer). Else each
 * offending byte becomes "％" followed by two upper-case hex digits (a "/" is "％2F", an invalid byte 0xFF
 * "％FF", the introducer itself "％EF％BC％85"); "." is "％2E", ".." "％2E％2E" and the empty name a lone
 * "％". The introducer is a character names practically never hold and every file system accepts
 * (an ASCII "%" or "\" would collide with URL encoding or Windows paths).
 *
 * The mapping is reversible (unescapeName(escapeName(b)) equals b) and canonical: unescapeName refuses
 * any text escapeName would not have produced, so one entry has exactly one name.
 */
import { isUtf8 } from 'node:buffer';

export const ESCAPE = '\uFF05';
const ESCAPE_BYTES = Buffer.from(ESCAPE, 'utf8');

const hex = (b: number) => ESCAPE + b.toString(16).toUpperCase().padStart(2, '0');

function plain(s: string): boolean {
  if (s === '' || s === '.' || s === '..') return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x2f || c === 0xff05 || c === 0xfffe || c === 0xffff) return false;
  }
  return true;
}

/** the length of the valid UTF-8 sequence at b[i] (1–4), or 0 when b[i] starts none */
function utf8Len(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || i + n > b.length) return 0;
  for (let k = 1; k < n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return 0;
  // overlongs, surrogates and code points above U+10FFFF
  if (c === 0xe0 && b[i + 1]! < 0xa0) return 0;
  if (c === 0xed && b[i + 1]! > 0x9f) return 0;
  if (c === 0xf0 && b[i + 1]! < 0x90) return 0;
  if (c === 0xf4 && b[i + 1]! > 0x8f) return 0;
  return n;
}

/** the client-visible name of a node name (bytes) or of a virtual name (text: host, tag) */
export function escapeName(name: Uint8Array | string): string {
  if (typeof name !== 'string' && name.length > 2) {
    // the common case, printable ASCII without "/": the bytes are the text
    let plainAscii = true;
    for (let i = 0; i < name.length; i++) { const c = name[i]!; if (c < 0x20 || c > 0x7e || c === 0x2f) { plainAscii = false; break; } }
    if (plainAscii) return Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('latin1');
  }
  const b = typeof name === 'string' ? Buffer.from(name, 'utf8') : Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  if (isUtf8(b)) {
    const s = b.toString('utf8');
    if (plain(s)) return s;
    if (s === '') return ESCAPE;
    if (s === '.') return hex(0x2e);
    if (s === '..') return hex(0x2e) + hex(0x2e);
  }
  let out = '';
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    if (c < 0x20 || c === 0x7f || c === 0x2f) { out += hex(c); i++; continue; }
    if (b.subarray(i, i + 3).equals(ESCAPE_BYTES)) { out += hex(0xef) + hex(0xbc) + hex(0x85); i += 3; continue; }
    const n = utf8Len(b, i);
    // U+FFFE and U+FFFF are valid UTF-8 but no XML 1.0 character
    if (n === 0 || (n === 3 && c === 0xef && b[i + 1] === 0xbf && b[i + 2]! >= 0xbe)) { out += hex(c); i++; continue; }
    out += b.subarray(i, i + n).toString('utf8');
    i += n;
  }
  return out;
}

/** the name bytes a client-visible name stands for, or null when no name escapes to it */
export function unescapeName(s: string): Buffer | null {
  if (s === ESCAPE) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  let lit = '';
  for (let i = 0; i < s.length;) {
    if (s[i] === ESCAPE) {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) return null;
      if (lit) { parts.push(Buffer.from(lit, 'utf8')); lit = ''; }
      parts.push(Buffer.from([parseInt(h, 16)]));
      i += 3;
    } else {
      lit += s[i];
      i++;
    }
  }
  if (lit) parts.push(Buffer.from(lit, 'utf8'));
  const b = Buffer.concat(parts);
  // canonical only: "％61" is not another name of "a", a lone surrogate in the text is no name
  return escapeName(b) === s ? b : null;
}

/**
 * A URL path's segments, percent-decoded once, or null when the path is not acceptable: it must start
 * with "/", its segments must decode to valid UTF-8, and none may be "." or ".." or hold a "/" (an
 * encoded slash) or NUL after decoding. Empty segments ("//", a trailing "/") are dropped.
 */
export function splitUrlPath(rawPath: string): string[] | null {
  if (!rawPath.startsWith('/')) return null;
  const out: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '') continue;
    let d: string;
    try {
      d = decodeURIComponent(seg);
    } catch {
      return null;
    }
    if (d === '.' || d === '..' || d.includes('/') || d.includes('\0')) return null;
    out.push(d);
  }
  return out;
}

/** a segment percent-encoded for an href (RFC 3986 pchar: unreserved, sub-delims, ":" and "@" stay) */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** the href of a path (escaped names); directories end in "/" */
export function hrefOf(segments: readonly string[], dir: boolean): string {
  const p = `/${segments.map(encodeSegment).join('/')}`;
  return dir && segments.length ? `${p}/` : p;
}

const MARKUP: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** text safe in XML and HTML element content and quoted attribute values (WebDAV answers, pages) */
export function escapeMarkup(s: string): string {
  return /[&<>"']/.test(s) ? s.replace(/[&<>"']/g, (c) => MARKUP[c]!) : s;
}
