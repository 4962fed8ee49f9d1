/**
 * Go time as restic writes and reads it: RFC3339Nano formatting in the local zone (with restic's
 * FixTime clamping), RFC 3339 parsing to exact nanoseconds, and the civil-calendar arithmetic
 * both need. Pure: no I/O (the local zone is the process's, read through Intl/Date).
 */

const NS_PER_S = 1_000_000_000n;
const NS_PER_DAY = 86_400n * NS_PER_S;

/** Go's zero time.Time, 0001-01-01T00:00:00Z, in ns since the Unix epoch */
export const GO_ZERO_NS = -62_135_596_800n * NS_PER_S;

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q;
}

/** days since 1970-01-01 of a proleptic Gregorian date (month 1..12) */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** [year, month 1..12, day] of a day count since 1970-01-01 */
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
 * including historical offsets with seconds). Honours TZ. Through Date, not Intl: it runs for
 * every node written, and zoneOffsetAt (any named zone) is several times slower.
 */
function localOffsetSeconds(sec: bigint): number {
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
  if (tzOffsetMinutes === undefined && sec > FAST_MIN_S && sec < FAST_MAX_S) {
    const out = formatLocalFast(Number(sec), nsec);
    if (out !== null) return out;
  }
  return formatTimeGeneral(sec, nsec, tzOffsetMinutes);
}

/** seconds between which formatLocalFast may run: years ~1970±… well inside 100..9999, exact as doubles */
const FAST_MIN_S = -58_000_000_000n; // 0132-02
const FAST_MAX_S = 253_000_000_000n; // 9987-03

/**
 * formatTimeNs in the local zone for the common case, with numbers and one Date: the local
 * fields come from the Date's getters, the offset (with its seconds, e.g. LMT -4:56:02) is
 * Date.UTC(those fields) minus the instant, exactly what formatTimeGeneral derives with BigInts,
 * two Dates and an array. It runs three times per new file (mtime, atime, ctime): on a first
 * backup of 62k real files formatTimeNs allocated 110 MB (~590 B a call), the most of any function.
 * Returns null for a year below 100 (Date.UTC reads 0..99 as 1900..1999): the general path does it.
 */
function formatLocalFast(s: number, nsec: number): string | null {
  const ms = s * 1000;
  const d = new Date(ms);
  const y = d.getFullYear();
  if (y < 100 || y > 9999) return null;
  const mo = d.getMonth();
  const day = d.getDate();
  const hh = d.getHours();
  const mi = d.getMinutes();
  const ss = d.getSeconds();
  const off = (Date.UTC(y, mo, day, hh, mi, ss) - ms) / 1000;
  // the text is written as bytes and read out once: built by concatenation it was ~14 strings
  // (~410 B) per call
  const b = TEXT;
  put4(b, 0, y);
  b[4] = 0x2d;
  put2(b, 5, mo + 1);
  b[7] = 0x2d;
  put2(b, 8, day);
  b[10] = 0x54;
  put2(b, 11, hh);
  b[13] = 0x3a;
  put2(b, 14, mi);
  b[16] = 0x3a;
  put2(b, 17, ss);
  let n = 19;
  if (nsec !== 0) {
    const digits = fractionDigits(nsec);
    let v = nsec / POW10[9 - digits]!;
    b[n++] = 0x2e;
    for (let k = n + digits - 1; k >= n; k--) {
      b[k] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    }
    n += digits;
  }
  if (off === 0) {
    b[n++] = 0x5a;
  } else {
    let zone = Math.trunc(off / 60);
    b[n++] = zone < 0 ? 0x2d : 0x2b;
    if (zone < 0) zone = -zone;
    put2(b, n, Math.floor(zone / 60));
    b[n + 2] = 0x3a;
    put2(b, n + 3, zone % 60);
    n += 5;
  }
  return b.toString('latin1', 0, n);
}

/** room for the longest text formatLocalFast writes (35 bytes) */
const TEXT = Buffer.alloc(40);

function put2(b: Buffer, at: number, v: number): void {
  b[at] = 0x30 + Math.floor(v / 10);
  b[at + 1] = 0x30 + (v % 10);
}

function put4(b: Buffer, at: number, v: number): void {
  put2(b, at, Math.floor(v / 100));
  put2(b, at + 2, v % 100);
}

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** how many fraction digits Go's RFC3339Nano writes for nanoseconds 1..999999999 (trailing zeros dropped) */
function fractionDigits(nsec: number): number {
  let digits = 9;
  while (nsec % POW10[10 - digits]! === 0) digits--;
  return digits;
}

/** '.' and the nanoseconds (1..999999999) without trailing zeros */
function fraction(nsec: number): string {
  const digits = fractionDigits(nsec);
  const t = String(nsec / POW10[9 - digits]!);
  return '.' + '00000000'.slice(0, digits - t.length) + t;
}

/** formatTimeNs for any instant, zone and year (restic's FixTime clamping included) */
function formatTimeGeneral(sec: bigint, nsec: number, tzOffsetMinutes?: number): string {
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
  if (nsec !== 0) out += fraction(nsec);
  if (off === 0) return out + 'Z';
  let zone = Math.trunc(off / 60);
  let sign = '+';
  if (zone < 0) {
    sign = '-';
    zone = -zone;
  }
  return out + sign + two(Math.floor(zone / 60)) + ':' + two(zone % 60);
}

/**
 * formatTimeNs for seconds given as a number (the directory scan's), without the BigInts: a
 * first backup formats two or three times per new file.
 */
export function formatTimeSec(sec: number, nsec: number, tzOffsetMinutes?: number): string {
  if (tzOffsetMinutes === undefined && Number.isInteger(sec) && sec > FAST_MIN && sec < FAST_MAX && Number.isInteger(nsec) && nsec >= 0 && nsec < 1e9) {
    const out = formatLocalFast(sec, nsec);
    if (out !== null) return out;
  }
  return formatTimeNs(BigInt(sec), nsec, tzOffsetMinutes);
}
const FAST_MIN = Number(FAST_MIN_S);
const FAST_MAX = Number(FAST_MAX_S);

/** the general path of formatTimeNs, for tests that compare the fast one with it */
export const formatTimeNsGeneral = formatTimeGeneral;

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

/** nanoseconds of the last time fastSeconds parsed */
let fastNsec = 0;

/**
 * Seconds since the epoch of an RFC 3339 time (its fraction in `fastNsec`), or NaN for anything
 * it does not take (then parseTimeParts decides). Character arithmetic: no RegExp match array, no
 * BigInt; tree decoding validates three times per node and the backup walk compares two per file.
 * Exact for the years 0000–9999 (|seconds| < 2^53).
 */
function fastSeconds(s: string): number {
  const n = s.length;
  if (n < 20) return NaN;
  const d = (i: number): number => {
    const c = s.charCodeAt(i) - 48;
    return c >= 0 && c <= 9 ? c : -1000;
  };
  const y = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3);
  const mo = d(5) * 10 + d(6);
  const day = d(8) * 10 + d(9);
  const h = d(11) * 10 + d(12);
  const mi = d(14) * 10 + d(15);
  const ss = d(17) * 10 + d(18);
  if (y < 0 || mo < 1 || mo > 12 || day < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59) return NaN;
  if (s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return NaN;
  const t = s.charCodeAt(10);
  if (t !== 84 && t !== 116) return NaN; // T t
  const dim = mo === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[mo]!;
  if (day > dim) return NaN;
  let i = 19;
  let frac = 0;
  const dot = s.charCodeAt(i);
  if (dot === 46 || dot === 44) { // . ,
    i++;
    let digits = 0;
    while (i < n) {
      const c = d(i);
      if (c < 0) break;
      if (++digits > 9) return NaN;
      frac = frac * 10 + c;
      i++;
    }
    if (digits === 0) return NaN;
    for (let k = digits; k < 9; k++) frac *= 10;
  }
  let off = 0;
  const z = s.charCodeAt(i);
  if (i === n - 1 && (z === 90 || z === 122)) off = 0; // Z z
  else if (i === n - 6 && (z === 43 || z === 45) && s.charCodeAt(i + 3) === 58) {
    const oh = d(i + 1) * 10 + d(i + 2);
    const om = d(i + 4) * 10 + d(i + 5);
    if (oh < 0 || om < 0 || om > 59) return NaN;
    off = (oh * 3600 + om * 60) * (z === 45 ? -1 : 1);
  } else return NaN;
  fastNsec = frac;
  return daysFromCivil(y, mo, day) * 86400 + h * 3600 + mi * 60 + ss - off;
}

/**
 * Whether RFC 3339 time `s` denotes the instant `sec` s + `nsec` ns since the epoch, in any
 * offset: the backup walk compares every unchanged file's mtime and ctime with its parent node's
 * this way. False for anything fastSeconds does not take.
 */
export function sameInstant(s: string, sec: number, nsec: number): boolean {
  return fastSeconds(s) === sec && fastNsec === nsec;
}

/** Throws as parseTimeNs does, without computing the value (decoders validate every time). */
export function validateTime(s: string): void {
  if (Number.isNaN(fastSeconds(s))) parseTimeParts(s);
}

/** Parses RFC 3339 (0–9+ fraction digits, Z or ±hh:mm) to nanoseconds since the epoch. */
export function parseTimeNs(s: string): bigint {
  const { y, mo, d, h, mi, sec, frac: f, off } = parseTimeParts(s);
  const frac = f !== undefined ? BigInt(f.slice(0, 9).padEnd(9, '0')) : 0n;
  const secs = BigInt(daysFromCivil(y, mo, d)) * 86400n + BigInt(h * 3600 + mi * 60 + sec - off);
  return secs * NS_PER_S + frac;
}

// ---------------------------------------------------------------------------------------------
// time.Time with its location, for calendar arithmetic (forget's policy buckets and cutoffs)

/** a parsed time: instant, offset of its location, and whether Go made it time.Local */
export interface GoTime {
  ns: bigint;
  /** seconds east of UTC */
  off: number;
  /** location kind: 'utc' for Z (and Go's zero time), 'fixed' for a numeric offset, 'local' when Parse chose time.Local */
  loc: 'utc' | 'fixed' | 'local';
}

const OFFSET_RE = /(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** t.Date() and t.Clock() pieces in t's own location */
export interface Wall {
  y: number;
  m: number;
  d: number;
  hour: number;
  /** days since the Unix epoch of the wall date */
  days: number;
  /** ns since midnight of the wall clock */
  nsOfDay: bigint;
}

export function wallClock(t: GoTime): Wall {
  const local = t.ns + BigInt(t.off) * NS_PER_S;
  const days = floorDiv(local, NS_PER_DAY);
  const nsOfDay = local - days * NS_PER_DAY;
  const [y, m, d] = civilFromDays(Number(days));
  return { y, m, d, hour: Number(nsOfDay / (3600n * NS_PER_S)), days: Number(days), nsOfDay };
}

const dtfCache = new Map<string, Intl.DateTimeFormat>();

/** offset (seconds east of UTC) of IANA zone `tz` at the instant `unixSec` (Go's loc.lookup) */
function zoneOffsetAt(tz: string, unixSec: number): number {
  let f = dtfCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    dtfCache.set(tz, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(new Date(unixSec * 1000))) p[part.type] = part.value;
  let y = Number(p.year);
  if (p.era === 'BC' || p.era === 'B') y = 1 - y;
  const wallSec = daysFromCivil(y, Number(p.month), Number(p.day)) * 86400 + Number(p.hour) * 3600 + Number(p.minute) * 60 + Number(p.second);
  return wallSec - unixSec;
}

/** the process's local IANA zone (what Go's time.Local is, given the same TZ / /etc/localtime) */
export function processTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** time.Time.UnmarshalJSON / time.Parse(RFC3339) as Go 1.19 does, with `localTz` as time.Local */
export function parseGoTime(s: string, localTz: string): GoTime {
  const ns = parseTimeNs(s);
  const m = OFFSET_RE.exec(s)!;
  if (m[1] !== undefined) return { ns, off: 0, loc: 'utc' };
  const off = (Number(m[3]) * 3600 + Number(m[4]) * 60) * (m[2] === '-' ? -1 : 1);
  // Go: if the local zone has this offset at this instant, the time gets time.Local
  const local = zoneOffsetAt(localTz, Number(floorDiv(ns, NS_PER_S))) === off;
  return { ns, off, loc: local ? 'local' : 'fixed' };
}

/** Go's t.AddDate(years, months, days) as ns since the epoch, `localTz` standing in for time.Local */
export function goAddDate(t: GoTime, years: number, months: number, days: number, localTz: string): bigint {
  const w = wallClock(t);
  // time.Date normalisation: month overflow into years, then day overflow via day arithmetic
  let month = w.m + months - 1; // 0-based
  const year = w.y + years + Math.floor(month / 12);
  month = ((month % 12) + 12) % 12;
  const dayNr = daysFromCivil(year, month + 1, 1) + (w.d + days) - 1;
  // the wall clock read as if it were UTC
  let unix = BigInt(dayNr) * NS_PER_DAY + w.nsOfDay;
  if (t.loc === 'fixed') {
    unix -= BigInt(t.off) * NS_PER_S;
  } else if (t.loc === 'local') {
    // Go's Date(): look up the offset at wall-as-UTC, then retry at the corrected instant
    const sec = Number(floorDiv(unix, NS_PER_S));
    const off1 = zoneOffsetAt(localTz, sec);
    if (off1 !== 0) unix -= BigInt(zoneOffsetAt(localTz, sec - off1)) * NS_PER_S;
  }
  return unix;
}

/** Go's t.ISOWeek() for a wall date given as days since the Unix epoch */
export function isoWeek(days: number): { year: number; week: number } {
  // 1970-01-01 was a Thursday; weekday Mon=1..Sun=7
  const wd = ((((days + 3) % 7) + 7) % 7) + 1;
  const thursday = days + (4 - wd);
  const [y] = civilFromDays(thursday);
  const yday = thursday - daysFromCivil(y, 1, 1);
  return { year: y, week: Math.floor(yday / 7) + 1 };
}

/** restic's TimeFormat ("2006-01-02 15:04:05") of an instant, in the local zone. */
export function resticTimeFormat(d: Date): string {
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** resticTimeFormat of an RFC 3339 time (key list); the text itself when it does not parse. */
export function goLocalTime(rfc3339: string): string {
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : resticTimeFormat(d);
}
