/**
 * systemd calendar expressions (systemd.time(7), "Calendar Events"): parse, compute the next elapse,
 * and translate to launchd's StartCalendarInterval dictionaries.
 *
 * Supported: `[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]`, each numeric component
 * `*`, a value, a list `a,b`, a range `a..b`, a repetition `a/n` or `a..b/n`; weekday lists and ranges
 * (`Mon..Fri`, `Mon-Fri`, `Sat,Sun`); `~` for days counted from the end of the month (`*-02~03`);
 * 2-digit years; the shorthands minutely, hourly, daily, weekly, monthly, yearly, annually, quarterly,
 * semiannually. Not supported: fractional seconds, `@epoch`. systemd itself stays the authority when it
 * is installed (`systemd-analyze calendar`); this parser agrees with it on everything it accepts.
 */

export class CalendarError extends Error {
  override name = 'CalendarError';
}

/** sorted values, or null for "any value" */
export type Field = number[] | null;

export interface CalendarSpec {
  /** the expression as written */
  source: string;
  /** 0 = Sunday … 6 = Saturday; null = every day of the week */
  weekdays: Field;
  years: Field;
  months: Field;
  /** days of the month, or (dayFromEnd) days counted from the month's end: 1 = last day */
  days: Field;
  dayFromEnd: boolean;
  hours: Field;
  minutes: Field;
  seconds: Field;
  /** 'UTC', an IANA zone name, or null for local time */
  timezone: string | null;
}

const SHORTHANDS: Record<string, string> = {
  minutely: '*-*-* *:*:00',
  hourly: '*-*-* *:00:00',
  daily: '*-*-* 00:00:00',
  monthly: '*-*-01 00:00:00',
  weekly: 'Mon *-*-* 00:00:00',
  yearly: '*-01-01 00:00:00',
  annually: '*-01-01 00:00:00',
  quarterly: '*-01,04,07,10-01 00:00:00',
  semiannually: '*-01,07-01 00:00:00',
};

const WEEKDAY_NAMES: [string, string, number][] = [
  ['mon', 'monday', 1], ['tue', 'tuesday', 2], ['wed', 'wednesday', 3], ['thu', 'thursday', 4],
  ['fri', 'friday', 5], ['sat', 'saturday', 6], ['sun', 'sunday', 0],
];
/** Monday-first position, for ranges (systemd does not wrap: Sat..Mon is invalid) */
const mondayFirst = (d: number) => (d + 6) % 7;

function weekday(name: string): number | null {
  const n = name.toLowerCase();
  for (const [short, long, v] of WEEKDAY_NAMES) if (n === short || n === long) return v;
  return null;
}

function parseWeekdays(tok: string): Field {
  const set = new Set<number>();
  for (const item of tok.split(',')) {
    if (item === '') throw new CalendarError(`empty weekday in "${tok}"`);
    const m = /^([A-Za-z]+)(?:(?:\.\.|-)([A-Za-z]+))?$/.exec(item);
    if (!m) throw new CalendarError(`invalid weekday "${item}"`);
    const a = weekday(m[1]!);
    const b = m[2] !== undefined ? weekday(m[2]) : a;
    if (a === null || b === null) throw new CalendarError(`invalid weekday "${item}"`);
    if (mondayFirst(b) < mondayFirst(a)) throw new CalendarError(`invalid weekday range "${item}" (ranges run Monday to Sunday)`);
    for (let i = mondayFirst(a); i <= mondayFirst(b); i++) set.add((i + 1) % 7);
  }
  return set.size === 7 ? null : [...set].sort((x, y) => x - y);
}

interface Range { min: number; max: number; name: string; year?: boolean }
const R = {
  year: { min: 1970, max: 2199, name: 'year', year: true },
  month: { min: 1, max: 12, name: 'month' },
  day: { min: 1, max: 31, name: 'day' },
  hour: { min: 0, max: 23, name: 'hour' },
  minute: { min: 0, max: 59, name: 'minute' },
  second: { min: 0, max: 59, name: 'second' },
} satisfies Record<string, Range>;

function num(s: string, r: Range): number {
  if (!/^\d+$/.test(s)) throw new CalendarError(`invalid ${r.name} "${s}"`);
  let n = Number(s);
  if (r.year && s.length <= 2) n += n >= 70 ? 1900 : 2000;
  if (n < r.min || n > r.max) throw new CalendarError(`${r.name} ${s} out of range ${r.min}..${r.max}`);
  return n;
}

/** one numeric component: `*`, `a`, `a,b`, `a..b`, `a/n`, `a..b/n` */
function parseField(s: string, r: Range, fromEnd = false): Field {
  if (s === '*') return null;
  const set = new Set<number>();
  for (const item of s.split(',')) {
    const m = /^([^./]+)(?:\.\.([^./]+))?(?:\/(\d+))?$/.exec(item);
    if (!m) throw new CalendarError(`invalid ${r.name} "${item}"`);
    if (m[1] === '*') throw new CalendarError(`invalid ${r.name} "${item}" (use a start value, e.g. 0/2)`);
    const a = num(m[1]!, r);
    const b = m[2] !== undefined ? num(m[2], r) : m[3] !== undefined ? r.max : a;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    if (step === 0) throw new CalendarError(`invalid repetition in ${r.name} "${item}"`);
    if (b < a) throw new CalendarError(`invalid ${r.name} range "${item}"`);
    // days counted from the month's end repeat towards the end: ~07/2 = 7th, 5th, 3rd, last day
    if (fromEnd && m[2] === undefined && m[3] !== undefined) for (let v = a; v >= r.min; v -= step) set.add(v);
    else for (let v = a; v <= b; v += step) set.add(v);
  }
  const vals = [...set].sort((x, y) => x - y);
  if (!r.year && vals.length === r.max - r.min + 1) return null;
  return vals;
}

function isTimezone(tok: string): boolean {
  if (tok === 'UTC') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tok });
    return /[A-Za-z]/.test(tok);
  } catch {
    return false;
  }
}

export function parseCalendar(expr: string): CalendarSpec {
  const source = expr;
  let text = expr.trim().replace(/\s+/g, ' ');
  if (text === '') throw new CalendarError('empty calendar expression');
  const short = SHORTHANDS[text.toLowerCase()];
  if (short) text = short;
  const tokens = text.split(' ');
  const spec: CalendarSpec = {
    source, weekdays: null, years: null, months: null, days: null, dayFromEnd: false,
    hours: [0], minutes: [0], seconds: [0], timezone: null,
  };
  let i = 0;
  let sawDate = false;
  let sawTime = false;
  let sawWeekday = false;
  if (/^[A-Za-z]/.test(tokens[0]!)) {
    spec.weekdays = parseWeekdays(tokens[0]!);
    sawWeekday = true;
    i++;
  }
  if (tokens[i] !== undefined && !tokens[i]!.includes(':') && /[-~]/.test(tokens[i]!) && /^[\d*]/.test(tokens[i]!)) {
    parseDate(tokens[i]!, spec);
    sawDate = true;
    i++;
  }
  if (tokens[i] !== undefined && tokens[i]!.includes(':')) {
    const parts = tokens[i]!.split(':');
    if (parts.length < 2 || parts.length > 3) throw new CalendarError(`invalid time "${tokens[i]}"`);
    if (parts[2]?.includes('.')) throw new CalendarError(`fractional seconds are not supported ("${tokens[i]}")`);
    spec.hours = parseField(parts[0]!, R.hour);
    spec.minutes = parseField(parts[1]!, R.minute);
    spec.seconds = parts.length === 3 ? parseField(parts[2]!, R.second) : [0];
    sawTime = true;
    i++;
  }
  if (i === tokens.length - 1 && (i > 0) && isTimezone(tokens[i]!)) {
    spec.timezone = tokens[i]!;
    i++;
  }
  if (i !== tokens.length) throw new CalendarError(`cannot parse "${tokens.slice(i).join(' ')}" in calendar expression "${expr}"`);
  if (!sawDate && !sawTime && !sawWeekday) throw new CalendarError(`invalid calendar expression "${expr}"`);
  return spec;
}

function parseDate(tok: string, spec: CalendarSpec): void {
  let datePart = tok;
  let dayPart: string;
  if (tok.includes('~')) {
    const [left, right, ...rest] = tok.split('~');
    if (rest.length || right === undefined || right === '') throw new CalendarError(`invalid date "${tok}"`);
    datePart = left!;
    dayPart = right;
    spec.dayFromEnd = true;
    const p = datePart.split('-');
    if (p.length === 2) { spec.years = parseField(p[0]!, R.year); spec.months = parseField(p[1]!, R.month); }
    else if (p.length === 1) spec.months = parseField(p[0]!, R.month);
    else throw new CalendarError(`invalid date "${tok}"`);
  } else {
    const p = datePart.split('-');
    if (p.length === 3) { spec.years = parseField(p[0]!, R.year); spec.months = parseField(p[1]!, R.month); dayPart = p[2]!; }
    else if (p.length === 2) { spec.months = parseField(p[0]!, R.month); dayPart = p[1]!; }
    else throw new CalendarError(`invalid date "${tok}"`);
  }
  spec.days = parseField(dayPart, R.day, spec.dayFromEnd);
}

const inField = (f: Field, v: number) => f === null || f.includes(v);
const values = (f: Field, r: Range) => f ?? Array.from({ length: r.max - r.min + 1 }, (_, k) => r.min + k);

/** zone offset (ms, local - UTC) of `zone` at instant t */
function zoneOffset(zone: string, t: number): number {
  const dtf = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const p: Record<string, number> = {};
  for (const x of dtf.formatToParts(new Date(t))) if (x.type !== 'literal') p[x.type] = Number(x.value);
  return Date.UTC(p['year']!, p['month']! - 1, p['day']!, p['hour']!, p['minute']!, p['second']!) - Math.floor(t / 1000) * 1000;
}

export interface NextOptions {
  /** compute in UTC instead of the process's local time zone (ignored when the spec names a zone) */
  utc?: boolean;
  /** how far to search, in years (default 10) */
  horizonYears?: number;
}

/** The first instant strictly after `after` that matches, or null (none within the horizon). */
export function nextElapse(spec: CalendarSpec, after: Date, o: NextOptions = {}): Date | null {
  const zone = spec.timezone ?? (o.utc ? 'UTC' : null);
  // wall-clock fields of an instant, and an instant from wall-clock fields, in the chosen zone
  const wall = (t: number) => {
    if (zone === null) { const d = new Date(t); return { y: d.getFullYear(), mo: d.getMonth() + 1, d: d.getDate() }; }
    const d = new Date(t + (zone === 'UTC' ? 0 : zoneOffset(zone, t)));
    return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate() };
  };
  const instant = (y: number, mo: number, d: number, h: number, mi: number, s: number) => {
    if (zone === null) return new Date(y, mo - 1, d, h, mi, s).getTime();
    const guess = Date.UTC(y, mo - 1, d, h, mi, s);
    if (zone === 'UTC') return guess;
    const off1 = zoneOffset(zone, guess);
    const off2 = zoneOffset(zone, guess - off1);
    return guess - off2;
  };
  const start = wall(after.getTime());
  const hours = values(spec.hours, R.hour);
  const minutes = values(spec.minutes, R.minute);
  const seconds = values(spec.seconds, R.second);
  const days = Math.ceil((o.horizonYears ?? 10) * 366);
  for (let k = 0; k <= days; k++) {
    const day = new Date(Date.UTC(start.y, start.mo - 1, start.d + k));
    const y = day.getUTCFullYear();
    const mo = day.getUTCMonth() + 1;
    const d = day.getUTCDate();
    if (!inField(spec.years, y) || !inField(spec.months, mo) || !inField(spec.weekdays, day.getUTCDay())) continue;
    if (spec.dayFromEnd) {
      const dim = new Date(Date.UTC(y, mo, 0)).getUTCDate();
      if (!inField(spec.days, dim - d + 1)) continue;
    } else if (!inField(spec.days, d)) continue;
    for (const h of hours) {
      for (const mi of minutes) {
        if (k === 0 && instant(y, mo, d, h, mi, 59) <= after.getTime()) continue;
        for (const s of seconds) {
          const t = instant(y, mo, d, h, mi, s);
          if (t > after.getTime()) return new Date(t);
        }
      }
    }
  }
  return null;
}

/** the next `n` elapses after `after` */
export function nextElapses(spec: CalendarSpec, after: Date, n: number, o: NextOptions = {}): Date[] {
  const out: Date[] = [];
  let t = after;
  while (out.length < n) {
    const next = nextElapse(spec, t, o);
    if (!next) break;
    out.push(next);
    t = next;
  }
  return out;
}

/** one launchd StartCalendarInterval dictionary; a missing key is a wildcard (Weekday 0 = Sunday) */
export interface LaunchdInterval {
  Month?: number;
  Day?: number;
  Weekday?: number;
  Hour?: number;
  Minute?: number;
}

const MAX_LAUNCHD_INTERVALS = 500;

/**
 * launchd matches like cron, at minute resolution, in local time. Expressions launchd cannot express
 * exactly (years, seconds other than 0, days counted from the month's end, both a weekday and a day of
 * the month, a time zone) are refused rather than approximated.
 */
export function toLaunchdIntervals(spec: CalendarSpec): LaunchdInterval[] {
  const why = (s: string) => new CalendarError(`launchd cannot express "${spec.source}": ${s}`);
  if (spec.timezone) throw why('launchd schedules run in local time (drop the time zone)');
  if (spec.years !== null) throw why('years are not supported');
  if (spec.dayFromEnd) throw why('days counted from the end of the month (~) are not supported');
  if (spec.seconds === null || spec.seconds.length !== 1 || spec.seconds[0] !== 0) throw why('launchd starts jobs on whole minutes (use seconds 00)');
  if (spec.weekdays !== null && spec.days !== null) throw why('launchd runs a job when either the weekday or the day matches; use one of them');
  const dims: [keyof LaunchdInterval, Field][] = [
    ['Month', spec.months], ['Day', spec.days], ['Weekday', spec.weekdays], ['Hour', spec.hours], ['Minute', spec.minutes],
  ];
  let out: LaunchdInterval[] = [{}];
  for (const [key, f] of dims) {
    if (f === null) continue;
    const next: LaunchdInterval[] = [];
    for (const base of out) for (const v of f) next.push({ ...base, [key]: v });
    out = next;
    if (out.length > MAX_LAUNCHD_INTERVALS) throw why(`it needs more than ${MAX_LAUNCHD_INTERVALS} StartCalendarInterval entries; simplify the schedule`);
  }
  return out;
}

/** validate a systemd time span ("15m", "1h 30min", "90", "2d") and return seconds */
export function parseTimeSpan(s: string): number {
  const units: Record<string, number> = {
    '': 1, s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60,
    h: 3600, hr: 3600, hour: 3600, hours: 3600, d: 86400, day: 86400, days: 86400, w: 604800, week: 604800, weeks: 604800,
  };
  const t = s.trim();
  if (t === '') throw new CalendarError('empty time span');
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]*)\s*/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(t)) !== null) {
    if (m[0] === '') break;
    const u = units[m[2]!];
    if (u === undefined) throw new CalendarError(`invalid time span "${s}" (unknown unit "${m[2]}")`);
    total += Number(m[1]) * u;
    pos = re.lastIndex;
  }
  if (pos !== t.length) throw new CalendarError(`invalid time span "${s}"`);
  return total;
}
