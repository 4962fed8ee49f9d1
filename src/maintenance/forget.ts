/**
 * restic's `forget` policy engine (grouping, filtering and ApplyPolicy), reproducing restic 0.14
 * exactly. Pure: no I/O. Everything here was checked against `restic forget --dry-run --json`
 * (see test/maintenance/forget-policy.test.ts), including these restic 0.14 behaviours:
 *
 * - Bucket keys (hour/day/ISO week/month/year) use each snapshot's own UTC offset, i.e. the wall
 *   clock written in its `time` string, not UTC and not the local zone.
 * - The `within` reference point is the newest snapshot of the group that is not in the future
 *   (relative to `now`), not `now`. When every snapshot is in the future it is Go's zero time
 *   (0001-01-01T00:00:00Z), so everything is "within".
 * - The cutoff is `latest.AddDate(-y, -m, -d).Add(-h hours)`, Go semantics: calendar arithmetic on
 *   latest's wall clock with day overflow normalised (Mar 31 - 1m = Mar 2 or 3). If latest's offset
 *   equals the offset of the local time zone at that instant, Go parsed it into `time.Local`, so
 *   the new wall clock is re-resolved with local DST rules (restic's result depends on TZ!); see
 *   `ApplyPolicyOptions.localTimeZone`. A `Z` time is always UTC, never Local.
 * - `within` comparisons are strict (`cur.Time.After(cutoff)`), to the nanosecond.
 * - Negative counts are accepted by 0.14 (no "unlimited"): they disable that bucket, yet make the
 *   policy non-empty, so `--keep-last -1` alone removes everything; the counter stays -1 and is
 *   reported. Negative durations are accepted too (cutoff after latest).
 * - No "keep the oldest snapshot" rule (that came with later restic versions).
 * - An empty policy keeps everything with reason "policy is empty" (the CLI then prints nothing
 *   at all with --json).
 * - Groups come out of a Go map in random order in restic 0.14; we return them sorted by their
 *   JSON key bytes.
 * - restic sorts `paths` (always) and `tags` (when grouping by tags) of the snapshot objects in
 *   place while grouping, so its JSON shows those arrays sorted. We do not mutate the input.
 */
import { GO_ZERO_NS, goAddDate, isoWeek, parseGoTime, processTimeZone, wallClock, type GoTime, type Wall } from '../format/gotime.js';
import type { SnapshotWithId } from '../repo/snapshot.js';

// ---------------------------------------------------------------------------------------------
// Durations

/** restic.Duration: `1y2m3d4h`. */
export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

export function durationIsZero(d: Duration | undefined): boolean {
  return d === undefined || (d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0);
}

/** Go's Duration.String(): non-zero parts only, e.g. "1y2m", "-1d"; "" for zero. */
export function formatDuration(d: Duration): string {
  let s = '';
  if (d.years !== 0) s += `${d.years}y`;
  if (d.months !== 0) s += `${d.months}m`;
  if (d.days !== 0) s += `${d.days}d`;
  if (d.hours !== 0) s += `${d.hours}h`;
  return s;
}

const IS_NUMBER = /^\p{N}$/u;

/**
 * restic.ParseDuration: whitespace-trimmed; a sequence of `[-]<digits><unit>` with unit one of
 * y, m, d, h; a repeated unit overwrites the earlier value; "" is the zero duration.
 */
export function parseDuration(input: string): Duration {
  const d: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  let s = input.trim();
  while (s !== '') {
    let negative = false;
    if (s[0] === '-') {
      negative = true;
      s = s.slice(1);
    }
    let n = '';
    let rest = '';
    const chars = [...s];
    for (let i = 0; i < chars.length; i++) {
      if (!IS_NUMBER.test(chars[i]!)) {
        rest = chars.slice(i).join('');
        break;
      }
      n += chars[i];
    }
    if (n.length === 0) throw new Error('no number found');
    // Go's strconv.Atoi accepts ASCII digits only (restic panics on other Unicode numbers)
    if (!/^[0-9]+$/.test(n)) throw new Error(`invalid number ${JSON.stringify(n)} in duration`);
    let num = Number(n);
    if (!Number.isSafeInteger(num)) throw new Error(`number ${n} out of range in duration`);
    if (negative) num = -num;
    s = rest;
    if (s.length === 0) throw new Error(`no unit found after number ${num}`);
    switch (s[0]) {
      case 'y': d.years = num; break;
      case 'm': d.months = num; break;
      case 'd': d.days = num; break;
      case 'h': d.hours = num; break;
      default: throw new Error(`invalid unit ${JSON.stringify(String.fromCodePoint(s.codePointAt(0)!))} found after number ${num}`);
    }
    s = s.slice(1);
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// Tag lists, grouping, filters

/** restic's TagList flag value: split on ",", each tag trimmed, empty tags kept ("" → [""]). */
export function parseTagList(s: string): string[] {
  return s.split(',').map((t) => t.trim());
}

/** Go's TagList.String(): "[a, b]". */
export function formatTagList(l: readonly string[]): string {
  return `[${l.join(', ')}]`;
}

function hasTag(sn: SnapshotWithId, tag: string): boolean {
  return (sn.tags ?? []).includes(tag);
}

/** Snapshot.HasTags of restic 0.14: all tags present; a "" tag (checked in order) matches an untagged snapshot. */
export function hasTags(sn: SnapshotWithId, l: readonly string[]): boolean {
  const n = sn.tags?.length ?? 0;
  for (const tag of l) {
    if (tag === '' && n === 0) return true;
    if (!hasTag(sn, tag)) return false;
  }
  return true;
}

/** Snapshot.HasTagList: an empty list matches; else any one tag list must match. */
export function hasTagList(sn: SnapshotWithId, lists: readonly (readonly string[])[]): boolean {
  if (lists.length === 0) return true;
  for (const l of lists) {
    if (hasTags(sn, l)) return true;
  }
  return false;
}

/** Snapshot.HasPaths: every given path is (exactly, uncleaned) one of the snapshot's paths. */
export function hasPaths(sn: SnapshotWithId, paths: readonly string[]): boolean {
  return paths.every((p) => sn.paths.includes(p));
}

/** Snapshot.HasHostname: empty list matches; else hostname equals one of them. */
export function hasHostname(sn: SnapshotWithId, hosts: readonly string[]): boolean {
  return hosts.length === 0 || hosts.includes(sn.hostname ?? '');
}

export interface SnapshotFilter {
  /** --host (any of) */
  hosts?: string[];
  /** --tag, each entry one comma-separated tag list; a snapshot matches if it has all tags of any list */
  tags?: string[][];
  /** --path: snapshot must contain every path, exact string match */
  paths?: string[];
}

/** restic's FindFilteredSnapshots filter (host AND tag-lists AND paths); keeps input order. */
export function filterSnapshots(snaps: readonly SnapshotWithId[], f: SnapshotFilter): SnapshotWithId[] {
  return snaps.filter((sn) => hasHostname(sn, f.hosts ?? []) && hasTagList(sn, f.tags ?? []) && hasPaths(sn, f.paths ?? []));
}

export interface GroupBy {
  host: boolean;
  paths: boolean;
  tags: boolean;
}

/** restic's --group-by value: comma-separated host(s)/path(s)/tag(s); '' disables grouping. */
export function parseGroupBy(s: string): GroupBy {
  const g: GroupBy = { host: false, paths: false, tags: false };
  for (const o of s.split(',')) {
    switch (o) {
      case 'host': case 'hosts': g.host = true; break;
      case 'path': case 'paths': g.paths = true; break;
      case 'tag': case 'tags': g.tags = true; break;
      case '': break;
      default: throw new Error(`unknown grouping option: '${o}'`);
    }
  }
  return g;
}

/** restic's default --group-by host,paths */
export const DEFAULT_GROUP_BY: Readonly<GroupBy> = Object.freeze({ host: true, paths: true, tags: false });

export interface GroupKey {
  /** set iff grouping by host (restic prints "" otherwise) */
  hostname?: string;
  /** sorted; set iff grouping by paths (restic prints null otherwise) */
  paths?: string[];
  /**
   * sorted; set iff grouping by tags and the snapshot has a `tags` array. An untagged snapshot
   * (no `tags` field) gives undefined, which restic prints as null, and forms a different group
   * than a snapshot stored with `"tags": []` (Go's JSON key distinguishes nil from empty).
   */
  tags?: string[];
}

export interface SnapshotGroup {
  key: GroupKey;
  snapshots: SnapshotWithId[];
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function sortedStrings(l: readonly string[]): string[] {
  return [...l].sort(byteCompare);
}

/**
 * restic.GroupSnapshots. Within a group, snapshots keep their input order. restic 0.14 iterates
 * groups in Go map (random) order; here they are ordered by their key (the JSON restic uses).
 */
export function groupSnapshots(snaps: readonly SnapshotWithId[], groupBy: GroupBy): SnapshotGroup[] {
  const groups = new Map<string, SnapshotGroup>();
  for (const sn of snaps) {
    const key: GroupKey = {};
    // the JSON restic marshals: {"hostname":..., "paths":..., "tags":...}, nil slices as null
    const hostname = groupBy.host ? sn.hostname ?? '' : '';
    let paths: string[] | null = null;
    let tags: string[] | null = null;
    if (groupBy.host) key.hostname = hostname;
    if (groupBy.paths) {
      paths = sortedStrings(sn.paths ?? []);
      key.paths = paths;
    }
    if (groupBy.tags && Array.isArray(sn.tags)) {
      tags = sortedStrings(sn.tags);
      key.tags = tags;
    }
    const k = JSON.stringify({ hostname, paths, tags });
    let g = groups.get(k);
    if (!g) {
      g = { key, snapshots: [] };
      groups.set(k, g);
    }
    g.snapshots.push(sn);
  }
  return [...groups.entries()].sort((a, b) => byteCompare(a[0], b[0])).map(([, g]) => g);
}

// ---------------------------------------------------------------------------------------------
// Go time (parsing, wall clock, AddDate, ISOWeek: src/format/gotime.ts)

/** Go's t.AddDate(-years, -months, -days).Add(-hours * time.Hour) */
function pastTime(t: GoTime, d: Duration, localTz: string): bigint {
  return goAddDate(t, -d.years, -d.months, -d.days, localTz) - BigInt(d.hours) * 3_600_000_000_000n;
}

type Bucker = (w: Wall, nr: number) => number;
const ymdh: Bucker = (w) => w.y * 1_000_000 + w.m * 10_000 + w.d * 100 + w.hour;
const ymd: Bucker = (w) => w.y * 10_000 + w.m * 100 + w.d;
const yw: Bucker = (w) => {
  const { year, week } = isoWeek(w.days);
  return year * 100 + week;
};
const ym: Bucker = (w) => w.y * 100 + w.m;
const yOnly: Bucker = (w) => w.y;
const always: Bucker = (_w, nr) => nr;

// ---------------------------------------------------------------------------------------------
// ApplyPolicy

/** restic.ExpirePolicy (forget's --keep-* flags). Counts: 0/undefined = off; negative = off but non-empty (0.14). */
export interface ForgetPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: Duration;
  withinHourly?: Duration;
  withinDaily?: Duration;
  withinWeekly?: Duration;
  withinMonthly?: Duration;
  withinYearly?: Duration;
  /** --keep-tag, each entry a tag list (comma-separated on the CLI, see parseTagList) */
  tags?: string[][];
}

/** ExpirePolicy.Empty(): no tags, all counts 0 and all durations zero */
export function policyIsEmpty(p: ForgetPolicy): boolean {
  if ((p.tags?.length ?? 0) !== 0) return false;
  for (const n of [p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly]) if ((n ?? 0) !== 0) return false;
  for (const d of [p.within, p.withinHourly, p.withinDaily, p.withinWeekly, p.withinMonthly, p.withinYearly]) if (!durationIsZero(d)) return false;
  return true;
}

export interface KeepReason {
  snapshot: SnapshotWithId;
  /** e.g. "last snapshot", "daily snapshot", "within 1y2m", "daily within 3m", "has tags [a, b]" */
  matches: string[];
  /** bucket counts left after this snapshot, as restic's JSON prints them: keys last/hourly/daily/weekly/monthly/yearly, zero entries omitted */
  counters: Record<string, number>;
}

export interface PolicyResult {
  /** newest first */
  keep: SnapshotWithId[];
  /** newest first */
  remove: SnapshotWithId[];
  /** one per kept snapshot, same order as keep */
  reasons: KeepReason[];
}

export interface ApplyPolicyOptions {
  /**
   * IANA zone standing in for Go's time.Local (restic's TZ). It changes `within` cutoffs when the
   * newest snapshot's offset equals the local zone's offset at that instant. Default: this
   * process's zone (same TZ / /etc/localtime resolution as restic on this machine).
   */
  localTimeZone?: string;
}

const COUNTER_NAMES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;

/**
 * restic 0.14's ApplyPolicy on one group. `now` (default: current time) only decides which
 * snapshots are "in the future" and so cannot be the reference for `within`.
 */
export function applyPolicy(snaps: readonly SnapshotWithId[], p: ForgetPolicy, now: Date = new Date(), opts: ApplyPolicyOptions = {}): PolicyResult {
  const localTz = opts.localTimeZone ?? processTimeZone();
  const list = snaps.map((sn) => ({ sn, t: parseGoTime(sn.time, localTz) }));
  // newest first (stable for equal instants; restic's order for those is arbitrary)
  list.sort((a, b) => (a.t.ns > b.t.ns ? -1 : a.t.ns < b.t.ns ? 1 : 0));

  if (policyIsEmpty(p)) {
    return {
      keep: list.map((e) => e.sn),
      remove: [],
      reasons: list.map((e) => ({ snapshot: e.sn, matches: ['policy is empty'], counters: {} })),
    };
  }
  const keep: SnapshotWithId[] = [];
  const remove: SnapshotWithId[] = [];
  const reasons: KeepReason[] = [];
  if (list.length === 0) return { keep, remove, reasons };

  const buckets = [
    { count: p.last ?? 0, bucker: always, last: -1, reason: 'last snapshot' },
    { count: p.hourly ?? 0, bucker: ymdh, last: -1, reason: 'hourly snapshot' },
    { count: p.daily ?? 0, bucker: ymd, last: -1, reason: 'daily snapshot' },
    { count: p.weekly ?? 0, bucker: yw, last: -1, reason: 'weekly snapshot' },
    { count: p.monthly ?? 0, bucker: ym, last: -1, reason: 'monthly snapshot' },
    { count: p.yearly ?? 0, bucker: yOnly, last: -1, reason: 'yearly snapshot' },
  ];
  const bucketsWithin = [
    { within: p.withinHourly, bucker: ymdh, last: -1, reason: 'hourly within' },
    { within: p.withinDaily, bucker: ymd, last: -1, reason: 'daily within' },
    { within: p.withinWeekly, bucker: yw, last: -1, reason: 'weekly within' },
    { within: p.withinMonthly, bucker: ym, last: -1, reason: 'monthly within' },
    { within: p.withinYearly, bucker: yOnly, last: -1, reason: 'yearly within' },
  ];

  // findLatestTimestamp: newest snapshot that is not in the future; Go's zero time if none
  const nowNs = BigInt(now.getTime()) * 1_000_000n;
  let latest: GoTime = { ns: GO_ZERO_NS, off: 0, loc: 'utc' };
  for (const e of list) if (e.t.ns > latest.ns && e.t.ns < nowNs) latest = e.t;

  const cutoff = (d: Duration): bigint => pastTime(latest, d, localTz);
  const withinCutoff = durationIsZero(p.within) ? null : cutoff(p.within!);
  const withinCutoffs = bucketsWithin.map((b) => (durationIsZero(b.within) ? null : cutoff(b.within!)));

  list.forEach(({ sn, t }, nr) => {
    let keepSnap = false;
    const matches: string[] = [];
    const wall = wallClock(t);

    for (const l of p.tags ?? []) {
      if (hasTags(sn, l)) {
        keepSnap = true;
        matches.push(`has tags ${formatTagList(l)}`);
      }
    }

    if (withinCutoff !== null && t.ns > withinCutoff) {
      keepSnap = true;
      matches.push(`within ${formatDuration(p.within!)}`);
    }

    for (const b of buckets) {
      if (b.count > 0) {
        const val = b.bucker(wall, nr);
        if (val !== b.last) {
          keepSnap = true;
          b.last = val;
          b.count--;
          matches.push(b.reason);
        }
      }
    }

    bucketsWithin.forEach((b, i) => {
      const c = withinCutoffs[i];
      if (c === null || c === undefined || !(t.ns > c)) return;
      const val = b.bucker(wall, nr);
      if (val !== b.last) {
        keepSnap = true;
        b.last = val;
        matches.push(`${b.reason} ${formatDuration(b.within!)}`);
      }
    });

    if (keepSnap) {
      keep.push(sn);
      const counters: Record<string, number> = {};
      buckets.forEach((b, i) => {
        if (b.count !== 0) counters[COUNTER_NAMES[i]!] = b.count;
      });
      reasons.push({ snapshot: sn, matches, counters });
    } else {
      remove.push(sn);
    }
  });
  return { keep, remove, reasons };
}

/** `restic forget` without snapshot IDs: filter, group, then apply the policy to each group. */
export function forgetGroups(
  snaps: readonly SnapshotWithId[],
  p: ForgetPolicy,
  o: { filter?: SnapshotFilter; groupBy?: GroupBy; now?: Date; localTimeZone?: string } = {},
): (SnapshotGroup & PolicyResult)[] {
  const groups = groupSnapshots(filterSnapshots(snaps, o.filter ?? {}), o.groupBy ?? DEFAULT_GROUP_BY);
  return groups.map((g) => ({ ...g, ...applyPolicy(g.snapshots, p, o.now, { localTimeZone: o.localTimeZone }) }));
}
