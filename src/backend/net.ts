/**
 * What every HTTP-speaking backend shares (Jottacloud, rest:, rclone:): which failures are worth a
 * retry, the backoff formula, Retry-After, the trust store (system roots + NODE_EXTRA_CA_CERTS +
 * --cacert) and the undici agent. Written once; src/backend/jottacloud/http.ts and
 * src/backend/rest/ import it.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { Agent } from 'undici';
import { VERSION } from '../version.js';

// undici costs ~100 ms to load: loaded on the first request, so local-repository commands never pay it
let undiciModule: Promise<typeof import('undici')> | null = null;
export const loadUndici = (): Promise<typeof import('undici')> => (undiciModule ??= import('undici'));

/** HTTP statuses worth retrying (rclone's list for its HTTP backends). */
/** what every HTTP backend says it is */
export const USER_AGENT = `jbackup/${VERSION}`;

export const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504, 509]);

export const TLS_ERROR_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
  'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO',
]);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A retry about to happen, for a caller that shows one line per retry to a person. */
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

/** How hard to retry one operation (the CLI decides: a person at a terminal wants to know within seconds). */
export interface RetryPolicy {
  /** attempts for retryable failures (default 10) */
  maxAttempts?: number;
  /** first backoff delay in ms (default 200), cap (default 20 s) */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** give up once this much time has passed since the first attempt (default: no limit) */
  maxElapsedMs?: number;
  /** called before each retry wait (else the logger gets a line) */
  onRetry?: (r: RetryNotice) => void;
}

/** Delay before retry number `attempt` (1-based): full jitter over the upper half of an exponential window, at least Retry-After. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, retryAfterMs?: number): number {
  const window = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  const jittered = window / 2 + Math.random() * (window / 2);
  return Math.max(retryAfterMs ?? 0, Math.round(jittered));
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

/** Network-level failures (resets, timeouts, closed sockets, refused connections); TLS trust problems are not retried. */
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

/** the TLS trust failure of `e` as one line naming the server, or null when `e` is something else */
export function tlsHint(e: unknown, server: string): string | null {
  let x: unknown = e;
  for (let i = 0; i < 4 && x; i++) {
    const code = (x as NodeJS.ErrnoException)?.code ?? '';
    if (TLS_ERROR_CODES.has(code)) return `TLS certificate of ${server} is not trusted (${code}): set NODE_EXTRA_CA_CERTS (or --cacert) to the CA certificate of your server`;
    x = (x as { cause?: unknown }).cause;
  }
  return null;
}

/** Trust store: the system roots plus NODE_EXTRA_CA_CERTS (undici does not always read it) plus `extra`. */
export function caList(extra?: string | string[]): string[] | undefined {
  const add: string[] = [];
  const envFile = process.env['NODE_EXTRA_CA_CERTS'];
  if (envFile) {
    try {
      add.push(readFileSync(envFile, 'utf8'));
    } catch (e) {
      throw new Error(`cannot read NODE_EXTRA_CA_CERTS file ${envFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (extra) add.push(...(Array.isArray(extra) ? extra : [extra]));
  return add.length ? [...tls.rootCertificates, ...add] : undefined;
}

export interface AgentOptions {
  /** extra trusted CA certificate(s), PEM */
  ca?: string | string[] | undefined;
  connectTimeoutMs?: number;
  /** connections per origin (default: undici's, unlimited) */
  connections?: number;
}

export async function makeAgent(opts: AgentOptions = {}): Promise<Agent> {
  const ca = caList(opts.ca);
  const { Agent } = await loadUndici();
  // one secure context for every connection (building one from ~150 roots per connection cost
  // ~50 ms of CPU each)
  const secureContext = ca ? tls.createSecureContext({ ca }) : undefined;
  return new Agent({
    connect: { ...(secureContext ? { secureContext } : {}), timeout: opts.connectTimeoutMs ?? 30_000 },
    keepAliveTimeout: 20_000,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
    ...(opts.connections ? { connections: opts.connections } : {}),
  });
}

/**
 * A response body collected into `into` while it fits (restore's recycled read buffers: no
 * allocation per read), else into chunks joined at the end. Both HTTP layers read bodies so.
 */
export class BodySink {
  private pos = 0;
  private chunks: Buffer[] | null;
  constructor(private readonly into?: Buffer) {
    this.chunks = into ? null : [];
  }

  push(b: Buffer): void {
    if (this.chunks === null && this.pos + b.length <= this.into!.length) {
      b.copy(this.into!, this.pos);
      this.pos += b.length;
    } else {
      this.chunks ??= [Buffer.from(this.into!.subarray(0, this.pos))];
      this.chunks.push(b);
    }
  }

  result(): Buffer {
    return this.chunks === null ? this.into!.subarray(0, this.pos) : Buffer.concat(this.chunks);
  }
}
