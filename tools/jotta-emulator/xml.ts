/**
 * XML and time-format helpers for the Jottacloud emulator.
 *
 * JFS XML uses "Jotta time" (`2006-01-02-T15:04:05Z0700`, i.e. RFC 3339 with an extra `-`
 * before `T`, second precision); liststream and the api host use RFC 3339.
 */

/** Escape text for use in XML element content or a double-quoted attribute. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      default:
        return '&apos;';
    }
  });
}

/** `<name>text</name>` with escaping; `preserve` adds xml:space="preserve". */
export function el(name: string, text: string | number | boolean, preserve = false): string {
  const attr = preserve ? ' xml:space="preserve"' : '';
  return `<${name}${attr}>${xmlEscape(String(text))}</${name}>`;
}

/** Attribute list from an object, skipping undefined values. */
export function attrs(a: Record<string, string | number | undefined>): string {
  let out = '';
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined) continue;
    out += ` ${k}="${xmlEscape(String(v))}"`;
  }
  return out;
}

export const XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';

/** Jotta time, always UTC: `2018-07-05-T15:08:02Z`. */
export function jottaTime(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2018-07-05T15:08:02.123Z
  return `${iso.slice(0, 10)}-T${iso.slice(11, 19)}Z`;
}

/** RFC 3339 with milliseconds, UTC (liststream format). */
export function rfc3339ms(ms: number): string {
  return new Date(ms).toISOString();
}

/** RFC 3339, seconds, UTC (JSON on the api host). */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Parse a time value as clients send it: Jotta time (`2019-05-06-T07:08:09Z`, `…+0100`),
 * RFC 3339 (`2022-06-01T14:00:00+02:00`), or epoch milliseconds (number or digit string).
 * Returns epoch ms, or null when unparseable.
 */
export function parseClientTime(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (s === '') return null;
  if (/^\d{10,}$/.test(s)) return Number(s);
  const m = /^(\d{4})-(\d{2})-(\d{2})-T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.exec(s);
  if (m) {
    let off = m[8]!;
    if (off !== 'Z' && !off.includes(':')) off = `${off.slice(0, 3)}:${off.slice(3)}`;
    const t = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7] ?? ''}${off}`);
    return Number.isNaN(t) ? null : t;
  }
  if (/^\d{4}-\d{2}-\d{2}T/.test(s)) {
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}
