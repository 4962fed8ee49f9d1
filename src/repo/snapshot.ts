/** Snapshot files (restic's JSON, fields in Go struct order, zero values omitted as Go does). */
import { ID_RE } from '../util/ids.js';

export interface Snapshot {
  time: string;
  parent?: string;
  tree: string;
  paths: string[];
  hostname?: string;
  username?: string;
  uid?: number;
  gid?: number;
  excludes?: string[];
  tags?: string[];
  original?: string;
  program_version?: string;
  /** anything else a newer restic or rustic wrote; kept when re-encoding */
  [extra: string]: unknown;
}

export interface SnapshotWithId extends Snapshot {
  id: string;
}

const ORDER = ['time', 'parent', 'tree', 'paths', 'hostname', 'username', 'uid', 'gid', 'excludes', 'tags', 'original', 'program_version'];

export function encodeSnapshot(s: Snapshot): Buffer {
  const o: Record<string, unknown> = {};
  for (const k of ORDER) {
    const v = s[k];
    if (v === undefined || v === null || v === '' || (k !== 'paths' && Array.isArray(v) && v.length === 0)) continue;
    if ((k === 'uid' || k === 'gid') && v === 0) continue;
    o[k] = v;
  }
  for (const [k, v] of Object.entries(s)) if (!ORDER.includes(k) && k !== 'id' && v !== undefined) o[k] = v;
  return Buffer.from(JSON.stringify(o));
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  let j: Snapshot;
  try {
    j = JSON.parse(Buffer.from(b).toString('utf8')) as Snapshot;
  } catch (e) {
    throw new Error(`invalid snapshot JSON: ${(e as Error).message}`);
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('snapshot is not a JSON object');
  if (typeof j.tree !== 'string' || !ID_RE.test(j.tree)) throw new Error('snapshot has no valid tree id');
  if (typeof j.time !== 'string' || Number.isNaN(Date.parse(j.time))) throw new Error('snapshot has no valid time');
  if (j.paths != null && (!Array.isArray(j.paths) || j.paths.some((x) => typeof x !== 'string'))) throw new Error('snapshot has invalid paths');
  j.paths ??= [];
  return j;
}

/** ns since epoch of an RFC 3339 time, for ordering */
export function snapshotTimeKey(t: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return BigInt(Date.parse(t)) * 1_000_000n;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}

export function sortSnapshots<T extends Snapshot>(l: T[]): T[] {
  return l.sort((a, b) => {
    const x = snapshotTimeKey(a.time);
    const y = snapshotTimeKey(b.time);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}
