/**
 * Go 1.19 encoding/json as restic uses it: the string encoder (HTML escaping on), compact() for
 * json.RawMessage, and a parser that keeps exact number text, string bytes and source positions
 * (uint64s never pass through a JS number). Pure: no I/O.
 */

import { decodeRune, decodedSize, HEX, hexPad, hexVal, pushRune, RUNE_ERROR, toBytes } from './goutf8.js';

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

/** a parsed JSON value; s/e are its byte offsets in the source (e exclusive) */
export type JVal =
  | { k: 'obj'; entries: [string, JVal][]; s: number; e: number }
  | { k: 'arr'; items: JVal[]; s: number; e: number }
  | { k: 'str'; b: Buffer; s: number; e: number }
  | { k: 'num'; t: string; s: number; e: number }
  | { k: 'lit'; v: boolean | null; s: number; e: number };

class JsonParser {
  pos = 0;
  constructor(readonly src: Uint8Array, readonly what: string) {}

  fail(msg: string): never {
    throw new SyntaxError(`${this.what}: ${msg} at offset ${this.pos}`);
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

/** Parses one JSON document; throws SyntaxError "<what>: <problem> at offset <n>". */
export function parseJson(src: Uint8Array, what = 'JSON'): JVal {
  const p = new JsonParser(src, what);
  const v = p.value();
  p.ws();
  if (p.pos !== src.length) p.fail('trailing data after top-level value');
  return v;
}

/** Go's compact() with HTML escaping, as used when marshalling a json.RawMessage. */
export function goCompactJson(src: Uint8Array, s: number, e: number): string {
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

/** What Go's JSON decoder would make of the bytes: invalid UTF-8 bytes become U+FFFD. */
export function lossyUtf8(b: Uint8Array): Buffer {
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
