/** Counts files and bytes of the backup targets (for progress totals), honouring excludes. */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Matcher } from './exclude.js';

export async function scan(targets: string[], excludes: Matcher | null | undefined, onItem: (files: number, bytes: number) => void, signal?: { stop: boolean }): Promise<void> {
  const walk = async (p: Buffer): Promise<void> => {
    if (signal?.stop) return;
    let st;
    try { st = await fsp.lstat(p); } catch { return; }
    if (excludes?.(p.toString())) return;
    if (st.isFile()) { onItem(1, st.size); return; }
    if (!st.isDirectory()) return;
    let names: Buffer[];
    try { names = await fsp.readdir(p, { encoding: 'buffer' }); } catch { return; }
    for (const n of names) await walk(Buffer.concat([p, Buffer.from('/'), n]));
  };
  for (const t of targets) await walk(Buffer.from(path.resolve(t)));
}
