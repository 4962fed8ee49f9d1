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
