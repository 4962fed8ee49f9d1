import { chmodSync, renameSync, writeFileSync } from 'node:fs';

/**
 * Replace `file` atomically and synchronously (usable from a process 'exit' handler): write a
 * temp file beside it with exactly `mode` (whatever the umask), then rename it over the file.
 */
export function writeFileAtomicSync(file: string, content: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}
