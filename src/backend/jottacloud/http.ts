/**
 * HTTP plumbing for the Jottacloud backend: an undici Agent that honours NODE_EXTRA_CA_CERTS,
 * a connection limit, bandwidth pacing of each request's body (the shared limiters of
 * src/util/limiter.ts, given by openBackend), and retries with exponential
 * backoff + full jitter on 429/5xx/connection errors, honouring Retry-After.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import type { Agent } from 'undici';

// undici costs ~100 ms to load: loaded on the first request, so local-repository commands never pay it
let undiciModule: Promise<typeof import('undici')> | null = null;
const loadUndici = (): Promise<typeof import('undici')> => (undiciModule ??= import('undici'));
import type { IncomingHttpHeaders } from 'undici/types/header.js';
import { VERSION } from '../../version.js';
import { JottaError, JottaHttpError } from './errors.js';
import { RateLimiter, Semaphore } from '../../util/limiter.js';

export type Logger = (message: string) => void;

export const USER_AGENT = `jbackup/${VERSION}`;

/** HTTP statuses worth retrying (rclone's list for this backend). */
export const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504, 509]);

const TLS_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
  'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO',
]);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Trust store: the system roots plus NODE_EXTRA_CA_CERTS (undici does not always read it) plus `extra`. */
export function caList(extra?: string | string[]): string[] | undefined {
  const add: string[] = [];
  const envFile = process.env['NODE_EXTRA_CA_CERTS'];
  if (envFile) {
    try {
      add.push(readFileSync(envFile, 'utf8'));
    } catch (e) {
      throw new JottaError(`cannot read NODE_EXTRA_CA_CERTS file ${envFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (extra) add.push(...(Array.isArray(extra) ? extra : [extra]));
  return add.length ? [...tls.rootCertificates, ...add] : undefined;
}

export async function makeAgent(extraCa?: string | string[], connectTimeoutMs = 30_000): Promise<Agent> {
  const ca = caList(extraCa);
  const { Agent } = await loadUndici();
  // one secure context for every connection (building one from ~150 roots per connection cost
  // ~50 ms of CPU each)
  const secureContext = ca ? tls.createSecureContext({ ca }) : undefined;
  return new Agent({
    connect: { ...(secureContext ? { secureContext } : {}), timeout: connectTimeoutMs },
    keepAliveTimeout: 20_000,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
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

export interface RetryNotice {
  /** what is being retried, e.g. "allocate data/ab/ab12…" */
  label: string;
  /** the retry about to happen (1 = first retry) and the most there will be */
  retry: number;
  maxRetries: number;
  waitMs: number;
  /** why the last attempt failed (one line) */
  reason: string;
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

/** Retry-After as milliseconds (seconds or an HTTP date), capped at 5 minutes. */
export function parseRetryAfter(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.min(300_000, Math.round(Number(s) * 1000));
  const t = Date.parse(s);
  if (!Number.isNaN(t)) return Math.min(300_000, Math.max(0, t - Date.now()));
  return undefined;
}

/** Network-level failures (resets, timeouts, closed sockets); TLS trust problems are not retried. */
export function isNetworkError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (TLS_ERROR_CODES.has(code)) return false;
  if (code.startsWith('UND_ERR_') && code !== 'UND_ERR_INVALID_ARG' && code !== 'UND_ERR_NOT_SUPPORTED') return true;
  if (/^E[A-Z]+$/.test(code)) return true;
  const cause = (e as { cause?: unknown }).cause;
  if (cause && cause !== e) return isNetworkError(cause);
  return /socket hang up|other side closed|terminated|ECONNRESET/i.test(e.message);
}

export function tlsHint(e: unknown): string | null {
  const code = (e as NodeJS.ErrnoException)?.code ?? '';
  if (!TLS_ERROR_CODES.has(code)) return null;
  return `TLS certificate of the Jottacloud server is not trusted (${code}): set NODE_EXTRA_CA_CERTS to the CA certificate of your server`;
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
    const window = Math.min(this.maxDelay, this.baseDelay * 2 ** (attempt - 1));
    const jittered = window / 2 + Math.random() * (window / 2);
    return Math.max(retryAfterMs ?? 0, Math.round(jittered));
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
      const into = req.into;
      let pos = 0;
      let chunks: Buffer[] | null = into ? null : [];
      try {
        for await (const c of res.body) {
          const b = c as Buffer;
          if (this.down) await this.down.take(b.length);
          if (chunks === null && pos + b.length <= into!.length) {
            b.copy(into!, pos);
            pos += b.length;
          } else {
            chunks ??= [Buffer.from(into!.subarray(0, pos))];
            chunks.push(b);
          }
          this.stats.bytesDown += b.length;
        }
      } catch (e) {
        if (isNetworkError(e)) throw new RetryableError(`connection broke while reading the response: ${(e as Error).message}`, undefined, undefined, e);
        throw e;
      }
      return { status: res.statusCode, headers: res.headers, body: chunks === null ? into!.subarray(0, pos) : Buffer.concat(chunks) };
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
