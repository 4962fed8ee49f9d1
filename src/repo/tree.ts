/**
 * Tree blobs of restic repository format v2, byte-identical to restic 0.14.0
 * (Debian build, go1.19). Pure: no I/O.
 *
 * Layers, as restic does it:
 *   name       -> Go strconv.Quote body (quotes stripped) -> Go encoding/json string
 *   linktarget -> Go encoding/json string (invalid UTF-8 bytes become the escape \ufffd)
 *   times      -> Go time.Time RFC3339Nano in the local zone
 *   uint64s    -> plain decimal integers (bigint here, never JS numbers)
 */

import { isUtf8 } from 'node:buffer';

/** Go os.FileMode bits. */
export const GoMode = {
  Dir: 0x80000000,
  Append: 0x40000000,
  Exclusive: 0x20000000,
  Temporary: 0x10000000,
  Symlink: 0x08000000,
  Device: 0x04000000,
  NamedPipe: 0x02000000,
  Socket: 0x01000000,
  Setuid: 0x00800000,
  Setgid: 0x00400000,
  CharDevice: 0x00200000,
  Sticky: 0x00100000,
  Irregular: 0x00080000,
  Perm: 0o777,
} as const;

export type NodeType =
  | 'file'
  | 'dir'
  | 'symlink'
  | 'dev'
  | 'chardev'
  | 'fifo'
  | 'socket'
  | 'irregular'
  | (string & {});

export interface ExtendedAttribute {
  name: string;
  /** null is written as JSON null (Go nil slice); an empty Buffer as "". */
  value: Buffer | null;
}

export interface Node {
  /** Raw name bytes (not quoted). */
  name: Buffer;
  type: NodeType;
  /** Go FileMode as an unsigned 32-bit number; 0 is omitted. */
  mode: number;
  /** RFC3339Nano strings, exactly as they appear in the JSON. */
  mtime: string;
  atime: string;
  ctime: string;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  inode?: bigint;
  deviceId?: bigint;
  size?: bigint;
  links?: bigint;
  /** Raw link target bytes. On decode: linktarget_raw when present, else the (lossy) linktarget string. */
  linktarget?: Buffer;
  /** Only set when decoded from a tree that had `linktarget_raw` (restic 0.16+); written back as is. */
  linktargetRaw?: Buffer;
  /**
   * Decoder only: the exact JSON literal (with quotes) of `linktarget`, kept when re-encoding the
   * decoded bytes would not reproduce it (restic 0.14 writes each invalid UTF-8 byte as the escape
   * \ufffd, which decodes to the same bytes as a genuine U+FFFD). encodeTree writes it verbatim as
   * long as it still denotes `linktarget`; it is ignored otherwise.
   */
  linktargetJson?: string;
  extendedAttributes?: ExtendedAttribute[];
  /** restic 0.17+: name -> raw (compact) JSON text of the value. */
  genericAttributes?: Record<string, string>;
  device?: bigint;
  /** Hex blob ids; `[]` for an empty file, null/undefined (written as null) for non-files. */
  content?: string[] | null;
  subtree?: string;
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// Unicode: Go 1.19 unicode.IsPrint (Unicode 13.0.0): categories L, M, N, P, S plus U+0020.
// Generated from the Unicode 13.0.0 character database; pairs "gap,len" in hex, where
// start = previous end + 1 + gap and end = start + len.
const GO119_PRINT_RANGES =
  '20,5e 22,b 1,2c9 2,5 4,6 1,0 1,13 1,18c 1,25 2,31 2,2 1,36 8,1a 4,5 11,15 2,be 1,2f 2,3a 2,64 ' +
  'e,3a 2,30 2,e 1,1b 2,0 1,a 35,14 1,11 b,e 1,a0 1,7 2,1 2,15 1,6 1,0 3,3 2,8 2,1 2,3 8,0 4,1 1,4 ' +
  '2,18 2,2 1,5 4,1 2,15 1,6 1,1 1,1 1,1 2,0 1,4 4,1 2,2 3,0 7,3 1,0 7,10 a,2 1,8 1,2 1,15 1,6 1,1 ' +
  '1,4 2,9 1,2 1,2 2,0 f,3 2,b 7,6 1,2 1,7 2,1 2,15 1,6 1,1 1,4 2,8 2,1 2,2 7,2 4,1 1,4 2,11 a,1 ' +
  '1,5 3,2 1,3 3,1 1,0 1,1 3,1 3,2 3,b 4,4 3,2 1,3 2,0 6,0 e,14 5,c 1,2 1,16 1,f 3,7 1,2 1,3 7,1 ' +
  '1,2 5,3 2,9 7,15 1,2 1,16 1,9 1,4 2,8 1,2 1,3 7,1 7,0 1,3 2,9 1,1 d,c 1,2 1,32 1,2 1,5 4,f 2,19 ' +
  '1,2 1,11 3,17 1,8 1,0 2,6 3,0 4,5 1,0 1,7 6,9 2,2 c,39 4,1c 25,1 1,0 1,4 1,17 1,0 1,16 2,4 1,0 ' +
  '1,5 2,9 2,3 20,47 1,23 4,26 1,23 1,e 1,c 25,c5 1,0 5,0 2,178 1,3 2,6 1,0 1,3 2,28 1,3 2,20 1,3 ' +
  '2,6 1,0 1,3 2,e 1,38 1,3 2,42 2,1f 3,19 6,55 2,5 2,27f 1,1b 3,58 7,c 1,6 b,16 9,13 c,c 1,2 1,1 ' +
  'c,5d 2,9 6,9 6,d 2,9 6,58 7,2a 5,45 a,1e 1,b 4,b 4,0 3,29 2,4 b,2b 4,19 6,a 3,3d 2,40 1,1c 2,a ' +
  '6,9 6,d 2,10 3f,4b 4,2c 3,73 8,3b 3,e 3,3b 7,2a 2,a 8,2a 5,f9 1,11a 2,5 2,25 2,5 2,7 1,0 1,0 1,0 ' +
  '1,1e 2,34 1,e 1,d 2,5 1,12 2,2 1,8 11,17 8,2e 11,1 2,1a 1,c 3,1f 10,20 f,8b 4,296 19,a 15,713 ' +
  '2,1f 1,97 1,2e 1,93 5,2c 1,0 5,0 2,37 7,1 e,17 9,6 1,6 1,6 1,6 1,6 1,6 1,6 1,6 1,72 2d,19 1,58 ' +
  'c,d5 1a,b 5,3e 1,55 2,66 5,2a 1,5d 1,53 c,2e 1,6ddc 3,48c 3,36 9,15b 14,b7 8,bf 2,8 2a,37 3,9 ' +
  '6,37 8,45 8,b 6,73 b,1d 3,4d 1,a 4,20 1,36 9,d 2,9 2,66 18,1b a,5 2,5 2,5 9,6 1,6 1,3b 4,7d 2,9 ' +
  '6,2ba3 c,16 4,30 2104,16d 2,69 26,6 c,4 5,19 1,4 1,0 1,1 1,1 1,7b 11,16c 10,3f 2,35 28,d 2,19 ' +
  '6,32 1,12 1,3 4,4 1,86 4,bd 3,5 2,5 2,5 2,2 3,6 1,6 d,1 2,b 1,19 1,12 1,1 1,e 2,d 22,7a 5,2 4,2c ' +
  '3,57 1,c 3,0 2f,2d 82,1c 3,30 f,1b 4,23 9,1d 5,2a 5,1d 1,24 4,d 2a,9d 2,9 6,23 4,23 4,27 8,33 ' +
  'b,0 90,136 9,15 a,7 98,5 2,0 1,2b 1,1 3,0 2,16 1,47 8,8 30,12 1,1 5,20 3,1a 5,0 40,37 4,13 2,31 ' +
  '1,1 5,7 1,2 1,1c 2,2 4,9 7,8 7,3f 20,26 4,b 9,35 3,1c 2,1a 5,19 7,3 c,6 50,48 37,32 d,32 7,2d ' +
  '8,9 126,1e 1,29 1,2 2,1 4e,27 8,29 56,1b 14,16 9,4d 4,1d f,3d 1,3 e,18 7,9 6,34 1,11 8,26 9,5f ' +
  '1,13 b,11 1,2b 41,6 1,0 1,3 1,e 1,a 6,3a 5,9 6,3 1,7 2,1 2,15 1,6 1,1 1,4 1,9 2,1 2,2 2,0 6,0 ' +
  '5,6 2,6 3,4 8b,5b 1,4 1e,47 8,9 a6,35 2,25 22,44 b,9 6,c 13,38 7,9 36,1a 2,e 4,f c0,3b 64,52 c,7 ' +
  '2,0 2,7 1,1 1,1d 1,1 2,b 9,9 46,7 2,2d 2,a 1b,47 8,52 1d,38 107,8 1,2c 1,d a,1c 3,1f 2,15 1,d ' +
  '49,6 1,1 1,2b 3,0 1,1 1,8 8,9 6,5 1,1 1,24 1,1 1,5 7,9 136,18 b7,0 f,31 d,39a 66,6e 1,4 b,c3 ' +
  'abc,42e fd1,246 21b9,238 7,1e 1,9 4,1 60,1d 2,5 a,45 a,9 1,6 1,14 5,12 2b0,5a 65,4a 4,38 7,10 ' +
  '40,4 b,1 e,17f7 8,4d5 2a,8 22f7,11e 31,2 11,3 8,18b 904,6a 5,c 3,8 7,9 2,3 1360,f5 a,26 2,49 ' +
  '8,6d 17,45 9a,13 c,56 9,18 87,54 1,46 1,1 2,0 2,1 2,3 1,b 1,0 1,6 1,40 1,3 2,7 1,6 1,1b 1,3 1,4 ' +
  '1,0 3,6 1,153 2,123 2,2bd f,4 1,e 550,6 1,10 2,6 1,1 1,4 d5,2c 3,d 2,9 4,1 170,39 5,0 500,c4 2,f ' +
  '29,4b 4,9 4,1 311,43 4c,3c c2,3 1,1a 1,1 1,0 2,0 1,9 1,3 1,0 1,0 6,0 4,0 1,0 1,0 1,2 1,1 1,0 2,0 ' +
  '1,0 1,0 1,0 1,0 1,1 1,0 2,3 1,6 1,3 1,3 1,0 1,9 1,10 5,2 1,4 1,10 34,1 10e,2b 4,63 c,e 2,e 1,e ' +
  '1,24 a,ad 38,1c d,2b 4,8 7,1 e,5 9a,3d7 8,c 3,c 3,73 c,58 7,b 14,b 4,37 8,9 6,27 8,1d 2,1 4e,78 ' +
  '1,51 1,86 c,d 2,4 3,2 5,6 9,18 7,6 9,2 d,6 29,92 1,36 25,9 406,a6dd 22,1034 b,dd 2,1681 e,1d30 ' +
  'c1f,21d 5e2,134a aedb5,ef';

let printStarts: Uint32Array | undefined;
let printEnds: Uint32Array | undefined;

function loadPrintTable(): void {
  const parts = GO119_PRINT_RANGES.split(' ');
  const starts = new Uint32Array(parts.length);
  const ends = new Uint32Array(parts.length);
  let prev = -1;
  for (let i = 0; i < parts.length; i++) {
    const [gap, len] = parts[i]!.split(',');
    const start = prev + 1 + parseInt(gap!, 16);
    const end = start + parseInt(len!, 16);
    starts[i] = start;
    ends[i] = end;
    prev = end;
  }
  printStarts = starts;
  printEnds = ends;
}

/** Go 1.19 `unicode.IsPrint` / `strconv.IsPrint` (Unicode 13.0.0 tables). */
export function isGoPrint(r: number): boolean {
  if (r < 0x80) return r >= 0x20 && r < 0x7f;
  if (!printStarts) loadPrintTable();
  const s = printStarts!;
  const e = printEnds!;
  let lo = 0;
  let hi = s.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (r < s[mid]!) hi = mid - 1;
    else if (r > e[mid]!) lo = mid + 1;
    else return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// UTF-8 decoding exactly like Go's utf8.DecodeRune: any invalid or truncated sequence yields
// (U+FFFD, 1), so every byte of a bad sequence is reported separately.

const RUNE_ERROR = 0xfffd;
let decodedSize = 0;

function decodeRune(b: Uint8Array, i: number): number {
  const n = b.length - i;
  const c0 = b[i]!;
  if (c0 < 0x80) {
    decodedSize = 1;
    return c0;
  }
  decodedSize = 1;
  if (c0 < 0xc2 || c0 > 0xf4) return RUNE_ERROR;
  if (n < 2) return RUNE_ERROR;
  const c1 = b[i + 1]!;
  if (c0 < 0xe0) {
    if (c1 < 0x80 || c1 > 0xbf) return RUNE_ERROR;
    decodedSize = 2;
    return ((c0 & 0x1f) << 6) | (c1 & 0x3f);
  }
  let lo = 0x80;
  let hi = 0xbf;
  if (c0 === 0xe0) lo = 0xa0;
  else if (c0 === 0xed) hi = 0x9f;
  else if (c0 === 0xf0) lo = 0x90;
  else if (c0 === 0xf4) hi = 0x8f;
  if (c1 < lo || c1 > hi) return RUNE_ERROR;
  if (n < 3) return RUNE_ERROR;
  const c2 = b[i + 2]!;
  if (c2 < 0x80 || c2 > 0xbf) return RUNE_ERROR;
  if (c0 < 0xf0) {
    decodedSize = 3;
    return ((c0 & 0x0f) << 12) | ((c1 & 0x3f) << 6) | (c2 & 0x3f);
  }
  if (n < 4) return RUNE_ERROR;
  const c3 = b[i + 3]!;
  if (c3 < 0x80 || c3 > 0xbf) return RUNE_ERROR;
  decodedSize = 4;
  return ((c0 & 0x07) << 18) | ((c1 & 0x3f) << 12) | ((c2 & 0x3f) << 6) | (c3 & 0x3f);
}

function pushRune(out: Uint8Array, w: number, r: number): number {
  if (r < 0x80) {
    out[w++] = r;
  } else if (r < 0x800) {
    out[w++] = 0xc0 | (r >> 6);
    out[w++] = 0x80 | (r & 0x3f);
  } else if (r < 0x10000) {
    out[w++] = 0xe0 | (r >> 12);
    out[w++] = 0x80 | ((r >> 6) & 0x3f);
    out[w++] = 0x80 | (r & 0x3f);
  } else {
    out[w++] = 0xf0 | (r >> 18);
    out[w++] = 0x80 | ((r >> 12) & 0x3f);
    out[w++] = 0x80 | ((r >> 6) & 0x3f);
    out[w++] = 0x80 | (r & 0x3f);
  }
  return w;
}

const HEX = '0123456789abcdef';

function hexPad(v: number, width: number): string {
  return v.toString(16).padStart(width, '0');
}

function toBytes(b: Uint8Array | string): Uint8Array {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
}

// ---------------------------------------------------------------------------------------------
// Go strconv.Quote / Unquote

/** Body of Go `strconv.Quote(b)`, i.e. without the surrounding double quotes (what restic stores). */
export function goQuoteBody(b: Uint8Array | string): string {
  const bytes = toBytes(b);
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += '\\\\';
      else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
      else if (c === 0x07) out += '\\a';
      else if (c === 0x08) out += '\\b';
      else if (c === 0x0c) out += '\\f';
      else if (c === 0x0a) out += '\\n';
      else if (c === 0x0d) out += '\\r';
      else if (c === 0x09) out += '\\t';
      else if (c === 0x0b) out += '\\v';
      else out += '\\x' + HEX[c >> 4] + HEX[c & 15];
      continue;
    }
    const r = decodeRune(bytes, i);
    const size = decodedSize;
    if (r === RUNE_ERROR && size === 1) {
      out += '\\x' + HEX[c >> 4] + HEX[c & 15];
    } else if (isGoPrint(r)) {
      out += String.fromCodePoint(r);
    } else if (r < 0x10000) {
      out += '\\u' + hexPad(r, 4);
    } else {
      out += '\\U' + hexPad(r, 8);
    }
    i += size;
  }
  return out;
}

/** Go `strconv.Quote(b)`, including the surrounding double quotes. */
export function goQuote(b: Uint8Array | string): string {
  return '"' + goQuoteBody(b) + '"';
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Inverse of goQuote: accepts a full Go double-quoted literal (`"..."`) or just its body (a body
 * can never start with an unescaped `"`). Handles \a \b \f \n \r \t \v \\ \" \xHH \ooo \uHHHH
 * \UHHHHHHHH and raw characters (raw control characters and newlines are tolerated, unlike Go).
 * Throws on invalid escapes and on a raw `"` inside the body.
 */
export function goUnquote(s: string | Uint8Array): Buffer {
  const bytes = toBytes(s);
  let start = 0;
  let end = bytes.length;
  if (end > 0 && bytes[0] === 0x22) {
    if (end < 2 || bytes[end - 1] !== 0x22) throw new SyntaxError('goUnquote: unterminated quoted string');
    start = 1;
    end -= 1;
  }
  const out = Buffer.allocUnsafe(end - start);
  let w = 0;
  const bad = (msg: string): never => {
    throw new SyntaxError(`goUnquote: ${msg} in ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`);
  };
  let i = start;
  while (i < end) {
    const c = bytes[i]!;
    if (c === 0x22) bad('unescaped quote');
    if (c !== 0x5c) {
      out[w++] = c;
      i++;
      continue;
    }
    if (i + 1 >= end) bad('trailing backslash');
    const e = bytes[i + 1]!;
    i += 2;
    switch (e) {
      case 0x61: out[w++] = 0x07; break; // a
      case 0x62: out[w++] = 0x08; break; // b
      case 0x66: out[w++] = 0x0c; break; // f
      case 0x6e: out[w++] = 0x0a; break; // n
      case 0x72: out[w++] = 0x0d; break; // r
      case 0x74: out[w++] = 0x09; break; // t
      case 0x76: out[w++] = 0x0b; break; // v
      case 0x5c: out[w++] = 0x5c; break;
      case 0x22: out[w++] = 0x22; break;
      case 0x78: // x
      case 0x75: // u
      case 0x55: { // U
        const n = e === 0x78 ? 2 : e === 0x75 ? 4 : 8;
        if (i + n > end) bad('short hex escape');
        let v = 0;
        for (let k = 0; k < n; k++) {
          const h = hexVal(bytes[i + k]!);
          if (h < 0) bad('invalid hex escape');
          v = v * 16 + h;
        }
        i += n;
        if (e === 0x78) {
          out[w++] = v;
        } else {
          if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) bad('invalid rune escape');
          w = pushRune(out, w, v);
        }
        break;
      }
      default: {
        if (e >= 0x30 && e <= 0x37) {
          if (i + 2 > end) bad('short octal escape');
          let v = e - 0x30;
          for (let k = 0; k < 2; k++) {
            const d = bytes[i + k]! - 0x30;
            if (d < 0 || d > 7) bad('invalid octal escape');
            v = v * 8 + d;
          }
          if (v > 255) bad('octal escape out of range');
          i += 2;
          out[w++] = v;
        } else {
          bad('invalid escape');
        }
      }
    }
  }
  return out.subarray(0, w);
}

// ---------------------------------------------------------------------------------------------
// Go 1.19 encoding/json string encoding (with HTML escaping, as json.Marshal does)

/** characters Go writes unescaped: printable ASCII (and DEL) except " \\ < > & */
const PLAIN_JSON_RE = /^[^"\\<>&\x00-\x1f\u0080-\uffff]*$/;

function plainJsonBytes(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c < 0x20 || c >= 0x80 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) return false;
  }
  return true;
}

/** A JSON string literal exactly as Go 1.19's encoding/json writes it. */
export function goJsonString(b: Uint8Array | string): string {
  // fast path (names, ids, times): printable ASCII that needs no escape is copied as it is
  if (typeof b === 'string') {
    if (PLAIN_JSON_RE.test(b)) return '"' + b + '"';
  } else if (plainJsonBytes(b)) {
    return '"' + Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1') + '"';
  }
  const bytes = toBytes(b);
  let out = '"';
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x3c && c !== 0x3e && c !== 0x26) {
        out += String.fromCharCode(c);
      } else if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += '\\\\';
      else if (c === 0x0a) out += '\\n';
      else if (c === 0x0d) out += '\\r';
      else if (c === 0x09) out += '\\t';
      else out += '\\u00' + HEX[c >> 4] + HEX[c & 15]; // incl. \b \f (go < 1.22) and <>&
      continue;
    }
    const r = decodeRune(bytes, i);
    const size = decodedSize;
    i += size;
    if (r === RUNE_ERROR && size === 1) out += '\\ufffd';
    else if (r === 0x2028 || r === 0x2029) out += '\\u' + hexPad(r, 4);
    else out += String.fromCodePoint(r);
  }
  return out + '"';
}

// ---------------------------------------------------------------------------------------------
// Minimal JSON parser keeping exact numbers, string bytes and source positions

type JVal =
  | { k: 'obj'; entries: [string, JVal][]; s: number; e: number }
  | { k: 'arr'; items: JVal[]; s: number; e: number }
  | { k: 'str'; b: Buffer; s: number; e: number }
  | { k: 'num'; t: string; s: number; e: number }
  | { k: 'lit'; v: boolean | null; s: number; e: number };

class JsonParser {
  pos = 0;
  constructor(readonly src: Uint8Array) {}

  fail(msg: string): never {
    throw new SyntaxError(`tree JSON: ${msg} at offset ${this.pos}`);
  }

  ws(): void {
    const b = this.src;
    while (this.pos < b.length) {
      const c = b[this.pos]!;
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  value(): JVal {
    this.ws();
    const b = this.src;
    if (this.pos >= b.length) this.fail('unexpected end of input');
    const c = b[this.pos]!;
    const s = this.pos;
    if (c === 0x7b) {
      this.pos++;
      const entries: [string, JVal][] = [];
      this.ws();
      if (b[this.pos] === 0x7d) {
        this.pos++;
        return { k: 'obj', entries, s, e: this.pos };
      }
      for (;;) {
        this.ws();
        if (b[this.pos] !== 0x22) this.fail('expected object key');
        const key = this.string().b.toString('utf8');
        this.ws();
        if (b[this.pos] !== 0x3a) this.fail("expected ':'");
        this.pos++;
        entries.push([key, this.value()]);
        this.ws();
        const d = b[this.pos];
        this.pos++;
        if (d === 0x2c) continue;
        if (d === 0x7d) return { k: 'obj', entries, s, e: this.pos };
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
    if (c === 0x5b) {
      this.pos++;
      const items: JVal[] = [];
      this.ws();
      if (b[this.pos] === 0x5d) {
        this.pos++;
        return { k: 'arr', items, s, e: this.pos };
      }
      for (;;) {
        items.push(this.value());
        this.ws();
        const d = b[this.pos];
        this.pos++;
        if (d === 0x2c) continue;
        if (d === 0x5d) return { k: 'arr', items, s, e: this.pos };
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
    if (c === 0x22) return this.string();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.matchWord(word)) return { k: 'lit', v, s, e: this.pos };
    }
    return this.fail('unexpected character');
  }

  matchWord(w: string): boolean {
    for (let k = 0; k < w.length; k++) if (this.src[this.pos + k] !== w.charCodeAt(k)) return false;
    this.pos += w.length;
    return true;
  }

  number(): JVal {
    const b = this.src;
    const s = this.pos;
    const digits = (): number => {
      const st = this.pos;
      while (this.pos < b.length && b[this.pos]! >= 0x30 && b[this.pos]! <= 0x39) this.pos++;
      return this.pos - st;
    };
    if (b[this.pos] === 0x2d) this.pos++;
    if (b[this.pos] === 0x30) this.pos++;
    else if (digits() === 0) this.fail('invalid number');
    if (b[this.pos] === 0x2e) {
      this.pos++;
      if (digits() === 0) this.fail('invalid number');
    }
    if (b[this.pos] === 0x65 || b[this.pos] === 0x45) {
      this.pos++;
      if (b[this.pos] === 0x2b || b[this.pos] === 0x2d) this.pos++;
      if (digits() === 0) this.fail('invalid number');
    }
    return { k: 'num', t: Buffer.from(b.subarray(s, this.pos)).toString('latin1'), s, e: this.pos };
  }

  /** Decodes a JSON string the way Go does: invalid UTF-8 bytes and lone surrogates become U+FFFD. */
  string(): { k: 'str'; b: Buffer; s: number; e: number } {
    const b = this.src;
    const s = this.pos;
    this.pos++; // opening quote
    // Output is at most 3x the input (an invalid byte becomes the 3-byte U+FFFD).
    let end = this.pos;
    while (end < b.length && b[end] !== 0x22) end += b[end] === 0x5c ? 2 : 1;
    if (end >= b.length) this.fail('unterminated string');
    const out = Buffer.allocUnsafe((end - this.pos) * 3);
    let w = 0;
    while (this.pos < end) {
      const c = b[this.pos]!;
      if (c === 0x5c) {
        const e = b[this.pos + 1]!;
        this.pos += 2;
        switch (e) {
          case 0x22: case 0x5c: case 0x2f: out[w++] = e; break;
          case 0x62: out[w++] = 0x08; break;
          case 0x66: out[w++] = 0x0c; break;
          case 0x6e: out[w++] = 0x0a; break;
          case 0x72: out[w++] = 0x0d; break;
          case 0x74: out[w++] = 0x09; break;
          case 0x75: {
            let r = this.u4(end);
            if (r >= 0xd800 && r <= 0xdfff) {
              let ok = false;
              if (r < 0xdc00 && b[this.pos] === 0x5c && b[this.pos + 1] === 0x75) {
                const save = this.pos;
                this.pos += 2;
                const r2 = this.u4(end, true);
                if (r2 >= 0xdc00 && r2 <= 0xdfff) {
                  r = 0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00);
                  ok = true;
                } else {
                  this.pos = save;
                }
              }
              if (!ok) r = RUNE_ERROR;
            }
            w = pushRune(out, w, r);
            break;
          }
          default:
            this.fail('invalid escape in string');
        }
        continue;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c < 0x80) {
        out[w++] = c;
        this.pos++;
        continue;
      }
      const r = decodeRune(b, this.pos);
      const size = decodedSize;
      if (r === RUNE_ERROR && size === 1) {
        w = pushRune(out, w, RUNE_ERROR);
      } else {
        for (let k = 0; k < size; k++) out[w++] = b[this.pos + k]!;
      }
      this.pos += size;
    }
    this.pos = end + 1;
    return { k: 'str', b: out.subarray(0, w), s, e: this.pos };
  }

  u4(end: number, soft = false): number {
    if (this.pos + 4 > end) {
      if (soft) return -1;
      this.fail('short \\u escape');
    }
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = hexVal(this.src[this.pos + k]!);
      if (h < 0) {
        if (soft) return -1;
        this.fail('invalid \\u escape');
      }
      v = v * 16 + h;
    }
    this.pos += 4;
    return v;
  }
}

function parseJson(src: Uint8Array): JVal {
  const p = new JsonParser(src);
  const v = p.value();
  p.ws();
  if (p.pos !== src.length) p.fail('trailing data after top-level value');
  return v;
}

/** Go's compact() with HTML escaping, as used when marshalling a json.RawMessage. */
function goCompactJson(src: Uint8Array, s: number, e: number): string {
  let out = '';
  let i = s;
  while (i < e) {
    const c = src[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++;
      continue;
    }
    if (c !== 0x22) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    // copy a string, escaping <>& and U+2028/2029
    out += '"';
    i++;
    while (i < e && src[i] !== 0x22) {
      const d = src[i]!;
      if (d === 0x5c) {
        out += '\\' + String.fromCharCode(src[i + 1]!);
        i += 2;
      } else if (d === 0x3c || d === 0x3e || d === 0x26) {
        out += '\\u00' + HEX[d >> 4] + HEX[d & 15];
        i++;
      } else if (d < 0x80) {
        out += String.fromCharCode(d);
        i++;
      } else {
        const r = decodeRune(src, i);
        const size = decodedSize;
        if (r === 0x2028 || r === 0x2029) out += '\\u' + hexPad(r, 4);
        else out += String.fromCodePoint(r); // invalid bytes cannot survive parseJson's checks losslessly
        i += size;
      }
    }
    out += '"';
    i++;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Time: Go RFC3339Nano

const NS_PER_S = 1_000_000_000n;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q;
}

function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const DATE_MAX_S = 8_640_000_000_000n - 86_400n * 2n;

/**
 * The process's local UTC offset in seconds at the given instant (what Go's time.Local gives,
 * including historical offsets with seconds). Honours TZ.
 */
export function localOffsetSeconds(sec: bigint): number {
  let s = sec;
  if (s > DATE_MAX_S) s = DATE_MAX_S;
  if (s < -DATE_MAX_S) s = -DATE_MAX_S;
  const ms = Number(s) * 1000;
  const d = new Date(ms);
  const u = new Date(0);
  u.setUTCFullYear(d.getFullYear(), d.getMonth(), d.getDate());
  u.setUTCHours(d.getHours(), d.getMinutes(), d.getSeconds(), 0);
  return (u.getTime() - ms) / 1000;
}

function two(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/**
 * Go `time.Unix(sec, nsec).In(zone).Format(RFC3339Nano)` as restic 0.14 writes it in trees:
 * trailing fraction zeros trimmed, no fraction when 0, `Z` for a zero offset else ±hh:mm.
 * Without tzOffsetMinutes the process's local zone (TZ) is used, like Go's time.Local.
 * Years outside 0..9999 are clamped like restic's FixTime (year set to 0 or 9999).
 */
export function formatTimeNs(sec: bigint, nsec: number, tzOffsetMinutes?: number): string {
  if (!Number.isInteger(nsec) || nsec < 0 || nsec >= 1e9) throw new RangeError(`formatTimeNs: invalid nsec ${nsec}`);
  const fixedOff = tzOffsetMinutes === undefined ? undefined : Math.trunc(tzOffsetMinutes * 60);
  let off = fixedOff ?? localOffsetSeconds(sec);
  let local = sec + BigInt(off);
  let days = Number(floorDiv(local, 86400n));
  let tod = Number(local - BigInt(days) * 86400n);
  let [y, m, d] = civilFromDays(days);
  if (y < 0 || y > 9999) {
    // restic FixTime: t.AddDate(±years, 0, 0), normalising Feb 29 to Mar 1.
    y = y < 0 ? 0 : 9999;
    if (m === 2 && d === 29 && !isLeap(y)) {
      m = 3;
      d = 1;
    }
    days = daysFromCivil(y, m, d);
    local = BigInt(days) * 86400n + BigInt(tod);
    if (fixedOff === undefined) {
      const inst = local - BigInt(off);
      off = localOffsetSeconds(inst);
    }
  }
  const hh = Math.floor(tod / 3600);
  const mi = Math.floor((tod % 3600) / 60);
  const ss = tod % 60;
  let out = `${String(y).padStart(4, '0')}-${two(m)}-${two(d)}T${two(hh)}:${two(mi)}:${two(ss)}`;
  if (nsec !== 0) out += '.' + String(nsec).padStart(9, '0').replace(/0+$/, '');
  if (off === 0) return out + 'Z';
  let zone = Math.trunc(off / 60);
  let sign = '+';
  if (zone < 0) {
    sign = '-';
    zone = -zone;
  }
  return out + sign + two(Math.floor(zone / 60)) + ':' + two(zone % 60);
}

/** formatTimeNs for a nanosecond count since the epoch. */
export function formatTimeFromNs(ns: bigint, tzOffsetMinutes?: number): string {
  const sec = floorDiv(ns, NS_PER_S);
  return formatTimeNs(sec, Number(ns - sec * NS_PER_S), tzOffsetMinutes);
}

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const RFC3339_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

interface TimeParts { y: number; mo: number; d: number; h: number; mi: number; sec: number; frac: string | undefined; off: number }

function parseTimeParts(s: string): TimeParts {
  const m = RFC3339_RE.exec(s);
  if (!m) throw new SyntaxError(`parseTimeNs: not an RFC 3339 time: ${JSON.stringify(s)}`);
  const y = +m[1]!;
  const mo = +m[2]!;
  const d = +m[3]!;
  const h = +m[4]!;
  const mi = +m[5]!;
  const sec = +m[6]!;
  if (mo < 1 || mo > 12) throw new RangeError(`parseTimeNs: month out of range: ${s}`);
  const dim = mo === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[mo]!;
  if (d < 1 || d > dim) throw new RangeError(`parseTimeNs: day out of range: ${s}`);
  if (h > 23 || mi > 59 || sec > 59) throw new RangeError(`parseTimeNs: time out of range: ${s}`);
  let off = 0;
  if (m[8] === undefined) {
    const oh = +m[10]!;
    const om = +m[11]!;
    if (om > 59) throw new RangeError(`parseTimeNs: offset out of range: ${s}`);
    off = (oh * 3600 + om * 60) * (m[9] === '-' ? -1 : 1);
  }
  return { y, mo, d, h, mi, sec, frac: m[7], off };
}

/** Throws as parseTimeNs does, without computing the value (decoders validate every time). */
export function validateTime(s: string): void {
  parseTimeParts(s);
}

/** Parses RFC 3339 (0–9+ fraction digits, Z or ±hh:mm) to nanoseconds since the epoch. */
export function parseTimeNs(s: string): bigint {
  const { y, mo, d, h, mi, sec, frac: f, off } = parseTimeParts(s);
  const frac = f !== undefined ? BigInt(f.slice(0, 9).padEnd(9, '0')) : 0n;
  const secs = BigInt(daysFromCivil(y, mo, d)) * 86400n + BigInt(h * 3600 + mi * 60 + sec - off);
  return secs * NS_PER_S + frac;
}

// ---------------------------------------------------------------------------------------------
// Modes

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

/** Go os.FileMode from a POSIX st_mode, masked as restic does (perm, type, setuid, setgid, sticky). */
export function goFileModeFromPosix(stMode: number): number {
  let m = stMode & 0o777;
  switch (stMode & S_IFMT) {
    case S_IFBLK: m += GoMode.Device; break;
    case S_IFCHR: m += GoMode.Device + GoMode.CharDevice; break;
    case S_IFDIR: m += GoMode.Dir; break;
    case S_IFIFO: m += GoMode.NamedPipe; break;
    case S_IFLNK: m += GoMode.Symlink; break;
    case S_IFSOCK: m += GoMode.Socket; break;
    default: break; // S_IFREG and anything unknown: no type bits
  }
  if (stMode & 0o4000) m += GoMode.Setuid;
  if (stMode & 0o2000) m += GoMode.Setgid;
  if (stMode & 0o1000) m += GoMode.Sticky;
  return m;
}

/** restic's node type for a (masked) Go FileMode; '' when none matches (restic does the same). */
export function nodeTypeFromGoMode(mode: number): NodeType {
  const typeBits =
    GoMode.Dir + GoMode.Symlink + GoMode.NamedPipe + GoMode.Socket + GoMode.Device + GoMode.CharDevice + GoMode.Irregular;
  switch ((mode & typeBits) >>> 0) {
    case 0: return 'file';
    case GoMode.Dir: return 'dir';
    case GoMode.Symlink: return 'symlink';
    case GoMode.Device + GoMode.CharDevice: return 'chardev';
    case GoMode.Device: return 'dev';
    case GoMode.NamedPipe: return 'fifo';
    case GoMode.Socket: return 'socket';
    default: return '';
  }
}

/**
 * The POSIX permission bits for a node, as restic's restore applies them with chmod: the
 * permission bits plus Go's setuid/setgid/sticky bits as 04000/02000/01000 (never file type bits;
 * the node's `type` is authoritative for that, see posixTypeBits). `type` is accepted for
 * symmetry and ignored.
 */
export function posixModeFromGo(mode: number, _type?: string): number {
  const m = mode >>> 0;
  let r = m & 0o777;
  if (m & GoMode.Setuid) r |= 0o4000;
  if (m & GoMode.Setgid) r |= 0o2000;
  if (m & GoMode.Sticky) r |= 0o1000;
  return r;
}

/** POSIX S_IFMT bits for a node type (0 for unknown types). */
export function posixTypeBits(type: string): number {
  switch (type) {
    case 'file': return S_IFREG;
    case 'dir': return S_IFDIR;
    case 'symlink': return S_IFLNK;
    case 'dev': return S_IFBLK;
    case 'chardev': return S_IFCHR;
    case 'fifo': return S_IFIFO;
    case 'socket': return S_IFSOCK;
    default: return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Tree encoding

/** Go's string order: raw bytes. */
export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Returns the nodes sorted by raw name bytes; throws on duplicate or empty names (restic refuses both). */
export function sortNodes(nodes: readonly Node[]): Node[] {
  const sorted = [...nodes].sort((x, y) => Buffer.compare(x.name, y.name));
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.name.length === 0) throw new Error('tree: node with empty name');
    if (i > 0 && Buffer.compare(sorted[i - 1]!.name, sorted[i]!.name) === 0) {
      throw new Error(`tree: duplicate node name ${goQuote(sorted[i]!.name)}`);
    }
  }
  return sorted;
}

const ID_RE = /^[0-9a-f]{64}$/;
const UINT64_MAX = (1n << 64n) - 1n;

function u32(v: number, field: string): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`tree: ${field} is not a uint32: ${v}`);
  return String(v);
}

function u64(v: bigint, field: string): string {
  if (typeof v !== 'bigint' || v < 0n || v > UINT64_MAX) throw new RangeError(`tree: ${field} is not a uint64: ${String(v)}`);
  return v.toString();
}

function idStr(id: string, field: string): string {
  if (!ID_RE.test(id)) throw new Error(`tree: ${field} is not a lower-case 64-digit hex id: ${id}`);
  return '"' + id + '"';
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** What Go's JSON decoder would make of the bytes: invalid UTF-8 bytes become U+FFFD. */
function lossyUtf8(b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(b.length * 3);
  let w = 0;
  for (let i = 0; i < b.length; ) {
    const r = decodeRune(b, i);
    const size = decodedSize;
    if (r === RUNE_ERROR && size === 1) w = pushRune(out, w, RUNE_ERROR);
    else for (let k = 0; k < size; k++) out[w++] = b[i + k]!;
    i += size;
  }
  return out.subarray(0, w);
}

function linktargetLiteral(n: Node, target: Buffer): string {
  if (n.linktargetJson !== undefined) {
    try {
      const v = parseJson(Buffer.from(n.linktargetJson, 'utf8'));
      if (v.k === 'str' && v.b.equals(lossyUtf8(target))) return n.linktargetJson;
    } catch {
      // stale or invalid literal: fall through
    }
  }
  return goJsonString(target);
}

/** One node as restic 0.14 serialises it (json.Marshal of restic.Node). */
export function encodeNode(n: Node): string {
  let o = '{"name":' + goJsonString(goQuoteBody(n.name));
  o += ',"type":' + goJsonString(n.type);
  if (n.mode) o += ',"mode":' + u32(n.mode, 'mode');
  o += ',"mtime":' + goJsonString(n.mtime || ZERO_TIME);
  o += ',"atime":' + goJsonString(n.atime || ZERO_TIME);
  o += ',"ctime":' + goJsonString(n.ctime || ZERO_TIME);
  o += ',"uid":' + u32(n.uid ?? 0, 'uid');
  o += ',"gid":' + u32(n.gid ?? 0, 'gid');
  if (n.user) o += ',"user":' + goJsonString(n.user);
  if (n.group) o += ',"group":' + goJsonString(n.group);
  if (n.inode) o += ',"inode":' + u64(n.inode, 'inode');
  if (n.deviceId) o += ',"device_id":' + u64(n.deviceId, 'device_id');
  if (n.size) o += ',"size":' + u64(n.size, 'size');
  if (n.links) o += ',"links":' + u64(n.links, 'links');
  if (n.linktarget && n.linktarget.length > 0) o += ',"linktarget":' + linktargetLiteral(n, n.linktarget);
  if (n.linktargetRaw && n.linktargetRaw.length > 0) o += ',"linktarget_raw":"' + n.linktargetRaw.toString('base64') + '"';
  if (n.extendedAttributes && n.extendedAttributes.length > 0) {
    o += ',"extended_attributes":[';
    n.extendedAttributes.forEach((a, i) => {
      if (i > 0) o += ',';
      o += '{"name":' + goJsonString(a.name) + ',"value":' + (a.value === null ? 'null' : '"' + a.value.toString('base64') + '"') + '}';
    });
    o += ']';
  }
  if (n.genericAttributes) {
    const keys = Object.keys(n.genericAttributes).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    if (keys.length > 0) {
      o += ',"generic_attributes":{';
      keys.forEach((k, i) => {
        const raw = Buffer.from(n.genericAttributes![k]!, 'utf8');
        o += (i > 0 ? ',' : '') + goJsonString(k) + ':' + goCompactJson(raw, 0, raw.length);
      });
      o += '}';
    }
  }
  if (n.device) o += ',"device":' + u64(n.device, 'device');
  if (n.content === undefined || n.content === null) o += ',"content":null';
  else o += ',"content":[' + n.content.map((id) => idStr(id, 'content')).join(',') + ']';
  if (n.subtree !== undefined) o += ',"subtree":' + idStr(n.subtree, 'subtree');
  if (n.error) o += ',"error":' + goJsonString(n.error);
  return o + '}';
}

/**
 * The tree blob bytes restic 0.14 writes: `{"nodes":[...]}` + "\n", compact, nodes sorted by raw
 * name bytes (duplicates and empty names throw). The tree id is SHA-256 of these bytes.
 */
export function encodeTree(nodes: readonly Node[]): Buffer {
  const sorted = sortNodes(nodes);
  return Buffer.from('{"nodes":[' + sorted.map(encodeNode).join(',') + ']}\n', 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Tree decoding

function fieldMap(obj: JVal & { k: 'obj' }): Map<string, JVal> {
  // Go matches keys exactly first, then case-insensitively; the last duplicate wins.
  const exact = new Map<string, JVal>();
  const folded = new Map<string, JVal>();
  for (const [k, v] of obj.entries) {
    exact.set(k, v);
    folded.set(k.toLowerCase(), v);
  }
  const res = new Map<string, JVal>(folded);
  for (const [k, v] of exact) res.set(k, v);
  return res;
}

function typeErr(field: string, want: string): never {
  throw new TypeError(`tree: field ${field} is not ${want}`);
}

function getStr(v: JVal | undefined, field: string): Buffer | undefined {
  if (v === undefined || (v.k === 'lit' && v.v === null)) return undefined;
  if (v.k !== 'str') typeErr(field, 'a string');
  return v.b;
}

function getUint(v: JVal | undefined, field: string, bits: 32 | 64): bigint | undefined {
  if (v === undefined || (v.k === 'lit' && v.v === null)) return undefined;
  if (v.k !== 'num' || !/^\d+$/.test(v.t)) typeErr(field, `a uint${bits}`);
  const n = BigInt(v.t);
  if (n >= 1n << BigInt(bits)) typeErr(field, `a uint${bits} (overflow)`);
  return n;
}

function getId(v: JVal, field: string): string {
  if (v.k !== 'str') typeErr(field, 'a blob id');
  const s = v.b.toString('utf8').toLowerCase();
  if (!ID_RE.test(s)) typeErr(field, 'a 64-digit hex id');
  return s;
}

function getBase64(v: JVal | undefined, field: string): Buffer | null | undefined {
  if (v === undefined) return undefined;
  if (v.k === 'lit' && v.v === null) return null;
  if (v.k !== 'str') typeErr(field, 'base64');
  const s = v.b.toString('latin1').replace(/[\r\n]/g, '');
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) typeErr(field, 'standard padded base64');
  return Buffer.from(s, 'base64');
}

function decodeNode(src: Uint8Array, v: JVal): Node {
  if (v.k !== 'obj') throw new TypeError('tree: node is not an object');
  const f = fieldMap(v);
  const str = (k: string): string | undefined => getStr(f.get(k), k)?.toString('utf8');
  const time = (k: string): string => {
    const t = str(k);
    if (t === undefined) return ZERO_TIME;
    validateTime(t); // as Go's decoder does
    return t;
  };
  const nameJ = getStr(f.get('name'), 'name');
  const node: Node = {
    name: nameJ === undefined ? Buffer.alloc(0) : Buffer.from(goUnquote(nameJ)),
    type: str('type') ?? '',
    mode: Number(getUint(f.get('mode'), 'mode', 32) ?? 0n),
    mtime: time('mtime'),
    atime: time('atime'),
    ctime: time('ctime'),
    uid: Number(getUint(f.get('uid'), 'uid', 32) ?? 0n),
    gid: Number(getUint(f.get('gid'), 'gid', 32) ?? 0n),
  };
  const user = str('user');
  if (user) node.user = user;
  const group = str('group');
  if (group) node.group = group;
  const u64s: [string, 'inode' | 'deviceId' | 'size' | 'links' | 'device'][] = [
    ['inode', 'inode'],
    ['device_id', 'deviceId'],
    ['size', 'size'],
    ['links', 'links'],
    ['device', 'device'],
  ];
  for (const [k, prop] of u64s) {
    const n = getUint(f.get(k), k, 64);
    if (n) node[prop] = n;
  }
  const raw = getBase64(f.get('linktarget_raw'), 'linktarget_raw');
  const ltV = f.get('linktarget');
  const lt = getStr(ltV, 'linktarget');
  if (raw && raw.length > 0) {
    node.linktargetRaw = raw;
    node.linktarget = Buffer.from(raw);
  } else if (lt && lt.length > 0) {
    node.linktarget = Buffer.from(lt);
  }
  if (lt && lt.length > 0 && ltV && ltV.k === 'str') {
    const literal = Buffer.from(src.subarray(ltV.s, ltV.e)).toString('utf8');
    if (goJsonString(node.linktarget ?? lt) !== literal) node.linktargetJson = literal;
  }
  const xa = f.get('extended_attributes');
  if (xa && !(xa.k === 'lit' && xa.v === null)) {
    if (xa.k !== 'arr') typeErr('extended_attributes', 'an array');
    if (xa.items.length > 0) {
      node.extendedAttributes = xa.items.map((it) => {
        if (it.k !== 'obj') typeErr('extended_attributes[]', 'an object');
        const af = fieldMap(it);
        return {
          name: getStr(af.get('name'), 'extended_attributes.name')?.toString('utf8') ?? '',
          value: getBase64(af.get('value'), 'extended_attributes.value') ?? null,
        };
      });
    }
  }
  const ga = f.get('generic_attributes');
  if (ga && !(ga.k === 'lit' && ga.v === null)) {
    if (ga.k !== 'obj') typeErr('generic_attributes', 'an object');
    if (ga.entries.length > 0) {
      const rec: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [k, val] of ga.entries) rec[k] = goCompactJson(src, val.s, val.e);
      node.genericAttributes = rec;
    }
  }
  const content = f.get('content');
  if (content === undefined || (content.k === 'lit' && content.v === null)) node.content = null;
  else if (content.k === 'arr') node.content = content.items.map((it) => getId(it, 'content'));
  else typeErr('content', 'an array or null');
  const sub = f.get('subtree');
  if (sub !== undefined && !(sub.k === 'lit' && sub.v === null)) node.subtree = getId(sub, 'subtree');
  const err = str('error');
  if (err) node.error = err;
  return node;
}

/**
 * Parses a tree blob (restic 0.14 or newer, or rustic). uint64 fields stay exact, names are
 * Go-unquoted, unknown fields are ignored, missing ones get Go's zero values. Node order is kept.
 */
export function decodeTree(bytes: Uint8Array, id?: string): Node[] {
  try {
    return decodeTreeFast(bytes) ?? decodeTreeExact(bytes);
  } catch (e) {
    // one line that names the tree (the decoders' messages say what and where, not which tree)
    if (id === undefined) throw e;
    throw new Error(`tree ${id}: ${(e as Error).message.replace(/^tree: /, '')}`);
  }
}

/** keys a node may have for the fast path (what restic writes for files and directories) */
const FAST_KEYS = new Set(['name', 'type', 'mode', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'user', 'group', 'inode', 'device_id', 'size', 'links', 'content', 'subtree']);
const U32 = 0xffffffff;

/** a number of 16+ digits outside strings: JSON.parse might round it */
function hasLongNumber(b: Uint8Array): boolean {
  let run = 0;
  let inStr = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (inStr) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inStr = false;
      continue;
    }
    if (c === 0x22) { inStr = true; run = 0; continue; }
    if (c >= 0x30 && c <= 0x39) { if (++run >= 16) return true; } else run = 0;
  }
  return false;
}

/**
 * The common case through the native JSON.parse: exact lower-case keys from FAST_KEYS only, no
 * number that could lose precision, valid UTF-8. Returns null whenever anything is unusual; the
 * exact parser then decides (and reports errors) with Go's full semantics.
 */
export function decodeTreeFast(bytes: Uint8Array): Node[] | null {
  if (!isUtf8(bytes) || hasLongNumber(bytes)) return null;
  let root: unknown;
  try {
    root = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) return null;
  for (const k of Object.keys(root)) if (k !== 'nodes') return null;
  const list = (root as { nodes?: unknown }).nodes;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) return null;
  const uint = (v: unknown, max: number): number | null => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : null);
  const out: Node[] = [];
  for (const o of list as unknown[]) {
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
    const r = o as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!FAST_KEYS.has(k)) return null;
    const strOr = (k: string): string | undefined | null => {
      const v = r[k];
      if (v === undefined || v === null) return undefined;
      return typeof v === 'string' ? v : null;
    };
    const name = strOr('name');
    const type = strOr('type');
    const user = strOr('user');
    const group = strOr('group');
    if (name === null || type === null || user === null || group === null) return null;
    const times: string[] = [];
    for (const k of ['mtime', 'atime', 'ctime']) {
      const t = strOr(k);
      if (t === null) return null;
      if (t === undefined) times.push(ZERO_TIME);
      else {
        validateTime(t); // as Go's decoder does
        times.push(t);
      }
    }
    const num = (k: string, max: number): number | null => (r[k] === undefined || r[k] === null ? 0 : uint(r[k], max));
    const mode = num('mode', U32);
    const uid = num('uid', U32);
    const gid = num('gid', U32);
    if (mode === null || uid === null || gid === null) return null;
    const node: Node = {
      name: name === undefined ? Buffer.alloc(0) : Buffer.from(goUnquote(Buffer.from(name, 'utf8'))),
      type: (type ?? '') as NodeType, mode, mtime: times[0]!, atime: times[1]!, ctime: times[2]!, uid, gid,
    };
    if (user) node.user = user;
    if (group) node.group = group;
    for (const [k, prop] of [['inode', 'inode'], ['device_id', 'deviceId'], ['size', 'size'], ['links', 'links']] as const) {
      const n = num(k, Number.MAX_SAFE_INTEGER);
      if (n === null) return null;
      if (n) node[prop] = BigInt(n);
    }
    const content = r['content'];
    if (content === undefined || content === null) node.content = null;
    else if (Array.isArray(content)) {
      const ids: string[] = [];
      for (const c of content) {
        if (typeof c !== 'string') return null;
        const id = c.toLowerCase();
        if (!ID_RE.test(id)) return null;
        ids.push(id);
      }
      node.content = ids;
    } else return null;
    const sub = r['subtree'];
    if (sub !== undefined && sub !== null) {
      if (typeof sub !== 'string') return null;
      const id = sub.toLowerCase();
      if (!ID_RE.test(id)) return null;
      node.subtree = id;
    }
    out.push(node);
  }
  return out;
}

/** The exact parser: Go's encoding/json semantics (case-insensitive keys, exact uint64s, …). */
export function decodeTreeExact(bytes: Uint8Array): Node[] {
  const root = parseJson(bytes);
  if (root.k !== 'obj') throw new TypeError('tree: top-level value is not an object');
  const nodes = fieldMap(root).get('nodes');
  if (nodes === undefined || (nodes.k === 'lit' && nodes.v === null)) return [];
  if (nodes.k !== 'arr') typeErr('nodes', 'an array');
  return nodes.items.map((it) => decodeNode(bytes, it));
}
