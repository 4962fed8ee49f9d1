/**
 * restic's forget policy engine (src/maintenance/forget.ts): pure unit tests, and the proof that
 * it equals `restic forget --dry-run --json` on a ~500-snapshot, 3-year, multi-offset history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { snapshotTimeKey, type SnapshotWithId } from '../../src/repo/snapshot.js';
import {
  applyPolicy,
  filterSnapshots,
  forgetGroups,
  formatDuration,
  groupSnapshots,
  parseDuration,
  parseGroupBy,
  parseTagList,
  policyIsEmpty,
  type ForgetPolicy,
  type GroupBy,
  type SnapshotFilter,
} from '../../src/maintenance/forget.js';
import { cleanupTmpDirs, interopDescribe, runRestic, tmpDir } from '../helpers/tools.js';
import { makePrng } from '../../tools/jotta-emulator/faults.js';

afterAll(cleanupTmpDirs);

const TREE = 'ab'.repeat(32);
let idSeq = 0;
function snap(time: string, extra: Partial<SnapshotWithId> = {}): SnapshotWithId {
  idSeq++;
  return { id: idSeq.toString(16).padStart(64, '0'), time, tree: TREE, paths: ['/data'], hostname: 'h', ...extra };
}
const ids = (l: SnapshotWithId[]) => l.map((s) => s.time);
const NOW = new Date('2026-01-01T00:00:00Z');
const UTC = { localTimeZone: 'UTC' };

// ---------------------------------------------------------------------------------------------

describe('parseDuration / formatDuration', () => {
  it('parses restic durations', () => {
    expect(parseDuration('1y2m3d4h')).toEqual({ years: 1, months: 2, days: 3, hours: 4 });
    expect(parseDuration('4h1y')).toEqual({ years: 1, months: 0, days: 0, hours: 4 });
    expect(parseDuration(' 1d2d ')).toEqual({ years: 0, months: 0, days: 2, hours: 0 }); // last one wins
    expect(parseDuration('-1d')).toEqual({ years: 0, months: 0, days: -1, hours: 0 });
    expect(parseDuration('1y-2m')).toEqual({ years: 1, months: -2, days: 0, hours: 0 });
    expect(parseDuration('')).toEqual({ years: 0, months: 0, days: 0, hours: 0 });
    expect(parseDuration('0d')).toEqual({ years: 0, months: 0, days: 0, hours: 0 });
    expect(parseDuration('007m')).toEqual({ years: 0, months: 7, days: 0, hours: 0 });
  });
  it('rejects what restic rejects', () => {
    expect(() => parseDuration('5')).toThrow('no unit found after number 5');
    expect(() => parseDuration('d')).toThrow('no number found');
    expect(() => parseDuration('1w')).toThrow(/invalid unit "w" found after number 1/);
    expect(() => parseDuration('1y-')).toThrow('no number found');
    expect(() => parseDuration('1y 2m')).toThrow('no number found');
    expect(() => parseDuration('1Y')).toThrow(/invalid unit/);
  });
  it('formats like Go Duration.String()', () => {
    expect(formatDuration(parseDuration('1y2m'))).toBe('1y2m');
    expect(formatDuration(parseDuration('4h3d2m1y'))).toBe('1y2m3d4h');
    expect(formatDuration(parseDuration('0y3m0d'))).toBe('3m');
    expect(formatDuration(parseDuration('-1d'))).toBe('-1d');
  });
});

describe('tag lists, group-by, filters', () => {
  it('parses tag lists and group-by like restic', () => {
    expect(parseTagList('a, b ,c')).toEqual(['a', 'b', 'c']);
    expect(parseTagList('')).toEqual(['']);
    expect(parseTagList('x,')).toEqual(['x', '']);
    expect(parseGroupBy('host,paths')).toEqual({ host: true, paths: true, tags: false });
    expect(parseGroupBy(',hosts,tag,')).toEqual({ host: true, paths: false, tags: true });
    expect(parseGroupBy('')).toEqual({ host: false, paths: false, tags: false });
    expect(() => parseGroupBy('hostname')).toThrow("unknown grouping option: 'hostname'");
  });

  it('groups with sorted paths/tags in the key; nil tags differ from empty tags', () => {
    const a = snap('2024-01-01T00:00:00Z', { hostname: 'x', paths: ['/z', '/a'], tags: ['b', 'a'] });
    const b = snap('2024-01-02T00:00:00Z', { hostname: 'x', paths: ['/a', '/z'], tags: ['a', 'b'] });
    const c = snap('2024-01-03T00:00:00Z', { hostname: 'x', paths: ['/a', '/z'] });
    const d = snap('2024-01-04T00:00:00Z', { hostname: 'x', paths: ['/a', '/z'], tags: [] });
    const e = snap('2024-01-05T00:00:00Z', { hostname: 'y', paths: ['/a'] });
    const all: GroupBy = { host: true, paths: true, tags: true };
    const g = groupSnapshots([a, b, c, d, e], all);
    expect(g.map((x) => x.key)).toEqual([
      { hostname: 'x', paths: ['/a', '/z'], tags: ['a', 'b'] },
      { hostname: 'x', paths: ['/a', '/z'], tags: [] },
      { hostname: 'x', paths: ['/a', '/z'] },
      { hostname: 'y', paths: ['/a'] },
    ]);
    expect(g[0]!.snapshots).toEqual([a, b]);
    expect(a.paths).toEqual(['/z', '/a']); // input not mutated
    expect(groupSnapshots([a, b, c, d, e], { host: false, paths: false, tags: false })).toEqual([{ key: {}, snapshots: [a, b, c, d, e] }]);
    expect(groupSnapshots([a, e], { host: true, paths: false, tags: false }).map((x) => x.key)).toEqual([{ hostname: 'x' }, { hostname: 'y' }]);
  });

  it('filters like restic: any host, any tag list (all tags of it), all paths exactly', () => {
    const a = snap('2024-01-01T00:00:00Z', { hostname: 'x', paths: ['/a', '/b'], tags: ['t1', 't2'] });
    const b = snap('2024-01-02T00:00:00Z', { hostname: 'y', paths: ['/a'] });
    const c = snap('2024-01-03T00:00:00Z', { hostname: 'z', paths: ['/b'], tags: ['t1'] });
    const l = [a, b, c];
    const f = (x: SnapshotFilter) => filterSnapshots(l, x);
    expect(f({})).toEqual(l);
    expect(f({ hosts: ['x', 'z'] })).toEqual([a, c]);
    expect(f({ tags: [['t1', 't2']] })).toEqual([a]);
    expect(f({ tags: [['t2'], ['t1']] })).toEqual([a, c]);
    expect(f({ tags: [['']] })).toEqual([b]); // --tag '' selects untagged snapshots
    expect(f({ tags: [['', 't9']] })).toEqual([b]); // "" first short-circuits for untagged
    expect(f({ tags: [['t1', '']] })).toEqual([]);
    expect(f({ paths: ['/a'] })).toEqual([a, b]);
    expect(f({ paths: ['/a', '/b'] })).toEqual([a]);
    expect(f({ paths: ['/a/'] })).toEqual([]); // not cleaned
    expect(f({ hosts: ['x'], paths: ['/b'], tags: [['t1']] })).toEqual([a]);
  });
});

describe('applyPolicy (pure)', () => {
  it('an empty policy keeps everything, newest first', () => {
    const l = [snap('2024-01-01T00:00:00Z'), snap('2024-01-03T00:00:00Z'), snap('2024-01-02T00:00:00Z')];
    for (const p of [{}, { last: 0, within: parseDuration('0d') }, { tags: [] }] as ForgetPolicy[]) {
      expect(policyIsEmpty(p)).toBe(true);
      const r = applyPolicy(l, p, NOW, UTC);
      expect(ids(r.keep)).toEqual(['2024-01-03T00:00:00Z', '2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z']);
      expect(r.remove).toEqual([]);
      expect(r.reasons.map((x) => x.matches)).toEqual([['policy is empty'], ['policy is empty'], ['policy is empty']]);
    }
    expect(applyPolicy([], { last: 1 }, NOW, UTC)).toEqual({ keep: [], remove: [], reasons: [] });
  });

  it('buckets by the wall clock of each snapshot\'s own offset (New Year)', () => {
    const l = [
      snap('2023-12-31T23:30:00+01:00'), // 22:30Z, Dec 31
      snap('2024-01-01T00:15:00+01:00'), // 23:15Z, Jan 1
      snap('2023-12-31T23:50:00Z'), // 23:50Z, Dec 31
      snap('2024-01-01T01:40:00+02:00'), // 23:40Z, Jan 1
    ];
    const r = applyPolicy(l, { daily: 10 }, NOW, UTC);
    expect(ids(r.keep)).toEqual(['2023-12-31T23:50:00Z', '2024-01-01T01:40:00+02:00', '2023-12-31T23:30:00+01:00']);
    expect(ids(r.remove)).toEqual(['2024-01-01T00:15:00+01:00']);
    expect(r.reasons.map((x) => x.counters)).toEqual([{ daily: 9 }, { daily: 8 }, { daily: 7 }]);
    const y = applyPolicy(l, { yearly: 5 }, NOW, UTC);
    expect(ids(y.keep)).toEqual(['2023-12-31T23:50:00Z', '2024-01-01T01:40:00+02:00', '2023-12-31T23:30:00+01:00']);
  });

  it('uses ISO weeks and wall-clock hours (DST fall-back hour collapses)', () => {
    const w = applyPolicy([snap('2024-12-29T23:30:00-05:00'), snap('2024-12-30T10:00:00+01:00'), snap('2024-12-30T05:00:00Z')], { weekly: 9 }, NOW, UTC);
    // 2024-12-30 is ISO 2025-W01; 2024-12-29 (its own wall clock, 04:30Z on the 30th) is 2024-W52
    expect(ids(w.keep)).toEqual(['2024-12-30T10:00:00+01:00', '2024-12-29T23:30:00-05:00']);
    expect(ids(w.remove)).toEqual(['2024-12-30T05:00:00Z']);
    // only a change against the previous kept bucket counts: W01, W52, W01 keeps all three
    const w2 = applyPolicy([snap('2024-12-29T23:30:00-05:00'), snap('2024-12-30T10:00:00+01:00'), snap('2024-12-30T03:00:00Z')], { weekly: 9 }, NOW, UTC);
    expect(w2.keep).toHaveLength(3);
    const h = applyPolicy([snap('2024-10-27T02:30:00+02:00'), snap('2024-10-27T02:40:00+01:00'), snap('2024-10-27T03:10:00+01:00')], { hourly: 9 }, NOW, UTC);
    expect(ids(h.keep)).toEqual(['2024-10-27T03:10:00+01:00', '2024-10-27T02:40:00+01:00']);
    expect(ids(h.remove)).toEqual(['2024-10-27T02:30:00+02:00']);
  });

  it('keep-last counts snapshots; reasons and counters as restic prints them', () => {
    const l = [snap('2024-01-01T00:00:00Z', { tags: ['a', 'b'] }), snap('2024-01-01T00:00:01Z'), snap('2024-01-01T00:00:02Z')];
    const r = applyPolicy(l, { last: 2, daily: 1, tags: [['a'], ['b', 'x'], ['b', 'a']] }, NOW, UTC);
    expect(r.reasons.map((x) => [x.snapshot.time, x.matches, x.counters])).toEqual([
      ['2024-01-01T00:00:02Z', ['last snapshot', 'daily snapshot'], { last: 1 }],
      ['2024-01-01T00:00:01Z', ['last snapshot'], {}],
      ['2024-01-01T00:00:00Z', ['has tags [a]', 'has tags [b, a]'], {}],
    ]);
  });

  it('negative counts disable a bucket but make the policy non-empty (restic 0.14)', () => {
    const l = [snap('2024-01-01T00:00:00Z'), snap('2024-01-02T00:00:00Z')];
    expect(applyPolicy(l, { last: -1 }, NOW, UTC).keep).toEqual([]);
    const r = applyPolicy(l, { last: -1, daily: 1 }, NOW, UTC);
    expect(r.reasons.map((x) => x.counters)).toEqual([{ last: -1 }]);
  });

  it('within counts back from the newest non-future snapshot, strictly, to the nanosecond', () => {
    const l = [
      snap('2099-01-01T00:00:00Z'), // future: not the reference
      snap('2024-06-10T12:00:00+02:00'), // latest = 10:00Z
      snap('2024-06-09T10:00:00.000000001Z'),
      snap('2024-06-09T12:00:00+02:00'), // exactly 1d before: not After
      snap('2024-06-09T09:00:00Z'),
    ];
    const r = applyPolicy(l, { within: parseDuration('1d') }, NOW, UTC);
    expect(ids(r.keep)).toEqual(['2099-01-01T00:00:00Z', '2024-06-10T12:00:00+02:00', '2024-06-09T10:00:00.000000001Z']);
    expect(r.reasons[0]!.matches).toEqual(['within 1d']);
    // with `now` before 2024-06-10T10:00Z the reference moves to the next older one
    const r2 = applyPolicy(l, { within: parseDuration('1d') }, new Date('2024-06-10T00:00:00Z'), UTC);
    expect(r2.remove).toEqual([]);
  });

  it('all snapshots in the future: reference is Go zero time, so everything is within', () => {
    const l = [snap('2098-01-01T00:00:00Z'), snap('2097-01-01T00:00:00+05:00')];
    expect(applyPolicy(l, { within: parseDuration('1h') }, NOW, UTC).keep).toHaveLength(2);
  });

  it('within uses Go AddDate: month overflow normalises (Mar 31 - 1m = Mar 2 in 2024)', () => {
    const l = [snap('2024-03-31T12:00:00Z'), snap('2024-03-02T12:00:01Z'), snap('2024-03-02T11:59:59Z'), snap('2024-02-29T13:00:00Z')];
    const r = applyPolicy(l, { within: parseDuration('1m') }, NOW, UTC);
    expect(ids(r.keep)).toEqual(['2024-03-31T12:00:00Z', '2024-03-02T12:00:01Z']);
    const r2 = applyPolicy(l, { within: parseDuration('1m1d1h') }, NOW, UTC);
    expect(ids(r2.keep)).toEqual(['2024-03-31T12:00:00Z', '2024-03-02T12:00:01Z', '2024-03-02T11:59:59Z']);
  });

  it('within: a newest snapshot in the local zone gets local DST rules (Go time.Local)', () => {
    const l = [snap('2024-04-01T12:00:00+02:00'), snap('2024-03-01T10:30:00Z'), snap('2024-03-01T09:30:00Z')];
    const p = { within: parseDuration('1m') };
    expect(ids(applyPolicy(l, p, NOW, { localTimeZone: 'UTC' }).keep)).toEqual(['2024-04-01T12:00:00+02:00', '2024-03-01T10:30:00Z']);
    expect(ids(applyPolicy(l, p, NOW, { localTimeZone: 'Europe/Berlin' }).keep)).toEqual(['2024-04-01T12:00:00+02:00']);
    expect(ids(applyPolicy(l, p, NOW, { localTimeZone: 'America/New_York' }).keep)).toEqual(['2024-04-01T12:00:00+02:00', '2024-03-01T10:30:00Z']);
  });

  it('keep-within-* buckets only count snapshots inside the window', () => {
    const l = [snap('2024-06-10T12:00:00Z'), snap('2024-06-10T08:00:00Z'), snap('2024-06-09T23:00:00Z'), snap('2024-06-08T23:00:00Z'), snap('2024-06-07T23:00:00Z')];
    const r = applyPolicy(l, { withinDaily: parseDuration('2d'), withinHourly: parseDuration('5h') }, NOW, UTC);
    expect(r.reasons.map((x) => [x.snapshot.time, x.matches])).toEqual([
      ['2024-06-10T12:00:00Z', ['hourly within 5h', 'daily within 2d']],
      ['2024-06-10T08:00:00Z', ['hourly within 5h']],
      ['2024-06-09T23:00:00Z', ['daily within 2d']],
      ['2024-06-08T23:00:00Z', ['daily within 2d']],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// interop: a deterministic history, then restic forget --dry-run --json vs. us

/** offset in minutes of an IANA zone at an instant */
function zoneOffsetMin(tz: string, ms: number): number {
  const f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
  const p: Record<string, string> = {};
  for (const x of f.formatToParts(new Date(ms))) p[x.type] = x.value;
  const wall = Date.UTC(+p.year!, +p.month! - 1, +p.day!, +p.hour!, +p.minute!, +p.second!);
  return Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
}

/** RFC 3339 with the wall clock of `offMin` (null: "Z") and an optional fraction */
function fmtTime(ms: number, offMin: number | null, frac = ''): string {
  const w = new Date(ms + (offMin ?? 0) * 60000).toISOString().slice(0, 19);
  if (offMin === null) return `${w}${frac}Z`;
  const a = Math.abs(offMin);
  return `${w}${frac}${offMin < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

interface GenSnap {
  time: string;
  hostname: string;
  paths: string[];
  tags?: string[];
}

function generateHistory(): GenSnap[] {
  const rnd = makePrng(0x5eed); // mulberry32, the emulator's fault generator
  const pick = <T>(l: readonly T[]): T => l[Math.floor(rnd() * l.length)]!;
  const out: GenSnap[] = [];
  const tagChoices: (string[] | undefined)[] = [undefined, undefined, undefined, ['daily'], ['daily'], ['manual'], ['daily', 'important'], ['important', 'daily'], ['important']];
  const hosts = [
    { name: 'alpha', tz: 'Europe/Berlin', fixed: [null, null, 330] as (number | null)[], paths: [['/home', '/etc'], ['/etc', '/home'], ['/home', '/etc'], ['/srv']] },
    { name: 'beta', tz: 'America/New_York', fixed: [null, 540] as (number | null)[], paths: [['/data'], ['/data'], ['/var/lib', '/data']] },
  ];
  const start = Date.UTC(2022, 6, 1);
  const end = Date.UTC(2025, 5, 28);
  for (const h of hosts) {
    let gapUntil = 0;
    for (let day = start; day < end; day += 86_400_000) {
      if (day < gapUntil) continue;
      if (rnd() < 0.025) {
        gapUntil = day + (7 + Math.floor(rnd() * 30)) * 86_400_000; // weeks without backups
        continue;
      }
      const r = rnd();
      const n = r < 0.75 ? 0 : r < 0.95 ? 1 : 2 + Math.floor(rnd() * 4); // sometimes several a day
      for (let i = 0; i < n; i++) {
        const ms = day + Math.floor(rnd() * 86_400) * 1000;
        const o = rnd();
        const off = o < 0.6 ? zoneOffsetMin(h.tz, ms) : pick(h.fixed);
        const frac = rnd() < 0.2 ? '.' + String(Math.floor(rnd() * 1e9)).padStart(9, '0') : '';
        const tags = pick(tagChoices);
        out.push({ time: fmtTime(ms, off, frac), hostname: h.name, paths: [...pick(h.paths)], ...(tags ? { tags: [...tags] } : {}) });
      }
    }
  }
  const a = (time: string, tags?: string[], paths = ['/home', '/etc']): GenSnap => ({ time, hostname: 'alpha', paths, ...(tags ? { tags } : {}) });
  const b = (time: string, tags?: string[], paths = ['/data']): GenSnap => ({ time, hostname: 'beta', paths, ...(tags ? { tags } : {}) });
  const edges: GenSnap[] = [
    // the newest of alpha:/etc,/home: the `within` reference (Berlin summer time offset)
    a('2025-06-30T12:00:00+02:00', ['daily']),
    // keep-within 1y6m cutoff: 2023-12-30T12:00+02:00 = 10:00Z (fixed zone); 11:00Z under TZ=Europe/Berlin
    a('2023-12-30T10:00:00Z'),
    a('2023-12-30T10:00:00.000000001Z', ['manual']),
    a('2023-12-30T12:00:00+01:00'),
    a('2023-12-30T11:00:00.5Z'),
    // keep-within 4m: Feb 30 -> 2025-03-02T12:00 (+02:00 fixed: 10:00Z; Berlin: 11:00Z)
    a('2025-03-02T09:59:59Z'),
    a('2025-03-02T10:30:00Z'),
    a('2025-03-02T11:00:00.000000001Z'),
    a('2025-02-28T11:00:00Z'),
    // New Year: buckets flip between Dec 31 and Jan 1 by each time's own offset
    a('2023-12-31T23:30:00+01:00', ['daily']),
    a('2024-01-01T00:15:00+01:00'),
    a('2023-12-31T23:50:00Z'),
    a('2024-01-01T01:40:00+02:00', ['important']),
    a('2023-12-31T19:05:00-05:00'),
    // ISO weeks: 2022-12-31 Sat and 2023-01-01 Sun are 2022-W52; 2023-01-02 is 2023-W01
    a('2022-12-31T12:00:00Z'),
    a('2023-01-01T12:00:00+01:00'),
    a('2023-01-02T00:30:00+01:00'), // Sunday 23:30 in UTC
    a('2024-12-29T23:30:00-05:00'),
    a('2024-12-30T10:00:00+01:00'), // 2025-W01, year 2024
    // DST spring forward / fall back in Berlin (hourly buckets by written wall clock)
    a('2024-03-31T01:30:00+01:00'),
    a('2024-03-31T02:15:00+01:00'),
    a('2024-03-31T03:30:00+02:00'),
    a('2024-03-31T01:45:00Z'),
    a('2024-10-27T02:30:00+02:00'),
    a('2024-10-27T02:40:00+01:00', ['daily']),
    a('2024-10-27T03:10:00+01:00'),
    // beta: leap day, New York DST, a far-future snapshot (not the `within` reference)
    b('2024-02-29T23:59:59.999999999-05:00'),
    b('2024-03-01T00:00:00-05:00'),
    b('2024-03-10T01:59:00-05:00'),
    b('2024-03-10T03:01:00-04:00'),
    b('2024-11-03T01:30:00-04:00'),
    b('2024-11-03T01:20:00-05:00', ['manual']),
    b('2099-01-01T00:00:00Z', ['daily']),
    // a host with only future snapshots: `within` reference is Go's zero time
    { time: '2098-05-05T00:00:00Z', hostname: 'gamma', paths: ['/x'] },
    { time: '2098-05-06T00:00:00+03:00', hostname: 'gamma', paths: ['/x'], tags: ['daily'] },
  ];
  // restic's order for equal instants is arbitrary: make every instant unique
  // (the hand-made edge cases first, so they survive)
  const seen = new Set<bigint>();
  const uniq: GenSnap[] = [];
  for (const s of [...edges, ...out]) {
    const t = snapshotTimeKey(s.time);
    if (seen.has(t)) continue;
    seen.add(t);
    uniq.push(s);
  }
  return uniq;
}

interface Case {
  name: string;
  args: string[];
  policy: ForgetPolicy;
  filter?: SnapshotFilter;
  groupBy?: GroupBy;
  /** TZ for restic, and localTimeZone for us; default: the ambient zone for both */
  tz?: string;
}

const d = parseDuration;
const CASES: Case[] = [
  { name: 'keep-last', args: ['--keep-last', '7'], policy: { last: 7 } },
  { name: 'daily+weekly+monthly+yearly', args: ['-d', '7', '-w', '5', '-m', '12', '-y', '3'], policy: { daily: 7, weekly: 5, monthly: 12, yearly: 3 } },
  { name: 'hourly', args: ['--keep-hourly', '30'], policy: { hourly: 30 } },
  {
    name: 'every bucket, counts larger than the history',
    args: ['--keep-hourly', '5000', '--keep-daily', '5000', '--keep-weekly', '5000', '--keep-monthly', '5000', '--keep-yearly', '5000'],
    policy: { hourly: 5000, daily: 5000, weekly: 5000, monthly: 5000, yearly: 5000 },
  },
  { name: 'keep-within 1y6m (TZ=UTC)', args: ['--keep-within', '1y6m'], policy: { within: d('1y6m') }, tz: 'UTC' },
  { name: 'keep-within 1y6m (TZ=Europe/Berlin)', args: ['--keep-within', '1y6m'], policy: { within: d('1y6m') }, tz: 'Europe/Berlin' },
  { name: 'keep-within 1y6m (TZ=America/New_York)', args: ['--keep-within', '1y6m'], policy: { within: d('1y6m') }, tz: 'America/New_York' },
  { name: 'keep-within 4m (TZ=UTC)', args: ['--keep-within', '4m'], policy: { within: d('4m') }, tz: 'UTC' },
  { name: 'keep-within 4m (TZ=Europe/Berlin)', args: ['--keep-within', '4m'], policy: { within: d('4m') }, tz: 'Europe/Berlin' },
  { name: 'keep-within-daily 3m + keep-monthly 12', args: ['--keep-within-daily', '3m', '--keep-monthly', '12'], policy: { withinDaily: d('3m'), monthly: 12 } },
  {
    name: 'all keep-within-* at once',
    args: ['--keep-within', '3d4h', '--keep-within-hourly', '2d', '--keep-within-weekly', '6m', '--keep-within-monthly', '2y', '--keep-within-yearly', '10y'],
    policy: { within: d('3d4h'), withinHourly: d('2d'), withinWeekly: d('6m'), withinMonthly: d('2y'), withinYearly: d('10y') },
    tz: 'Europe/Berlin',
  },
  { name: 'keep-tag', args: ['--keep-tag', 'important', '--keep-tag', 'daily,manual', '--keep-tag', 'manual', '--keep-last', '2'], policy: { tags: [['important'], ['daily', 'manual'], ['manual']], last: 2 } },
  { name: "keep-tag '' (untagged)", args: ['--keep-tag=', '--keep-weekly', '4'], policy: { tags: [['']], weekly: 4 } },
  { name: 'group-by host', args: ['--group-by', 'host', '--keep-daily', '10', '--keep-monthly', '6'], policy: { daily: 10, monthly: 6 }, groupBy: { host: true, paths: false, tags: false } },
  { name: 'group-by host,paths,tags', args: ['--group-by', 'host,paths,tags', '--keep-last', '3', '--keep-weekly', '8'], policy: { last: 3, weekly: 8 }, groupBy: { host: true, paths: true, tags: true } },
  { name: "group-by ''", args: ['--group-by', '', '--keep-last', '5', '--keep-yearly', '10'], policy: { last: 5, yearly: 10 }, groupBy: { host: false, paths: false, tags: false } },
  { name: 'group-by tags', args: ['--group-by', 'tags', '--keep-monthly', '4'], policy: { monthly: 4 }, groupBy: { host: false, paths: false, tags: true } },
  { name: '--host filter', args: ['--host', 'beta', '--keep-monthly', '9'], policy: { monthly: 9 }, filter: { hosts: ['beta'] } },
  { name: '--tag filter', args: ['--tag', 'daily,important', '--tag', 'manual', '--keep-last', '4', '--keep-hourly', '6'], policy: { last: 4, hourly: 6 }, filter: { tags: [['daily', 'important'], ['manual']] } },
  { name: '--path filter + --host', args: ['--path', '/data', '--host', 'beta', '--host', 'gamma', '--keep-weekly', '3'], policy: { weekly: 3 }, filter: { paths: ['/data'], hosts: ['beta', 'gamma'] } },
  { name: 'keep-yearly only', args: ['--keep-yearly', '2'], policy: { yearly: 2 } },
  { name: 'keep-yearly 100', args: ['--keep-yearly', '100'], policy: { yearly: 100 } },
  {
    name: 'mixed with 0 values',
    args: ['--keep-last', '0', '--keep-daily', '3', '--keep-weekly', '0', '--keep-within', '0d', '--keep-monthly', '2', '--keep-within-hourly', '0h'],
    policy: { last: 0, daily: 3, weekly: 0, within: d('0d'), monthly: 2, withinHourly: d('0h') },
  },
  { name: 'negative count (0.14 quirk)', args: ['--keep-last', '-1', '--keep-weekly', '5'], policy: { last: -1, weekly: 5 } },
  { name: 'only a negative count removes everything', args: ['--keep-daily', '-1'], policy: { daily: -1 } },
];

interface GroupOut {
  keep: string[];
  remove: string[];
  reasons: { matches: string[]; counters: Record<string, number> }[];
}

interopDescribe('restic', 'forget policy equals restic 0.14 forget --dry-run --json', () => {
  const PW = 'forget-pw';
  let repoDir: string;
  let snaps: SnapshotWithId[];
  let generated: GenSnap[];

  beforeAll(async () => {
    repoDir = path.join(await tmpDir('forget-policy'), 'repo');
    const repo = await Repository.init(new LocalBackend(repoDir), Buffer.from(PW), { kdf: { N: 1024, r: 8, p: 1 } });
    generated = generateHistory();
    for (const g of generated) await repo.saveSnapshot({ ...g, tree: TREE, username: 'tester' });
    snaps = await repo.listSnapshots();
  });

  it('generated a varied history', () => {
    expect(snaps.length).toBeGreaterThan(450);
    expect(snaps.length).toBeLessThan(650);
    const hosts = new Set(snaps.map((s) => s.hostname));
    expect(hosts).toEqual(new Set(['alpha', 'beta', 'gamma']));
    const offs = new Set(snaps.map((s) => /(Z|[+-]\d\d:\d\d)$/.exec(s.time)![1]));
    for (const o of ['Z', '+01:00', '+02:00', '+05:30', '-05:00', '-04:00', '+09:00']) expect(offs).toContain(o);
  });

  async function resticGroups(args: string[], tz?: string): Promise<{ map: Map<string, GroupOut>; raw: string }> {
    const r = await runRestic(['--no-lock', 'forget', '--dry-run', '--json', ...args], { repo: repoDir, password: PW, env: tz ? { TZ: tz } : {} });
    expect(r.code, r.stderr).toBe(0);
    const map = new Map<string, GroupOut>();
    if (r.stdout.trim() === '') return { map, raw: r.stdout };
    type J = { id: string };
    const groups = JSON.parse(r.stdout) as { host: string; paths: string[] | null; tags: string[] | null; keep: J[] | null; remove: J[] | null; reasons: GroupOut['reasons'] | null }[];
    for (const g of groups) {
      const k = JSON.stringify([g.host, g.paths, g.tags]);
      expect(map.has(k), `duplicate group ${k}`).toBe(false);
      map.set(k, {
        keep: (g.keep ?? []).map((s) => s.id),
        remove: (g.remove ?? []).map((s) => s.id),
        reasons: (g.reasons ?? []).map((x) => ({ matches: x.matches, counters: x.counters })),
      });
    }
    return { map, raw: r.stdout };
  }

  function ourGroups(c: Case, now: Date): Map<string, GroupOut> {
    const map = new Map<string, GroupOut>();
    const gs = forgetGroups(snaps, c.policy, { filter: c.filter, groupBy: c.groupBy, now, localTimeZone: c.tz });
    for (const g of gs) {
      const k = JSON.stringify([g.key.hostname ?? '', g.key.paths ?? null, g.key.tags ?? null]);
      map.set(k, {
        keep: g.keep.map((s) => s.id),
        remove: g.remove.map((s) => s.id),
        reasons: g.reasons.map((x) => ({ matches: x.matches, counters: x.counters })),
      });
    }
    return map;
  }

  for (const c of CASES) {
    it(c.name, async () => {
      const now = new Date();
      const { map: theirs } = await resticGroups(c.args, c.tz);
      const ours = ourGroups(c, now);
      expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
      for (const [k, g] of theirs) {
        const o = ours.get(k)!;
        expect(o.keep, `keep of ${k}`).toEqual(g.keep);
        expect(o.remove, `remove of ${k}`).toEqual(g.remove);
        expect(o.reasons, `reasons of ${k}`).toEqual(g.reasons);
      }
      // something is both kept and removed overall, except for the all-remove case
      const kept = [...ours.values()].reduce((n, g) => n + g.keep.length, 0);
      const removed = [...ours.values()].reduce((n, g) => n + g.remove.length, 0);
      expect(removed).toBeGreaterThan(0);
      if (c.name !== 'only a negative count removes everything') expect(kept).toBeGreaterThan(0);
    });
  }

  it('the TZ-dependent within cases really differ between zones', () => {
    const base = CASES.find((c) => c.name === 'keep-within 1y6m (TZ=UTC)')!;
    const keepOf = (tz: string) => new Set(forgetGroups(snaps, base.policy, { localTimeZone: tz }).flatMap((g) => g.keep.map((s) => s.time)));
    const utc = keepOf('UTC');
    const berlin = keepOf('Europe/Berlin');
    expect(utc.has('2023-12-30T10:00:00.000000001Z')).toBe(true);
    expect(berlin.has('2023-12-30T10:00:00.000000001Z')).toBe(false);
    expect(utc.has('2023-12-30T10:00:00Z')).toBe(false);
    expect(berlin.has('2023-12-30T12:00:00+01:00')).toBe(false);
    expect(berlin.has('2023-12-30T11:00:00.5Z')).toBe(true);
  });

  it('an empty policy: restic prints nothing, we keep everything', async () => {
    for (const args of [[], ['--keep-last', '0', '--keep-within', '0y']]) {
      const { raw } = await resticGroups(args);
      expect(raw.trim()).toBe('');
    }
    const gs = forgetGroups(snaps, { last: 0, within: d('0y') }, {});
    expect(gs.reduce((n, g) => n + g.keep.length, 0)).toBe(snaps.length);
    expect(gs.every((g) => g.remove.length === 0 && g.reasons.every((r) => r.matches.join() === 'policy is empty'))).toBe(true);
  });
});
