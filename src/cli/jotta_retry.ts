/**
 * How hard the Jottacloud backend retries, decided by the CLI (the library never looks at a
 * terminal). A person at a terminal wants to know within seconds that the service is not
 * answering, with a line per retry; a scheduled run (`jbackup run`, or no terminal) rides out
 * a longer outage silently (its -v log still names each retry).
 */
import type { RetryNotice } from '../backend/jottacloud/http.js';
import type { RetryPolicy } from '../backend/net.js';

/** A retry shown to a person: one line, starting at column 0 (over a live progress line). */
export function retryLine(r: RetryNotice, prefix = 'jotta'): string {
  return `${prefix}: ${r.label}: ${r.reason}; retry ${r.retry}/${r.maxRetries} in ${(r.waitMs / 1000).toFixed(1)}s`;
}

export function renderRetry(r: RetryNotice, prefix = 'jotta'): void {
  process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${retryLine(r, prefix)}\n`);
}

/** stdin and stderr on a terminal, and not the scheduler's `run`. */
export function isInteractive(command: string | undefined): boolean {
  return !!process.stdin.isTTY && !!process.stderr.isTTY && command !== 'run';
}

/**
 * Retry budget of one operation: ~4 attempts within 20 s when interactive, else the library's default
 * (10 attempts). For Jottacloud's HTTP layer (prefix `jotta`) and the rest:/rclone: retry decorator
 * (src/backend/decorators/retry.ts, prefix `backend`).
 */
export function retryPolicy(interactive: boolean, quiet = false, prefix = 'backend'): RetryPolicy {
  if (!interactive) return {};
  return { maxAttempts: 4, maxElapsedMs: 20_000, ...(quiet ? {} : { onRetry: (r: RetryNotice) => renderRetry(r, prefix) }) };
}
