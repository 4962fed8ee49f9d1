/** the snapshot filter flags shared by find, stats and tag (restic's --host/--tag/--path) */
import type { Command } from 'commander';

export const collect = (v: string, prev: string[] = []) => [...prev, v];

export const filterFlags = (c: Command) => c
  .option('-H, --host <host>', 'only consider snapshots for this host', collect, [])
  .option('--tag <taglist>', 'only consider snapshots including tag[,tag,...]', collect, [])
  .option('--path <path>', 'only consider snapshots including this (absolute) path', collect, []);

export interface FilterFlags { host: string[]; tag: string[]; path: string[] }

/** the flags as an ops snapshot selection */
export const selection = (ids: string[], f: FilterFlags) => ({ ids, hosts: f.host, tags: f.tag, paths: f.path });
