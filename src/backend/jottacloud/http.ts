/**
 * HTTP plumbing for the Jottacloud backend: an undici Agent that honours NODE_EXTRA_CA_CERTS,
 * a connection limit, bandwidth pacing of each request's body (the shared limiters of
 * src/util/limiter.ts, given by openBackend), and retries with exponential
 * backoff + full jitter on 429/5xx/connection errors, honouring Retry-After.
 */
import { Readable } from 'node:stream';
import type { Agent } from 'undici';
import type { IncomingHttpHeaders } from 'undici/types/header.js';
import { JottaError, JottaHttpError } from './errors.js';
import { RateLimiter, Semaphore } from '../../util/limiter.js';
import {
  backoffDelay, BodySink, USER_AGENT, isNetworkError, loadUndici, makeAgent as netMakeAgent, RETRY_STATUSES, type RetryNotice, sleep,
  tlsHint as netTlsHint,
} from '../net.js';

// shared with every HTTP backend (src/backend/net.ts); re-exported for this backend's modules and tests
export { isNetworkError, parseRetryAfter, RETRY_STATUSES, sleep, type RetryNotice } from '../net.js';

export type Logger = (message: string) => void;


export async function makeAgent(extraCa?: string | string[], connectTimeoutMs = 30_000): Promise<Agent> {
  try {
    return await netMakeAgent({ ca: extraCa, connectTimeoutMs });
  } catch (e) {
    throw new JottaError((e as Error).message); // an unreadable NODE_EXTRA_CA_CERTS
  }
}

export interface HttpOptions {
  /** concurrent requests (default 4) */
  connections?: number;
  /**
   * bandwidth limiters (src/util/limiter.ts) that pace request and response bodies chunk by chunk;
   * openBackend passes the ones of the backend's limits (shared by every connection)
   */
  pace?: { up?: RateLimiter; down?: RateLimiter };
  /** extra trusted CA certificate(s), PEM */
  ca?: string | string[];
  logger?: Logger;
  /** attempts for retryable failures (default 10) */
  maxAttempts?: number;
  /** first backoff delay in ms (default 200), cap (default 20 s) */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /**
   * Give up retrying one operation once this much time has passed since its first attempt
   * (default: no limit, only maxAttempts). An interactive command wants seconds, a scheduled
   * run minutes: the caller decides, this library never looks at a terminal.
   */
  maxElapsedMs?: number;
  /** time allowed to open a connection (default 30 s) */
  connectTimeoutMs?: number;
  /**
   * Called before each retry wait (instead of the logger's "jotta: retry" line), so that a
   * caller can show one line per retry to a person.
   */
  onRetry?: (r: RetryNotice) => void;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  url: string;
  headers?: Record<string, string>;
  /** a buffer, or parts sent in order (with their total as Content-Length) */
  body?: string | Uint8Array | readonly Uint8Array[];
  /** bypass the connection limit (token endpoint calls made while holding a slot) */
  unlimited?: boolean;
  /** a short label for log lines, e.g. "GET data/ab/ab12…" */
  label?: string;
  /** read the response body into this buffer when it fits (the body is then a view of it) */
  into?: Buffer;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A failure worth retrying: a retryable HTTP status or a network error. */
export class RetryableError extends Error {
  override name = 'RetryableError';
  constructor(message: string, readonly retryAfterMs?: number, readonly status?: number, readonly cause2?: unknown) {
    super(message);
  }
}

export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function tlsHint(e: unknown): string | null {
  return netTlsHint(e, 'the Jottacloud server');
}

export class Http {
  private agentP: Promise<Agent> | null = null;
  private readonly ca: string | string[] | undefined;
  readonly limit: Semaphore;
  readonly up?: RateLimiter;
  readonly down?: RateLimiter;
  readonly logger?: Logger;
  readonly maxAttempts: number;
  private baseDelay: number;
  private maxDelay: number;
  readonly maxElapsedMs: number;
  private connectTimeoutMs: number;
  private onRetry?: (r: RetryNotice) => void;
  /** counters for tests and -v summaries */
  readonly stats = { requests: 0, retries: 0, resumes: 0, refreshes: 0, bytesUp: 0, bytesDown: 0 };

  constructor(opts: HttpOptions = {}) {
    this.ca = opts.ca;
    this.limit = new Semaphore(Math.max(1, opts.connections ?? 4));
    if (opts.pace?.up) this.up = opts.pace.up;
    if (opts.pace?.down) this.down = opts.pace.down;
    if (opts.logger) this.logger = opts.logger;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 10);
    this.baseDelay = opts.baseDelayMs ?? 200;
    this.maxDelay = opts.maxDelayMs ?? 20_000;
    this.maxElapsedMs = opts.maxElapsedMs ?? Infinity;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 30_000;
    if (opts.onRetry) this.onRetry = opts.onRetry;
  }

  /**
   * Whether a retry that waits `wait` ms is still within the budget of an operation that started
   * at `started` and has made `attempt` attempts (of at most `max`).
   */
  mayRetry(attempt: number, max: number, started: number, wait: number): boolean {
    return attempt < max && Date.now() - started + wait <= this.maxElapsedMs;
  }

  /** Announce a retry: through onRetry when the caller gave one, else as a log line. */
  noticeRetry(n: RetryNotice, logLine: string): void {
    this.stats.retries++;
    if (this.onRetry) this.onRetry(n);
    else this.log(logLine);
  }

  log(msg: string): void {
    this.logger?.(msg);
  }

  /** Delay before retry number `attempt` (1-based): full jitter over an exponential window, at least Retry-After. */
  backoff(attempt: number, retryAfterMs?: number): number {
    return backoffDelay(attempt, this.baseDelay, this.maxDelay, retryAfterMs);
  }

  /**
   * One attempt: send the request (holding a connection slot) and read the whole body.
   * Network errors become RetryableError; every HTTP status is returned to the caller.
   */
  async once(req: HttpRequest): Promise<HttpResponse> {
    const release = req.unlimited ? () => {} : await this.limit.acquire();
    try {
      this.stats.requests++;
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(req.headers ?? {}) };
      let body: string | Uint8Array | Readable | undefined;
      if (req.body !== undefined) {
        if (typeof req.body === 'string') {
          body = req.body;
        } else {
          const parts: readonly Uint8Array[] = req.body instanceof Uint8Array ? [req.body] : req.body;
          let len = 0;
          for (const p of parts) len += p.length;
          headers['content-length'] = String(len);
          if (!this.up && parts.length === 1) body = parts[0]!;
          else body = Readable.from(this.throttled(parts), { objectMode: false });
          this.stats.bytesUp += len;
        }
      }
      let res;
      try {
        const [{ request: undiciRequest }, agent] = await Promise.all([loadUndici(), this.agent()]);
        res = await undiciRequest(req.url, { method: req.method, headers, ...(body !== undefined ? { body } : {}), dispatcher: agent });
      } catch (e) {
        const hint = tlsHint(e);
        if (hint) throw new JottaError(hint);
        if (isNetworkError(e)) throw new RetryableError(`${(e as Error).message}${(e as NodeJS.ErrnoException).code ? ` (${(e as NodeJS.ErrnoException).code})` : ''}`, undefined, undefined, e);
        throw e;
      }
      // the body goes into req.into while it fits (restore's recycled read buffers), else into chunks
      const sink = new BodySink(req.into);
      try {
        for await (const c of res.body) {
          const b = c as Buffer;
          if (this.down) await this.down.take(b.length);
          sink.push(b);
          this.stats.bytesDown += b.length;
        }
      } catch (e) {
        if (isNetworkError(e)) throw new RetryableError(`connection broke while reading the response: ${(e as Error).message}`, undefined, undefined, e);
        throw e;
      }
      return { status: res.statusCode, headers: res.headers, body: sink.result() };
    } finally {
      release();
    }
  }

  private async *throttled(parts: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
    const step = 64 * 1024;
    for (const p of parts) {
      for (let off = 0; off < p.length; off += step) {
        const c = p.subarray(off, Math.min(p.length, off + step));
        if (this.up) await this.up.take(c.length);
        yield c;
      }
    }
  }

  /**
   * Run `attempt` until it succeeds, retrying RetryableErrors (and JottaHttpErrors with a
   * retryable status) with backoff; logs each retry.
   */
  async retry<T>(label: string, attempt: (n: number) => Promise<T>, maxAttempts = this.maxAttempts): Promise<T> {
    const started = Date.now();
    for (let n = 1; ; n++) {
      try {
        return await attempt(n);
      } catch (e) {
        let retryAfter: number | undefined;
        let why: string;
        if (e instanceof RetryableError) {
          retryAfter = e.retryAfterMs;
          why = e.message;
        } else if (e instanceof JottaHttpError && e.status !== undefined && RETRY_STATUSES.has(e.status)) {
          retryAfter = e.retryAfterMs;
          why = e.message;
        } else {
          throw e;
        }
        const wait = this.backoff(n, retryAfter);
        if (!this.mayRetry(n, maxAttempts, started, wait)) {
          const status = e instanceof JottaHttpError || e instanceof RetryableError ? (e as { status?: number }).status : undefined;
          throw new JottaError(`${label}: giving up after ${n} attempt${n === 1 ? '' : 's'}${n < maxAttempts ? ` (${((Date.now() - started) / 1000).toFixed(1)}s)` : ''}: ${why}`, status, e instanceof RetryableError && !status ? 'network' : undefined);
        }
        this.noticeRetry({ label, retry: n, maxRetries: maxAttempts - 1, waitMs: wait, reason: why },
          `jotta: retry ${n}/${maxAttempts - 1} of ${label} in ${(wait / 1000).toFixed(1)}s: ${why}`);
        await sleep(wait);
      }
    }
  }

  private agent(): Promise<Agent> {
    return (this.agentP ??= makeAgent(this.ca, this.connectTimeoutMs));
  }

  async close(): Promise<void> {
    if (this.agentP) await (await this.agentP).close().catch(() => {});
  }
}
