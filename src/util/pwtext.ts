/**
 * The one rule for turning what a password file or a password command gave into a password, used by
 * the CLI (src/cli/global.ts), its early key derivation (src/cli/early.ts) and profiles
 * (src/schedule/password.ts). It is restic 0.14's (cmd/restic/global.go resolvePassword): a UTF-8 byte
 * order mark is dropped and UTF-16 with a byte order mark decoded (internal/textfile), then surrounding
 * white space is trimmed as Go's strings.TrimSpace does, so that a repository made by either tool from
 * a file holding "pw \n" opens with the other. A password from the environment is used as it is.
 * Kept free of imports: early.ts loads it before the rest of jbackup.
 */

/** Go's unicode.IsSpace set (JavaScript's trim() differs: it also trims U+FEFF and keeps U+0085) */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRIM_RE = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');

/** restic's textfile.Decode: strip a UTF-8 BOM, decode UTF-16 (either byte order) that starts with a BOM */
function decodeText(b: Uint8Array): string {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return buf.subarray(3).toString('utf8');
  if (buf[0] === 0xff && buf[1] === 0xfe) return buf.subarray(2).toString('utf16le');
  if (buf[0] === 0xfe && buf[1] === 0xff) {
    const le = Buffer.from(buf.subarray(2, 2 + ((buf.length - 2) & ~1)));
    le.swap16();
    return le.toString('utf16le');
  }
  return buf.toString('utf8');
}

/** the password in a password file's bytes, or in a password command's output */
export function passwordFromText(b: Uint8Array): Buffer {
  return Buffer.from(decodeText(b).replace(TRIM_RE, ''), 'utf8');
}

/**
 * restic reads a password from standard input, when it is not a terminal, as one line (bufio.Scanner:
 * up to the first newline, a carriage return before it dropped), not trimmed
 */
export function passwordFromLine(b: Uint8Array): Buffer {
  let s = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const nl = s.indexOf(0x0a);
  if (nl >= 0) s = s.subarray(0, nl);
  if (s.length > 0 && s[s.length - 1] === 0x0d) s = s.subarray(0, s.length - 1);
  return Buffer.from(s);
}
