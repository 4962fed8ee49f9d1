/** Terminal progress: one live line on stderr when it is a TTY (restic's style); JSON status lines with --json. */
export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(3)} ${u[i]}`;
}

export function formatDuration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const pad = (x: number) => String(x).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(r)}` : `${m}:${pad(r)}`;
}

export interface Counters {
  filesDone: number;
  bytesDone: number;
  totalFiles: number;
  totalBytes: number;
  scanDone: boolean;
  errors: number;
}

export class Progress {
  readonly c: Counters = { filesDone: 0, bytesDone: 0, totalFiles: 0, totalBytes: 0, scanDone: false, errors: 0 };
  private timer: NodeJS.Timeout | undefined;
  private started = Date.now();
  private lastLen = 0;

  constructor(private mode: 'tty' | 'json' | 'none', private intervalMs = mode === 'json' ? 1000 : 250) {}

  start(): void {
    if (this.mode === 'none') return;
    this.timer = setInterval(() => this.render(), this.intervalMs);
    this.timer.unref();
  }

  private render(): void {
    const c = this.c;
    const el = (Date.now() - this.started) / 1000;
    const rate = el > 0 ? c.bytesDone / el : 0;
    const pct = c.totalBytes > 0 ? Math.min(1, c.bytesDone / c.totalBytes) : 0;
    if (this.mode === 'json') {
      const o: Record<string, unknown> = { message_type: 'status', seconds_elapsed: Math.round(el), percent_done: pct, total_files: c.totalFiles, files_done: c.filesDone, total_bytes: c.totalBytes, bytes_done: c.bytesDone };
      if (c.scanDone && rate > 0) o['seconds_remaining'] = Math.round((c.totalBytes - c.bytesDone) / rate);
      if (c.errors) o['error_count'] = c.errors;
      process.stdout.write(`${JSON.stringify(o)}\n`);
      return;
    }
    const eta = c.scanDone && rate > 0 ? ` ETA ${formatDuration((c.totalBytes - c.bytesDone) / rate)}` : '';
    const line = `[${formatDuration(el)}] ${(pct * 100).toFixed(2)}%  ${c.filesDone} files ${formatBytes(c.bytesDone)}, total ${c.totalFiles} files ${formatBytes(c.totalBytes)}, ${formatBytes(rate)}/s${eta}${c.errors ? `, ${c.errors} errors` : ''}`;
    const cols = process.stderr.columns || 120;
    const out = line.length > cols - 1 ? line.slice(0, cols - 1) : line;
    process.stderr.write(`\r${out}${' '.repeat(Math.max(0, this.lastLen - out.length))}`);
    this.lastLen = out.length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'tty' && this.lastLen) process.stderr.write(`\r${' '.repeat(this.lastLen)}\r`);
  }
}

/**
 * A generic "N of M items, bytes of total" progress (check --read-data; usable by any command that
 * counts items and bytes against known totals): on a TTY a live stderr line
 * `[0:05] 45.00%  9 / 20 packs  12.000 MiB / 40.000 MiB  2.400 MiB/s  ETA 0:06`,
 * with --json restic-style status lines on stdout (field names given by the caller), silent otherwise.
 * finish() leaves the last line in place (TTY) or prints a final status (JSON), so even a run shorter
 * than one interval reports its totals.
 */
export interface ItemCounts { itemsDone: number; itemsTotal: number; bytesDone: number; bytesTotal: number; errors: number }

export interface ItemProgressOptions {
  /** what is counted, in the TTY line ("packs", "files") */
  unit: string;
  /** JSON field names for the item counters, e.g. { done: 'packs_done', total: 'total_packs' } */
  json: { done: string; total: string };
  intervalMs?: number;
  /** elapsed time source (tests); defaults to the wall clock */
  now?: () => number;
}

/** The TTY line for counts after `elapsedSec` (exported for tests and other renderers). */
export function itemProgressLine(c: ItemCounts, elapsedSec: number, unit: string): string {
  const pct = c.bytesTotal > 0 ? Math.min(1, c.bytesDone / c.bytesTotal) : c.itemsTotal > 0 ? Math.min(1, c.itemsDone / c.itemsTotal) : 0;
  const rate = elapsedSec > 0 ? c.bytesDone / elapsedSec : 0;
  const left = c.bytesTotal - c.bytesDone;
  const eta = left > 0 && rate > 0 ? `  ETA ${formatDuration(left / rate)}` : '';
  return `[${formatDuration(elapsedSec)}] ${(pct * 100).toFixed(2)}%  ${c.itemsDone} / ${c.itemsTotal} ${unit}  ${formatBytes(c.bytesDone)} / ${formatBytes(c.bytesTotal)}  ${formatBytes(rate)}/s${eta}${c.errors ? `  ${c.errors} errors` : ''}`;
}

/** The JSON status object for counts after `elapsedSec`. */
export function itemProgressStatus(c: ItemCounts, elapsedSec: number, names: { done: string; total: string }): Record<string, unknown> {
  const pct = c.bytesTotal > 0 ? Math.min(1, c.bytesDone / c.bytesTotal) : c.itemsTotal > 0 ? Math.min(1, c.itemsDone / c.itemsTotal) : 0;
  const rate = elapsedSec > 0 ? c.bytesDone / elapsedSec : 0;
  const o: Record<string, unknown> = { message_type: 'status', seconds_elapsed: Math.round(elapsedSec) };
  const remaining = rate > 0 ? Math.round((c.bytesTotal - c.bytesDone) / rate) : 0;
  if (remaining > 0) o['seconds_remaining'] = remaining; // omitted when 0, as restic's omitempty
  Object.assign(o, { percent_done: pct, [names.total]: c.itemsTotal, [names.done]: c.itemsDone, total_bytes: c.bytesTotal, bytes_done: c.bytesDone });
  if (c.errors) o['error_count'] = c.errors;
  return o;
}

export class ItemProgress {
  readonly c: ItemCounts = { itemsDone: 0, itemsTotal: 0, bytesDone: 0, bytesTotal: 0, errors: 0 };
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly started: number;
  private lastLen = 0;

  constructor(private mode: 'tty' | 'json' | 'none', private o: ItemProgressOptions) {
    this.now = o.now ?? Date.now;
    this.started = this.now();
  }

  start(): void {
    if (this.mode === 'none' || this.timer) return;
    this.timer = setInterval(() => this.render(), this.o.intervalMs ?? (this.mode === 'json' ? 1000 : 250));
    this.timer.unref();
  }

  private render(): void {
    const el = (this.now() - this.started) / 1000;
    if (this.mode === 'json') { process.stdout.write(`${JSON.stringify(itemProgressStatus(this.c, el, this.o.json))}\n`); return; }
    if (this.mode !== 'tty') return;
    const line = itemProgressLine(this.c, el, this.o.unit);
    const cols = process.stderr.columns || 120;
    const out = line.length > cols - 1 ? line.slice(0, cols - 1) : line;
    process.stderr.write(`\r${out}${' '.repeat(Math.max(0, this.lastLen - out.length))}`);
    this.lastLen = out.length;
  }

  /** stop the timer and print the final state (a TTY line stays, ended by a newline) */
  finish(): void {
    if (this.mode === 'none') return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.render();
    if (this.mode === 'tty') { process.stderr.write('\n'); this.lastLen = 0; }
  }

  /** stop without a final line (an error ends the command) */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'tty' && this.lastLen) { process.stderr.write(`\r${' '.repeat(this.lastLen)}\r`); this.lastLen = 0; }
  }
}
