/**
 * Retries with exponential backoff and jitter around any backend whose failures say whether they are
 * transient (a `TransientError`: a connection refused/reset, a timeout, HTTP 408/429/5xx). Stacked by
 * openBackend on the rest: and rclone: backends; the Jottacloud backend retries inside its HTTP layer
 * (it resumes uploads, refreshes tokens) with the same formula (src/backend/net.ts).
 *
 * Every operation of the contract is safe to repeat: load/stat/list read; save of a content-addressed
 * name stores the same bytes again (a REST server overwrites what a broken attempt left, or refuses in
 * append-only mode, which the backend turns into "already there" when the size matches); remove that
 * answers "not found" on a retry removed the file on an attempt whose answer was lost.
 */
import type { Backend, FileInfo, FileType, Handle, RemoveOptions, SaveOptions } from '../backend.js';
import { layoutPath, NotFoundError } from '../backend.js';
import { backoffDelay, type RetryNotice, type RetryPolicy, sleep } from '../net.js';
import { ForwardingBackend } from './forwarding.js';

/** A failure worth retrying (network error, retryable HTTP status). */
export class TransientError extends Error {
  override name = 'TransientError';
  constructor(message: string, readonly retryAfterMs?: number, readonly status?: number) {
    super(message);
  }
}

/** Retries ran out: the last failure, with how many attempts were made. */
export class RetriesExhaustedError extends Error {
  override name = 'RetriesExhaustedError';
  constructor(message: string, readonly attempts: number, readonly status?: number) {
    super(message);
  }
}

export interface RetryOptions extends RetryPolicy {
  /** a line per retry when no onRetry is given (the CLI passes one with -v) */
  logger?: (message: string) => void;
  /** prefix of log lines, e.g. "rest" */
  prefix?: string;
}

export class RetryBackend extends ForwardingBackend {
  readonly stats = { retries: 0 };
  private readonly maxAttempts: number;
  private readonly base: number;
  private readonly cap: number;
  private readonly maxElapsed: number;

  constructor(inner: Backend, private readonly opts: RetryOptions = {}) {
    super(inner);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 10);
    this.base = opts.baseDelayMs ?? 200;
    this.cap = opts.maxDelayMs ?? 20_000;
    this.maxElapsed = opts.maxElapsedMs ?? Infinity;
  }

  private async run<T>(label: string, f: (attempt: number) => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let n = 1; ; n++) {
      try {
        return await f(n);
      } catch (e) {
        if (!(e instanceof TransientError)) throw e;
        const wait = backoffDelay(n, this.base, this.cap, e.retryAfterMs);
        if (n >= this.maxAttempts || Date.now() - started + wait > this.maxElapsed) {
          const spent = ((Date.now() - started) / 1000).toFixed(1);
          throw new RetriesExhaustedError(`${label}: giving up after ${n} attempt${n === 1 ? '' : 's'} (${spent}s): ${e.message}`, n, e.status);
        }
        this.stats.retries++;
        const notice: RetryNotice = { label, retry: n, maxRetries: this.maxAttempts - 1, waitMs: wait, reason: e.message };
        if (this.opts.onRetry) this.opts.onRetry(notice);
        else this.opts.logger?.(`${this.opts.prefix ?? 'backend'}: retry ${n}/${this.maxAttempts - 1} of ${label} in ${(wait / 1000).toFixed(1)}s: ${e.message}`);
        await sleep(wait);
      }
    }
  }

  override create(): Promise<void> { return this.run('create', () => super.create()); }
  override save(h: Handle, data: Uint8Array | readonly Uint8Array[], opts?: SaveOptions): Promise<void> {
    return this.run(`save ${layoutPath(h)}`, () => super.save(h, data, opts));
  }
  override load(h: Handle, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    return this.run(`load ${layoutPath(h)}`, () => super.load(h, offset, length, into));
  }
  override stat(h: Handle): Promise<FileInfo> { return this.run(`stat ${layoutPath(h)}`, () => super.stat(h)); }
  override list(type: FileType): Promise<FileInfo[]> { return this.run(`list ${type}`, () => super.list(type)); }
  override remove(h: Handle, opts?: RemoveOptions): Promise<void> {
    return this.run(`remove ${layoutPath(h)}`, async (n) => {
      try {
        await super.remove(h, opts);
      } catch (e) {
        // gone on a retry: an earlier attempt removed it and its answer was lost
        if (n > 1 && e instanceof NotFoundError) return;
        throw e;
      }
    });
  }
  override verifySaved?(h: Handle, parts: readonly Uint8Array[], size: number): Promise<boolean> {
    return this.run(`verify ${layoutPath(h)}`, () => super.verifySaved!(h, parts, size));
  }
}
