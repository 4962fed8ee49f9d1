/** Small synchronous helpers for atomic JSON state files. */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

let seq = 0;

/** Write `data` as JSON to `file` atomically (temp file + rename). */
export function writeJsonAtomic(file: string, data: unknown): void {
  const tmp = `${file}.tmp-${process.pid}-${++seq}`;
  writeFileSync(tmp, JSON.stringify(data));
  renameSync(tmp, file);
}

export function readJsonIfExists<T>(file: string): T | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}
