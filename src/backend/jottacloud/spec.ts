/**
 * Repository locations on Jottacloud and name encoding.
 *
 *   jotta:<path>             account "default"
 *   jotta@<account>:<path>   a named account (names: letters, digits, '.', '_', '-'; no ':')
 *
 * The account name can never contain ':', so the first ':' after `jotta` or `jotta@<account>`
 * ends the prefix and the rest (which may contain ':') is the path. The path lives below the
 * account's device/mountpoint (default Jotta/Archive), i.e. where rclone puts `jotta:<path>`,
 * so `restic -r rclone:jotta:<path>` opens the same repository.
 *
 * Path segments are encoded like rclone's jottacloud backend (1.60.1's default encoder:
 * Slash, LtGt, DoubleQuote, Colon, Question, Asterisk, Pipe, Del, Ctl, InvalidUtf8, Dot), so
 * names with such characters land in the same folder as rclone's — plus Percent (`%` → `％`),
 * which rclone added to its default in 2026 (rclone PR 9203, issue 9153): the service decodes
 * URL paths twice, so a name holding `%20` reaches it as a space or is refused with 400. Older
 * rclone sees the same folder with `--jottacloud-encoding` naming Percent too. (`+` needs no
 * mapping: it is sent as %2B, never raw, since a raw `+` is read as a space.)
 */
import { DEFAULT_ACCOUNT, validateAccountName } from './accounts.js';
import { JottaError } from './errors.js';

export interface JottaSpec {
  account: string;
  /** path segments below the mountpoint, decoded (as the user wrote them) */
  segments: string[];
}

export function isJottaLocation(location: string): boolean {
  return /^jotta(@[^:]*)?:/.test(location);
}

export function parseJottaLocation(location: string): JottaSpec {
  const m = /^jotta(?:@([^:]*))?:(.*)$/s.exec(location);
  if (!m) throw new JottaError(`not a Jottacloud location: "${location}" (use jotta:<path> or jotta@<account>:<path>)`);
  const account = m[1] === undefined ? DEFAULT_ACCOUNT : validateAccountName(m[1]);
  const segments: string[] = [];
  for (const s of m[2]!.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') throw new JottaError(`"..\" is not allowed in a Jottacloud repository path: ${location}`);
    segments.push(s);
  }
  return { account, segments };
}

const MAP: Record<string, string> = {
  '/': '\uff0f', '%': '\uff05', '<': '\uff1c', '>': '\uff1e', '"': '\uff02', ':': '\uff1a', '?': '\uff1f', '*': '\uff0a', '|': '\uff5c', '\x7f': '\u2421',
};
const QUOTE = '\u201b';
const REPLACEMENTS = new Set<string>([...Object.values(MAP), '\uff0e', QUOTE]);

/**
 * rclone's default jottacloud name encoding for one path segment; `percent: false` leaves `%` as
 * it is (rclone 1.60.1 and jbackup before the Percent mapping: where older repositories are).
 */
export function encodeName(name: string, percent = true): string {
  if (name === '.') return '\uff0e';
  if (name === '..') return '\uff0e\uff0e';
  let out = '';
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    if (ch === '%' && !percent) out += ch;
    else if (MAP[ch] !== undefined) out += MAP[ch];
    else if (cp < 0x20) out += String.fromCodePoint(0x2400 + cp);
    else if (REPLACEMENTS.has(ch) || (cp >= 0x2400 && cp <= 0x241f)) out += QUOTE + ch;
    else out += ch;
  }
  return out;
}
