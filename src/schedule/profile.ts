/**
 * Backup profiles: a human-edited TOML file (`profiles.toml` in the config dir) with one
 * `[profiles.NAME]` table per profile. Parsing is strict: unknown keys and wrong types are errors that
 * name the profile and the key, so a typo never silently changes what a nightly job does.
 */
import { existsSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { parseDuration, parseGroupBy, parseTagList, policyIsEmpty, type ForgetPolicy, type GroupBy } from '../maintenance/forget.js';
import { parseMaxUnused, type MaxUnused } from '../maintenance/prune.js';
import { parseSubset, type ReadDataSubset } from '../maintenance/check.js';
import { parseCompression, type CompressionMode } from '../repo/zstd.js';
import { parseTimeSpan } from './calendar.js';
import { expandHome } from '../util/paths.js';
import { profilesFile } from './paths.js';
import { mkdirpSync } from '../util/mkdirp.js';

export class ProfileError extends Error {
  override name = 'ProfileError';
}

export const PROFILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const KEYRING_SERVICE = 'jbackup';

export type PasswordSource =
  | { kind: 'file'; path: string }
  | { kind: 'command'; command: string }
  | { kind: 'keyring'; service: string; account: string };

/** how often a maintenance step runs: on every run, never, or when this long has passed since it last succeeded */
export type Cadence = { kind: 'always' } | { kind: 'never' } | { kind: 'every'; ms: number; text: string };

export interface Profile {
  name: string;
  repository: string;
  password: PasswordSource | null;
  sources: string[];
  excludes: string[];
  iexcludes: string[];
  excludeFiles: string[];
  iexcludeFiles: string[];
  excludeLargerThan?: number;
  oneFileSystem: boolean;
  tags: string[];
  host: string;
  compression: CompressionMode;
  /** bytes */
  packSize?: number;
  /** keep retrying a locked repository this long (ms) */
  retryLockMs: number;
  retention: { policy: ForgetPolicy; groupBy: GroupBy } | null;
  prune: { every: Cadence; maxUnused: MaxUnused; maxRepackSize?: number; repackUncompressed: boolean; repackSmall: boolean };
  check: { every: Cadence; readData: ReadDataSubset | null; readDataText: string | null };
  schedule: { calendars: string[]; randomizedDelay: string | null; persistent: boolean; labelPrefix: string } | null;
  /** bytes per second; connections = concurrent backend requests */
  limits: { upload?: number; download?: number; connections?: number };
  hooks: { before?: string; after?: string; onFailure?: string; timeoutMs: number };
}

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function parseSizeStr(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`invalid size "${s}"`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.floor(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

export function parseCadence(s: string): Cadence {
  const t = s.trim().toLowerCase();
  if (t === 'always') return { kind: 'always' };
  if (t === 'never') return { kind: 'never' };
  const named: Record<string, number> = { hourly: 3600, daily: 86400, weekly: 7 * 86400, monthly: 30 * 86400 };
  const sec = named[t] ?? parseTimeSpan(t);
  if (!(sec > 0)) throw new Error(`invalid cadence "${s}"`);
  return { kind: 'every', ms: sec * 1000, text: s.trim() };
}

/** due when it never succeeded, or when the interval has passed (less 5%, at most 6 h: timers drift and add random delays) */
export function isDue(c: Cadence, lastSuccess: string | undefined, now = new Date()): boolean {
  if (c.kind === 'always') return true;
  if (c.kind === 'never') return false;
  if (!lastSuccess) return true;
  const last = Date.parse(lastSuccess);
  if (Number.isNaN(last)) return true;
  const tolerance = Math.min(c.ms * 0.05, 6 * 3600 * 1000);
  return now.getTime() - last >= c.ms - tolerance;
}

/** a reader for one table that records which keys were used and reports the rest as unknown */
class Reader {
  private used = new Set<string>();
  constructor(private t: Table, private where: string) {}
  private fail(key: string, what: string): never {
    throw new ProfileError(`${this.where}: "${key}" ${what}`);
  }
  raw(k: string): unknown { this.used.add(k); return this.t[k]; }
  str(k: string): string | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') this.fail(k, 'must be a string');
    return v;
  }
  reqStr(k: string): string {
    const v = this.str(k);
    if (v === undefined || v.trim() === '') this.fail(k, 'is required');
    return v;
  }
  bool(k: string): boolean | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(k, 'must be true or false');
    return v;
  }
  int(k: string): number | undefined {
    const v = this.raw(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(k, 'must be an integer');
    return v;
  }
  strList(k: string): string[] {
    const v = this.raw(k);
    if (v === undefined) return [];
    if (typeof v === 'string') return [v];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) this.fail(k, 'must be a string or a list of strings');
    return v as string[];
  }
  table(k: string): Reader | null {
    const v = this.raw(k);
    if (v === undefined) return null;
    if (!isTable(v)) this.fail(k, 'must be a table');
    return new Reader(v, `${this.where}.${k}`);
  }
  /** wrap a value parser so its error names the key */
  conv<T>(k: string, v: string | undefined, f: (s: string) => T): T | undefined {
    if (v === undefined) return undefined;
    try { return f(v); } catch (e) { this.fail(k, `is invalid: ${(e as Error).message}`); }
  }
  done(): void {
    const unknown = Object.keys(this.t).filter((k) => !this.used.has(k));
    if (unknown.length) throw new ProfileError(`${this.where}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`);
  }
}

/** absolute or ~ paths only (a scheduled job has no meaningful working directory) */
function absPath(p: string, what: string, where: string): string {
  const e = expandHome(p);
  if (!path.isAbsolute(e)) throw new ProfileError(`${where}: ${what} "${p}" must be an absolute path or start with ~/`);
  return path.normalize(e);
}

/** files next to the profiles file may be named relative to it */
function filePath(p: string, base: string): string {
  return path.resolve(base, expandHome(p));
}

/** `scheme:…` or `scheme@account:…` (e.g. jotta:, jotta@work:) — anything but a local path */
export const REMOTE_LOCATION_RE = /^[a-z][a-z0-9+.-]*(?:@[^:/]+)?:/;

function repositoryLocation(r: string, where: string): string {
  if (REMOTE_LOCATION_RE.test(r) && !r.startsWith('local:')) return r;
  const p = r.startsWith('local:') ? r.slice(6) : r;
  return absPath(p, 'repository', where);
}

function parseRate(v: unknown, key: string, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number' && v > 0) return Math.floor(v * 1024);
  if (typeof v === 'string') {
    try {
      const n = parseSizeStr(v.replace(/\/s$/i, ''));
      if (n > 0) return n;
    } catch { /* below */ }
  }
  throw new ProfileError(`${where}: "${key}" must be a number of KiB/s (as restic's --limit-${key}) or a size per second like "2M"`);
}

export function parseProfile(name: string, t: Table, baseDir: string): Profile {
  const where = `profile "${name}"`;
  if (!PROFILE_NAME_RE.test(name)) throw new ProfileError(`${where}: invalid name (letters, digits, "_", "-", "." only; at most 64 characters)`);
  const r = new Reader(t, where);

  const repository = repositoryLocation(r.reqStr('repository'), where);
  const pwFile = r.str('password-file');
  const pwCmd = r.str('password-command');
  const pwKeyring = r.raw('password-keyring');
  const sources = [pwFile !== undefined, pwCmd !== undefined, pwKeyring !== undefined && pwKeyring !== false].filter(Boolean).length;
  if (sources > 1) throw new ProfileError(`${where}: give only one of password-file, password-command, password-keyring`);
  let password: PasswordSource | null = null;
  if (pwFile !== undefined) password = { kind: 'file', path: filePath(pwFile, baseDir) };
  else if (pwCmd !== undefined) {
    if (pwCmd.trim() === '') throw new ProfileError(`${where}: "password-command" is empty`);
    password = { kind: 'command', command: pwCmd };
  } else if (pwKeyring === true) password = { kind: 'keyring', service: KEYRING_SERVICE, account: name };
  else if (typeof pwKeyring === 'string' && pwKeyring !== '') password = { kind: 'keyring', service: KEYRING_SERVICE, account: pwKeyring };
  else if (pwKeyring !== undefined && pwKeyring !== false) throw new ProfileError(`${where}: "password-keyring" must be true or an account name`);

  const srcs = r.strList('sources');
  if (srcs.length === 0) throw new ProfileError(`${where}: "sources" is required (a list of absolute paths to back up)`);
  const excludeLargerThan = r.conv('exclude-larger-than', r.str('exclude-larger-than'), parseSizeStr);
  const packSizeMiB = r.int('pack-size');
  if (packSizeMiB !== undefined && (packSizeMiB < 4 || packSizeMiB > 128)) throw new ProfileError(`${where}: "pack-size" must be between 4 and 128 (MiB)`);

  const profile: Profile = {
    name,
    repository,
    password,
    sources: srcs.map((s) => absPath(s, 'source', where)),
    excludes: r.strList('excludes').map(expandHome),
    iexcludes: r.strList('iexcludes').map(expandHome),
    excludeFiles: r.strList('exclude-files').map((f) => filePath(f, baseDir)),
    iexcludeFiles: r.strList('iexclude-files').map((f) => filePath(f, baseDir)),
    excludeLargerThan,
    oneFileSystem: r.bool('one-file-system') ?? false,
    tags: r.strList('tags').flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean),
    host: r.str('host') ?? hostname(),
    compression: r.conv('compression', r.str('compression'), parseCompression) ?? 'auto',
    packSize: packSizeMiB !== undefined ? packSizeMiB * 1024 * 1024 : undefined,
    retryLockMs: (r.conv('retry-lock', r.str('retry-lock'), parseTimeSpan) ?? 0) * 1000,
    retention: null,
    prune: { every: { kind: 'never' }, maxUnused: { kind: 'percent', p: 5 }, repackUncompressed: false, repackSmall: false },
    check: { every: { kind: 'never' }, readData: null, readDataText: null },
    schedule: null,
    limits: {},
    hooks: { timeoutMs: 3600 * 1000 },
  };

  const ret = r.table('retention');
  if (ret) {
    const cnt = (k: string) => ret.int(k);
    const dur = (k: string) => ret.conv(k, ret.str(k), parseDuration);
    const policy: ForgetPolicy = {
      last: cnt('keep-last'), hourly: cnt('keep-hourly'), daily: cnt('keep-daily'), weekly: cnt('keep-weekly'),
      monthly: cnt('keep-monthly'), yearly: cnt('keep-yearly'),
      within: dur('keep-within'), withinHourly: dur('keep-within-hourly'), withinDaily: dur('keep-within-daily'),
      withinWeekly: dur('keep-within-weekly'), withinMonthly: dur('keep-within-monthly'), withinYearly: dur('keep-within-yearly'),
      tags: ret.strList('keep-tag').map(parseTagList),
    };
    const groupBy = ret.conv('group-by', ret.str('group-by'), parseGroupBy) ?? { host: true, paths: true, tags: false };
    ret.done();
    if (!policyIsEmpty(policy)) profile.retention = { policy, groupBy };
  }

  const pr = r.table('prune');
  if (pr) {
    profile.prune.every = pr.conv('every', pr.str('every'), parseCadence) ?? { kind: 'always' };
    profile.prune.maxUnused = pr.conv('max-unused', pr.str('max-unused'), parseMaxUnused) ?? profile.prune.maxUnused;
    profile.prune.maxRepackSize = pr.conv('max-repack-size', pr.str('max-repack-size'), parseSizeStr);
    profile.prune.repackUncompressed = pr.bool('repack-uncompressed') ?? false;
    profile.prune.repackSmall = pr.bool('repack-small') ?? false;
    pr.done();
  }

  const ck = r.table('check');
  if (ck) {
    profile.check.every = ck.conv('every', ck.str('every'), parseCadence) ?? { kind: 'always' };
    const readData = ck.bool('read-data');
    const subset = ck.str('read-data-subset');
    if (readData && subset !== undefined) throw new ProfileError(`${where}.check: give only one of read-data, read-data-subset`);
    if (readData) { profile.check.readData = { kind: 'all' }; profile.check.readDataText = 'all'; }
    if (subset !== undefined) { profile.check.readData = ck.conv('read-data-subset', subset, parseSubset) ?? null; profile.check.readDataText = subset; }
    ck.done();
  }

  const schedRaw = r.raw('schedule');
  if (schedRaw !== undefined) {
    let calendars: string[];
    let randomizedDelay: string | null = null;
    let persistent = true;
    let labelPrefix = 'local';
    if (typeof schedRaw === 'string' || Array.isArray(schedRaw)) {
      calendars = new Reader({ schedule: schedRaw }, where).strList('schedule');
    } else if (isTable(schedRaw)) {
      const s = new Reader(schedRaw, `${where}.schedule`);
      calendars = s.strList('on-calendar');
      const rd = s.raw('randomized-delay');
      if (typeof rd === 'number') randomizedDelay = `${rd}s`;
      else if (typeof rd === 'string') randomizedDelay = rd.trim();
      else if (rd !== undefined) throw new ProfileError(`${where}.schedule: "randomized-delay" must be a time span like "15m"`);
      if (randomizedDelay !== null) s.conv('randomized-delay', randomizedDelay, parseTimeSpan);
      persistent = s.bool('persistent') ?? true;
      labelPrefix = s.str('label-prefix') ?? labelPrefix;
      if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(labelPrefix)) throw new ProfileError(`${where}.schedule: "label-prefix" must be a reverse-DNS prefix like "com.example"`);
      s.done();
    } else {
      throw new ProfileError(`${where}: "schedule" must be a calendar expression, a list of them, or a table`);
    }
    calendars = calendars.map((c) => c.trim());
    if (calendars.length === 0 || calendars.some((c) => c === '')) throw new ProfileError(`${where}: schedule needs at least one calendar expression ("on-calendar")`);
    for (const c of calendars) if (/[\n\r]/.test(c)) throw new ProfileError(`${where}: calendar expression must be one line`);
    profile.schedule = { calendars, randomizedDelay, persistent, labelPrefix };
  }

  const lim = r.table('limits');
  if (lim) {
    profile.limits.upload = parseRate(lim.raw('upload'), 'upload', `${where}.limits`);
    profile.limits.download = parseRate(lim.raw('download'), 'download', `${where}.limits`);
    const c = lim.int('connections');
    if (c !== undefined && c < 1) throw new ProfileError(`${where}.limits: "connections" must be at least 1`);
    profile.limits.connections = c;
    lim.done();
  }

  const hk = r.table('hooks');
  if (hk) {
    profile.hooks.before = hk.str('before');
    profile.hooks.after = hk.str('after');
    profile.hooks.onFailure = hk.str('on-failure');
    profile.hooks.timeoutMs = (hk.conv('timeout', hk.str('timeout'), parseTimeSpan) ?? 3600) * 1000;
    hk.done();
  }
  r.done();
  return profile;
}

export interface ProfilesFile {
  path: string;
  exists: boolean;
  /** raw tables by profile name */
  raw: Map<string, Table>;
}

export function readProfilesFile(file = profilesFile()): ProfilesFile {
  if (!existsSync(file)) return { path: file, exists: false, raw: new Map() };
  const text = readFileSync(file, 'utf8');
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (e) {
    // smol-toml's first line says only "Invalid TOML document: …": the place is in line/column
    const msg = e instanceof TomlError ? `line ${e.line}, column ${e.column}: ${e.message.split('\n')[0]}; fix the file and run again` : (e as Error).message;
    throw new ProfileError(`${file}: ${msg}`);
  }
  const raw = new Map<string, Table>();
  for (const [k, v] of Object.entries(doc)) {
    if (k !== 'profiles') throw new ProfileError(`${file}: unknown top-level key "${k}" (profiles are tables named [profiles.NAME])`);
    if (!isTable(v)) throw new ProfileError(`${file}: "profiles" must be a table of [profiles.NAME] tables`);
    for (const [name, t] of Object.entries(v)) {
      if (!isTable(t)) throw new ProfileError(`${file}: profiles.${name} must be a table`);
      raw.set(name, t);
    }
  }
  return { path: file, exists: true, raw };
}

export function loadProfile(name: string, file = profilesFile()): Profile {
  const f = readProfilesFile(file);
  if (!f.exists) throw new ProfileError(`no profiles file at ${file} (create one with "jbackup profile init ${name}")`);
  const t = f.raw.get(name);
  if (!t) {
    const known = [...f.raw.keys()];
    throw new ProfileError(`no profile "${name}" in ${file}${known.length ? ` (profiles: ${known.join(', ')})` : ''}`);
  }
  return parseProfile(name, t, path.dirname(file));
}

const q = (s: string) => JSON.stringify(s);

/** a commented example profile, valid TOML, ready to edit */
export function exampleProfile(name: string, o: { repository?: string; sources?: string[]; passwordFile?: string } = {}): string {
  const repo = o.repository ?? '/mnt/backup/jbackup';
  const sources = o.sources?.length ? o.sources : ['~/Documents', '~/Pictures'];
  const pwFile = o.passwordFile ?? `${name}.password`;
  return `
# ---------------------------------------------------------------------------
# Profile "${name}": run it with \`jbackup run ${name}\`, schedule it with
# \`jbackup schedule install ${name}\`. Paths are absolute or start with ~/;
# password and exclude files may be relative to this file's directory.
[profiles.${name}]
repository = ${q(repo)}

# The password, for unattended runs. Exactly one of:
#   password-file     a file readable by you only (chmod 600), holding the password
#   password-command  a command that prints the password (e.g. "pass show backup/${name}")
#   password-keyring  true: the OS keyring (macOS Keychain, Linux Secret Service), service
#                     "jbackup", account "${name}"; store it with \`jbackup profile set-password ${name}\`
# Units and plists never contain the password; they only name this profile.
password-file = ${q(pwFile)}
# password-command = "pass show backup/${name}"
# password-keyring = true

sources = [${sources.map(q).join(', ')}]
excludes = ["*.tmp", "**/node_modules", "**/.cache"]  # restic --exclude patterns
# iexcludes = ["*.DS_Store"]                          # case-insensitive patterns
# exclude-files = ["${name}.excludes"]                # files of patterns, one a line
# exclude-larger-than = "2G"
# one-file-system = true
tags = ["scheduled"]
# host = "my-laptop"          # default: this machine's host name
compression = "auto"          # auto | off | max
# pack-size = 16              # MiB, 4..128
# retry-lock = "10m"          # wait this long for a repository locked by someone else

# When to run (systemd calendar syntax: "hourly", "daily", "03:30",
# "Mon..Fri 19:00", "Sat *-*-* 10:00", or a list of them).
[profiles.${name}.schedule]
on-calendar = "03:30"
randomized-delay = "15m"      # systemd only: spread start times
# persistent = true           # systemd: catch up on a run missed while the machine was off
# label-prefix = "local"      # launchd label: <label-prefix>.jbackup.${name}

# Retention: restic's forget --keep-* flags, applied after every snapshot to this
# profile's snapshots (this host, these sources). Omit the table to keep everything.
[profiles.${name}.retention]
keep-daily = 7
keep-weekly = 4
keep-monthly = 12
# keep-last = 3
# keep-yearly = 3
# keep-within = "1m15d"
# keep-tag = ["keep"]
# group-by = "host,paths"

# Prune (remove unreferenced data) when due: always | never | daily | weekly | monthly | "3d" ...
[profiles.${name}.prune]
every = "weekly"
max-unused = "5%"
# max-repack-size = "2G"
# repack-uncompressed = false

# Check the repository when due; read-data-subset also reads part of the data each time.
[profiles.${name}.check]
every = "weekly"
read-data-subset = "5%"       # or "1/10", "500M"; read-data = true reads everything

# Bandwidth and connection limits for the storage backend.
# [profiles.${name}.limits]
# upload = 2048               # KiB/s (restic's --limit-upload), or a string like "2M"
# download = "8M"
# connections = 2

# Commands run by /bin/sh. Environment: JBACKUP_PROFILE, JBACKUP_HOOK, JBACKUP_STATUS_FILE;
# "after" also gets JBACKUP_SNAPSHOT_ID; "on-failure" gets JBACKUP_ERROR and JBACKUP_EXIT_CODE
# (and the error on standard input). A failing "before" or "after" fails the run.
# [profiles.${name}.hooks]
# before = "mountpoint -q /mnt/backup"
# after = "curl -fsS -m 10 https://hc-ping.com/your-uuid"
# on-failure = "notify-send 'jbackup ${name} failed' \\"$JBACKUP_ERROR\\""
# timeout = "30m"
`;
}

export const PROFILES_HEADER = `# jbackup profiles — one [profiles.NAME] table per profile.
# Documented in the README ("Scheduled backups"); add a profile with \`jbackup profile init NAME\`,
# check one with \`jbackup profile check NAME\`.
`;

/** append an example profile to the profiles file (created 0600 if missing); refuses an existing name */
export function initProfile(name: string, o: Parameters<typeof exampleProfile>[1] = {}, file = profilesFile()): string {
  if (!PROFILE_NAME_RE.test(name)) throw new ProfileError(`invalid profile name "${name}" (letters, digits, "_", "-", "." only)`);
  const f = readProfilesFile(file);
  if (f.raw.has(name)) throw new ProfileError(`profile "${name}" already exists in ${file}`);
  const text = exampleProfile(name, o);
  // the example must parse as written
  parseProfile(name, ((parseToml(text) as Table)['profiles'] as Table)[name] as Table, path.dirname(file));
  if (!f.exists) {
    mkdirpSync(path.dirname(file), 0o700);
    writeFileSync(file, PROFILES_HEADER + text, { mode: 0o600, flag: 'wx' });
  } else {
    const cur = readFileSync(file, 'utf8');
    appendFileSync(file, (cur.endsWith('\n') || cur === '' ? '' : '\n') + text);
  }
  return file;
}

/** a JSON-friendly view of a profile (for `profile show`) */
export function describeProfile(p: Profile): Record<string, unknown> {
  return {
    ...p,
    prune: { ...p.prune },
    check: { every: p.check.every, readData: p.check.readDataText },
  };
}

