/**
 * Go strconv.Quote / Unquote and the Go 1.19 unicode.IsPrint table they depend on (restic stores
 * node names as the body of strconv.Quote). Pure: no I/O.
 */

import { decodeRune, decodedSize, HEX, hexPad, hexVal, pushRune, RUNE_ERROR, toBytes } from './goutf8.js';

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
// Go strconv.Quote / Unquote

/** Body of Go `strconv.Quote(b)`, i.e. without the surrounding double quotes (what restic stores). */
export function goQuoteBody(b: Uint8Array | string): string {
  const bytes = toBytes(b);
  // fast path: printable ASCII without '"' or '\\' is its own quote body. Most names are; the
  // character loop below allocated a string per byte (46 MB on a first backup of 62k real files)
  if (plainAscii(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
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

function plainAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/** Go `strconv.Quote(b)`, including the surrounding double quotes. */
export function goQuote(b: Uint8Array | string): string {
  return '"' + goQuoteBody(b) + '"';
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
