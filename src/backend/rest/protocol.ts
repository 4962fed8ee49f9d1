/**
 * restic's REST backend protocol (v2), one implementation for both transports: HTTP(S) to a server
 * (`rest:`, src/backend/rest/http.ts) and HTTP/2 over the stdio of an `rclone serve restic --stdio`
 * child (`rclone:`, src/backend/rest/rclone.ts).
 *
 * Paths, relative to the repository URL (which ends in "/"): `config`, `<type>/<id>` (the server maps
 * `data/<id>` to its `data/<id[0:2]>/<id>`), listings `<type>/` with `Accept:
 * application/vnd.x.restic.rest.v2` answered by `[{"name","size"}]` (a v1 server's `["name"]` is
 * stat'ed name by name), `POST ?create=true` on the repository URL. Status mapping (SPEC.md "REST"):
 * 404 → NotFoundError; 403 on DELETE → DeleteRefusedError (append-only); 403 on POST of a file that
 * exists with the same size → kept (append-only servers refuse overwrites, and names are content
 * hashes); 408/429/5xx and connection failures → TransientError (the retry decorator's business).
 */
import {
  AlreadyExistsError, type Backend, type BackendProperties, DeleteRefusedError, type FileInfo, type FileType, type Handle,
  listConfig, NotFoundError, PartsComparer, partsOf, totalLength,
} from '../backend.js';
import { TransientError } from '../decorators/retry.js';
import { parseRetryAfter, RETRY_STATUSES } from '../net.js';
import { ID_RE } from '../../util/ids.js';
import { Semaphore } from '../../util/limiter.js';

export const CONTENT_TYPE_V2 = 'application/vnd.x.restic.rest.v2';
export const CONTENT_TYPE_V1 = 'application/vnd.x.restic.rest.v1';

export interface RestRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'DELETE';
  /** relative to the repository URL: '' (the repository itself), 'config', 'data/<id>', 'data/' */
  path: string;
  /** without '?' */
  query?: string;
  headers?: Record<string, string>;
  body?: readonly Uint8Array[];
  /** read the response body into this buffer while it fits */
  into?: Buffer;
  /**
   * take the response body chunk by chunk instead (the response's body is then empty); returning
   * false stops reading (the request is abandoned)
   */
  onData?: (chunk: Buffer) => boolean;
}

export interface RestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** How requests reach the server. Network failures are TransientErrors; every HTTP status is returned. */
export interface RestTransport {
  send(req: RestRequest): Promise<RestResponse>;
  close(): Promise<void>;
}

export function headerOf(h: RestResponse['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

const DIRS: Record<Exclude<FileType, 'config'>, string> = { data: 'data', index: 'index', snapshots: 'snapshots', keys: 'keys', locks: 'locks' };

/** restic's REST layout: the server, not the client, spreads data files over data/xx/ */
export function restPath(h: Handle): string {
  return h.type === 'config' ? 'config' : `${DIRS[h.type]}/${h.name}`;
}

function statusText(status: number): string {
  const t: Record<number, string> = {
    400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
    409: 'Conflict', 413: 'Payload Too Large', 416: 'Range Not Satisfiable', 429: 'Too Many Requests', 500: 'Internal Server Error',
    502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 507: 'Insufficient Storage',
  };
  return t[status] ? `HTTP ${status} ${t[status]}` : `HTTP ${status}`;
}

export interface RestBackendOptions {
  /** concurrent requests (restic's rest.connections / rclone.connections, default 5) */
  connections?: number;
  /** bytes of pack windows kept for small reads (default 32 MiB; 0: none) */
  windowCacheBytes?: number;
}

/**
 * Small reads of pack files (a tree blob: ~1 KiB; walking a parent snapshot reads hundreds, one after
 * the other, each a round trip) are served from 1 MiB windows of the pack, read once: measured on
 * loopback under load, a re-run of 2,000 files in 100 directories made ~100 GETs of ~1.3 KiB at 1–40 ms
 * each. Packs are immutable (named by their hash), so a window is never stale; remove() drops a
 * pack's windows. Bounded by windowCacheBytes (oldest window out first).
 */
const WINDOW = 1024 * 1024;
const SMALL_READ = 64 * 1024;

export class RestBackend implements Backend {
  readonly properties: BackendProperties;
  private readonly sem: Semaphore;
  /** counters for tests and -v summaries */
  readonly stats = { requests: 0, windowHits: 0 };
  /** pack windows for small reads: key `<path>@<start>`, in insertion order (the oldest is evicted first) */
  private readonly windows = new Map<string, { p: Promise<Buffer>; size: number }>();
  private windowBytes = 0;
  private readonly windowMax: number;

  /** `location`: what the user sees (credentials redacted) */
  constructor(readonly location: string, private readonly transport: RestTransport, opts: RestBackendOptions = {}) {
    const conns = Math.max(1, opts.connections ?? 5);
    this.sem = new Semaphore(conns);
    // a REST server's save is not atomic for us (rclone's local remote writes the final name
    // directly) and proves nothing about the stored bytes: packs are read back (SPEC "REST")
    this.properties = { connections: conns, atomicWrites: false };
    this.windowMax = opts.windowCacheBytes ?? 32 * 1024 * 1024;
  }

  /** the window of a pack starting at `start` (shorter at the end of the file), read once */
  private window(h: Handle, start: number): Promise<Buffer> {
    const p = restPath(h);
    const key = `${p}@${start}`;
    const have = this.windows.get(key);
    if (have) {
      this.stats.windowHits++;
      return have.p;
    }
    const entry: { p: Promise<Buffer>; size: number } = { p: Promise.resolve(Buffer.alloc(0) as Buffer), size: WINDOW };
    entry.p = (async () => {
      const r = await this.send({ method: 'GET', path: p, headers: { range: `bytes=${start}-${start + WINDOW - 1}` } });
      if (r.status === 404) throw new NotFoundError(h);
      if (r.status === 416) throw new Error(`load ${p}: short read (offset ${start} is beyond the end of the file)`);
      if (r.status !== 200 && r.status !== 206) throw this.failure(`load ${p}`, r);
      return r.status === 200 ? r.body.subarray(start, start + WINDOW) : r.body;
    })();
    entry.p.catch(() => {
      if (this.windows.get(key) === entry) { this.windows.delete(key); this.windowBytes -= entry.size; }
    });
    this.windows.set(key, entry);
    this.windowBytes += entry.size;
    for (const [k, e] of this.windows) {
      if (this.windowBytes <= this.windowMax || k === key) break;
      this.windows.delete(k);
      this.windowBytes -= e.size;
    }
    return entry.p;
  }

  private dropWindows(h: Handle): void {
    const prefix = `${restPath(h)}@`;
    for (const [k, e] of this.windows) {
      if (k.startsWith(prefix)) { this.windows.delete(k); this.windowBytes -= e.size; }
    }
  }

  private async send(req: RestRequest): Promise<RestResponse> {
    return this.sem.run(async () => {
      this.stats.requests++;
      return this.transport.send(req);
    });
  }

  /** an error for an unexpected status: transient for 408/429/5xx, else one line naming the request */
  private failure(what: string, r: RestResponse): Error {
    const msg = `${what}: ${statusText(r.status)}${r.status === 401 ? ' (check the user name and password)' : ''}`;
    if (RETRY_STATUSES.has(r.status)) return new TransientError(msg, parseRetryAfter(headerOf(r.headers, 'retry-after')), r.status);
    return new Error(msg);
  }

  async create(): Promise<void> {
    const st = await this.send({ method: 'HEAD', path: 'config' });
    if (st.status === 200) throw new AlreadyExistsError(`repository ${this.location} already exists (config file found)`);
    if (st.status !== 404) throw this.failure('stat config', st);
    const r = await this.send({ method: 'POST', path: '', query: 'create=true', body: [] });
    if (r.status < 200 || r.status > 299) throw this.failure('create repository', r);
  }

  async save(h: Handle, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const p = restPath(h);
    const parts = partsOf(data);
    const size = totalLength(parts);
    if (h.type === 'config') {
      const st = await this.send({ method: 'HEAD', path: p });
      if (st.status === 200) throw new AlreadyExistsError('config already exists');
      if (st.status !== 404) throw this.failure('stat config', st);
    }
    const r = await this.send({ method: 'POST', path: p, headers: { 'content-type': 'application/octet-stream' }, body: parts });
    if (r.status >= 200 && r.status <= 299) return;
    if (r.status === 403) {
      // an append-only server refuses to overwrite: a file of the same content-addressed name and
      // size is the one we would store (packs are read back by the repository all the same)
      const st = await this.send({ method: 'HEAD', path: p });
      if (st.status === 200) {
        if (h.type === 'config') throw new AlreadyExistsError('config already exists');
        const have = Number(headerOf(st.headers, 'content-length'));
        if (have === size) return;
        throw new Error(`save ${p}: the server refused to replace a stored file of ${have} bytes with ${size} bytes (HTTP 403; append-only?)`);
      }
    }
    throw this.failure(`save ${p}`, r);
  }

  async load(h: Handle, offset = 0, length?: number, into?: Buffer): Promise<Buffer> {
    const p = restPath(h);
    if (length === 0) return Buffer.alloc(0);
    const start = Math.floor(offset / WINDOW) * WINDOW;
    if (h.type === 'data' && length !== undefined && length <= SMALL_READ && this.windowMax > 0 && offset + length <= start + WINDOW) {
      const w = await this.window(h, start);
      const from = offset - start;
      if (from + length > w.length) throw new Error(`load ${p}: short read (${Math.max(0, w.length - from)} of ${length} bytes at offset ${offset})`);
      const out = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      w.copy(out, 0, from, from + length);
      return out;
    }
    const headers: Record<string, string> = {};
    // a whole file is asked for without a Range (Go's file server answers 416 to "bytes=0-" of an empty file)
    if (offset > 0 || length !== undefined) headers['range'] = length === undefined ? `bytes=${offset}-` : `bytes=${offset}-${offset + length - 1}`;
    const r = await this.send({ method: 'GET', path: p, headers, ...(into && length !== undefined && into.length >= length ? { into } : {}) });
    if (r.status === 404) throw new NotFoundError(h);
    if (r.status === 416) throw new Error(`load ${p}: short read (range ${offset}+${length ?? 'end'} is beyond the end of the file)`);
    if (r.status !== 200 && r.status !== 206) throw this.failure(`load ${p}`, r);
    let body = r.body;
    // a server that ignored the Range sent the whole file
    if (r.status === 200 && headers['range']) body = body.subarray(offset, length === undefined ? undefined : offset + length);
    if (length !== undefined && body.length !== length) {
      throw new Error(`load ${p}: short read (${body.length} of ${length} bytes at offset ${offset})`);
    }
    return body;
  }

  async stat(h: Handle): Promise<FileInfo> {
    const p = restPath(h);
    const r = await this.send({ method: 'HEAD', path: p });
    if (r.status === 404) throw new NotFoundError(h);
    if (r.status !== 200) throw this.failure(`stat ${p}`, r);
    const size = Number(headerOf(r.headers, 'content-length'));
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`stat ${p}: the server sent no valid Content-Length`);
    return { name: h.name, size };
  }

  async list(type: FileType): Promise<FileInfo[]> {
    if (type === 'config') return listConfig(this);
    const dir = `${DIRS[type]}/`;
    const r = await this.send({ method: 'GET', path: dir, headers: { accept: CONTENT_TYPE_V2 } });
    if (r.status === 404) return [];
    if (r.status !== 200) throw this.failure(`list ${dir}`, r);
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.body.toString('utf8'));
    } catch {
      throw new Error(`list ${dir}: the server's answer is not JSON`);
    }
    if (!Array.isArray(parsed)) throw new Error(`list ${dir}: the server's answer is not a JSON array`);
    const v2 = (headerOf(r.headers, 'content-type') ?? '').startsWith(CONTENT_TYPE_V2);
    const out: FileInfo[] = [];
    if (v2) {
      for (const e of parsed as { name?: unknown; size?: unknown }[]) {
        if (typeof e?.name !== 'string' || typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) {
          throw new Error(`list ${dir}: malformed entry ${JSON.stringify(e).slice(0, 100)}`);
        }
        if (ID_RE.test(e.name)) out.push({ name: e.name, size: e.size });
      }
      return out;
    }
    // protocol v1: names only, a HEAD for each size (as restic's listv1)
    for (const n of parsed) {
      if (typeof n !== 'string' || !ID_RE.test(n)) continue;
      out.push(await this.stat({ type, name: n }));
    }
    return out;
  }

  /**
   * The stored file equals `parts`: one GET whose body is compared with them as it arrives (nothing
   * is allocated for it; a difference stops the download). The repository calls this after each
   * pack upload (SPEC "REST backends": verification of uploads).
   */
  async verifySaved(h: Handle, parts: readonly Uint8Array[], size: number): Promise<boolean> {
    const cmp = new PartsComparer(parts);
    let got = 0;
    let same = true;
    const r = await this.send({
      method: 'GET', path: restPath(h),
      onData: (c) => {
        got += c.length;
        same = got <= size && cmp.feed(c);
        return same;
      },
    });
    // (the body went to the comparer whatever the status: an error page compares unequal and stops the read)
    if (r.status === 404) return false;
    if (r.status !== 200) throw this.failure(`verify ${restPath(h)}`, r);
    return same && got === size;
  }

  async remove(h: Handle): Promise<void> {
    const p = restPath(h);
    if (h.type === 'data') this.dropWindows(h);
    const r = await this.send({ method: 'DELETE', path: p });
    if (r.status === 404) throw new NotFoundError(h);
    if (r.status === 403) throw new DeleteRefusedError(h, 403);
    if (r.status < 200 || r.status > 299) throw this.failure(`remove ${p}`, r);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}
