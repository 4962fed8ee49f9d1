/**
 * `rest:http(s)://[user:pass@]host:port/path/`: restic's REST protocol over HTTP/1.1 through one undici
 * agent (keep-alive connections reused, at most `connections` to the server), HTTPS trusting the system
 * roots plus NODE_EXTRA_CA_CERTS plus --cacert. Credentials from the URL (or the caller) are sent as
 * Basic auth and never appear in `location`, errors or logs.
 */
import { Readable } from 'node:stream';
import type { Agent } from 'undici';
import { totalLength } from '../backend.js';
import { TransientError } from '../decorators/retry.js';
import { BodySink, isNetworkError, loadUndici, makeAgent, tlsHint, USER_AGENT } from '../net.js';
import { RestBackend, type RestRequest, type RestResponse, type RestTransport } from './protocol.js';

export interface RestLocation {
  /** the URL without credentials, ending in "/" */
  url: URL;
  username?: string;
  password?: string;
  /** `rest:<url>` with the password replaced by *** (restic's StripPassword) */
  redacted: string;
}

export function isRestLocation(location: string): boolean {
  return location.startsWith('rest:');
}

/** Parse `rest:<url>`; the URL must be http or https. */
export function parseRestLocation(location: string): RestLocation {
  const raw = location.slice('rest:'.length);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`invalid rest: location "${redactUrlText(location)}": expected rest:http(s)://[user:pass@]host:port/path/`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`invalid rest: location "${redactUrlText(location)}": the URL must start with http:// or https://`);
  }
  if (url.search || url.hash) throw new Error(`invalid rest: location "${redactUrlText(location)}": the URL must not have a query or fragment`);
  const out: RestLocation = { url, redacted: '' };
  if (url.username) out.username = decodeURIComponent(url.username);
  if (url.password) out.password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  out.redacted = `rest:${url.protocol}//${out.username !== undefined ? `${encodeURIComponent(out.username)}${out.password !== undefined ? ':***' : ''}@` : ''}${url.host}${url.pathname}`;
  return out;
}

/** a location string with any `user:password@` password replaced by *** (for messages about text that did not parse) */
export function redactUrlText(s: string): string {
  return s.replace(/(\/\/[^/:@\s]*):[^@/\s]*@/, '$1:***@');
}

export interface RestHttpOptions {
  connections?: number;
  /** extra trusted CA certificate(s), PEM (--cacert) */
  ca?: string[];
  /** used when the URL has no credentials (JBACKUP_REST_USERNAME / JBACKUP_REST_PASSWORD) */
  username?: string;
  password?: string;
  connectTimeoutMs?: number;
}

const COALESCE = 1024 * 1024;

/** parts as ~1 MiB chunks (a pack arrives as thousands of small parts: one write each would cost a syscall) */
async function* coalesced(parts: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  let stage: Buffer | null = null;
  let n = 0;
  for (const p of parts) {
    if (p.length >= COALESCE / 4) {
      if (n) { yield stage!.subarray(0, n); stage = null; n = 0; }
      yield p;
      continue;
    }
    if (stage && n + p.length > stage.length) { yield stage.subarray(0, n); stage = null; n = 0; }
    stage ??= Buffer.allocUnsafe(COALESCE);
    stage.set(p, n);
    n += p.length;
  }
  if (n) yield stage!.subarray(0, n);
}

export class HttpTransport implements RestTransport {
  private agentP: Promise<Agent> | null = null;
  private readonly auth: string | undefined;

  constructor(private readonly loc: RestLocation, private readonly opts: RestHttpOptions = {}) {
    const user = loc.username ?? opts.username;
    const pass = loc.username !== undefined ? loc.password : opts.password;
    if (user !== undefined || pass !== undefined) this.auth = `Basic ${Buffer.from(`${user ?? ''}:${pass ?? ''}`).toString('base64')}`;
  }

  private agent(): Promise<Agent> {
    return (this.agentP ??= makeAgent({ ca: this.opts.ca, connections: this.opts.connections ?? 5, connectTimeoutMs: this.opts.connectTimeoutMs ?? 30_000 }));
  }

  async send(req: RestRequest): Promise<RestResponse> {
    const url = `${this.loc.url.origin}${this.loc.url.pathname}${req.path}${req.query ? `?${req.query}` : ''}`;
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(req.headers ?? {}) };
    if (this.auth) headers['authorization'] = this.auth;
    let body: Uint8Array | Readable | undefined;
    if (req.body) {
      headers['content-length'] = String(totalLength(req.body));
      body = req.body.length === 1 ? req.body[0]! : req.body.length === 0 ? Buffer.alloc(0) : Readable.from(coalesced(req.body), { objectMode: false });
    }
    const what = `${req.method} ${req.path || '/'}`;
    let res;
    try {
      const [{ request }, agent] = await Promise.all([loadUndici(), this.agent()]);
      res = await request(url, { method: req.method, headers, ...(body !== undefined ? { body } : {}), dispatcher: agent });
    } catch (e) {
      const hint = tlsHint(e, `the REST server ${this.loc.url.host}`);
      if (hint) throw new Error(hint);
      if (isNetworkError(e)) throw new TransientError(`${what}: ${oneLine(e)}`);
      throw e;
    }
    const sink = new BodySink(req.into);
    try {
      if (req.onData) {
        // stop early when the consumer has seen enough (its answer is known): the connection is dropped
        for await (const c of res.body) {
          if (!req.onData(c as Buffer)) {
            res.body.destroy();
            break;
          }
        }
        return { status: res.statusCode, headers: res.headers as RestResponse['headers'], body: Buffer.alloc(0) };
      }
      for await (const c of res.body) sink.push(c as Buffer);
    } catch (e) {
      if (isNetworkError(e)) throw new TransientError(`${what}: connection broke while reading the answer: ${oneLine(e)}`);
      throw e;
    }
    return { status: res.statusCode, headers: res.headers as RestResponse['headers'], body: sink.result() };
  }

  async close(): Promise<void> {
    if (this.agentP) await (await this.agentP).close().catch(() => {});
  }
}

function oneLine(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code;
  const msg = (err.cause?.message && err.message === 'fetch failed' ? err.cause.message : err.message) ?? String(e);
  return `${msg.split('\n')[0]}${code && !msg.includes(code) ? ` (${code})` : ''}`;
}

/** a RestBackend over HTTP(S) for a `rest:` location */
export function openRestBackend(location: string, opts: RestHttpOptions = {}): RestBackend {
  const loc = parseRestLocation(location);
  return new RestBackend(loc.redacted, new HttpTransport(loc, opts), { connections: opts.connections ?? 5 });
}
