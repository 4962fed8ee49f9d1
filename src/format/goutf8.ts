/**
 * UTF-8 exactly as Go decodes it (utf8.DecodeRune) and small hex helpers, shared by the Go
 * quoting and JSON modules. Pure: no I/O.
 */

// ---------------------------------------------------------------------------------------------
// UTF-8 decoding exactly like Go's utf8.DecodeRune: any invalid or truncated sequence yields
// (U+FFFD, 1), so every byte of a bad sequence is reported separately.

export const RUNE_ERROR = 0xfffd;
/** byte length of the rune the last decodeRune call read (a second return value without an allocation) */
export let decodedSize = 0;

export function decodeRune(b: Uint8Array, i: number): number {
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

/** Writes rune r as UTF-8 at out[w]; returns the new write position. */
export function pushRune(out: Uint8Array, w: number, r: number): number {
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

export const HEX = '0123456789abcdef';

export function hexPad(v: number, width: number): string {
  return v.toString(16).padStart(width, '0');
}

export function toBytes(b: Uint8Array | string): Uint8Array {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
}

/** value of one ASCII hex digit, -1 when it is none */
export function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
